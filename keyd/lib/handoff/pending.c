/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pending handoff slots, format 2 (pending.h): N's key-agreement key, the
 * wrap of fresh slot secrets to it, and O's evidence.
 *
 * Why: in format 1 N sent O its keyslot passphrase and pin key, a
 * deterministic function of N's sealing key and the volume UUID O named. An
 * attested but compromised older O could name the UUID of a volume it does
 * not hold and harvest the secret of N's future slot on it. Here N sends
 * only a public key, O invents the secrets, and N later replaces them with
 * its own (keyd commit), so nothing O ever saw opens N's committed slot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keyd/certtable.h"
#include "keyd/cleanup.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/pending.h"
#include "keyd/report.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define WRAP_KEY 32u
#define WRAP_IV 12u
#define WRAP_TAG 16u
#define WRAP_PLAIN (KD_PASSPHRASE_LEN + KD_PIN_KEY_SIZE)

_Static_assert(KD_WRAP_CT_LEN == WRAP_PLAIN + WRAP_TAG, "wrapped blob size");

int kd_kex_from_derived(const struct kd_secret *derived, EVP_PKEY **ret,
			uint8_t ret_pub[KD_KEX_PUB_LEN])
{
	_kd_secret_ struct kd_secret *seed = NULL;
	EVP_PKEY *pk;
	size_t n = KD_KEX_PUB_LEN;
	int r;

	if ((r = kd_hkdf(derived, "", 0, KD_INFO_KEX, 32, &seed)))
		return r;
	/* X25519 clamps the scalar itself: any 32 bytes are a private key. */
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seed->data, seed->len);
	if (!pk || EVP_PKEY_get_raw_public_key(pk, ret_pub, &n) != 1 || n != KD_KEX_PUB_LEN) {
		EVP_PKEY_free(pk);
		ERR_clear_error();
		return kd_fail(KD_ECRYPTO, "cannot make the X25519 handoff key");
	}
	*ret = pk;
	return 0;
}

int kd_kex_for_token(struct kd_backend *b, const struct kd_token *t, EVP_PKEY **ret,
		     uint8_t ret_pub[KD_KEX_PUB_LEN])
{
	_kd_secret_ struct kd_secret *derived = NULL;
	int r;

	if ((r = kd_token_derive(b, t, &derived)))
		return r;
	return kd_kex_from_derived(derived, ret, ret_pub);
}

int kd_pending_fresh_secrets(struct kd_secret **ret_pass, struct kd_secret **ret_pin_key)
{
	static const char hexd[] = "0123456789abcdef";
	_kd_secret_ struct kd_secret *raw = NULL, *pass = NULL, *pin = NULL;
	int r;

	if ((r = kd_secret_new(KD_PASSPHRASE_RAW, &raw)) ||
	    (r = kd_secret_new(KD_PASSPHRASE_LEN, &pass)) ||
	    (r = kd_secret_new(KD_PIN_KEY_SIZE, &pin)))
		return r;
	if (RAND_priv_bytes(raw->data, (int)raw->len) != 1 ||
	    RAND_priv_bytes(pin->data, (int)pin->len) != 1)
		return kd_fail(KD_ECRYPTO, "no randomness for the slot secrets");
	/* Printable like the sealed passphrase (keyscripts, token plugin). */
	for (size_t i = 0; i < KD_PASSPHRASE_RAW; i++) {
		pass->data[2 * i] = (uint8_t)hexd[raw->data[i] >> 4];
		pass->data[2 * i + 1] = (uint8_t)hexd[raw->data[i] & 15];
	}
	*ret_pass = kd_secret_take(&pass);
	*ret_pin_key = kd_secret_take(&pin);
	return 0;
}

/* "keyd-pending-v2" || UUID || le32 keyslot || measurement || le32 svn */
#define AAD_LEN (sizeof(KD_PENDING_CONTEXT) - 1 + 36 + 4 + KD_MEASUREMENT_SIZE + 4)

