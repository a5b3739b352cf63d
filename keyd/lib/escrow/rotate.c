/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The escrow's part of a volume-key rotation (keyd/rotate.h): kd_rotate, in
 * the LUKS2 module below this one, calls back here to learn about an existing
 * escrow, to re-split it for the new volume key, and to write and open the
 * rotation's escrow plan.
 *
 * The plan (docs/formats.md §8.1) is a "keyd-rotate-plan" LUKS2 token that
 * names no keyslot:
 *
 *   {"type": "keyd-rotate-plan", "keyslots": [], "version": 1,
 *    "keyslot": 3, "threshold": 2, "certs": ["<base64 DER>", ...],
 *    "mac": "<96 hex>"}
 *
 * mac = HMAC-SHA384(pin key of the launch that began the rotation,
 *   "keyd-rotate-plan-v1" 0x00 | uuid (36) | keyslot u32be |
 *   pin of that keyslot's keyd token (48) | threshold u8 | count u8 |
 *   SHA-256(cert DER) for each certificate, in order)
 *
 * The header is the host's: only the launch's pin key (derived from the
 * AMD-SP, never stored) makes a mac that verifies, so the host cannot swap a
 * certificate, add one, drop one or lower the threshold. The pin of the new
 * key's token is itself an HMAC over the new volume key, so a plan is bound
 * to one rotation and a plan copied from an earlier rotation does not verify.
 * The mac is checked over the certificate bytes before any of them is parsed.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/luks2json.h"
#include "keyd/rotate.h"
#include "keyd/util.h"

#define PLAN_VERSION 1
#define PLAN_MAC_SIZE 48u
#define PLAN_CERT_MAX 8192u
#define PLAN_CTX "keyd-rotate-plan-v1"

_Static_assert(KD_ROTATE_PLAN_MAX == KD_ESCROW_MAX_SHARES, "a plan holds one escrow's admins");

static int find(struct kd_volume *v, unsigned *ret_k, size_t *ret_n, void *usr)
{
	struct kd_escrow_token esc = {0};
	int r;

	(void)usr;
	r = kd_escrow_find(v, &esc);
	if (r)
		goto out;
	*ret_k = esc.threshold;
	*ret_n = esc.n;
out:
	kd_escrow_token_clear(&esc);
	return r;
}

/* Replace: a resume may find the escrow a killed run already wrote. */
static int add(struct kd_volume *v, const struct kd_secret *vk, unsigned k, X509 *const *certs,
	       size_t n_certs, void *usr)
{
	(void)usr;
	return kd_escrow_add(v, vk, k, certs, n_certs, true, NULL);
}

/* ---------------------------------------------------------------- plan */

static int plan_mac(const struct kd_secret *pin_key, const char *uuid, int keyslot,
		    const uint8_t pin[KD_PIN_SIZE], unsigned k, uint8_t (*fps)[SHA256_DIGEST_LENGTH],
		    size_t n, uint8_t out[PLAN_MAC_SIZE])
{
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA384", 0),
			  OSSL_PARAM_construct_end()};
	uint8_t head[4 + 2] = {(uint8_t)(keyslot >> 24), (uint8_t)(keyslot >> 16),
			       (uint8_t)(keyslot >> 8), (uint8_t)keyslot, (uint8_t)k, (uint8_t)n};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = NULL;
	size_t olen = 0;
	int ok;

	ok = mac && (ctx = EVP_MAC_CTX_new(mac)) &&
	     EVP_MAC_init(ctx, pin_key->data, pin_key->len, p) &&
	     EVP_MAC_update(ctx, (const uint8_t *)PLAN_CTX, sizeof(PLAN_CTX)) &&
	     EVP_MAC_update(ctx, (const uint8_t *)uuid, strlen(uuid)) &&
	     EVP_MAC_update(ctx, head, 4) && EVP_MAC_update(ctx, pin, KD_PIN_SIZE) &&
	     EVP_MAC_update(ctx, head + 4, 2);
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_MAC_update(ctx, fps[i], SHA256_DIGEST_LENGTH);
	ok = ok && EVP_MAC_final(ctx, out, &olen, PLAN_MAC_SIZE) && olen == PLAN_MAC_SIZE;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : kd_fail(KD_ECRYPTO, "HMAC of the rotation's escrow plan failed");
}

