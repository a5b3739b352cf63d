/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LUKS2 header copies and the allow-list (header.h).
 *
 * Binary header layout (LUKS2 on-disk format spec, §2; big-endian):
 *   0 magic[6]  6 version u16  8 hdr_size u64  16 seqid u64  24 label[48]
 *   72 checksum_alg[32]  104 salt[64]  168 uuid[40]  208 subsystem[48]
 *   256 hdr_offset u64  264 padding[184]  448 csum[64]  512 padding[3584]
 * followed by the JSON area (hdr_size - 4096 bytes, NUL-terminated text).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/rotate.h"
#include "keyd/token.h"
#include "keyd/util.h"

#define VOL_CIPHER "aes-xts-plain64"
#define VOL_KEY_BYTES 64u
/* keyd enroll --integrity: LUKS2 authenticated encryption, the only other
 * profile accepted. The volume key is the XTS key followed by the HMAC key;
 * keyslot areas stay plain AES-XTS with a 512-bit key. */
#define VOL_INTEGRITY "hmac(sha256)"
#define VOL_INTEGRITY_KEY_BYTES 32u
#define VOL_SECTOR 4096u
#define PBKDF_FLOOR 1000u
#define MAX_SLOTS 32u
#define AREA_TRUNC "header area truncated"

static const uint8_t magic1[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
static const uint8_t magic2[6] = {'S', 'K', 'U', 'L', 0xba, 0xbe};

static int be64(struct kd_cursor *c, uint64_t *ret)
{
	uint8_t b[8];
	uint64_t v = 0;

	if (kd_cur_bytes(c, b, sizeof(b)))
		return KD_ETRUNC;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	*ret = v;
	return 0;
}

static bool legal_hdr_size(uint64_t s)
{
	for (uint64_t v = 0x4000; v <= KD_LUKS2_HDR_MAX; v <<= 1)
		if (s == v)
			return true;
	return false;
}

/* A fixed-width NUL-padded string field must be terminated inside it. */
static int fixed_str(struct kd_cursor *c, size_t n, char *out, size_t out_len)
{
	const uint8_t *p;

	if (kd_cur_ptr(c, &p, n))
		return KD_ETRUNC;
	if (!memchr(p, 0, n) || strlen((const char *)p) >= out_len)
		return KD_EMALFORMED;
	if (out)
		strcpy(out, (const char *)p);
	return 0;
}

static int copy_fail(struct kd_luks2_copy *r, int err, const char *why)
{
	r->ok = false;
	snprintf(r->err, sizeof(r->err), "%s", why);
	return kd_fail(err, "LUKS2 header at %llu: %s", (unsigned long long)r->hdr_offset, why);
}

int kd_luks2_parse_copy(const uint8_t *buf, size_t len, uint64_t offset,
			struct kd_luks2_copy *ret, char **ret_json)
{
	struct kd_cursor c;
	const uint8_t *mag, *csum;
	uint16_t ver;
	char alg[33];
	uint8_t digest[32];
	unsigned dlen = 0;
	EVP_MD_CTX *md;
	static const uint8_t zero64[64];
	const char *json;
	size_t json_max;
	char *out;
	int ok;

	memset(ret, 0, sizeof(*ret));
	ret->hdr_offset = offset;
	kd_cur_init(&c, buf, len);
	if (kd_cur_ptr(&c, &mag, 6))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	if (memcmp(mag, offset ? magic2 : magic1, 6))
		return copy_fail(ret, KD_EMALFORMED, "bad magic");
	if (kd_cur_bytes(&c, &ver, 2))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	ver = (uint16_t)(((const uint8_t *)&ver)[0] << 8 | ((const uint8_t *)&ver)[1]);
	if (ver != 2)
		return copy_fail(ret, KD_EUNSUPP, "not LUKS version 2");
	if (be64(&c, &ret->hdr_size) || be64(&c, &ret->seqid))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	/* Cheap sanity before anything is hashed (cf. hdr_disk_sanity_check_pre). */
	if (!legal_hdr_size(ret->hdr_size))
		return copy_fail(ret, KD_EMALFORMED, "illegal hdr_size");
	if (fixed_str(&c, KD_LUKS2_LABEL_MAX, ret->label, sizeof(ret->label)) ||
	    fixed_str(&c, 32, alg, sizeof(alg)) || kd_cur_skip(&c, 64) ||
	    fixed_str(&c, KD_LUKS2_UUID_MAX, ret->uuid, sizeof(ret->uuid)) ||
	    fixed_str(&c, 48, NULL, 49))
		return copy_fail(ret, KD_EMALFORMED, "unterminated string field");
	{
		uint64_t hoff;

		if (be64(&c, &hoff) || hoff != offset)
			return copy_fail(ret, KD_EMALFORMED, "hdr_offset does not match its position");
	}
	if (strcmp(alg, "sha256"))
		return copy_fail(ret, KD_EUNSUPP, "checksum algorithm is not sha256");
	if (kd_cur_seek(&c, 448) || kd_cur_ptr(&c, &csum, 64))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	if (memcmp(csum + 32, zero64, 32))
		return copy_fail(ret, KD_EMALFORMED, "checksum padding is not zero");
	if (len < ret->hdr_size)
		return copy_fail(ret, KD_ETRUNC, AREA_TRUNC);
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, buf, 448) &&
	     EVP_DigestUpdate(md, zero64, 64) &&
	     EVP_DigestUpdate(md, buf + 512, ret->hdr_size - 512) && EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	if (!ok || dlen != 32)
		return kd_fail(KD_ECRYPTO, "SHA-256 failed");
	if (memcmp(digest, csum, 32))
		return copy_fail(ret, KD_ETAMPER, "checksum mismatch");
	memcpy(ret->csum, csum, 32);
	json = (const char *)buf + KD_LUKS2_BIN_SIZE;
	json_max = ret->hdr_size - KD_LUKS2_BIN_SIZE;
	if (!memchr(json, 0, json_max))
		return copy_fail(ret, KD_EMALFORMED, "JSON area not terminated");
	if (ret_json) {
		out = strdup(json);
		if (!out)
			return KD_ENOMEM;
		*ret_json = out;
	}
	ret->ok = true;
	return 0;
}

