/* SPDX-License-Identifier: Apache-2.0 */
/* The "keyd-escrow" LUKS2 token (escrow.h): strict parse, format, build. */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/luks2json.h"
#include "keyd/util.h"

static const char *const top_keys[] = {"type", "keyslots", "version", "threshold", "commitment",
				       "created", "shares"};
static const char *const share_keys[] = {"index", "admin", "subject", "digest", "cms"};

/* A refusal of the token, named as such: "keyd-escrow token: <what>". */
static int token_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int token_fail(int err, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return kd_fail(err, "keyd-escrow token: %s", what);
}

void kd_escrow_token_clear(struct kd_escrow_token *t)
{
	for (size_t i = 0; i < KD_ESCROW_MAX_SHARES; i++) {
		free(t->shares[i].cms);
		t->shares[i].cms = NULL;
		t->shares[i].cms_len = 0;
	}
}

static int only_keys(json_object *o, const char *const *keys, size_t n, const char *what)
{
	const char *other;

	if (!json_object_is_type(o, json_type_object))
		return token_fail(KD_EMALFORMED, "%s is not a JSON object", what);
	if ((other = kd_lj_unknown_key(o, keys, n)))
		return token_fail(KD_EMALFORMED, "unknown key \"%.32s\" in %s", other, what);
	for (size_t i = 0; i < n; i++)
		if (!kd_lj_has(o, keys[i]))
			return token_fail(KD_EMALFORMED, "missing \"%s\" in %s", keys[i], what);
	return 0;
}

/* A typed getter's refusal (luks2json.h) as a token parse error, detail kept. */
static int malformed(int r)
{
	char d[200];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(KD_EMALFORMED, "%s", d);
}

static int get_str(json_object *o, const char *key, size_t max, const char **ret)
{
	json_object *v;
	int r;

	if ((r = kd_lj_get(o, "keyd-escrow token", key, json_type_string, &v)))
		return malformed(r);
	if ((size_t)json_object_get_string_len(v) > max ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return token_fail(KD_EMALFORMED, "\"%s\" is too long or has a NUL", key);
	*ret = json_object_get_string(v);
	return 0;
}

static int get_uint(json_object *o, const char *key, unsigned lo, unsigned hi, unsigned *ret)
{
	json_object *v;
	int64_t n;
	int r;

	if ((r = kd_lj_get(o, "keyd-escrow token", key, json_type_int, &v)))
		return malformed(r);
	n = json_object_get_int64(v);
	if (n < lo || n > hi)
		return token_fail(KD_EMALFORMED, "\"%s\" is out of range %u..%u", key, lo, hi);
	*ret = (unsigned)n;
	return 0;
}

static int get_hex(json_object *o, const char *key, uint8_t *out, size_t n)
{
	const char *s;
	int r = get_str(o, key, 2 * n, &s);

	if (r)
		return r;
	if (strlen(s) != 2 * n || !strncmp(s, "0x", 2) || kd_unhex(s, out, n))
		return token_fail(KD_EMALFORMED, "\"%s\" is not %zu hex bytes", key, n);
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Canonical base64 only: decoding and re-encoding must give the same text. */
static int get_b64(json_object *o, const char *key, uint8_t **ret, size_t *ret_len)
{
	size_t max_txt = 4 * ((KD_ESCROW_CMS_MAX + 2) / 3), tl, pad = 0;
	const char *s;
	uint8_t *buf;
	char *back;
	int n, r;

	if ((r = get_str(o, key, max_txt, &s)))
		return r;
	tl = strlen(s);
	if (!tl || tl % 4)
		return token_fail(KD_EMALFORMED, "\"%s\" is not base64", key);
	for (size_t i = 0; i < tl; i++) {
		char c = s[i];

		if (c == '=' && i >= tl - 2) {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			     c == '+' || c == '/'))
			return token_fail(KD_EMALFORMED, "\"%s\" is not base64", key);
	}
	if (!(buf = malloc(tl / 4 * 3)) || !(back = malloc(tl + 1))) {
		free(buf);
		return kd_fail(KD_ENOMEM, "out of memory (escrow token)");
	}
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)tl);
	if (n < 0 || (size_t)n < pad ||
	    EVP_EncodeBlock((unsigned char *)back, buf, n - (int)pad) != (int)tl || strcmp(back, s)) {
		free(buf);
		free(back);
		return token_fail(KD_EMALFORMED, "\"%s\" is not canonical base64", key);
	}
	free(back);
	*ret = buf;
	*ret_len = (size_t)n - pad;
	return 0;
}