static int plan_make(const struct kd_secret *pin_key, const char *uuid, int keyslot,
		     const uint8_t pin[KD_PIN_SIZE], unsigned k, X509 *const *certs, size_t n,
		     char **ret_json, void *usr)
{
	uint8_t fps[KD_ESCROW_MAX_SHARES][SHA256_DIGEST_LENGTH], mac[PLAN_MAC_SIZE];
	char mhex[2 * PLAN_MAC_SIZE + 1];
	json_object *o = NULL, *arr = NULL;
	int r;

	(void)usr;
	if (!n || n > KD_ESCROW_MAX_SHARES || !k || k > n)
		return kd_fail(KD_EINVAL, "an escrow plan is k-of-n with 1 <= k <= n <= %u",
			       KD_ESCROW_MAX_SHARES);
	if (!(o = json_object_new_object()) || !(arr = json_object_new_array())) {
		r = kd_fail(KD_ENOMEM, "out of memory (escrow plan)");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char *der = NULL;
		char *b64;
		int len = i2d_X509(certs[i], &der);

		if (len <= 0 || (size_t)len > PLAN_CERT_MAX) {
			OPENSSL_free(der);
			r = kd_fail(KD_EINVAL, "admin certificate %zu cannot be encoded (at most %u "
					       "bytes of DER)", i + 1, PLAN_CERT_MAX);
			goto out;
		}
		SHA256(der, (size_t)len, fps[i]);
		if (!(b64 = malloc(4 * (((size_t)len + 2) / 3) + 1))) {
			OPENSSL_free(der);
			r = kd_fail(KD_ENOMEM, "out of memory (escrow plan)");
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)b64, der, len);
		OPENSSL_free(der);
		json_object_array_add(arr, json_object_new_string(b64));
		free(b64);
	}
	if ((r = plan_mac(pin_key, uuid, keyslot, pin, k, fps, n, mac)))
		goto out;
	kd_hex(mac, sizeof(mac), mhex);
	json_object_object_add(o, "type", json_object_new_string(KD_ROTATE_PLAN_TOKEN_TYPE));
	json_object_object_add(o, "keyslots", json_object_new_array());
	json_object_object_add(o, "version", json_object_new_int(PLAN_VERSION));
	json_object_object_add(o, "keyslot", json_object_new_int(keyslot));
	json_object_object_add(o, "threshold", json_object_new_int((int)k));
	json_object_object_add(o, "certs", arr);
	arr = NULL;
	json_object_object_add(o, "mac", json_object_new_string(mhex));
	if (!(*ret_json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))))
		r = kd_fail(KD_ENOMEM, "out of memory (escrow plan)");
out:
	json_object_put(arr);
	json_object_put(o);
	return r;
}

/* Canonical base64 of at most PLAN_CERT_MAX bytes into a malloc'ed buffer. */
static int unb64(const char *s, uint8_t **ret, size_t *ret_len)
{
	size_t tl = s ? strlen(s) : 0, pad = 0;
	uint8_t *buf;
	char *back;
	int n;

	if (!tl || tl % 4 || tl > 4 * ((PLAN_CERT_MAX + 2) / 3))
		return kd_fail(KD_ETAMPER, "escrow plan: a certificate is not base64");
	for (size_t i = 0; i < tl; i++) {
		char c = s[i];

		if (c == '=' && i >= tl - 2) {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return kd_fail(KD_ETAMPER, "escrow plan: a certificate is not base64");
	}
	if (!(buf = malloc(tl / 4 * 3)) || !(back = malloc(tl + 1))) {
		free(buf);
		return kd_fail(KD_ENOMEM, "out of memory (escrow plan)");
	}
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)tl);
	if (n < 0 || (size_t)n < pad ||
	    EVP_EncodeBlock((unsigned char *)back, buf, n - (int)pad) != (int)tl || strcmp(back, s)) {
		free(buf);
		free(back);
		return kd_fail(KD_ETAMPER, "escrow plan: a certificate is not canonical base64");
	}
	free(back);
	*ret = buf;
	*ret_len = (size_t)n - pad;
	return 0;
}