static int read_copy(int fd, uint64_t off, struct kd_luks2_copy *ret, char **ret_json)
{
	uint8_t bin[KD_LUKS2_BIN_SIZE];
	uint8_t *area;
	ssize_t n;
	int r;

	n = pread(fd, bin, sizeof(bin), (off_t)off);
	if (n != (ssize_t)sizeof(bin)) {
		memset(ret, 0, sizeof(*ret));
		ret->hdr_offset = off;
		return copy_fail(ret, n < 0 ? KD_EIO : KD_ETRUNC, "cannot read");
	}
	r = kd_luks2_parse_copy(bin, sizeof(bin), off, ret, NULL);
	/* Only the 4096-byte binary part was read: go on only if it was sane. */
	if (r != KD_ETRUNC || strcmp(ret->err, AREA_TRUNC))
		return r;
	area = malloc(ret->hdr_size);
	if (!area)
		return KD_ENOMEM;
	n = pread(fd, area, ret->hdr_size, (off_t)off);
	if (n != (ssize_t)ret->hdr_size) {
		free(area);
		return copy_fail(ret, KD_EIO, "cannot read header area");
	}
	r = kd_luks2_parse_copy(area, ret->hdr_size, off, ret, ret_json);
	free(area);
	return r;
}

const char *kd_header_health_summary(const struct kd_header_health *h)
{
	if (h->used < 0)
		return "no valid LUKS2 header copy";
	if (h->agree)
		return "both header copies valid and identical";
	if (!h->primary.ok)
		return "primary header damaged, secondary intact: needs repair "
		       "(libcryptsetup restores it from the secondary on the next load)";
	if (!h->secondary.ok)
		return "secondary header damaged, primary intact: needs repair "
		       "(libcryptsetup restores it from the primary on the next load)";
	return "header copies differ (interrupted write): needs repair from the newer copy";
}

