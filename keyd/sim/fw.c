/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated AMD-SP firmware of one launch: MSG_KEY_REQ with the
 * firmware's rules, MSG_REPORT_REQ with VCEK-signed v5 reports, and the
 * host's certificate table. The layout of every message is in keyd/sim.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ecdsa.h>
#include <openssl/rand.h>

#include "keyd/backend.h"
#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/util.h"
#include "internal.h"

#define DERIVE_SALT "keyd-sim-derive-v1"
#define SIM_STEP_MS 10000

struct kd_sim_fw {
	struct kd_sim_chip *chip;
	struct kd_sim_launch l;
	struct kd_secret *vmrk; /* per launch: VMRK keys do not survive a restart */
	uint8_t report_id[32];
	uint64_t launch_tcb;
	int debug_key_fd;
	const char *last_reason; /* static string: why the last request got its status */
	/*
	 * One request at a time across every connection, like the guest
	 * driver's guest-request mutex: held from reading the chip state to
	 * logging the status, never across a connection's idle time.
	 */
	pthread_mutex_t lock;
};

static const struct {
	enum kd_product p;
	uint8_t fam, mod, step;
	uint8_t build, minor, major; /* firmware version reported */
} cpuids[] = {
	{KD_PRODUCT_MILAN, 0x19, 0x01, 0x01, 21, 55, 1},
	{KD_PRODUCT_GENOA, 0x19, 0x11, 0x01, 8, 55, 1},
	{KD_PRODUCT_TURIN, 0x1a, 0x02, 0x00, 35, 55, 1},
};

int kd_sim_fw_new(struct kd_sim_chip *chip, const struct kd_sim_launch *l, struct kd_sim_fw **ret)
{
	struct kd_sim_fw *fw;
	EVP_PKEY *k;
	X509 *x;
	int r;

	/* What SNP_LAUNCH_START would refuse (docs/snp-facts.md §2.3). */
	if (!(l->policy & KD_POLICY_RSVD1) || (l->policy & KD_POLICY_MBZ_MASK))
		return kd_fail(KD_EINVAL, "policy 0x%llx: bit 17 must be set and bits 63:26 clear",
			       (unsigned long long)l->policy);
	if (l->vmpl > 3)
		return kd_fail(KD_EINVAL, "launch VMPL %u is above 3", l->vmpl);
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return kd_fail(KD_ENOMEM, "out of memory (simulated firmware)");
	fw->l = *l;
	fw->debug_key_fd = -1;
	pthread_mutex_init(&fw->lock, NULL);
	if ((r = kd_secret_new(32, &fw->vmrk)) < 0)
		goto fail;
	if (RAND_priv_bytes(fw->vmrk->data, 32) != 1 || RAND_bytes(fw->report_id, 32) != 1) {
		r = kd_fail(KD_ECRYPTO, "OpenSSL: RAND_bytes failed");
		goto fail;
	}
	fw->launch_tcb = kd_sim_chip_current_tcb(chip);
	if ((r = kd_sim_chip_vcek(chip, fw->launch_tcb, &k, &x)) < 0)
		goto fail;
	fw->chip = chip;
	*ret = fw;
	return 0;
fail:
	kd_secret_free(fw->vmrk);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
	return r;
}

void kd_sim_fw_free(struct kd_sim_fw *fw)
{
	if (!fw)
		return;
	kd_sim_chip_free(fw->chip);
	kd_secret_free(fw->vmrk);
	pthread_mutex_destroy(&fw->lock);
	kd_wipe(fw, sizeof(*fw));
	free(fw);
}

struct kd_sim_chip *kd_sim_fw_chip(struct kd_sim_fw *fw)
{
	return fw->chip;
}

const char *kd_sim_fw_last_reason(const struct kd_sim_fw *fw)
{
	return fw->last_reason ? fw->last_reason : "ok";
}

void kd_sim_fw_set_debug_key_fd(struct kd_sim_fw *fw, int fd)
{
	fw->debug_key_fd = fd;
}