static int make_aad(const char *uuid, const struct kd_token *t, uint8_t aad[AAD_LEN])
{
	size_t o = sizeof(KD_PENDING_CONTEXT) - 1;

	if (!uuid || strlen(uuid) != 36 || t->keyslot < 0)
		return kd_fail(KD_EINVAL, "wrap needs the volume UUID and the keyslot");
	memcpy(aad, KD_PENDING_CONTEXT, o);
	memcpy(aad + o, uuid, 36);
	o += 36;
	kd_put_le32(aad + o, (uint32_t)t->keyslot);
	o += 4;
	memcpy(aad + o, t->measurement, KD_MEASUREMENT_SIZE);
	o += KD_MEASUREMENT_SIZE;
	kd_put_le32(aad + o, t->svn);
	return 0;
}

/* k || iv = HKDF-SHA384(ECDH(priv, peer), salt = epk || pub, KD_INFO_WRAP). */
static int wrap_key(EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t epk[KD_KEX_PUB_LEN],
		    const uint8_t pub[KD_KEX_PUB_LEN], struct kd_secret **ret)
{
	_kd_secret_ struct kd_secret *z = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(priv, NULL);
	uint8_t salt[2 * KD_KEX_PUB_LEN];
	size_t zl = 32;
	int r;

	if ((r = kd_secret_new(32, &z))) {
		EVP_PKEY_CTX_free(ctx);
		return r;
	}
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, z->data, &zl) != 1 || zl != 32) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		/* Also what an all-zero shared secret (a small-order point) gives. */
		return kd_fail(KD_ECRYPTO, "X25519 key agreement failed");
	}
	EVP_PKEY_CTX_free(ctx);
	memcpy(salt, epk, KD_KEX_PUB_LEN);
	memcpy(salt + KD_KEX_PUB_LEN, pub, KD_KEX_PUB_LEN);
	return kd_hkdf(z, salt, sizeof(salt), KD_INFO_WRAP, WRAP_KEY + WRAP_IV, ret);
}

static int gcm(bool enc, const struct kd_secret *kiv, const uint8_t *aad, size_t aad_len,
	       const uint8_t *in, size_t in_len, uint8_t *out, uint8_t tag[WRAP_TAG])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0, ok;

	ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, WRAP_IV, NULL) == 1 &&
	     EVP_CipherInit_ex(c, NULL, NULL, kiv->data, kiv->data + WRAP_KEY, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &l1, aad, (int)aad_len) == 1 &&
	     EVP_CipherUpdate(c, out, &l1, in, (int)in_len) == 1;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WRAP_TAG, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + l1, &l2) == 1 && (size_t)(l1 + l2) == in_len;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WRAP_TAG, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	ERR_clear_error();
	return ok ? 0 : kd_fail(KD_ETAMPER, "the wrapped slot secrets do not authenticate (AES-256-GCM)");
}

int kd_pending_wrap(const uint8_t pub[KD_KEX_PUB_LEN], const char *uuid,
		    const struct kd_secret *pass, const struct kd_secret *pin_key,
		    struct kd_token *t)
{
	_kd_secret_ struct kd_secret *kiv = NULL, *plain = NULL;
	EVP_PKEY *e = NULL, *peer = NULL;
	EVP_PKEY_CTX *kctx = NULL;
	uint8_t aad[AAD_LEN], epk[KD_KEX_PUB_LEN], ct[KD_WRAP_CT_LEN];
	size_t n = KD_KEX_PUB_LEN;
	int r;

	if (!pass || pass->len != KD_PASSPHRASE_LEN || !pin_key || pin_key->len != KD_PIN_KEY_SIZE)
		return kd_fail(KD_EINVAL, "wrap: a %u-byte passphrase and a %u-byte pin key needed",
			       KD_PASSPHRASE_LEN, KD_PIN_KEY_SIZE);
	if ((r = make_aad(uuid, t, aad)) || (r = kd_secret_new(WRAP_PLAIN, &plain)))
		return r;
	memcpy(plain->data, pass->data, KD_PASSPHRASE_LEN);
	memcpy(plain->data + KD_PASSPHRASE_LEN, pin_key->data, KD_PIN_KEY_SIZE);
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, KD_KEX_PUB_LEN);
	kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	if (!peer || !kctx || EVP_PKEY_keygen_init(kctx) != 1 || EVP_PKEY_keygen(kctx, &e) != 1 ||
	    EVP_PKEY_get_raw_public_key(e, epk, &n) != 1 || n != KD_KEX_PUB_LEN) {
		r = kd_fail(KD_ECRYPTO, "cannot make the ephemeral X25519 key");
		goto out;
	}
	if ((r = wrap_key(e, peer, epk, pub, &kiv)))
		goto out;
	if (gcm(true, kiv, aad, sizeof(aad), plain->data, WRAP_PLAIN, ct, ct + WRAP_PLAIN)) {
		r = kd_fail(KD_ECRYPTO, "AES-256-GCM wrap failed");
		goto out;
	}
	memcpy(t->wrap_epk, epk, sizeof(epk));
	memcpy(t->wrap_ct, ct, sizeof(ct));
	t->has_wrap = true;