int kd_header_read(int fd, struct kd_header_health *ret_health, struct json_object **ret_meta)
{
	static const uint64_t offsets[] = {0x4000, 0x8000, 0x10000, 0x20000, 0x40000,
					   0x80000, 0x100000, 0x200000, 0x400000};
	struct kd_header_health h;
	char *j1 = NULL, *j2 = NULL;
	const char *use;
	json_object *meta;
	struct json_tokener *tok;
	int r;

	memset(&h, 0, sizeof(h));
	r = read_copy(fd, 0, &h.primary, &j1);
	if (r == KD_ENOMEM || r == KD_ECRYPTO)
		return r;
	if (h.primary.ok) {
		read_copy(fd, h.primary.hdr_size, &h.secondary, &j2);
	} else {
		/* libcryptsetup looks for the secondary at every legal offset. */
		for (size_t i = 0; i < KD_ARRAY_SIZE(offsets); i++) {
			free(j2);
			j2 = NULL;
			if (!read_copy(fd, offsets[i], &h.secondary, &j2))
				break;
		}
		if (!h.secondary.ok) {
			h.secondary.hdr_offset = 0;
			snprintf(h.secondary.err, sizeof(h.secondary.err), "not found");
		}
	}
	if (h.primary.ok && h.secondary.ok) {
		h.used = h.secondary.seqid > h.primary.seqid ? 1 : 0;
		h.agree = h.primary.seqid == h.secondary.seqid &&
			  h.primary.hdr_size == h.secondary.hdr_size && !strcmp(j1, j2) &&
			  !strcmp(h.primary.uuid, h.secondary.uuid) &&
			  !strcmp(h.primary.label, h.secondary.label);
	} else {
		h.used = h.primary.ok ? 0 : h.secondary.ok ? 1 : -1;
	}
	if (h.used < 0) {
		free(j1);
		free(j2);
		*ret_health = h;
		return kd_fail(KD_EMALFORMED, "no valid LUKS2 header: primary %s, secondary %s",
			       h.primary.err, h.secondary.err);
	}
	use = h.used ? j2 : j1;
	tok = json_tokener_new_ex(12);
	if (!tok) {
		free(j1);
		free(j2);
		return KD_ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	meta = json_tokener_parse_ex(tok, use, (int)strlen(use));
	if (!meta || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != strlen(use)) {
		json_object_put(meta);
		meta = NULL;
	}
	json_tokener_free(tok);
	free(j1);
	free(j2);
	if (!meta) {
		h.allow_err = kd_fail(KD_ETAMPER, "LUKS2 JSON metadata does not parse");
	} else {
		h.allow_err = kd_header_allow(meta, h.used ? h.secondary.hdr_size : h.primary.hdr_size);
	}
	if (h.allow_err)
		snprintf(h.allow_detail, sizeof(h.allow_detail), "%s", kd_err_detail(h.allow_err));
	*ret_health = h;
	if (ret_meta)
		*ret_meta = meta;
	else
		json_object_put(meta);
	return 0;
}

/* ---------------------------------------------------------------- allow-list */

int kd_luks2_u64(struct json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;
	const char *s;
	uint64_t n = 0;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: \"%s\" missing or not a string", key);
	s = json_object_get_string(v);
	if (!*s || strlen(s) > 20 || (s[0] == '0' && s[1]))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: \"%s\" is not a decimal number", key);
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: \"%s\" is not a decimal number", key);
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*ret = n;
	return 0;
}

static json_object *get(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static const char *get_s(json_object *o, const char *key)
{
	json_object *v = get(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

static int64_t get_i(json_object *o, const char *key)
{
	json_object *v = get(o, key, json_type_int);

	return v ? json_object_get_int64(v) : -1;
}

static bool str_eq(const char *a, const char *b)
{
	return a && !strcmp(a, b);
}

/* Object keys of keyslots/segments/digests/tokens are decimal 0..31. */
static int slot_id(const char *key, const char *what)
{
	uint64_t n = 0;

	if (!*key || strlen(key) > 2 || (key[0] == '0' && key[1]))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: bad %s id \"%.8s\"", what, key);
	for (const char *p = key; *p; p++) {
		if (*p < '0' || *p > '9')
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: bad %s id \"%.8s\"", what, key);
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n >= MAX_SLOTS)
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: %s id %llu out of range", what,
			       (unsigned long long)n);
	return (int)n;
}