uint32_t kd_sim_check_key_req(const struct kd_sim_fw *fw, const struct kd_key_req *req,
			      const char **why)
{
	unsigned key_sel = (req->root_key_select & KD_KEY_SEL_MASK) >> KD_KEY_SEL_SHIFT;
	const char *w = NULL;
	uint32_t st = KD_FW_INVALID_PARAMS;

	if (req->root_key_select & ~(KD_ROOT_KEY_VMRK | KD_KEY_SEL_MASK))
		w = "reserved root_key_select bits set";
	else if (key_sel == 3)
		w = "KEY_SEL 3 is reserved";
	/* Bit 6 (LAUNCH_MIT_VECTOR) needs the 40-byte request this ABI lacks. */
	else if (req->guest_field_select & ~KD_FIELD_VALID_MASK)
		w = "reserved guest_field_select bits set";
	else if (req->vmpl > 3)
		w = "vmpl above 3";
	else if (req->vmpl < fw->l.vmpl)
		w = "vmpl below the launch VMPL";
	else if (req->guest_svn > fw->l.guest_svn)
		w = "guest_svn above the launch SVN";
	else if (!kd_sim_tcb_le(req->tcb_version, kd_sim_chip_committed_tcb(fw->chip)))
		w = "tcb_version above the committed TCB";
	else if (key_sel == KD_KEY_SEL_VLEK) {
		/* The simulated chip has no VLEK installed. */
		w = "VLEK selected but none is installed";
		st = KD_FW_INVALID_KEY;
	} else
		st = KD_FW_SUCCESS;
	if (why)
		*why = w ? w : "ok";
	return st;
}

/* The derivation context: see "keys" in keyd/sim.h. */
static size_t derive_context(const struct kd_sim_fw *fw, const struct kd_key_req *req,
			     uint8_t *out)
{
	uint64_t f = req->guest_field_select;
	size_t n = 0;

	kd_put_le32(out + n, req->root_key_select), n += 4;
	kd_put_le64(out + n, f), n += 8;
	kd_put_le32(out + n, req->vmpl), n += 4;
	if (f & KD_FIELD_POLICY)
		kd_put_le64(out + n, fw->l.policy), n += 8;
	if (f & KD_FIELD_IMAGE_ID)
		memcpy(out + n, fw->l.image_id, 16), n += 16;
	if (f & KD_FIELD_FAMILY_ID)
		memcpy(out + n, fw->l.family_id, 16), n += 16;
	if (f & KD_FIELD_MEASUREMENT)
		memcpy(out + n, fw->l.measurement, 48), n += 48;
	if (f & KD_FIELD_GUEST_SVN)
		kd_put_le32(out + n, req->guest_svn), n += 4;
	if (f & KD_FIELD_TCB_VERSION)
		kd_put_le64(out + n, req->tcb_version), n += 8;
	return n;
}

static void debug_print_key(const struct kd_sim_fw *fw, const uint8_t *key)
{
	char hex[2 * KD_DERIVED_KEY_SIZE + 2];

	if (fw->debug_key_fd < 0)
		return;
	kd_hex(key, KD_DERIVED_KEY_SIZE, hex);
	hex[2 * KD_DERIVED_KEY_SIZE] = '\n';
	if (write(fw->debug_key_fd, hex, sizeof(hex) - 1) < 0) {
		/* Test-only output; a failure must not change the firmware's answer. */
	}
	kd_wipe(hex, sizeof(hex));
}

int kd_sim_derive(struct kd_sim_fw *fw, const uint8_t *req_buf, size_t req_len,
		  uint8_t rsp[KD_KEY_RSP_SIZE], uint32_t *ret_status)
{
	_kd_secret_ struct kd_secret *key = NULL;
	struct kd_key_req req;
	uint8_t ctx[128];
	uint32_t st;
	size_t n;
	int r;

	if (req_len != KD_KEY_REQ_SIZE)
		return kd_fail(KD_EMALFORMED, "MSG_KEY_REQ is %zu bytes, not %u", req_len,
			       KD_KEY_REQ_SIZE);
	r = kd_key_req_decode(req_buf, req_len, &req);
	if (r == KD_ERESERVED) {
		st = KD_FW_INVALID_PARAMS;
		fw->last_reason = "reserved field rsvd is not zero";
	} else if (r < 0) {
		return r;
	} else {
		st = kd_sim_check_key_req(fw, &req, &fw->last_reason);
	}
	if (st != KD_FW_SUCCESS) {
		kd_key_rsp_encode(st, NULL, rsp);
		*ret_status = st;
		return 0;
	}
	n = derive_context(fw, &req, ctx);
	r = kd_hkdf_bin((req.root_key_select & KD_ROOT_KEY_VMRK) ? fw->vmrk
								 : kd_sim_chip_secret(fw->chip),
			DERIVE_SALT, strlen(DERIVE_SALT), ctx, n, KD_DERIVED_KEY_SIZE, &key);
	kd_wipe(ctx, sizeof(ctx));
	if (r < 0)
		return r;
	debug_print_key(fw, key->data);
	kd_key_rsp_encode(KD_FW_SUCCESS, key->data, rsp);
	*ret_status = KD_FW_SUCCESS;
	return 0;
}