static int parse_obj(json_object *o, struct kd_escrow_token *t)
{
	const char *s;
	json_object *ks, *arr;
	unsigned u, seen = 0;
	uint32_t slot_mask;
	int r;

	if ((r = only_keys(o, top_keys, KD_ARRAY_SIZE(top_keys), "the token")))
		return r;
	if ((r = get_str(o, "type", 16, &s)))
		return r;
	if (strcmp(s, KD_ESCROW_TOKEN_TYPE))
		return token_fail(KD_EMALFORMED, "type is not \"" KD_ESCROW_TOKEN_TYPE "\"");
	if ((r = get_uint(o, "version", 0, 1000, &u)))
		return r;
	if (u != KD_ESCROW_VERSION)
		return token_fail(KD_EUNSUPP, "version %u is not supported", u);
	t->version = u;
	if (kd_lj_arr(o, "keyd-escrow token", "keyslots", &ks) || json_object_array_length(ks) != 1)
		return token_fail(KD_ETAMPER, "must reference exactly one keyslot");
	if ((r = kd_lj_id_set(o, "keyd-escrow token", "keyslots", &slot_mask)))
		return malformed(r);
	t->keyslot = __builtin_ctz(slot_mask);
	if ((r = get_uint(o, "threshold", 1, KD_ESCROW_MAX_SHARES, &t->threshold)) ||
	    (r = get_hex(o, "commitment", t->commitment, sizeof(t->commitment))) ||
	    (r = get_str(o, "created", sizeof(t->created) - 1, &s)))
		return r;
	if (strlen(s) != 20 || s[4] != '-' || s[10] != 'T' || s[19] != 'Z' || !printable(s))
		return token_fail(KD_EMALFORMED, "created is not RFC 3339 UTC");
	strcpy(t->created, s);
	if (kd_lj_arr(o, "keyd-escrow token", "shares", &arr) || json_object_array_length(arr) < 1 ||
	    json_object_array_length(arr) > KD_ESCROW_MAX_SHARES)
		return token_fail(KD_EMALFORMED, "\"shares\" must be an array of 1..%u shares",
			       KD_ESCROW_MAX_SHARES);
	t->n = json_object_array_length(arr);
	if (t->threshold > t->n)
		return token_fail(KD_EMALFORMED, "threshold %u is above the %zu shares", t->threshold,
			       t->n);
	for (size_t i = 0; i < t->n; i++) {
		struct kd_escrow_slot *sh = &t->shares[i];
		json_object *so = json_object_array_get_idx(arr, i);

		if ((r = only_keys(so, share_keys, KD_ARRAY_SIZE(share_keys), "a share")) ||
		    (r = get_uint(so, "index", 1, (unsigned)t->n, &sh->index)) ||
		    (r = get_hex(so, "admin", sh->admin, sizeof(sh->admin))) ||
		    (r = get_hex(so, "digest", sh->digest, sizeof(sh->digest))) ||
		    (r = get_str(so, "subject", KD_ESCROW_SUBJECT_MAX, &s)))
			return r;
		if (!printable(s))
			return token_fail(KD_EMALFORMED, "subject is not printable ASCII");
		strcpy(sh->subject, s);
		if (seen & (1u << sh->index))
			return token_fail(KD_EMALFORMED, "share index %u appears twice", sh->index);
		seen |= 1u << sh->index;
		if ((r = get_b64(so, "cms", &sh->cms, &sh->cms_len)))
			return r;
	}
	return 0;
}

int kd_escrow_token_parse(const char *json, size_t len, struct kd_escrow_token *ret)
{
	struct kd_escrow_token t;
	json_object *o;
	int r;

	if (!json || !len || len > KD_ESCROW_JSON_MAX || memchr(json, 0, len))
		return token_fail(KD_EMALFORMED, "empty, too long or embedded NUL");
	if ((r = kd_lj_parse(json, len, 8, &o)))
		return r == KD_EMALFORMED ? token_fail(r, "not valid JSON") : r;
	memset(&t, 0, sizeof(t));
	r = parse_obj(o, &t);
	json_object_put(o);
	if (r) {
		kd_escrow_token_clear(&t);
		return r;
	}
	t.token_id = -1;
	*ret = t;
	return 0;
}

static bool add_hex(json_object *o, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];

	assert(n <= KD_ESCROW_COMMIT_SIZE);
	kd_hex(b, n, hex);
	return kd_lj_add(o, key, json_object_new_string(hex));
}

