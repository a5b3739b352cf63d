/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the simulated AMD-SP (library level, no sockets): firmware
 * rules, key separation, stability across restarts, signed reports, wire
 * framing. One chip is made once (RSA-4096 is slow) and copied for the
 * "other chip" cases with another chip secret.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "keyd/backend.h"
#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/report.h"
#include "keyd/sim.h"
#include "helpers/chip.h"

static char root[] = "/tmp/keyd-test-sim-XXXXXX";
static char chip_a[256], chip_b[256];
static const uint64_t tcb0 = 0x7308000000000003ull; /* bytes 03 00 00 00 00 00 08 73 */

static void setup_chips(void)
{
	struct kd_sim_init_opts o = {.product = KD_PRODUCT_MILAN, .have_tcb = true, .tcb = tcb0};
	char cmd[1024];
	uint8_t other[32];
	int fd;

	if (!mkdtemp(root))
		abort();
	snprintf(chip_a, sizeof(chip_a), "%s/a", root);
	snprintf(chip_b, sizeof(chip_b), "%s/b", root);
	/* kd_sim_chip_init, but natively under valgrind (helpers/chip.h). */
	if (kd_test_chip_init(chip_a, &o) < 0)
		abort();
	/* Chip B: same certificates, another chip secret. */
	snprintf(cmd, sizeof(cmd), "cp -a %s %s", chip_a, chip_b);
	if (system(cmd) != 0)
		abort();
	memset(other, 0x5a, sizeof(other));
	snprintf(cmd, sizeof(cmd), "%s/chip-secret", chip_b);
	fd = open(cmd, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, other, sizeof(other)) != (ssize_t)sizeof(other))
		abort();
	close(fd);
}

static void teardown_chips(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

static struct kd_sim_launch base_launch(void)
{
	struct kd_sim_launch l = {.policy = 0x30000, .guest_svn = 5, .vmpl = 0};

	memset(l.measurement, 0x11, sizeof(l.measurement));
	memset(l.family_id, 0x22, sizeof(l.family_id));
	memset(l.image_id, 0x33, sizeof(l.image_id));
	memset(l.host_data, 0x44, sizeof(l.host_data));
	return l;
}

static struct kd_sim_fw *new_fw(const char *dir, const struct kd_sim_launch *l)
{
	struct kd_sim_chip *c = NULL;
	struct kd_sim_fw *fw = NULL;

	ck_assert_int_eq(kd_sim_chip_load(dir, &c), 0);
	ck_assert_int_eq(kd_sim_fw_new(c, l, &fw), 0);
	return fw;
}

static struct kd_key_req base_req(uint64_t fields)
{
	struct kd_key_req r = {.root_key_select = 0, .guest_field_select = fields, .vmpl = 0,
			       .guest_svn = 1, .tcb_version = tcb0};
	return r;
}

/* Derive through the firmware's byte interface; returns the status. */
static uint32_t derive(struct kd_sim_fw *fw, const struct kd_key_req *req, uint8_t key[32])
{
	uint8_t buf[KD_KEY_REQ_SIZE], rsp[KD_KEY_RSP_SIZE];
	uint32_t st = 0xffffffff;

	kd_key_req_encode(req, buf);
	ck_assert_int_eq(kd_sim_derive(fw, buf, sizeof(buf), rsp, &st), 0);
	ck_assert_uint_eq(kd_get_le32(rsp), st);
	if (key)
		memcpy(key, rsp + 0x20, 32);
	return st;
}

static uint32_t derive_status(const struct kd_sim_launch *l, const struct kd_key_req *req)
{
	struct kd_sim_fw *fw = new_fw(chip_a, l);
	uint32_t st = derive(fw, req, NULL);

	kd_sim_fw_free(fw);
	return st;
}

/* ------------------------------------------------------------ rules */

START_TEST(rules_valid_request_succeeds)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);

	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_SUCCESS);
	r.guest_svn = 5; /* equal to the launch SVN is allowed */
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_SUCCESS);
	r.tcb_version = 0x0108000000000003ull; /* older microcode is allowed */
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_SUCCESS);
}
END_TEST