out:
	EVP_PKEY_CTX_free(kctx);
	EVP_PKEY_free(e);
	EVP_PKEY_free(peer);
	ERR_clear_error();
	return r;
}

int kd_pending_unwrap(EVP_PKEY *priv, const char *uuid, const struct kd_token *t,
		      struct kd_secret **ret_pass, struct kd_secret **ret_pin_key)
{
	_kd_secret_ struct kd_secret *kiv = NULL, *plain = NULL, *pass = NULL, *pin = NULL;
	uint8_t aad[AAD_LEN], pub[KD_KEX_PUB_LEN], tag[WRAP_TAG];
	EVP_PKEY *epk = NULL;
	size_t n = KD_KEX_PUB_LEN;
	int r;

	if (!t->has_wrap)
		return kd_fail(KD_EINVAL, "the token carries no wrapped secrets");
	if ((r = make_aad(uuid, t, aad)) || (r = kd_secret_new(WRAP_PLAIN, &plain)))
		return r;
	if (EVP_PKEY_get_raw_public_key(priv, pub, &n) != 1 || n != KD_KEX_PUB_LEN)
		return kd_fail(KD_ECRYPTO, "handoff key has no X25519 public half");
	epk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, t->wrap_epk, KD_KEX_PUB_LEN);
	if (!epk)
		return kd_fail(KD_EMALFORMED, "pending slot: ephemeral key is not an X25519 key");
	r = wrap_key(priv, epk, t->wrap_epk, pub, &kiv);
	EVP_PKEY_free(epk);
	if (r)
		return kd_fail(KD_ETAMPER, "pending slot: wrapped secrets do not unwrap (no key "
					   "agreement with its ephemeral key)");
	memcpy(tag, t->wrap_ct + WRAP_PLAIN, WRAP_TAG);
	if (gcm(false, kiv, aad, sizeof(aad), t->wrap_ct, WRAP_PLAIN, plain->data, tag))
		return kd_fail(KD_ETAMPER, "pending slot: wrapped secrets do not authenticate for "
					   "this launch, volume, keyslot and SVN");
	if ((r = kd_secret_dup(plain->data, KD_PASSPHRASE_LEN, &pass)) ||
	    (r = kd_secret_dup(plain->data + KD_PASSPHRASE_LEN, KD_PIN_KEY_SIZE, &pin)))
		return r;
	*ret_pass = kd_secret_take(&pass);
	*ret_pin_key = kd_secret_take(&pin);
	return 0;
}

int kd_pending_evidence_digest(const char *uuid, const struct kd_token *t,
			       const uint8_t pub[KD_KEX_PUB_LEN], uint8_t out[48])
{
	uint8_t aad[AAD_LEN];
	unsigned dl = 0;
	EVP_MD_CTX *md;
	int r, ok;

	if (!t->has_wrap)
		return kd_fail(KD_EINVAL, "evidence needs the wrapped secrets");
	if ((r = make_aad(uuid, t, aad)))
		return r;
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 &&
	     EVP_DigestUpdate(md, aad, sizeof(aad)) == 1 &&
	     EVP_DigestUpdate(md, pub, KD_KEX_PUB_LEN) == 1 &&
	     EVP_DigestUpdate(md, t->wrap_epk, KD_KEX_PUB_LEN) == 1 &&
	     EVP_DigestUpdate(md, t->wrap_ct, KD_WRAP_CT_LEN) == 1 &&
	     EVP_DigestUpdate(md, t->pin, KD_PIN_SIZE) == 1 &&
	     EVP_DigestFinal_ex(md, out, &dl) == 1 && dl == 48;
	EVP_MD_CTX_free(md);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "SHA-384 of the pending slot evidence failed");
}