/* Array of decimal-string ids -> bitmask. */
static int id_set(json_object *arr, const char *what, uint32_t *ret)
{
	uint32_t m = 0;
	size_t n;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: %s list missing", what);
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		int id;

		if (!json_object_is_type(e, json_type_string))
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: %s reference is not a string", what);
		id = slot_id(json_object_get_string(e), what);
		if (id < 0)
			return id;
		if (m & (1u << id))
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: duplicate %s reference", what);
		m |= 1u << id;
	}
	*ret = m;
	return 0;
}

struct range {
	uint64_t off, len;
	int slot;
};

/*
 * Segment integrity, when present, must be exactly keyd's profile: HMAC-SHA256
 * tags and no journal crypto. Anything else (a CRC "integrity" that proves
 * nothing, a different MAC, an encrypted journal keyd never set up) is
 * refused, like any other cipher the host might pick.
 */
static int integrity_profile(json_object *io)
{
	if (!json_object_is_type(io, json_type_object) || json_object_object_length(io) != 3 ||
	    !str_eq(get_s(io, "type"), VOL_INTEGRITY) ||
	    !str_eq(get_s(io, "journal_encryption"), "none") ||
	    !str_eq(get_s(io, "journal_integrity"), "none"))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 integrity is not keyd's " VOL_INTEGRITY
					   " profile; refused");
	return 0;
}