START_TEST(rules_guest_svn_above_launch)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);

	r.guest_svn = 6;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	/* Even when GUEST_SVN is not selected. */
	r.guest_field_select = KD_FIELD_MEASUREMENT;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
}
END_TEST

START_TEST(rules_tcb_above_committed)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);

	/* One component above (microcode 0x74), the rest equal. */
	r.tcb_version = 0x7408000000000003ull;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	/* Bootloader above, microcode below: still refused (component-wise). */
	r.tcb_version = 0x0108000000000004ull;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	/* A reserved byte above the committed zero. */
	r.tcb_version = 0x7308000000010003ull;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
}
END_TEST

START_TEST(rules_vmpl)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);

	l.vmpl = 1;
	r.vmpl = 0;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	r.vmpl = 1;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_SUCCESS);
	r.vmpl = 3;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_SUCCESS);
	r.vmpl = 4;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
}
END_TEST

START_TEST(rules_reserved_bits)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);
	struct kd_sim_fw *fw;
	uint8_t buf[KD_KEY_REQ_SIZE], rsp[KD_KEY_RSP_SIZE];
	uint32_t st;
	const char *why = NULL;

	r.root_key_select = 1u << 3;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	r.root_key_select = 3u << KD_KEY_SEL_SHIFT; /* KEY_SEL 3 */
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	r.root_key_select = 0;
	r.guest_field_select = KD_FIELD_LAUNCH_MIT; /* needs the 40-byte request */
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);
	r.guest_field_select = 1ull << 40;
	ck_assert_uint_eq(derive_status(&l, &r), KD_FW_INVALID_PARAMS);

	/* rsvd (0x04) != 0 in the raw request. */
	fw = new_fw(chip_a, &l);
	r = base_req(KD_FIELDS_SEAL);
	kd_key_req_encode(&r, buf);
	buf[5] = 1;
	ck_assert_int_eq(kd_sim_derive(fw, buf, sizeof(buf), rsp, &st), 0);
	ck_assert_uint_eq(st, KD_FW_INVALID_PARAMS);
	ck_assert_uint_eq(kd_get_le32(rsp), KD_FW_INVALID_PARAMS);
	/* A refused response carries no key bytes. */
	for (size_t i = 4; i < sizeof(rsp); i++)
		ck_assert_uint_eq(rsp[i], 0);
	/* A request of the wrong size is not a firmware request at all. */
	ck_assert_int_lt(kd_sim_derive(fw, buf, 31, rsp, &st), 0);
	r.root_key_select = KD_KEY_SEL_VLEK << KD_KEY_SEL_SHIFT;
	ck_assert_uint_eq(kd_sim_check_key_req(fw, &r, &why), KD_FW_INVALID_KEY);
	ck_assert_ptr_nonnull(why);
	kd_sim_fw_free(fw);
}
END_TEST

START_TEST(rules_launch_policy_checked)
{
	struct kd_sim_launch l = base_launch();
	struct kd_sim_chip *c = NULL;
	struct kd_sim_fw *fw = NULL;

	ck_assert_int_eq(kd_sim_chip_load(chip_a, &c), 0);
	l.policy = 0x10000; /* bit 17 clear: SNP_LAUNCH_START refuses it */
	ck_assert_int_eq(kd_sim_fw_new(c, &l, &fw), KD_EINVAL);
	l.policy = 0x30000 | (1ull << 40);
	ck_assert_int_eq(kd_sim_fw_new(c, &l, &fw), KD_EINVAL);
	kd_sim_chip_free(c);
}
END_TEST

/* ------------------------------------------------------------ separation */