static int cpuid_of(enum kd_product p)
{
	for (size_t i = 0; i < KD_ARRAY_SIZE(cpuids); i++)
		if (cpuids[i].p == p)
			return (int)i;
	return -1;
}

/* ECDSA P-384 / SHA-384 over bytes 0..0x29F; R, S little-endian, 72 bytes. */
static int sign_report(EVP_PKEY *key, uint8_t *rep)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned char der[160];
	const unsigned char *p = der;
	size_t len = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int ok;

	ok = m && EVP_DigestSignInit(m, NULL, EVP_sha384(), NULL, key) > 0 &&
	     EVP_DigestSign(m, der, &len, rep, KD_REPORT_SIGNED_LEN) > 0 &&
	     (sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) != NULL;
	if (ok) {
		ECDSA_SIG_get0(sig, &r, &s);
		ok = BN_bn2lebinpad(r, rep + 0x2A0, 72) == 72 &&
		     BN_bn2lebinpad(s, rep + 0x2E8, 72) == 72;
	}
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(m);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "OpenSSL: report signature failed");
}

int kd_sim_report(struct kd_sim_fw *fw, const uint8_t report_data[64], uint32_t vmpl,
		  uint8_t rsp[KD_SIM_REPORT_RSP_SIZE], uint32_t *ret_status)
{
	struct kd_sim_chip *c = fw->chip;
	enum kd_product p = kd_sim_chip_product(c);
	int ci = cpuid_of(p);
	struct kd_report rep = {0};
	EVP_PKEY *key;
	X509 *cert;
	int r;

	memset(rsp, 0, KD_SIM_REPORT_RSP_SIZE);
	fw->last_reason = "ok";
	if (vmpl > 3 || vmpl < fw->l.vmpl) {
		fw->last_reason = "vmpl below the launch VMPL or above 3";
		kd_put_le32(rsp, KD_FW_INVALID_PARAMS);
		*ret_status = KD_FW_INVALID_PARAMS;
		return 0;
	}
	if (ci < 0)
		return kd_fail(KD_EINVAL, "chip has an unknown product");
	rep.version = 5;
	rep.guest_svn = fw->l.guest_svn;
	rep.policy = fw->l.policy;
	memcpy(rep.family_id, fw->l.family_id, 16);
	memcpy(rep.image_id, fw->l.image_id, 16);
	rep.vmpl = vmpl;
	rep.signature_algo = 1;
	rep.current_tcb = kd_sim_chip_current_tcb(c);
	/* SMT_EN | TSME_EN | ALIAS_CHECK_COMPLETE, as a patched host shows. */
	rep.platform_info = 0x23;
	rep.signer_info = (uint32_t)KD_SIGNING_KEY_VCEK << KD_SIGNER_KEY_SHIFT;
	memcpy(rep.report_data, report_data, 64);
	memcpy(rep.measurement, fw->l.measurement, 48);
	memcpy(rep.host_data, fw->l.host_data, 32);
	memcpy(rep.report_id, fw->report_id, 32);
	memset(rep.report_id_ma, 0xff, 32); /* no migration agent */
	/* The VCEK follows the reported TCB: here the current one. */
	rep.reported_tcb = rep.current_tcb;
	rep.cpuid_fam_id = cpuids[ci].fam;
	rep.cpuid_mod_id = cpuids[ci].mod;
	rep.cpuid_step = cpuids[ci].step;
	memcpy(rep.chip_id, kd_sim_chip_id(c), 64);
	rep.committed_tcb = kd_sim_chip_committed_tcb(c);
	rep.current_build = rep.committed_build = cpuids[ci].build;
	rep.current_minor = rep.committed_minor = cpuids[ci].minor;
	rep.current_major = rep.committed_major = cpuids[ci].major;
	rep.launch_tcb = fw->launch_tcb;
	if ((r = kd_sim_chip_vcek(c, rep.reported_tcb, &key, &cert)) < 0)
		return r;
	if ((r = kd_report_encode(&rep, rsp + 0x20)) < 0)
		return r;
	if ((r = sign_report(key, rsp + 0x20)) < 0)
		return r;
	kd_put_le32(rsp, KD_FW_SUCCESS);
	kd_put_le32(rsp + 4, KD_REPORT_SIZE);
	*ret_status = KD_FW_SUCCESS;
	return 0;
}