int kd_header_allow(struct json_object *meta, uint64_t hdr_size)
{
	json_object *keyslots, *segments, *digests, *tokens, *config, *seg, *flags, *req;
	uint64_t json_size, ks_size, seg_off = 0, seg_size = 0, u;
	struct range areas[MAX_SLOTS];
	size_t n_areas = 0;
	uint32_t slots = 0, keyd_slots = 0, token_slots = 0, dig_slots = 0, dig_segs;
	json_object *integ = NULL;
	uint32_t vk_bytes = VOL_KEY_BYTES;
	int n, r;
	json_object *view = NULL;

	/* A volume-key rotation (rotate.h) is checked as the header it leads to. */
	if ((r = kd_rotate_header_view(meta, &view)))
		return r;
	if (view) {
		r = kd_header_allow(view, hdr_size);
		json_object_put(view);
		return r;
	}
	if (!json_object_is_type(meta, json_type_object))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata is not an object");
	json_object_object_foreach(meta, top, topv) {
		(void)topv;
		if (strcmp(top, "keyslots") && strcmp(top, "segments") && strcmp(top, "digests") &&
		    strcmp(top, "tokens") && strcmp(top, "config"))
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: unexpected section \"%.32s\"", top);
	}
	keyslots = get(meta, "keyslots", json_type_object);
	segments = get(meta, "segments", json_type_object);
	digests = get(meta, "digests", json_type_object);
	tokens = get(meta, "tokens", json_type_object);
	config = get(meta, "config", json_type_object);
	if (!keyslots || !segments || !digests || !tokens || !config)
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: a mandatory section is missing");

	/* config: sizes consistent with the binary header; no requirements
	 * (online reencryption and other features keyd never sets up). */
	if ((r = kd_luks2_u64(config, "json_size", &json_size)) ||
	    (r = kd_luks2_u64(config, "keyslots_size", &ks_size)))
		return r;
	if (json_size != hdr_size - KD_LUKS2_BIN_SIZE)
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: json_size does not match the header size");
	if (ks_size % VOL_SECTOR || ks_size > (1ull << 30))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: keyslots_size is not sane");
	req = get(config, "requirements", json_type_object);
	if (json_object_object_get_ex(config, "requirements", NULL) &&
	    (!req || json_object_object_length(req) != 0)) {
		json_object *mand = get(req, "mandatory", json_type_array);

		if (!req || json_object_object_length(req) != 1 || !mand ||
		    json_object_array_length(mand) != 0)
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: header carries requirements "
						   "(reencryption?); refused");
	}
	flags = get(config, "flags", json_type_array);
	if (flags) {
		for (size_t i = 0; i < json_object_array_length(flags); i++) {
			const char *f = json_object_get_string(json_object_array_get_idx(flags, i));

			if (!f || (strcmp(f, "allow-discards") && strcmp(f, "no-read-workqueue") &&
				   strcmp(f, "no-write-workqueue")))
				return kd_fail(KD_ETAMPER, "LUKS2 metadata: unexpected persistent flag");
		}
	}

	/* Exactly one segment: crypt, aes-xts-plain64, 4096-byte sectors. */
	if (json_object_object_length(segments) != 1 || !(seg = get(segments, "0", json_type_object)))
		return kd_fail(KD_ETAMPER, "LUKS2 header has %d segments; exactly segment 0 is allowed",
			       json_object_object_length(segments));
	if (!str_eq(get_s(seg, "type"), "crypt"))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 is not of type crypt");
	if (!str_eq(get_s(seg, "encryption"), VOL_CIPHER))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 cipher \"%.32s\" is not " VOL_CIPHER
					   " (cipher_null header attack?)",
			       get_s(seg, "encryption") ? get_s(seg, "encryption") : "?");
	if (get_i(seg, "sector_size") != VOL_SECTOR)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 sector size is not 4096");
	if (json_object_object_get_ex(seg, "integrity", &integ)) {
		if ((r = integrity_profile(integ)))
			return r;
		vk_bytes = VOL_KEY_BYTES + VOL_INTEGRITY_KEY_BYTES;
	}
	if ((flags = get(seg, "flags", json_type_array)) && json_object_array_length(flags))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 has flags; refused");
	if ((r = kd_luks2_u64(seg, "iv_tweak", &u)))
		return r;
	if (u != 0)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 iv_tweak is not 0");
	if ((r = kd_luks2_u64(seg, "offset", &seg_off)))
		return r;
	if (seg_off % VOL_SECTOR || seg_off < 2 * hdr_size + ks_size)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 offset overlaps the metadata");
	if (!str_eq(get_s(seg, "size"), "dynamic")) {
		if ((r = kd_luks2_u64(seg, "size", &seg_size)))
			return r;
		if (!seg_size || seg_size % VOL_SECTOR)
			return kd_fail(KD_ETAMPER, "LUKS2 segment 0 size is not sane");
	}

	/* Tokens: which keyslots are keyd's, and that nothing else claims them. */
	json_object_object_foreach(tokens, tid, tok) {
		uint32_t m;
		const char *type;

		if ((r = slot_id(tid, "token")) < 0)
			return r;
		if (!json_object_is_type(tok, json_type_object) || !(type = get_s(tok, "type")))
			return kd_fail(KD_ETAMPER, "LUKS2 token %s has no type", tid);
		if ((r = id_set(get(tok, "keyslots", json_type_array), "token keyslot", &m)))
			return r;
		if (!strcmp(type, KD_TOKEN_TYPE)) {
			if (__builtin_popcount(m) != 1)
				return kd_fail(KD_ETAMPER, "keyd token %s must reference exactly one keyslot",
					       tid);
			if (keyd_slots & m)
				return kd_fail(KD_ETAMPER, "two keyd tokens reference the same keyslot");
			keyd_slots |= m;
		}
		if (token_slots & m & keyd_slots)
			return kd_fail(KD_ETAMPER, "LUKS2 token %s shares a keyd keyslot", tid);
		token_slots |= m;
	}
	/* A foreign token listed before the keyd token on the same slot. */
	json_object_object_foreach(tokens, tid2, tok2) {
		uint32_t m = 0;

		if (str_eq(get_s(tok2, "type"), KD_TOKEN_TYPE))
			continue;
		id_set(get(tok2, "keyslots", json_type_array), "token keyslot", &m);
		if (m & keyd_slots)
			return kd_fail(KD_ETAMPER, "foreign token %s (type %.32s) is assigned to a keyd "
						   "keyslot", tid2, get_s(tok2, "type"));
	}

	/* Keyslots: luks2, AES-XTS areas inside the keyslots area, no overlap. */
	json_object_object_foreach(keyslots, kid, ks) {
		json_object *area, *af, *kdf;
		struct range a;
		int id;

		if ((id = slot_id(kid, "keyslot")) < 0)
			return id;
		slots |= 1u << id;
		if (!json_object_is_type(ks, json_type_object) || !str_eq(get_s(ks, "type"), "luks2"))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d is not of type luks2", id);
		if (get_i(ks, "key_size") != (int64_t)vk_bytes)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d key size is not %u bits", id,
				       8 * vk_bytes);
		area = get(ks, "area", json_type_object);
		af = get(ks, "af", json_type_object);
		kdf = get(ks, "kdf", json_type_object);
		if (!area || !af || !kdf)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d is incomplete", id);
		if (!str_eq(get_s(area, "type"), "raw") || !str_eq(get_s(area, "encryption"), VOL_CIPHER))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area cipher \"%.32s\" is not " VOL_CIPHER
						   " (cipher_null header attack?)",
				       id, get_s(area, "encryption") ? get_s(area, "encryption") : "?");
		if (get_i(area, "key_size") != VOL_KEY_BYTES)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area key size is not 512 bits", id);
		if (!str_eq(get_s(af, "type"), "luks1") || get_i(af, "stripes") != 4000)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d anti-forensic splitter is not luks1/4000",
				       id);
		if ((r = kd_luks2_u64(area, "offset", &a.off)) || (r = kd_luks2_u64(area, "size", &a.len)))
			return r;
		if (a.off < 2 * hdr_size || a.len == 0 || a.len > ks_size ||
		    a.off - 2 * hdr_size > ks_size - a.len || a.off + a.len > seg_off)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area lies outside the keyslots area", id);
		a.slot = id;
		for (size_t i = 0; i < n_areas; i++)
			if (a.off < areas[i].off + areas[i].len && areas[i].off < a.off + a.len)
				return kd_fail(KD_ETAMPER, "LUKS2 keyslot areas %d and %d overlap", id,
					       areas[i].slot);
		areas[n_areas++] = a;
		/* A keyslot no token describes was added outside keyd, or is the
		 * remnant of an enrollment interrupted between keyslot and token
		 * writes. Only the latter (the exact keyd profile) is tolerated,
		 * so such a crash never leaves a volume that cannot open. */
		if (!(token_slots & (1u << id)) &&
		    (!str_eq(get_s(kdf, "type"), "pbkdf2") || !str_eq(get_s(kdf, "hash"), "sha512") ||
		     get_i(kdf, "iterations") != PBKDF_FLOOR))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d is not described by any token "
						   "(added outside keyd?)", id);
		if (keyd_slots & (1u << id)) {
			/* The keyd secret is high-entropy, but a floor stops a header
			 * that makes the slot trivially brute-forceable offline. */
			if (!str_eq(get_s(kdf, "type"), "pbkdf2") || !str_eq(get_s(kdf, "hash"), "sha512"))
				return kd_fail(KD_ETAMPER, "keyd keyslot %d PBKDF is not PBKDF2-SHA512", id);
			if (get_i(kdf, "iterations") < (int64_t)PBKDF_FLOOR)
				return kd_fail(KD_ETAMPER, "keyd keyslot %d PBKDF2 iterations below the floor "
							   "of %u (downgraded header)", id, PBKDF_FLOOR);
		}
	}
	if ((keyd_slots & slots) != keyd_slots)
		return kd_fail(KD_ETAMPER, "a keyd token references a keyslot that does not exist");

	/* One digest binding every keyslot to segment 0. */
	n = json_object_object_length(digests);
	if (n != 1)
		return kd_fail(KD_ETAMPER, "LUKS2 header has %d digests; exactly one is allowed", n);
	json_object_object_foreach(digests, did, dig) {
		if (slot_id(did, "digest") < 0)
			return KD_ETAMPER;
		if (!str_eq(get_s(dig, "type"), "pbkdf2"))
			return kd_fail(KD_ETAMPER, "LUKS2 digest is not pbkdf2");
		if ((r = id_set(get(dig, "keyslots", json_type_array), "digest keyslot", &dig_slots)) ||
		    (r = id_set(get(dig, "segments", json_type_array), "digest segment", &dig_segs)))
			return r;
		if (dig_segs != 1u || dig_slots != slots)
			return kd_fail(KD_ETAMPER, "LUKS2 digest does not bind every keyslot to segment 0");
	}
	return 0;
}