enum param { P_MEAS, P_POLICY, P_IMAGE, P_FAMILY, P_SVN, P_TCB, P_VMPL, P_N };
static const uint64_t param_field[P_N] = {
	KD_FIELD_MEASUREMENT, KD_FIELD_POLICY, KD_FIELD_IMAGE_ID, KD_FIELD_FAMILY_ID,
	KD_FIELD_GUEST_SVN, KD_FIELD_TCB_VERSION, 0,
};

/* Key with param changed (or not) and its field selected (or not). */
static void key_for(enum param p, bool changed, bool selected, uint8_t key[32])
{
	struct kd_sim_launch l = base_launch();
	uint64_t fields = KD_FIELD_VALID_MASK;
	struct kd_key_req r;
	struct kd_sim_fw *fw;

	if (!selected)
		fields &= ~param_field[p];
	r = base_req(fields);
	if (changed) {
		switch (p) {
		case P_MEAS:
			l.measurement[47] ^= 1;
			break;
		case P_POLICY:
			l.policy |= KD_POLICY_DEBUG;
			break;
		case P_IMAGE:
			l.image_id[0] ^= 1;
			break;
		case P_FAMILY:
			l.family_id[15] ^= 1;
			break;
		case P_SVN:
			r.guest_svn = 2;
			break;
		case P_TCB:
			r.tcb_version = 0x7208000000000003ull;
			break;
		case P_VMPL:
			r.vmpl = 1;
			break;
		default:
			break;
		}
	}
	fw = new_fw(chip_a, &l);
	ck_assert_uint_eq(derive(fw, &r, key), KD_FW_SUCCESS);
	kd_sim_fw_free(fw);
}

START_TEST(separation_each_selected_field)
{
	uint8_t k0[32], k1[32];
	enum param p = (enum param)_i;

	key_for(p, false, true, k0);
	key_for(p, true, true, k1);
	ck_assert_msg(memcmp(k0, k1, 32) != 0, "param %d selected: key did not change", p);
	if (p == P_VMPL)
		return; /* vmpl is always part of the key */
	key_for(p, false, false, k0);
	key_for(p, true, false, k1);
	ck_assert_msg(memcmp(k0, k1, 32) == 0, "param %d not selected: key changed", p);
}
END_TEST

START_TEST(separation_field_mask_itself)
{
	struct kd_sim_launch l = base_launch();
	struct kd_sim_fw *fw = new_fw(chip_a, &l);
	struct kd_key_req a = base_req(KD_FIELD_MEASUREMENT);
	struct kd_key_req b = base_req(KD_FIELD_MEASUREMENT | KD_FIELD_POLICY);
	uint8_t ka[32], kb[32];

	derive(fw, &a, ka);
	derive(fw, &b, kb);
	ck_assert(memcmp(ka, kb, 32) != 0);
	kd_sim_fw_free(fw);
}
END_TEST

START_TEST(separation_chip)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);
	struct kd_sim_fw *fa = new_fw(chip_a, &l), *fb = new_fw(chip_b, &l);
	uint8_t ka[32], kb[32];

	derive(fa, &r, ka);
	derive(fb, &r, kb);
	ck_assert(memcmp(ka, kb, 32) != 0);
	kd_sim_fw_free(fa);
	kd_sim_fw_free(fb);
}
END_TEST

START_TEST(stable_across_restarts_vmrk_per_launch)
{
	struct kd_sim_launch l = base_launch();
	struct kd_key_req r = base_req(KD_FIELDS_SEAL);
	struct kd_sim_fw *f1 = new_fw(chip_a, &l);
	uint8_t k1[32], k2[32], v1[32], v2[32], v1b[32];
	struct kd_sim_fw *f2;

	derive(f1, &r, k1);
	r.root_key_select = KD_ROOT_KEY_VMRK;
	derive(f1, &r, v1);
	derive(f1, &r, v1b);
	ck_assert(memcmp(v1, v1b, 32) == 0); /* stable within a launch */
	ck_assert(memcmp(v1, k1, 32) != 0);  /* VMRK != VCEK root */
	kd_sim_fw_free(f1);

	f2 = new_fw(chip_a, &l); /* a fresh load of the state: a "restart" */
	r.root_key_select = 0;
	derive(f2, &r, k2);
	ck_assert(memcmp(k1, k2, 32) == 0);
	r.root_key_select = KD_ROOT_KEY_VMRK;
	derive(f2, &r, v2);
	ck_assert(memcmp(v1, v2, 32) != 0);
	kd_sim_fw_free(f2);
}
END_TEST