/* "keyd-pending-v2/evidence" || D: what O's handoff key signs. */
static int evidence_msg(const char *uuid, const struct kd_token *t,
			const uint8_t pub[KD_KEX_PUB_LEN], uint8_t *msg, size_t *ret_len)
{
	size_t n = strlen(KD_PENDING_EVIDENCE_CONTEXT);
	int r;

	memcpy(msg, KD_PENDING_EVIDENCE_CONTEXT, n);
	if ((r = kd_pending_evidence_digest(uuid, t, pub, msg + n)))
		return r;
	*ret_len = n + 48;
	return 0;
}

int kd_evidence_key_new(EVP_PKEY **ret, uint8_t ret_pub[KD_KEX_PUB_LEN])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *k = NULL;
	size_t n = KD_KEX_PUB_LEN;
	int ok;

	ok = c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_keygen(c, &k) == 1 &&
	     EVP_PKEY_get_raw_public_key(k, ret_pub, &n) == 1 && n == KD_KEX_PUB_LEN;
	EVP_PKEY_CTX_free(c);
	if (!ok) {
		EVP_PKEY_free(k);
		ERR_clear_error();
		return kd_fail(KD_ECRYPTO, "cannot make the Ed25519 handoff key");
	}
	*ret = k;
	return 0;
}

int kd_pending_evidence_sign(EVP_PKEY *key, const char *uuid, struct kd_token *t,
			     const uint8_t pub[KD_KEX_PUB_LEN])
{
	uint8_t msg[64 + 48], sig[KD_EVIDENCE_SIG_LEN], kp[KD_KEX_PUB_LEN];
	size_t ml = 0, sl = sizeof(sig), kl = sizeof(kp);
	EVP_MD_CTX *md;
	int r, ok;

	if ((r = evidence_msg(uuid, t, pub, msg, &ml)))
		return r;
	md = EVP_MD_CTX_new();
	ok = md && EVP_PKEY_get_raw_public_key(key, kp, &kl) == 1 && kl == sizeof(kp) &&
	     EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestSign(md, sig, &sl, msg, ml) == 1 && sl == sizeof(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	if (!ok)
		return kd_fail(KD_ECRYPTO, "Ed25519 signature of the pending slot evidence failed");
	memcpy(t->ev_sig, sig, sizeof(sig));
	memcpy(t->ev_key, kp, sizeof(kp));
	return 0;
}

static bool evidence_sig_ok(const char *uuid, const struct kd_token *t,
			    const uint8_t pub[KD_KEX_PUB_LEN])
{
	uint8_t msg[64 + 48];
	size_t ml = 0;
	EVP_PKEY *k;
	EVP_MD_CTX *md;
	bool ok;

	if (evidence_msg(uuid, t, pub, msg, &ml))
		return false;
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, t->ev_key, sizeof(t->ev_key));
	md = EVP_MD_CTX_new();
	ok = k && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
	     EVP_DigestVerify(md, t->ev_sig, sizeof(t->ev_sig), msg, ml) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok;
}

/* ---------------------------------------------------------------- evidence */

/* ECDSA P-384 / SHA-384 over the signed part of a report, R and S little-endian. */
static int report_sig_ok(EVP_PKEY *vcek, const uint8_t *report)
{
	uint8_t md[48], der[160], *p = der;
	unsigned ml = 0;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_lebin2bn(report + 0x2A0, 72, NULL), *s = BN_lebin2bn(report + 0x2E8, 72, NULL);
	EVP_PKEY_CTX *ctx = NULL;
	int dl, ok = 0;

	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	dl = i2d_ECDSA_SIG(sig, NULL);
	if (dl <= 0 || (size_t)dl > sizeof(der) || i2d_ECDSA_SIG(sig, &p) != dl)
		goto out;
	if (EVP_Digest(report, KD_REPORT_SIGNED_LEN, md, &ml, EVP_sha384(), NULL) != 1 || ml != 48)
		goto out;
	ctx = EVP_PKEY_CTX_new(vcek, NULL);
	ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
	     EVP_PKEY_verify(ctx, der, (size_t)dl, md, ml) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ok;
}

static int vcek_key(const uint8_t *der, size_t len, EVP_PKEY **ret)
{
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;
	char grp[32] = "";

	X509_free(x);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), NULL) ||
	    strcmp(grp, "secp384r1")) {
		EVP_PKEY_free(k);
		ERR_clear_error();
		return kd_fail(KD_EVERIFY, "this chip's VCEK is not an ECDSA P-384 certificate");
	}
	*ret = k;
	return 0;
}