/* ---------------------------------------------------------------- pin params */

struct enc {
	uint8_t buf[512];
	size_t len;
	bool overflow;
};

static void put(struct enc *e, const void *p, size_t n)
{
	if (n > sizeof(e->buf) - e->len) {
		e->overflow = true;
		return;
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void put_str(struct enc *e, const char *s)
{
	uint8_t l[4];

	kd_put_le32(l, (uint32_t)strlen(s));
	put(e, l, 4);
	put(e, s, strlen(s));
}

static void put_u64(struct enc *e, uint64_t v)
{
	uint8_t b[8];

	kd_put_le64(b, v);
	put(e, b, 8);
}

static int pin_params_plain(struct json_object *meta, const char *uuid, int keyslot,
			    uint8_t **ret, size_t *ret_len)
{
	json_object *seg = get(get(meta, "segments", json_type_object), "0", json_type_object);
	json_object *ks, *kdf;
	char id[12];
	uint64_t off, size = UINT64_MAX;
	struct enc e = {.len = 0};
	uint8_t *out;

	snprintf(id, sizeof(id), "%d", keyslot);
	ks = get(get(meta, "keyslots", json_type_object), id, json_type_object);
	kdf = get(ks, "kdf", json_type_object);
	if (!seg || !ks || !kdf || kd_luks2_u64(seg, "offset", &off) || !get_s(seg, "encryption") ||
	    !get_s(kdf, "type") || !get_s(kdf, "hash"))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata lacks the parameters the pin covers");
	if (!str_eq(get_s(seg, "size"), "dynamic") && kd_luks2_u64(seg, "size", &size))
		return KD_ETAMPER;
	/* Length-prefixed fields: no two parameter sets encode the same bytes. */
	put_str(&e, "keyd-pin-v1");
	put_str(&e, uuid);
	put_str(&e, get_s(seg, "encryption"));
	put_u64(&e, (uint64_t)get_i(ks, "key_size"));
	put_u64(&e, (uint64_t)get_i(seg, "sector_size"));
	put_u64(&e, off);
	put_u64(&e, size);
	put_u64(&e, (uint64_t)keyslot);
	put_str(&e, get_s(kdf, "type"));
	put_str(&e, get_s(kdf, "hash"));
	put_u64(&e, (uint64_t)get_i(kdf, "iterations"));
	/* Only present on --integrity volumes, so plain volumes keep their pins. */
	if (json_object_object_get_ex(seg, "integrity", NULL))
		put_str(&e, get_s(get(seg, "integrity", json_type_object), "type") ?: "");
	if (e.overflow)
		return kd_fail(KD_ETAMPER, "LUKS2 pin parameters too long");
	out = malloc(e.len);
	if (!out)
		return KD_ENOMEM;
	memcpy(out, e.buf, e.len);
	*ret = out;
	*ret_len = e.len;
	return 0;
}

int kd_header_pin_params(struct json_object *meta, const char *uuid, int keyslot,
			 uint8_t **ret, size_t *ret_len)
{
	json_object *view = NULL;
	int r;

	/* During a rotation the pin covers the header the rotation leads to
	 * (rotate.h), so a keyslot's pin stays valid while its volume rotates. */
	if ((r = kd_rotate_header_view(meta, &view)))
		return r;
	if (!view)
		return pin_params_plain(meta, uuid, keyslot, ret, ret_len);
	r = pin_params_plain(view, uuid, keyslot, ret, ret_len);
	json_object_put(view);
	return r;
}

json_object *kd_luks2_copy_status_json(const struct kd_luks2_copy *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(c->ok));
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)c->hdr_offset));
	if (c->ok)
		json_object_object_add(o, "seqid", json_object_new_int64((int64_t)c->seqid));
	else
		json_object_object_add(o, "error", json_object_new_string(c->err));
	return o;
}