/* ------------------------------------------------------------ reports */

static int verify_sig(const uint8_t *rep, const uint8_t *vcek_der, size_t vcek_len)
{
	const unsigned char *p = vcek_der;
	X509 *x = d2i_X509(NULL, &p, (long)vcek_len);
	EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int n, ok = 0;

	if (k && sig &&
	    ECDSA_SIG_set0(sig, BN_lebin2bn(rep + 0x2A0, 72, NULL), BN_lebin2bn(rep + 0x2E8, 72, NULL)) &&
	    (n = i2d_ECDSA_SIG(sig, &der)) > 0 && EVP_DigestVerifyInit(m, NULL, EVP_sha384(), NULL, k) > 0)
		ok = EVP_DigestVerify(m, der, (size_t)n, rep, KD_REPORT_SIGNED_LEN) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(m);
	X509_free(x);
	return ok;
}

START_TEST(report_parses_and_verifies)
{
	struct kd_sim_launch l = base_launch();
	struct kd_sim_fw *fw = new_fw(chip_a, &l);
	struct kd_sim_chip *c = kd_sim_fw_chip(fw);
	uint8_t data[64], rsp[KD_SIM_REPORT_RSP_SIZE], *vcek = NULL;
	struct kd_report r;
	size_t vlen;
	uint32_t st;

	memset(data, 0x77, sizeof(data));
	ck_assert_int_eq(kd_sim_report(fw, data, 0, rsp, &st), 0);
	ck_assert_uint_eq(st, 0);
	ck_assert_uint_eq(kd_get_le32(rsp), 0);
	ck_assert_uint_eq(kd_get_le32(rsp + 4), KD_REPORT_SIZE);
	ck_assert_int_eq(kd_report_parse(rsp + 0x20, KD_REPORT_SIZE, &r), 0);
	ck_assert_uint_eq(r.version, 5);
	ck_assert_uint_eq(r.guest_svn, 5);
	ck_assert_uint_eq(r.policy, 0x30000);
	ck_assert_mem_eq(r.report_data, data, 64);
	ck_assert_mem_eq(r.measurement, l.measurement, 48);
	ck_assert_mem_eq(r.host_data, l.host_data, 32);
	ck_assert_mem_eq(r.chip_id, kd_sim_chip_id(c), 64);
	ck_assert_uint_eq(r.reported_tcb, tcb0);
	ck_assert_uint_eq(r.committed_tcb, tcb0);
	ck_assert_uint_eq(r.launch_tcb, tcb0);
	ck_assert_uint_eq(r.cpuid_fam_id, 0x19);
	ck_assert_uint_eq(r.cpuid_mod_id, 0x01);
	ck_assert_int_eq(r.product, KD_PRODUCT_MILAN);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VCEK);
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(r.report_id_ma[i], 0xff);

	ck_assert_int_eq(kd_sim_chip_cert_der(c, KD_SIM_CERT_VCEK, r.reported_tcb, &vcek, &vlen), 0);
	ck_assert(verify_sig(rsp + 0x20, vcek, vlen));
	/* Any change of the signed area breaks the signature. */
	rsp[0x20 + 0x90] ^= 1;
	ck_assert(!verify_sig(rsp + 0x20, vcek, vlen));
	free(vcek);

	/* VMPL below the launch VMPL or above 3: status 0x16, no report. */
	ck_assert_int_eq(kd_sim_report(fw, data, 4, rsp, &st), 0);
	ck_assert_uint_eq(st, KD_FW_INVALID_PARAMS);
	ck_assert_uint_eq(kd_get_le32(rsp + 4), 0);
	kd_sim_fw_free(fw);
}
END_TEST