int kd_own_vcek(struct kd_backend *b, uint8_t **ret_der, size_t *ret_len)
{
	static const uint8_t probe[64] = {'k', 'e', 'y', 'd', '-', 'v', 'c', 'e', 'k'};
	_kd_free_ uint8_t *rep = NULL, *certs = NULL;
	_kd_pkey_ EVP_PKEY *k = NULL;
	size_t rl = 0, cl = 0;
	struct kd_certtable tab;
	uint8_t *der;
	int r;

	r = kd_backend_report(b, probe, 0, &rep, &rl, &certs, &cl);
	if (r)
		return r;
	r = kd_certtable_parse(certs, cl, &tab);
	if (r)
		return r;
	if (!tab.vcek)
		return kd_fail(KD_ENOENT, "no VCEK in this chip's certificate table");
	r = vcek_key(tab.vcek, tab.vcek_len, &k);
	if (r)
		return r;
	if (rl != KD_REPORT_SIZE || !report_sig_ok(k, rep))
		return kd_fail(KD_EVERIFY, "the VCEK the host supplied does not sign this launch's "
					   "own reports");
	der = malloc(tab.vcek_len);
	if (!der)
		return kd_fail(KD_ENOMEM, "out of memory (pending slot)");
	memcpy(der, tab.vcek, tab.vcek_len);
	*ret_len = tab.vcek_len;
	*ret_der = der;
	return 0;
}

static int ev_fail(int err, const char *what)
{
	char d[400];

	snprintf(d, sizeof(d), "%s", kd_err_detail(err));
	return kd_fail(err, "pending slot evidence: %s%s%s", what, *what ? ": " : "", d);
}

/* The release that made the slot, by N's own pinned keys. The window was
 * judged when the handoff ran; guest time is the host's anyway. */
static int evidence_manifest(const struct kd_token *t, const struct kd_release_keys *keys,
			     struct kd_manifest **ret)
{
	_kd_manifest_ struct kd_manifest *m = NULL;
	int r;

	r = kd_manifest_parse((const uint8_t *)t->ev_manifest, strlen(t->ev_manifest), &m);
	if (r)
		return ev_fail(r, "O's manifest");
	r = kd_manifest_verify(m, keys, m->not_before, NULL);
	if (r)
		return ev_fail(r, "O's manifest");
	*ret = KD_TAKE_PTR(m);
	return 0;
}

/* Same chip, and a report the AMD-SP really signed: our own VCEK. */
static int evidence_report_signed(struct kd_backend *b, const struct kd_token *t)
{
	_kd_free_ uint8_t *vder = NULL;
	_kd_pkey_ EVP_PKEY *vk = NULL;
	size_t vlen = 0;
	int r;

	r = kd_own_vcek(b, &vder, &vlen);
	if (r)
		return ev_fail(r, "");
	r = vcek_key(vder, vlen, &vk);
	if (r)
		return ev_fail(r, "");
	if (!report_sig_ok(vk, t->ev_report))
		return kd_fail(KD_EVERIFY, "pending slot evidence: O's report does not verify under "
					   "this chip's VCEK (another chip, another TCB, or forged)");
	return 0;
}

/* The report vouches for O's handoff key in that session. */
static int evidence_binds_key(const struct kd_token *t, const struct kd_report *rep)
{
	uint8_t rd[64], bind[KD_HANDOFF_EXPORTER_LEN];
	int r;

	r = kd_handoff_binding(t->ev_exporter, t->ev_key, sizeof(t->ev_key), bind);
	if (r)
		return r;
	r = kd_handoff_report_data(KD_ROLE_OLD, bind, rd);
	if (r)
		return r;
	if (!kd_ct_equal(rep->report_data, rd, 64))
		return kd_fail(KD_EVERIFY, "pending slot evidence: O's report does not bind its "
					   "handoff key");
	return 0;
}

/* "<dir>/<name>" into a fixed buffer. */
static int image_path(const char *dir, const char *file, char out[256])
{
	const char *name = strrchr(file, '/') + 1;
	int n = snprintf(out, 256, "%s/%s", dir, name);

	return n > 0 && n < 256 ? 0 : kd_fail(KD_EINVAL, "image directory name too long");
}

