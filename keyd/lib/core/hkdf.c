/* SPDX-License-Identifier: Apache-2.0 */
/* HKDF-SHA384 (RFC 5869) through OpenSSL's EVP_KDF, into a kd_secret. */
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "keyd/error.h"
#include "keyd/hkdf.h"

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