START_TEST(report_id_per_launch_and_certs)
{
	struct kd_sim_launch l = base_launch();
	struct kd_sim_fw *f1 = new_fw(chip_a, &l), *f2 = new_fw(chip_a, &l);
	uint8_t data[64] = {0}, r1[KD_SIM_REPORT_RSP_SIZE], r2[KD_SIM_REPORT_RSP_SIZE];
	uint8_t *tab = NULL;
	size_t tlen;
	struct kd_certtable t;
	uint32_t st;

	ck_assert_int_eq(kd_sim_report(f1, data, 0, r1, &st), 0);
	ck_assert_int_eq(kd_sim_report(f2, data, 0, r2, &st), 0);
	ck_assert(memcmp(r1 + 0x20 + 0x140, r2 + 0x20 + 0x140, 32) != 0);

	ck_assert_int_eq(kd_sim_cert_table(f1, &tab, &tlen), 0);
	ck_assert_int_eq(kd_certtable_parse(tab, tlen, &t), 0);
	ck_assert_ptr_nonnull(t.vcek);
	ck_assert_ptr_nonnull(t.ask);
	ck_assert_ptr_nonnull(t.ark);
	ck_assert(verify_sig(r1 + 0x20, t.vcek, t.vcek_len));
	free(tab);
	kd_sim_fw_free(f1);
	kd_sim_fw_free(f2);
}
END_TEST

START_TEST(tcb_update_and_rollback)
{
	struct kd_sim_chip *c = NULL;

	ck_assert_int_eq(kd_sim_chip_load(chip_b, &c), 0);
	/* committed above current is refused */
	ck_assert_int_eq(kd_sim_chip_set_tcb(c, tcb0, 0x7408000000000003ull), KD_EINVAL);
	ck_assert_int_eq(kd_sim_chip_set_tcb(c, 0x7408000000000003ull, 0x7408000000000003ull), 0);
	kd_sim_chip_free(c);
	ck_assert_int_eq(kd_sim_chip_load(chip_b, &c), 0);
	ck_assert_uint_eq(kd_sim_chip_committed_tcb(c), 0x7408000000000003ull);
	ck_assert_int_eq(kd_sim_chip_set_tcb(c, tcb0, tcb0), 0);
	ck_assert_int_eq(kd_sim_chip_reload(c), 0);
	ck_assert_uint_eq(kd_sim_chip_current_tcb(c), tcb0);
	kd_sim_chip_free(c);
}
END_TEST

/* ------------------------------------------------------------ wire */

START_TEST(wire_header_strict)
{
	struct kd_sim_hdr h = {.type = KD_SIM_REQ_DERIVE, .len = 32, .id = 7}, g;
	uint8_t b[KD_SIM_HDR_SIZE];

	kd_sim_hdr_encode(&h, b);
	ck_assert_int_eq(kd_sim_hdr_parse(b, sizeof(b), &g), 0);
	ck_assert_uint_eq(g.type, h.type);
	ck_assert_uint_eq(g.len, 32);
	ck_assert_uint_eq(g.id, 7);
	ck_assert_int_eq(kd_sim_hdr_parse(b, 15, &g), KD_ETRUNC);
	b[0] ^= 1;
	ck_assert_int_eq(kd_sim_hdr_parse(b, sizeof(b), &g), KD_EPROTO);
	b[0] ^= 1;
	b[4] = 2; /* version */
	ck_assert_int_eq(kd_sim_hdr_parse(b, sizeof(b), &g), KD_EPROTO);
	h.len = KD_SIM_MAX_PAYLOAD + 1;
	kd_sim_hdr_encode(&h, b);
	ck_assert_int_eq(kd_sim_hdr_parse(b, sizeof(b), &g), KD_EMALFORMED);
}
END_TEST