/* A small pinned file, whitespace-trimmed; KD_ENOENT when absent. */
static int read_pinned(const char *path, char out[32])
{
	uint8_t *buf = NULL;
	size_t len = 0, a = 0;
	int r = kd_read_file(path, 64, &buf, &len);

	if (r == KD_ENOENT)
		return r;
	if (r)
		return kd_fail(r, "cannot read %s", path);
	while (a < len && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\n' || buf[a] == '\r'))
		a++;
	while (len > a && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\n' ||
			   buf[len - 1] == '\r'))
		len--;
	if (len - a == 0 || len - a >= 32) {
		free(buf);
		return kd_fail(KD_EMALFORMED, "%s does not hold one value", path);
	}
	memcpy(out, buf + a, len - a);
	out[len - a] = '\0';
	free(buf);
	return 0;
}

int kd_pending_policy_from_image(struct kd_pending_policy *p, const char *dir)
{
	char path[256], v[32];
	int r;

	if (!dir)
		dir = "/etc/keyd";
	if (!p->has_peer_svn_floor && !p->no_peer_svn_floor) {
		if ((r = image_path(dir, KD_PEER_SVN_FLOOR_FILE, path)))
			return r;
		r = read_pinned(path, v);
		if (!r) {
			char *end = NULL;
			unsigned long long n;

			if (v[0] < '0' || v[0] > '9' || (n = strtoull(v, &end, 10)) > UINT32_MAX ||
			    *end)
				return kd_fail(KD_EMALFORMED, "%s: not an SVN (0..4294967295): %s",
					       path, v);
			p->has_peer_svn_floor = true;
			p->peer_svn_floor = (uint32_t)n;
		} else if (r != KD_ENOENT) {
			return r;
		} else {
			if ((r = image_path(dir, KD_NO_PEER_SVN_FLOOR_FILE, path)))
				return r;
			p->no_peer_svn_floor = access(path, F_OK) == 0;
		}
	}
	if (!p->has_tcb_floor) {
		if ((r = image_path(dir, KD_TCB_FLOOR_FILE, path)))
			return r;
		r = read_pinned(path, v);
		if (!r) {
			if (kd_tcb_parse_hex(v, &p->tcb_floor))
				return kd_fail(KD_EMALFORMED, "%s: not a TCB (16 hex digits): %s",
					       path, v);
			p->has_tcb_floor = true;
		} else if (r != KD_ENOENT) {
			return r;
		}
	}
	return 0;
}

/* Revocation at boot: the floors N's own (measured) image pins. Whoever
 * mints a pending slot (any attested signed release with svn <= N's) is
 * judged by them, as during the handoff; without a floor, a revoked but still
 * signed release could make a volume of its own and a slot N accepts. */
static int evidence_floors(const struct kd_pending_policy *pol, const struct kd_manifest *m,
			   const struct kd_report *rep, const struct kd_report *own)
{
	if (pol->has_peer_svn_floor && m->svn < pol->peer_svn_floor)
		return kd_fail(KD_EPOLICY, "pending slot evidence: O's release %s svn %u is below "
					   "this image's revocation floor %u", m->version, m->svn,
			       pol->peer_svn_floor);
	if (pol->has_tcb_floor && !kd_tcb_ge(rep->reported_tcb, pol->tcb_floor, own->product)) {
		char have[KD_TCB_HEX_LEN], want[KD_TCB_HEX_LEN];

		kd_tcb_hex(rep->reported_tcb, have);
		kd_tcb_hex(pol->tcb_floor, want);
		return kd_fail(KD_EPOLICY, "pending slot evidence: O's reported TCB %s is below this "
					   "image's floor %s", have, want);
	}
	return 0;
}