int kd_escrow_token_format(const struct kd_escrow_token *t, char **ret)
{
	json_object *o = json_object_new_object(), *ks = json_object_new_array(),
		    *arr = json_object_new_array();
	char slot[12];
	char *out = NULL;
	bool ok = true;

	assert(t && ret);
	if (!o || !ks || !arr || t->n < 1 || t->n > KD_ESCROW_MAX_SHARES || t->keyslot < 0) {
		json_object_put(o);
		json_object_put(ks);
		json_object_put(arr);
		return o && ks && arr ? token_fail(KD_EINVAL, "incomplete record")
				      : kd_fail(KD_ENOMEM, "out of memory (escrow token JSON)");
	}
	snprintf(slot, sizeof(slot), "%d", t->keyslot);
	ok &= !json_object_array_add(ks, json_object_new_string(slot));
	ok &= kd_lj_add(o, "type", json_object_new_string(KD_ESCROW_TOKEN_TYPE));
	ok &= kd_lj_add(o, "keyslots", ks);
	ok &= kd_lj_add(o, "version", json_object_new_int((int)t->version));
	ok &= kd_lj_add(o, "threshold", json_object_new_int((int)t->threshold));
	ok &= add_hex(o, "commitment", t->commitment, sizeof(t->commitment));
	ok &= kd_lj_add(o, "created", json_object_new_string(t->created));
	for (size_t i = 0; i < t->n && ok; i++) {
		const struct kd_escrow_slot *sh = &t->shares[i];
		json_object *so = json_object_new_object();
		char *b64 = malloc(4 * ((sh->cms_len + 2) / 3) + 1);

		if (!so || !b64) {
			json_object_put(so);
			free(b64);
			ok = false;
			break;
		}
		EVP_EncodeBlock((unsigned char *)b64, sh->cms, (int)sh->cms_len);
		ok &= kd_lj_add(so, "index", json_object_new_int((int)sh->index));
		ok &= add_hex(so, "admin", sh->admin, sizeof(sh->admin));
		ok &= kd_lj_add(so, "subject", json_object_new_string(sh->subject));
		ok &= add_hex(so, "digest", sh->digest, sizeof(sh->digest));
		ok &= kd_lj_add(so, "cms", json_object_new_string(b64));
		free(b64);
		if (json_object_array_add(arr, so)) {
			json_object_put(so);
			ok = false;
		}
	}
	ok &= kd_lj_add(o, "shares", arr);
	if (ok && !(out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))))
		ok = false;
	json_object_put(o);
	if (!ok)
		return kd_fail(KD_ENOMEM, "out of memory (escrow token JSON)");
	*ret = out;
	return 0;
}

static int sha256(const struct kd_secret *s, uint8_t out[KD_ESCROW_DIGEST_SIZE])
{
	unsigned len = 0;

	if (!EVP_Digest(s->data, s->len, out, &len, EVP_sha256(), NULL) || len != 32)
		return kd_fail(KD_ECRYPTO, "SHA-256 failed");
	return 0;
}

int kd_escrow_build(const struct kd_secret *key, const char *uuid, unsigned k, X509 *const certs[],
		    size_t n, struct kd_escrow_token *ret)
{
	struct kd_secret *shares[KD_ESCROW_MAX_SHARES] = {0};
	struct kd_escrow_token t;
	time_t now = time(NULL);
	struct tm tm;
	int r;

	if (n < 1 || n > KD_ESCROW_MAX_SHARES)
		return kd_fail(KD_EINVAL, "escrow needs 1..%u admin certificates", KD_ESCROW_MAX_SHARES);
	memset(&t, 0, sizeof(t));
	t.token_id = -1;
	t.keyslot = -1;
	t.version = KD_ESCROW_VERSION;
	t.threshold = k;
	t.n = n;
	gmtime_r(&now, &tm);
	strftime(t.created, sizeof(t.created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!X509_cmp(certs[i], certs[j]))
				return kd_fail(KD_EINVAL, "admin certificate %zu is given twice: each "
							  "share must go to a different admin", i + 1);
	if ((r = kd_escrow_commitment(key, t.commitment)) ||
	    (r = kd_escrow_split(key, uuid, k, (unsigned)n, shares)))
		return r;
	for (size_t i = 0; i < n && !r; i++) {
		struct kd_escrow_slot *sh = &t.shares[i];

		sh->index = (unsigned)i + 1;
		X509_NAME_oneline(X509_get_subject_name(certs[i]), sh->subject, sizeof(sh->subject));
		for (char *p = sh->subject; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		if ((r = kd_escrow_cert_fp(certs[i], sh->admin)) || (r = sha256(shares[i], sh->digest)))
			break;
		r = kd_escrow_encrypt(shares[i], certs[i], &sh->cms, &sh->cms_len);
	}
	for (size_t i = 0; i < n; i++)
		kd_secret_free(shares[i]);
	if (r) {
		kd_escrow_token_clear(&t);
		return r;
	}
	*ret = t;
	return 0;
}

int kd_escrow_check_share(const struct kd_escrow_token *t, const struct kd_secret *share)
{
	struct kd_escrow_share_info info;
	uint8_t d[KD_ESCROW_DIGEST_SIZE];
	int r;

	if ((r = kd_escrow_share_parse(share, &info)) || (r = sha256(share, d)))
		return r;
	if (info.threshold != t->threshold || info.count != t->n)
		return kd_fail(KD_ETAMPER, "share %u is %u-of-%u, the volume's escrow is %u-of-%zu",
			       info.index, info.threshold, info.count, t->threshold, t->n);
	for (size_t i = 0; i < t->n; i++) {
		if (t->shares[i].index != info.index)
			continue;
		if (!kd_ct_equal(d, t->shares[i].digest, sizeof(d)))
			return kd_fail(KD_ETAMPER, "share %u does not match its digest in the escrow "
						   "token: the share or the token was altered",
				       info.index);
		return 0;
	}
	return kd_fail(KD_ETAMPER, "share %u is not listed in the escrow token", info.index);
}