static int plan_open(const char *json, const struct kd_secret *pin_key, const char *uuid,
		     int keyslot, const uint8_t pin[KD_PIN_SIZE], unsigned *ret_k, X509 **ret_certs,
		     size_t *ret_n, void *usr)
{
	static const char *const keys[] = {"type", "keyslots", "version", "keyslot",
					   "threshold", "certs", "mac"};
	uint8_t fps[KD_ESCROW_MAX_SHARES][SHA256_DIGEST_LENGTH], mac[PLAN_MAC_SIZE],
		want[PLAN_MAC_SIZE];
	uint8_t *der[KD_ESCROW_MAX_SHARES] = {0};
	size_t der_len[KD_ESCROW_MAX_SHARES] = {0}, n = 0;
	json_object *o = NULL, *certs = NULL;
	const char *type = NULL, *mhex = NULL, *unk;
	int64_t ver = 0, slot = 0, k = 0;
	uint32_t ks = 0;
	int r;

	(void)usr;
	if ((r = kd_lj_parse(json, strlen(json), 4, &o))) {
		r = kd_fail(KD_ETAMPER, "escrow plan: the token is not JSON");
		goto out;
	}
	if ((unk = kd_lj_unknown_key(o, keys, KD_ARRAY_SIZE(keys)))) {
		r = kd_fail(KD_ETAMPER, "escrow plan: unknown member \"%.32s\"", unk);
		goto out;
	}
	if ((r = kd_lj_str(o, "escrow plan", "type", &type)) ||
	    (r = kd_lj_id_set(o, "escrow plan", "keyslots", &ks)) ||
	    (r = kd_lj_int(o, "escrow plan", "version", 1, 1, &ver)) ||
	    (r = kd_lj_int(o, "escrow plan", "keyslot", 0, 31, &slot)) ||
	    (r = kd_lj_int(o, "escrow plan", "threshold", 1, KD_ESCROW_MAX_SHARES, &k)) ||
	    (r = kd_lj_str_array(o, "escrow plan", "certs", &certs)) ||
	    (r = kd_lj_str(o, "escrow plan", "mac", &mhex)))
		goto out;
	n = certs ? json_object_array_length(certs) : 0;
	if (strcmp(type, KD_ROTATE_PLAN_TOKEN_TYPE) || ks || !n || n > KD_ESCROW_MAX_SHARES ||
	    (size_t)k > n) {
		r = kd_fail(KD_ETAMPER, "escrow plan: not a %u-of-%zu plan keyd writes", (unsigned)k,
			    n);
		n = 0;
		goto out;
	}
	if ((r = kd_unhex(mhex, mac, sizeof(mac)))) {
		r = kd_fail(KD_ETAMPER, "escrow plan: the mac is not %u bytes of hex", PLAN_MAC_SIZE);
		n = 0;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((r = unb64(kd_lj_elem_str(certs, i), &der[i], &der_len[i])))
			goto out;
		SHA256(der[i], der_len[i], fps[i]);
	}
	if (slot != keyslot) {
		r = kd_fail(KD_ETAMPER, "escrow plan is for keyslot %d, this launch's new key is in "
					"keyslot %d (made by another launch, or forged)",
			    (int)slot, keyslot);
		goto out;
	}
	if ((r = plan_mac(pin_key, uuid, keyslot, pin, (unsigned)k, fps, n, want)))
		goto out;
	if (!kd_ct_equal(want, mac, sizeof(mac))) {
		r = kd_fail(KD_ETAMPER, "escrow plan mac does not verify with this launch's pin key "
					"(made by another launch, or the host changed it)");
		goto out;
	}
	/* Authentic: keyd itself encoded these bytes. */
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = der[i];

		if (!(ret_certs[i] = d2i_X509(NULL, &p, (long)der_len[i])) ||
		    p != der[i] + der_len[i]) {
			for (size_t j = 0; j <= i; j++) {
				X509_free(ret_certs[j]);
				ret_certs[j] = NULL;
			}
			r = kd_fail(KD_ETAMPER, "escrow plan: certificate %zu does not parse", i + 1);
			goto out;
		}
	}
	*ret_k = (unsigned)k;
	*ret_n = n;
	r = 0;
out:
	/* The right MAC for whatever the host wrote: never left on the stack. */
	kd_wipe(want, sizeof(want));
	for (size_t i = 0; i < KD_ESCROW_MAX_SHARES; i++)
		free(der[i]);
	json_object_put(o);
	return r;
}

void kd_escrow_rotate_hooks(struct kd_rotate_opts *o)
{
	o->escrow_find = find;
	o->escrow_add = add;
	o->plan_make = plan_make;
	o->plan_open = plan_open;
	o->escrow_usr = NULL;
}