int kd_pending_verify_evidence(struct kd_backend *b, const struct kd_report *own,
			       const struct kd_pending_policy *pol, const char *uuid,
			       const struct kd_token *t, const uint8_t pub[KD_KEX_PUB_LEN])
{
	_kd_manifest_ struct kd_manifest *m = NULL;
	struct kd_report rep;
	int r;

	if (!t->has_wrap || !t->ev_manifest[0])
		return kd_fail(KD_ETAMPER, "pending slot evidence: missing");
	if (!pol->keys)
		return kd_fail(KD_EINVAL, "pending slot evidence needs the pinned release keys");
	if (!pol->has_peer_svn_floor && !pol->no_peer_svn_floor)
		return kd_fail(KD_EPOLICY, "pending slot evidence: this image pins no revocation "
					   "floor (" KD_PEER_SVN_FLOOR_FILE ") to judge O's release by; "
					   "refused (" KD_NO_PEER_SVN_FLOOR_FILE " opts out)");
	r = evidence_manifest(t, pol->keys, &m);
	if (r)
		return r;
	r = kd_report_parse(t->ev_report, KD_REPORT_SIZE, &rep);
	if (r)
		return ev_fail(r, "O's report");
	r = evidence_report_signed(b, t);
	if (r)
		return r;
	if (!kd_ct_equal(rep.chip_id, own->chip_id, 64))
		return kd_fail(KD_EPOLICY, "pending slot evidence: O's report is from another chip");
	r = evidence_binds_key(t, &rep);
	if (r)
		return r;
	/* ... and that key signed exactly these wrapped secrets, pin, volume and slot. */
	if (!evidence_sig_ok(uuid, t, pub))
		return kd_fail(KD_EVERIFY, "pending slot evidence: O's signature does not cover these "
					   "wrapped secrets, pin, volume and keyslot");
	if (rep.policy & (KD_POLICY_DEBUG | KD_POLICY_MIGRATE_MA))
		return kd_fail(KD_EPOLICY, "pending slot evidence: O ran with a debug or "
					   "migration-agent policy");
	if (rep.vmpl != 0)
		return kd_fail(KD_EPOLICY, "pending slot evidence: O's report VMPL %u is not 0",
			       rep.vmpl);
	r = kd_manifest_has_measurement(m, rep.measurement);
	if (r)
		return ev_fail(r, "O");
	if (m->svn > t->svn)
		return kd_fail(KD_EPOLICY, "pending slot evidence: O's release svn %u is above this "
					   "slot's svn %u", m->svn, t->svn);
	return evidence_floors(pol, m, &rep, own);
}

/* This launch's key-agreement key, O's evidence, then the unwrap. */
static int open_with_policy(struct kd_backend *b, const struct kd_report *own,
			    const struct kd_pending_policy *pol, const char *uuid,
			    const struct kd_token *t, struct kd_secret **ret_pass,
			    struct kd_secret **ret_pin_key)
{
	_kd_pkey_ EVP_PKEY *priv = NULL;
	uint8_t pub[KD_KEX_PUB_LEN];
	int r;

	r = kd_kex_for_token(b, t, &priv, pub);
	if (r)
		return r;
	r = kd_pending_verify_evidence(b, own, pol, uuid, t, pub);
	if (r)
		return r;
	return kd_pending_unwrap(priv, uuid, t, ret_pass, ret_pin_key);
}

int kd_pending_open(struct kd_backend *b, const struct kd_report *own,
		    const struct kd_pending_policy *pol, const char *uuid, const struct kd_token *t,
		    struct kd_secret **ret_pass, struct kd_secret **ret_pin_key)
{
	struct kd_pending_policy p = {0};
	struct kd_release_keys *loaded = NULL;
	int r;

	if (!t->has_wrap)
		return kd_fail(KD_ETAMPER, "pending keyd slot %d carries no wrapped secrets (an older "
					   "handoff format, or forged); redo the handoff", t->keyslot);
	if (pol)
		p = *pol;
	/* What the caller did not set comes from this (measured) image. */
	r = kd_pending_policy_from_image(&p, NULL);
	if (r)
		return r;
	if (!p.keys) {
		r = kd_release_keys_load(NULL, &loaded);
		if (r)
			return r;
		p.keys = loaded;
	}
	r = open_with_policy(b, own, &p, uuid, t, ret_pass, ret_pin_key);
	kd_release_keys_free(loaded);
	return r;
}

int kd_pending_opener(const void *pol, struct kd_backend *b, const struct kd_report *own,
		      const char *uuid, const struct kd_token *t, struct kd_secret **ret_pass,
		      struct kd_secret **ret_pin_key)
{
	return kd_pending_open(b, own, pol, uuid, t, ret_pass, ret_pin_key);
}