START_TEST(wire_resync_on_magic)
{
	int p[2];
	struct kd_sim_hdr h;
	uint8_t *payload = NULL;
	static const uint8_t junk[] = {0x4b, 0x44, 0x53, 0x00, 1, 2, 3, 0x4b, 0x44};

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	ck_assert_int_eq(kd_sim_write_frame(p[1], 1000, KD_SIM_REQ_CERTS, 42, NULL, 0), 0);
	ck_assert_int_eq(kd_sim_write_frame(p[1], 1000, KD_SIM_REQ_REPORT, 43, "abc", 3), 0);
	ck_assert_int_eq(kd_sim_read_frame(p[0], 1000, 1000, true, &h, &payload), 0);
	ck_assert_uint_eq(h.id, 42);
	ck_assert_uint_eq(h.type, KD_SIM_REQ_CERTS);
	ck_assert_ptr_null(payload);
	ck_assert_int_eq(kd_sim_read_frame(p[0], 1000, 1000, true, &h, &payload), 0);
	ck_assert_uint_eq(h.id, 43);
	ck_assert_mem_eq(payload, "abc", 3);
	free(payload);
	/* Without resync (stream sockets), junk is a protocol error. */
	ck_assert_int_eq(write(p[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	ck_assert_int_eq(kd_sim_write_frame(p[1], 1000, KD_SIM_REQ_CERTS, 44, NULL, 0), 0);
	ck_assert_int_eq(kd_sim_read_frame(p[0], 1000, 1000, false, &h, &payload), KD_EPROTO);
	/* A half frame times out rather than blocking forever. */
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], junk, 4), 4);
	ck_assert_int_eq(kd_sim_read_frame(p[0], 1000, 100, false, &h, &payload), KD_ETIMEOUT);
	close(p[1]);
	ck_assert_int_eq(kd_sim_read_frame(p[0], 100, 100, false, &h, &payload), KD_ENOENT);
	close(p[0]);
}
END_TEST

/* The simulator's side of one exchange: read the request, answer with these frames. */
struct responder {
	int fd;
	size_t n;
	struct {
		uint16_t type; /* 0: the request's type | KD_SIM_RSP */
		uint32_t id;   /* 0: the request's id */
		const char *payload;
	} f[3];
};

static void *respond(void *arg)
{
	struct responder *a = arg;
	struct kd_sim_hdr h;
	uint8_t *req = NULL;

	if (kd_sim_read_frame(a->fd, 5000, 1000, false, &h, &req) < 0)
		return NULL;
	free(req);
	for (size_t i = 0; i < a->n; i++)
		kd_sim_write_frame(a->fd, 1000, a->f[i].type ? a->f[i].type : h.type | KD_SIM_RSP,
				   a->f[i].id ? a->f[i].id : h.id, a->f[i].payload,
				   strlen(a->f[i].payload));
	return NULL;
}

static int request_answered(struct responder *a, int fd, bool serial, uint8_t **rsp, size_t *n)
{
	pthread_t t;
	int r;

	ck_assert_int_eq(pthread_create(&t, NULL, respond, a), 0);
	r = kd_sim_request(fd, serial, 5000, 1000, KD_SIM_REQ_CERTS, 7, NULL, 0, rsp, n);
	pthread_join(t, NULL);
	return r;
}

/*
 * A requester takes only the answer to its own request: on a serial line the
 * leftovers of an abandoned exchange (even one with the same id) are dropped
 * first and answers to other ids skipped; on a stream another id, an ERROR
 * frame or another type is a protocol error.
 */
