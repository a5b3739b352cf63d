/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Share encryption to admin certificates: CMS EnvelopedData through OpenSSL,
 * so stock `openssl cms -decrypt -inform DER` opens it as well.
 */
/* The PKCS#11 engine is OpenSSL 3.0's way to a token on Debian 12 (there is
 * no pkcs11 provider package in bookworm); ENGINE is deprecated, not gone. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/engine.h>
#include <openssl/ui.h>
#include <openssl/buffer.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/util.h"

#define CERT_MAX (64u * 1024u)

int kd_escrow_load_cert(const char *path, X509 **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509 *x = NULL;
	BIO *bio;
	int r;

	if ((r = kd_read_file(path, CERT_MAX, &buf, &len)))
		return r;
	p = buf;
	if (!(x = d2i_X509(NULL, &p, (long)len)) || p != buf + len) {
		X509_free(x);
		x = NULL;
		if ((bio = BIO_new_mem_buf(buf, (int)len))) {
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
			BIO_free(bio);
		}
	}
	free(buf);
	ERR_clear_error();
	if (!x)
		return kd_fail(KD_EMALFORMED, "%.200s is not an X.509 certificate (PEM or DER)", path);
	*ret = x;
	return 0;
}

/*
 * A private key in a PKCS#11 token (smartcard, HSM), named by an RFC 7512
 * URI. The key never leaves the token: decryption (RSA) and key agreement
 * (ECDH) run inside it through OpenSSL's pkcs11 engine (libp11). The engine
 * stays loaded for the life of the process, since the key refers to it.
 * $KEYD_PKCS11_MODULE picks the PKCS#11 module (default: the engine's,
 * p11-kit's proxy). The PIN comes from the URI (pin-value=) or the
 * terminal.
 */
static int load_pkcs11_key(const char *uri, EVP_PKEY **ret)
{
	static ENGINE *eng;
	const char *module = getenv("KEYD_PKCS11_MODULE");
	EVP_PKEY *k;

	if (!eng) {
		ENGINE *e = ENGINE_by_id("pkcs11");

		if (!e) {
			ERR_clear_error();
			return kd_fail(KD_EUNSUPP, "pkcs11: keys need OpenSSL's pkcs11 engine (Debian: "
						   "libengine-pkcs11-openssl), which is not installed");
		}
		if ((module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) ||
		    !ENGINE_init(e)) {
			ENGINE_free(e);
			ERR_clear_error();
			return kd_fail(KD_EIO, "the pkcs11 engine does not start%s%.200s",
				       module ? " with module " : "", module ? module : "");
		}
		ENGINE_free(e); /* the functional reference from ENGINE_init remains */
		eng = e;
	}
	k = ENGINE_load_private_key(eng, uri, UI_OpenSSL(), NULL);
	ERR_clear_error();
	if (!k)
		return kd_fail(KD_ENOENT, "no private key in a PKCS#11 token matches %.200s (token "
					  "present? object name? PIN?)", uri);
	*ret = k;
	return 0;
}

int kd_escrow_load_key(const char *path, EVP_PKEY **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	EVP_PKEY *k = NULL;
	BIO *bio;
	int r;

	if (!strncmp(path, "pkcs11:", 7))
		return load_pkcs11_key(path, ret);
	if ((r = kd_read_file(path, CERT_MAX, &buf, &len)))
		return r;
	if ((bio = BIO_new_mem_buf(buf, (int)len))) {
		k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		if (!k) {
			(void)BIO_reset(bio);
			k = d2i_PrivateKey_bio(bio, NULL);
		}
		BIO_free(bio);
	}
	kd_wipe(buf, len);
	free(buf);
	ERR_clear_error();
	if (!k)
		return kd_fail(KD_EMALFORMED, "%.200s is not a private key (PEM or DER; a "
					      "passphrase-protected key needs its passphrase on a tty)",
			       path);
	*ret = k;
	return 0;
}

int kd_escrow_cert_fp(X509 *cert, uint8_t out[KD_ESCROW_FP_SIZE])
{
	unsigned len = 0;

	if (!X509_digest(cert, EVP_sha256(), out, &len) || len != KD_ESCROW_FP_SIZE)
		return kd_fail(KD_ECRYPTO, "cannot hash the certificate");
	return 0;
}

int kd_escrow_encrypt(const struct kd_secret *share, X509 *cert, uint8_t **ret_der,
		      size_t *ret_len)
{
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	bool rsa = pub && EVP_PKEY_is_a(pub, "RSA");
	unsigned char *der = NULL;
	BIO *in = NULL;
	bool ok = false;
	int len = 0;

	if (!pub)
		return kd_fail(KD_EMALFORMED, "certificate has no usable public key");
	if (!rsa && !EVP_PKEY_is_a(pub, "EC"))
		return kd_fail(KD_EUNSUPP, "admin certificate key must be RSA or EC");
	if (!(cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL)))
		goto out;
	/* RSA: OAEP rather than PKCS#1 v1.5 key transport (Bleichenbacher). */
	if (!(ri = CMS_add1_recipient_cert(cms, cert, rsa ? CMS_KEY_PARAM : 0)))
		goto out;
	if (rsa) {
		EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

		if (!pctx || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
			goto out;
	}
	if (!(in = BIO_new_mem_buf(share->data, (int)share->len)) ||
	    !CMS_final(cms, in, NULL, CMS_BINARY))
		goto out;
	if ((len = i2d_CMS_ContentInfo(cms, &der)) <= 0 || (size_t)len > KD_ESCROW_CMS_MAX)
		goto out;
	*ret_der = der;
	*ret_len = (size_t)len;
	der = NULL;
	ok = true;
out:
	OPENSSL_free(der);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return ok ? 0 : kd_fail(KD_ECRYPTO, "CMS encryption of a share failed");
}

int kd_escrow_decrypt(const uint8_t *der, size_t len, EVP_PKEY *key, X509 *cert,
		      struct kd_secret **ret_share)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	BIO *out = NULL;
	BUF_MEM *bm = NULL;
	int r, ok;

	if (len > KD_ESCROW_CMS_MAX)
		return kd_fail(KD_EMALFORMED, "share file is larger than %u bytes", KD_ESCROW_CMS_MAX);
	if (cert && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		return kd_fail(KD_EINVAL, "the private key does not belong to the certificate");
	}
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (!cms || p != der + len) {
		CMS_ContentInfo_free(cms);
		ERR_clear_error();
		return kd_fail(KD_EMALFORMED, "share is not a DER CMS structure");
	}
	if (!(out = BIO_new(BIO_s_mem()))) {
		CMS_ContentInfo_free(cms);
		return kd_fail(KD_ENOMEM, "out of memory (decrypting a share)");
	}
	/* Offline tool, no decryption oracle: report a wrong key as such
	 * instead of OpenSSL's random-key countermeasure. */
	ok = CMS_decrypt(cms, key, cert, NULL, out, CMS_BINARY | CMS_DEBUG_DECRYPT);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	BIO_get_mem_ptr(out, &bm);
	if (!ok || !bm) {
		r = kd_fail(KD_EVERIFY, "this key cannot decrypt the share (it is encrypted to "
					"another admin?)");
	} else if (bm->length > KD_ESCROW_SHARE_MAX) {
		r = kd_fail(KD_EMALFORMED, "decrypted share is too large");
	} else {
		r = kd_secret_dup(bm->data, bm->length, ret_share);
	}
	if (bm && bm->data)
		OPENSSL_cleanse(bm->data, bm->max);
	BIO_free(out);
	return r;
}
