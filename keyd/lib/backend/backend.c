/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backend selection, capability checks and purpose-key HKDF.
 *
 * Selection (DESIGN.md §3): an explicit name wins. Otherwise snp when
 * /dev/sev-guest exists, else tsm when the configfs-tsm report directory
 * exists. The simulator is never detected from the machine: a guest on real
 * SNP hardware must not be talked into a fake AMD-SP by a stray socket. Only
 * the name "sim" or a set $KEYD_SIM selects it, and $KEYD_SIM counts as an
 * explicit choice made by whoever controls the environment (the test
 * harness, or the VM image's own unit files).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "backend/internal.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"

#define SEV_GUEST_PATH "/dev/sev-guest"
#define TSM_REPORT_PATH "/sys/kernel/config/tsm/report"

int kd_backend_open(const struct kd_backend_opts *opts, struct kd_backend **ret)
{
	const char *name = opts ? opts->name : NULL;
	const char *sim = opts && opts->sim_addr ? opts->sim_addr : getenv("KEYD_SIM");
	const char *sev = opts && opts->sev_guest_path ? opts->sev_guest_path : SEV_GUEST_PATH;
	const char *tsm = opts && opts->tsm_path ? opts->tsm_path : TSM_REPORT_PATH;

	if (sim && !*sim)
		sim = NULL;
	if (!name && sim)
		name = "sim";
	if (!name) {
		if (access(sev, F_OK) == 0)
			name = "snp";
		else if (access(tsm, F_OK) == 0)
			name = "tsm";
		else
			return kd_fail(KD_ENOENT, "no trust backend: neither %s nor %s exists "
						  "(use --backend sim --sim unix:PATH for the simulator)",
				       sev, tsm);
	}
	if (!strcmp(name, "snp"))
		return kd_backend_snp_open(sev, ret);
	if (!strcmp(name, "tsm"))
		return kd_backend_tsm_open(tsm, ret);
	if (!strcmp(name, "sim")) {
		if (!sim)
			return kd_fail(KD_EINVAL, "backend sim needs --sim unix:PATH|serial:PATH or $KEYD_SIM");
		return kd_backend_sim_open(sim, ret);
	}
	return kd_fail(KD_EINVAL, "unknown backend '%s' (snp, tsm or sim)", name);
}

void kd_backend_close(struct kd_backend *b)
{
	if (b && b->ops && b->ops->close)
		b->ops->close(b);
}

int kd_backend_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key)
{
	if (!(b->caps & KD_CAP_DERIVE) || !b->ops->derive)
		return kd_fail(KD_ENOTSUP, "backend %s has no derived keys", b->ops->name);
	return b->ops->derive(b, req, ret_key);
}

int kd_backend_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	if (!(b->caps & KD_CAP_REPORT) || !b->ops->report)
		return kd_fail(KD_ENOTSUP, "backend %s has no attestation reports", b->ops->name);
	if (ret_certs && !(b->caps & KD_CAP_CERTS))
		return kd_fail(KD_ENOTSUP, "backend %s has no certificates", b->ops->name);
	return b->ops->report(b, report_data, vmpl, ret_report, ret_len, ret_certs, ret_certs_len);
}

int kd_report_rsp_parse(const uint8_t *buf, size_t len, uint8_t **ret)
{
	struct kd_cursor c;
	uint32_t status, size;
	const uint8_t *rep;
	uint8_t *out;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = kd_cur_u32(&c, &status)) < 0 || (r = kd_cur_u32(&c, &size)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP truncated");
	if (status != 0)
		return kd_fail(KD_EFIRMWARE, "firmware refused report request: status 0x%x%s", status,
			       status == 0x16 ? " (INVALID_PARAMS)" : "");
	if (size != KD_REPORT_SIZE)
		return kd_fail(KD_EMALFORMED, "MSG_REPORT_RSP report_size %u is not %u", size,
			       KD_REPORT_SIZE);
	if ((r = kd_cur_zero(&c, 0x18)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP reserved bytes are not zero");
	if ((r = kd_cur_ptr(&c, &rep, KD_REPORT_SIZE)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP shorter than its report_size");
	out = malloc(KD_REPORT_SIZE);
	if (!out)
		return KD_ENOMEM;
	memcpy(out, rep, KD_REPORT_SIZE);
	*ret = out;
	return 0;
}

int kd_hkdf_bin(const struct kd_secret *ikm, const void *salt, size_t salt_len, const void *info,
		size_t info_len, size_t out_len, struct kd_secret **ret)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx;
	OSSL_PARAM params[5], *p = params;
	struct kd_secret *out;
	static const char zero = 0;
	int r;

	if (!ikm || !ikm->len || !out_len)
		return kd_fail(KD_EINVAL, "HKDF needs a key and an output length");
	if ((r = kd_secret_new(out_len, &out)) < 0)
		return r;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA384", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm->data, ikm->len);
	/* An empty salt is RFC 5869's default (HashLen zeros); OpenSSL wants a pointer. */
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 (void *)(uintptr_t)(salt_len ? salt : &zero), salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)(uintptr_t)(info_len ? info : &zero), info_len);
	*p = OSSL_PARAM_construct_end();
	if (!ctx || EVP_KDF_derive(ctx, out->data, out_len, params) <= 0) {
		EVP_KDF_CTX_free(ctx);
		kd_secret_free(out);
		return kd_fail(KD_ECRYPTO, "OpenSSL: HKDF-SHA384 failed");
	}
	EVP_KDF_CTX_free(ctx);
	*ret = out;
	return 0;
}

int kd_hkdf(const struct kd_secret *ikm, const void *salt, size_t salt_len, const char *info,
	    size_t out_len, struct kd_secret **ret)
{
	return kd_hkdf_bin(ikm, salt, salt_len, info, info ? strlen(info) : 0, out_len, ret);
}