START_TEST(wire_request_takes_its_own_answer)
{
	struct responder a = {.n = 2, .f = {{0, 6, "stale"}, {0, 0, "new"}}};
	uint8_t *rsp = NULL;
	size_t n = 0;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	a.fd = sv[1];
	ck_assert_int_eq(kd_sim_write_frame(sv[1], 1000, KD_SIM_REQ_CERTS | KD_SIM_RSP, 7, "old", 3),
			 0);
	ck_assert_int_eq(request_answered(&a, sv[0], true, &rsp, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(rsp, "new", 3);
	free(rsp);
	a.n = 1;
	ck_assert_int_eq(request_answered(&a, sv[0], false, &rsp, &n), KD_EPROTO);
	ck_assert_str_eq(kd_err_detail(KD_EPROTO), "keyd-simfw answered another request");
	a.f[0].type = KD_SIM_RSP_ERROR;
	a.f[0].id = 0;
	a.f[0].payload = ""; /* no reason given */
	ck_assert_int_eq(request_answered(&a, sv[0], false, &rsp, &n), KD_EPROTO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPROTO), "rejected the request"));
	a.f[0].type = KD_SIM_REQ_DERIVE | KD_SIM_RSP;
	a.f[0].payload = "x";
	ck_assert_int_eq(request_answered(&a, sv[0], false, &rsp, &n), KD_EPROTO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPROTO), "answered with type"));
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(wire_handle_strict_payloads)
{
	struct kd_sim_launch l = base_launch();
	struct kd_sim_fw *fw = new_fw(chip_a, &l);
	struct kd_sim_hdr h = {.type = KD_SIM_REQ_REPORT, .len = 67};
	uint8_t buf[80] = {0}, *rsp = NULL;
	uint16_t type;
	size_t n;
	uint32_t st;

	ck_assert_int_lt(kd_sim_handle(fw, &h, buf, &type, &rsp, &n, &st), 0);
	h.len = 69;
	ck_assert_int_lt(kd_sim_handle(fw, &h, buf, &type, &rsp, &n, &st), 0);
	h.len = 68;
	ck_assert_int_eq(kd_sim_handle(fw, &h, buf, &type, &rsp, &n, &st), 0);
	ck_assert_uint_eq(type, KD_SIM_REQ_REPORT | KD_SIM_RSP);
	ck_assert_uint_eq(n, KD_SIM_REPORT_RSP_SIZE);
	free(rsp);
	h.type = KD_SIM_REQ_CERTS;
	h.len = 1;
	ck_assert_int_lt(kd_sim_handle(fw, &h, buf, &type, &rsp, &n, &st), 0);
	h.type = 9;
	h.len = 0;
	ck_assert_int_eq(kd_sim_handle(fw, &h, buf, &type, &rsp, &n, &st), KD_EPROTO);
	kd_sim_fw_free(fw);
}
END_TEST

START_TEST(addr_parse)
{
	enum kd_sim_transport k;
	const char *p;

	ck_assert_int_eq(kd_sim_addr_parse("unix:/run/x.sock", &k, &p), 0);
	ck_assert_int_eq(k, KD_SIM_UNIX);
	ck_assert_str_eq(p, "/run/x.sock");
	ck_assert_int_eq(kd_sim_addr_parse("serial:/dev/virtio-ports/org.keyd.sim", &k, &p), 0);
	ck_assert_int_eq(k, KD_SIM_SERIAL);
	ck_assert_int_eq(kd_sim_addr_parse("unix:", &k, &p), KD_EINVAL);
	ck_assert_int_eq(kd_sim_addr_parse("tcp:1.2.3.4", &k, &p), KD_EINVAL);
}
END_TEST

/* ------------------------------------------------------------ serving */

#define N_CLIENTS 16
#define N_REQUESTS 4

struct serve_arg {
	struct kd_sim_fw *fw;
	int lfd;
	int result;
};

static void *serve_thread(void *arg)
{
	struct serve_arg *a = arg;

	a->result = kd_sim_serve_listener(a->fw, a->lfd, NULL, NULL, NULL);
	return NULL;
}

struct client_arg {
	const char *addr;
	uint8_t key[32];
	int ok; /* requests that got the key */
};