int kd_sim_cert_table(struct kd_sim_fw *fw, uint8_t **ret, size_t *ret_len)
{
	uint64_t tcb = kd_sim_chip_current_tcb(fw->chip);
	uint8_t *der[3] = {NULL, NULL, NULL};
	size_t len[3];
	static const enum kd_sim_cert order[3] = {KD_SIM_CERT_VCEK, KD_SIM_CERT_ASK,
						  KD_SIM_CERT_ARK};
	int r;

	for (int i = 0; i < 3; i++)
		if ((r = kd_sim_chip_cert_der(fw->chip, order[i], tcb, &der[i], &len[i])) < 0)
			goto out;
	{
		struct kd_cert_entry e[3] = {
			{.kind = KD_CERT_VCEK, .der = der[0], .len = len[0]},
			{.kind = KD_CERT_ASK, .der = der[1], .len = len[1]},
			{.kind = KD_CERT_ARK, .der = der[2], .len = len[2]},
		};

		r = kd_certtable_build(e, 3, ret, ret_len);
	}
out:
	for (int i = 0; i < 3; i++)
		free(der[i]);
	return r;
}

int kd_sim_handle(struct kd_sim_fw *fw, const struct kd_sim_hdr *h, const uint8_t *payload,
		  uint16_t *ret_type, uint8_t **ret_rsp, size_t *ret_len, uint32_t *ret_status)
{
	struct kd_cursor c;
	uint8_t data[64], *out = NULL;
	uint32_t vmpl, st = 0;
	size_t n = 0;
	int r;

	/* A firmware update by `keyd-simfw tcb` applies to the next request. */
	if ((r = kd_sim_chip_reload(fw->chip)) < 0)
		return r;
	switch (h->type) {
	case KD_SIM_REQ_DERIVE:
		n = KD_KEY_RSP_SIZE;
		if (!(out = malloc(n)))
			return kd_fail(KD_ENOMEM, "out of memory (firmware response)");
		r = kd_sim_derive(fw, payload, h->len, out, &st);
		break;
	case KD_SIM_REQ_REPORT:
		kd_cur_init(&c, payload, h->len);
		if ((r = kd_cur_bytes(&c, data, 64)) < 0 || (r = kd_cur_u32(&c, &vmpl)) < 0 ||
		    (r = kd_cur_expect_end(&c)) < 0)
			return kd_fail(r, "REPORT request is not report_data[64] + vmpl");
		n = KD_SIM_REPORT_RSP_SIZE;
		if (!(out = malloc(n)))
			return kd_fail(KD_ENOMEM, "out of memory (firmware response)");
		r = kd_sim_report(fw, data, vmpl, out, &st);
		break;
	case KD_SIM_REQ_CERTS:
		if (h->len != 0)
			return kd_fail(KD_EMALFORMED, "CERTS request carries a payload");
		r = kd_sim_cert_table(fw, &out, &n);
		break;
	default:
		return kd_fail(KD_EPROTO, "unknown simulator request type %u", h->type);
	}
	if (r < 0) {
		free(out);
		return r;
	}
	*ret_type = (uint16_t)(h->type | KD_SIM_RSP);
	*ret_rsp = out;
	*ret_len = n;
	*ret_status = st;
	return 0;
}

int kd_sim_serve_fd(struct kd_sim_fw *fw, int fd, bool resync, kd_sim_log_fn on_request,
		    void *ctx)
{
	for (;;) {
		struct kd_sim_hdr h;
		uint8_t *payload = NULL, *rsp = NULL, err[4];
		uint16_t type = 0;
		uint32_t st = 0;
		size_t n = 0;
		int r, w;

		r = kd_sim_read_frame(fd, -1, SIM_STEP_MS, resync, &h, &payload);
		if (r == KD_ENOENT)
			return 0;
		/* On a serial line a stalled half-frame is dropped, not fatal. */
		if (r == KD_ETIMEOUT && resync)
			continue;
		if (r < 0)
			return r;
		pthread_mutex_lock(&fw->lock);
		r = kd_sim_handle(fw, &h, payload, &type, &rsp, &n, &st);
		if (on_request)
			on_request(ctx, h.type, st, r);
		pthread_mutex_unlock(&fw->lock);
		free(payload);
		if (r < 0) {
			kd_put_le32(err, (uint32_t)-r);
			w = kd_sim_write_frame(fd, SIM_STEP_MS, KD_SIM_RSP_ERROR, h.id, err, 4);
		} else {
			w = kd_sim_write_frame(fd, SIM_STEP_MS, type, h.id, rsp, n);
		}
		if (rsp) {
			kd_wipe(rsp, n);
			free(rsp);
		}
		if (w < 0)
			return w;
	}
}