static void *client_thread(void *arg)
{
	struct client_arg *c = arg;
	struct kd_backend_opts o = {.name = "sim", .sim_addr = c->addr};
	struct kd_key_req req = base_req(KD_FIELD_MEASUREMENT);
	struct kd_backend *b = NULL;

	if (kd_backend_open(&o, &b) < 0)
		return NULL;
	for (int i = 0; i < N_REQUESTS; i++) {
		struct kd_secret *k = NULL;

		if (kd_backend_derive(b, &req, &k) < 0)
			break;
		memcpy(c->key, k->data, 32);
		kd_secret_free(k);
		c->ok++;
	}
	kd_backend_close(b);
	return NULL;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/*
 * One launch, many processes: a connection that stays open and idle (a
 * QEMU chardev, a handoff peer waiting) must not hold up the others, and
 * 16 clients at once all get the same key. A server that serves one
 * connection until it closes times every client out here.
 */
START_TEST(serve_many_clients_one_launch)
{
	struct kd_sim_launch l = base_launch();
	struct serve_arg sa = {.fw = new_fw(chip_a, &l), .result = -1};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct client_arg c[N_CLIENTS];
	pthread_t st, ct[N_CLIENTS];
	char path[300], addr[320];
	int idle_a, idle_b;

	snprintf(path, sizeof(path), "%s/serve.sock", root);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	unlink(path);
	strcpy(un.sun_path, path);
	sa.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sa.lfd, 0);
	ck_assert_int_eq(bind(sa.lfd, (struct sockaddr *)&un, sizeof(un)), 0);
	ck_assert_int_eq(listen(sa.lfd, 64), 0);
	ck_assert_int_eq(pthread_create(&st, NULL, serve_thread, &sa), 0);

	/* Accepted first, never send anything until the end. */
	idle_a = unix_connect(path);
	idle_b = unix_connect(path);
	memset(c, 0, sizeof(c));
	for (int i = 0; i < N_CLIENTS; i++) {
		c[i].addr = addr;
		ck_assert_int_eq(pthread_create(&ct[i], NULL, client_thread, &c[i]), 0);
	}
	for (int i = 0; i < N_CLIENTS; i++)
		ck_assert_int_eq(pthread_join(ct[i], NULL), 0);
	for (int i = 0; i < N_CLIENTS; i++) {
		ck_assert_int_eq(c[i].ok, N_REQUESTS);
		ck_assert_mem_eq(c[i].key, c[0].key, 32);
	}
	close(idle_a);
	close(idle_b);
	ck_assert_int_eq(shutdown(sa.lfd, SHUT_RDWR), 0);
	ck_assert_int_eq(pthread_join(st, NULL), 0);
	ck_assert_int_eq(sa.result, 0);
	close(sa.lfd);
	unlink(path);
	kd_sim_fw_free(sa.fw);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sim");
	TCase *t = tcase_create("sim");
	SRunner *sr;
	int failed;

	tcase_set_timeout(t, 60);
	tcase_add_unchecked_fixture(t, setup_chips, teardown_chips);
	tcase_add_test(t, rules_valid_request_succeeds);
	tcase_add_test(t, rules_guest_svn_above_launch);
	tcase_add_test(t, rules_tcb_above_committed);
	tcase_add_test(t, rules_vmpl);
	tcase_add_test(t, rules_reserved_bits);
	tcase_add_test(t, rules_launch_policy_checked);
	tcase_add_loop_test(t, separation_each_selected_field, 0, P_N);
	tcase_add_test(t, separation_field_mask_itself);
	tcase_add_test(t, separation_chip);
	tcase_add_test(t, stable_across_restarts_vmrk_per_launch);
	tcase_add_test(t, report_parses_and_verifies);
	tcase_add_test(t, report_id_per_launch_and_certs);
	tcase_add_test(t, tcb_update_and_rollback);
	tcase_add_test(t, wire_header_strict);
	tcase_add_test(t, wire_resync_on_magic);
	tcase_add_test(t, wire_request_takes_its_own_answer);
	tcase_add_test(t, wire_handle_strict_payloads);
	tcase_add_test(t, addr_parse);
	tcase_add_test(t, serve_many_clients_one_launch);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
