/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: LUKS2 header copies (checksum, truncation, bit flips) and the allow-list. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"

static char path[] = "/tmp/keyd-test-header-XXXXXX";
static uint8_t area[2 * 16384];

/* A real keyd-shaped LUKS2 header made by libcryptsetup itself. */
static void setup(void)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_luks2 p = {.sector_size = 4096};
	const struct crypt_pbkdf_type pb = {.type = CRYPT_KDF_PBKDF2, .hash = "sha512",
					    .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
	int fd = mkstemp(path);
	char vk[64] = {1};

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 32 << 20), 0);
	ck_assert_int_eq(crypt_init(&cd, path), 0);
	ck_assert_int_eq(crypt_set_pbkdf_type(cd, &pb), 0);
	ck_assert_int_eq(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, vk, 64, &p), 0);
	ck_assert_int_eq(crypt_keyslot_add_by_volume_key(cd, 0, vk, 64, "pw", 2), 0);
	ck_assert_int_ge(crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
					      "{\"type\":\"keyd\",\"keyslots\":[\"0\"]}"), 0);
	crypt_free(cd);
	ck_assert_int_eq(pread(fd, area, sizeof(area), 0), (ssize_t)sizeof(area));
	close(fd);
}

static void teardown(void)
{
	unlink(path);
	strcpy(path, "/tmp/keyd-test-header-XXXXXX");
}

START_TEST(copies_parse)
{
	struct kd_luks2_copy c;
	char *json = NULL;

	ck_assert_int_eq(kd_luks2_parse_copy(area, 16384, 0, &c, &json), 0);
	ck_assert(c.ok);
	ck_assert_uint_eq(c.hdr_size, 16384);
	ck_assert_int_eq(kd_luks2_parse_copy(area + 16384, 16384, 16384, &c, NULL), 0);
	/* A copy at the wrong offset, or the primary read as the secondary. */
	ck_assert_int_ne(kd_luks2_parse_copy(area, 16384, 16384, &c, NULL), 0);
	ck_assert_int_ne(kd_luks2_parse_copy(area + 16384, 16384, 0, &c, NULL), 0);
	free(json);
}
END_TEST

START_TEST(copies_truncation_and_bitflips)
{
	struct kd_luks2_copy c;
	uint8_t buf[16384];

	for (size_t n = 0; n < 16384; n += 509)
		ck_assert_int_ne(kd_luks2_parse_copy(area, n, 0, &c, NULL), 0);
	/* Every flipped bit of the binary header or the JSON is detected. */
	for (size_t i = 0; i < 16384; i += 97) {
		memcpy(buf, area, sizeof(buf));
		buf[i] ^= 0x10;
		ck_assert_msg(kd_luks2_parse_copy(buf, sizeof(buf), 0, &c, NULL) != 0, "flip at %zu", i);
		ck_assert(!c.ok);
	}
}
END_TEST

static json_object *meta(void)
{
	json_object *o = json_tokener_parse((const char *)area + 4096);

	ck_assert_ptr_nonnull(o);
	return o;
}

static int allow_after(const char *path_key, const char *key, json_object *val)
{
	json_object *m = meta(), *o = m;
	char buf[256], *save = NULL, *tok;
	int r;

	snprintf(buf, sizeof(buf), "%s", path_key);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
		ck_assert(json_object_object_get_ex(o, tok, &o));
	if (val)
		json_object_object_add(o, key, val);
	else
		json_object_object_del(o, key);
	r = kd_header_allow(m, 16384);
	json_object_put(m);
	return r;
}

START_TEST(allow_list)
{
	json_object *m = meta();

	ck_assert_int_eq(kd_header_allow(m, 16384), 0);
	ck_assert_int_eq(kd_header_allow(m, 32768), KD_ETAMPER); /* json_size mismatch */
	json_object_put(m);
	ck_assert_int_eq(allow_after("segments/0", "encryption", json_object_new_string("cipher_null-ecb")),
			 KD_ETAMPER);
	ck_assert_int_eq(allow_after("keyslots/0/area", "encryption",
				     json_object_new_string("cipher_null-ecb")), KD_ETAMPER);
	ck_assert_int_eq(allow_after("keyslots/0/kdf", "iterations", json_object_new_int(999)), KD_ETAMPER);
	ck_assert_int_eq(allow_after("keyslots/0/kdf", "hash", json_object_new_string("sha256")), KD_ETAMPER);
	ck_assert_int_eq(allow_after("segments/0", "sector_size", json_object_new_int(512)), KD_ETAMPER);
	ck_assert_int_eq(allow_after("segments/0", "offset", json_object_new_string("4096")), KD_ETAMPER);
	ck_assert_int_eq(allow_after("segments/0", "offset", json_object_new_string("0x100")), KD_ETAMPER);
	ck_assert_int_eq(allow_after("segments", "1", json_object_new_object()), KD_ETAMPER);
	ck_assert_int_eq(allow_after("keyslots/0/area", "offset", json_object_new_string("16384")),
			 KD_ETAMPER);
	/* A foreign token on the keyd keyslot, and a keyd token without a slot. */
	ck_assert_int_eq(allow_after("tokens", "1",
				     json_tokener_parse("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\"]}")),
			 KD_ETAMPER);
	ck_assert_int_eq(allow_after("tokens/0", "keyslots", json_object_new_array()), KD_ETAMPER);
	ck_assert_int_eq(allow_after("config", "requirements",
				     json_tokener_parse("{\"mandatory\":[\"online-reencrypt\"]}")),
			 KD_ETAMPER);
	ck_assert_int_eq(allow_after("", "extra", json_object_new_object()), KD_ETAMPER);
}
END_TEST

/* keyd enroll --integrity: segment integrity (JSON text, NULL = none) and the
 * keyslot key size, as libcryptsetup 2.6 writes them for hmac(sha256). */
static int allow_integrity(const char *integ, int key_size)
{
	json_object *m = meta(), *seg, *ks;
	int r;

	ck_assert(json_object_object_get_ex(json_object_object_get(m, "segments"), "0", &seg));
	ck_assert(json_object_object_get_ex(json_object_object_get(m, "keyslots"), "0", &ks));
	if (integ)
		json_object_object_add(seg, "integrity", json_tokener_parse(integ));
	json_object_object_add(ks, "key_size", json_object_new_int(key_size));
	r = kd_header_allow(m, 16384);
	json_object_put(m);
	return r;
}

#define HMAC_PROFILE                                                                               \
	"{\"type\":\"hmac(sha256)\",\"journal_encryption\":\"none\",\"journal_integrity\":\"none\"}"

START_TEST(allow_list_integrity)
{
	json_object *m = meta(), *seg;
	uint8_t *plain = NULL, *integ = NULL;
	size_t plain_len = 0, integ_len = 0;

	/* Exactly keyd's profile, with the 64+32-byte volume key. */
	ck_assert_int_eq(allow_integrity(HMAC_PROFILE, 96), 0);
	ck_assert_int_eq(allow_integrity(HMAC_PROFILE, 64), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity(NULL, 96), KD_ETAMPER);
	/* Any other integrity: a CRC proves nothing, other MACs, journal crypto,
	 * extra or missing fields, a JSON null. */
	ck_assert_int_eq(allow_integrity("{\"type\":\"crc32c\",\"journal_encryption\":\"none\","
					 "\"journal_integrity\":\"none\"}", 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("{\"type\":\"hmac(sha512)\",\"journal_encryption\":\"none\","
					 "\"journal_integrity\":\"none\"}", 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("{\"type\":\"hmac(sha256)\",\"journal_encryption\":"
					 "\"cbc(aes)\",\"journal_integrity\":\"none\"}", 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("{\"type\":\"hmac(sha256)\",\"journal_encryption\":\"none\","
					 "\"journal_integrity\":\"none\",\"x\":1}", 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("{\"type\":\"hmac(sha256)\",\"journal_integrity\":\"none\"}",
					 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("null", 96), KD_ETAMPER);
	ck_assert_int_eq(allow_integrity("\"hmac(sha256)\"", 96), KD_ETAMPER);
	/* cipher_null stays refused under integrity too. */
	ck_assert(json_object_object_get_ex(json_object_object_get(m, "segments"), "0", &seg));
	json_object_object_add(seg, "integrity", json_tokener_parse(HMAC_PROFILE));
	json_object_object_add(seg, "encryption", json_object_new_string("cipher_null-ecb"));
	ck_assert_int_eq(kd_header_allow(m, 16384), KD_ETAMPER);
	json_object_object_add(seg, "encryption", json_object_new_string("aes-xts-plain64"));
	/* The pin covers the integrity profile: stripping it changes the pin. */
	ck_assert_int_eq(kd_header_pin_params(m, "u", 0, &integ, &integ_len), 0);
	json_object_object_del(seg, "integrity");
	ck_assert_int_eq(kd_header_pin_params(m, "u", 0, &plain, &plain_len), 0);
	ck_assert(plain_len != integ_len || memcmp(plain, integ, plain_len));
	free(plain);
	free(integ);
	json_object_put(m);
}
END_TEST

START_TEST(read_both_copies)
{
	struct kd_header_health h;
	json_object *m = NULL;
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_eq(kd_header_read(fd, &h, &m), 0);
	ck_assert(h.agree && h.primary.ok && h.secondary.ok);
	ck_assert_int_eq(h.allow_err, 0);
	json_object_put(m);
	/* Damage the primary's JSON: the secondary is used, repair is due. */
	ck_assert_int_eq(pread(fd, &b, 1, 5000), 1);
	b ^= 1;
	ck_assert_int_eq(pwrite(fd, &b, 1, 5000), 1);
	ck_assert_int_eq(kd_header_read(fd, &h, NULL), 0);
	ck_assert(!h.agree && !h.primary.ok && h.secondary.ok && h.used == 1);
	ck_assert_ptr_nonnull(strstr(kd_header_health_summary(&h), "needs keyd-recover repair"));
	close(fd);
}
END_TEST
/* ---------------------------------------------------------------- typed accessors */

START_TEST(typed_accessors)
{
	json_object *o = json_tokener_parse(
		"{\"t\":null,\"s\":\"x\",\"e\":\"\",\"n\":7,\"big\":99999999999999999999,"
		"\"a\":[\"1\",\"3\"],\"dup\":[\"1\",\"1\"],\"bad\":[1],\"u\":\"0012\",\"o\":{},"
		"\"nul\":\"a\\u0000b\",\"id\":[\"32\"]}");
	json_object *v = NULL;
	const char *str = NULL;
	int64_t n = 0;
	uint64_t u = 0;
	uint32_t m = 0;

	ck_assert_ptr_nonnull(o);
	/* The one-line reason names where and what. */
	ck_assert_int_eq(kd_lj_str(o, "token 7", "t", &str), KD_ETAMPER);
	ck_assert_str_eq(kd_err_detail(KD_ETAMPER), "token 7: \"t\" is not a string");
	ck_assert_int_eq(kd_lj_str(o, "token 7", "missing", &str), KD_ETAMPER);
	ck_assert_str_eq(kd_err_detail(KD_ETAMPER), "token 7: \"missing\" is missing");
	ck_assert_int_eq(kd_lj_obj(o, "x", "s", &v), KD_ETAMPER);
	ck_assert_str_eq(kd_err_detail(KD_ETAMPER), "x: \"s\" is not an object");
	ck_assert_int_eq(kd_lj_arr(o, "x", "o", &v), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_str(o, "x", "e", &str), KD_ETAMPER);  /* empty */
	ck_assert_int_eq(kd_lj_str(o, "x", "nul", &str), KD_ETAMPER); /* embedded NUL */
	ck_assert_int_eq(kd_lj_str(o, "x", "s", &str), 0);
	ck_assert_str_eq(str, "x");
	ck_assert_int_eq(kd_lj_int(o, "x", "n", 0, 7, &n), 0);
	ck_assert_int_eq(n, 7);
	ck_assert_int_eq(kd_lj_int(o, "x", "n", 0, 6, &n), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_int(o, "x", "big", 0, INT64_MAX, &n), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_int(o, "x", "s", 0, 7, &n), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_u64(o, "x", "u", &u), KD_ETAMPER); /* leading zero */
	ck_assert_int_eq(kd_lj_u64(o, "x", "n", &u), KD_ETAMPER); /* not a string */
	ck_assert_int_eq(kd_lj_id_set(o, "x", "a", &m), 0);
	ck_assert_uint_eq(m, 0xa);
	ck_assert_int_eq(kd_lj_id_set(o, "x", "dup", &m), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_id_set(o, "x", "bad", &m), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_id_set(o, "x", "id", &m), KD_ETAMPER); /* 32 out of range */
	ck_assert_int_eq(kd_lj_id_set(o, "x", "s", &m), KD_ETAMPER);  /* not an array */
	ck_assert_int_eq(kd_lj_str_array(o, "x", "bad", &v), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_str_array(o, "x", "s", &v), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_str_array(o, "x", "absent", &v), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(kd_lj_opt(o, "x", "t", json_type_string, &v), KD_ETAMPER); /* null */
	ck_assert_int_eq(kd_lj_id("07", "x", "token"), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_id("31", "x", "token"), 31);
	/* Never asserts on a value of the wrong type. */
	ck_assert_int_eq(kd_lj_str(NULL, "x", "s", &str), KD_ETAMPER);
	ck_assert_int_eq(kd_lj_len(json_object_object_get(o, "a")), 0);
	ck_assert_ptr_null(kd_lj_elem_str(json_object_object_get(o, "bad"), 0));
	/* Strict formats: the first member outside the list, or none. */
	{
		json_object *small = json_tokener_parse("{\"type\":\"keyd\",\"extra\":1}");
		static const char *const both[] = {"type", "extra"}, *const one[] = {"type"};

		ck_assert_ptr_nonnull(small);
		ck_assert_ptr_null(kd_lj_unknown_key(small, both, 2));
		ck_assert_str_eq(kd_lj_unknown_key(small, one, 1), "extra");
		ck_assert_str_eq(kd_lj_unknown_key(small, both, 0), "type");
		ck_assert_ptr_null(kd_lj_unknown_key(json_object_object_get(o, "a"), one, 1));
		json_object_put(small);
	}
	/* Lenient look-ups: the same types, but a mismatch is an answer, not a refusal. */
	kd_fail(KD_ETAMPER, "earlier refusal");
	ck_assert_ptr_eq(kd_lj_peek(o, "o", json_type_object), json_object_object_get(o, "o"));
	ck_assert_ptr_null(kd_lj_peek(o, "s", json_type_object));
	ck_assert_ptr_null(kd_lj_peek(o, "t", json_type_string)); /* null */
	ck_assert_ptr_null(kd_lj_peek(NULL, "s", json_type_string));
	ck_assert_str_eq(kd_lj_peek_str(o, "s"), "x");
	ck_assert_ptr_null(kd_lj_peek_str(o, "e"));   /* empty */
	ck_assert_ptr_null(kd_lj_peek_str(o, "nul")); /* embedded NUL */
	ck_assert_ptr_null(kd_lj_peek_str(o, "n"));
	ck_assert_int_eq(kd_lj_peek_id("31"), 31);
	ck_assert_int_eq(kd_lj_peek_id("32"), -1);
	ck_assert_int_eq(kd_lj_peek_id("07"), -1);
	ck_assert_int_eq(kd_lj_peek_id("7a"), -1);
	ck_assert_int_eq(kd_lj_peek_id(NULL), -1);
	ck_assert(kd_lj_peek_id_set(o, "a", &m));
	ck_assert_uint_eq(m, 0xa);
	ck_assert(!kd_lj_peek_id_set(o, "dup", &m));
	ck_assert(!kd_lj_peek_id_set(o, "bad", &m));
	ck_assert(!kd_lj_peek_id_set(o, "id", &m));
	ck_assert(!kd_lj_peek_id_set(o, "s", &m));
	ck_assert(!kd_lj_peek_id_set(o, "absent", &m));
	ck_assert_str_eq(kd_err_detail(KD_ETAMPER), "earlier refusal");
	json_object_put(o);
}
END_TEST

/* ---------------------------------------------------------------- against libcryptsetup */

/* Write JSON text (raw area bytes of len) into both copies, checksums fixed. */
static void write_area(const uint8_t *json, size_t len)
{
	uint8_t copy[16384], d[32];
	unsigned dl = 0;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_le(len, 16384 - 4096);
	for (int i = 0; i < 2; i++) {
		memcpy(copy, area + i * 16384, sizeof(copy));
		memset(copy + 4096, 0, 16384 - 4096);
		memcpy(copy + 4096, json, len);
		memset(copy + 448, 0, 64);
		ck_assert(EVP_Digest(copy, sizeof(copy), d, &dl, EVP_sha256(), NULL));
		memcpy(copy + 448, d, 32);
		ck_assert_int_eq(pwrite(fd, copy, sizeof(copy), i * 16384), (ssize_t)sizeof(copy));
	}
	close(fd);
}

/* libcryptsetup's verdict on the image: 0 loads, <0 refused. */
static int cryptsetup_loads(void)
{
	struct crypt_device *cd = NULL;
	int r;

	ck_assert_int_eq(crypt_init(&cd, path), 0);
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	crypt_free(cd);
	return r;
}

/* keyd's verdict: 0 accepts, else the refusal (reader or allow-list). */
static int keyd_accepts(void)
{
	struct kd_header_health h;
	json_object *m = NULL;
	int fd = open(path, O_RDONLY), r;

	ck_assert_int_ge(fd, 0);
	r = kd_header_read(fd, &h, &m);
	close(fd);
	json_object_put(m);
	return r ? r : h.allow_err;
}

/*
 * Headers libcryptsetup's own validation rejects (LUKS2_hdr_validate and its
 * keyslot/digest/token checks), made from a real header by changing one
 * member: keyd must refuse every one of them.
 */
static const struct {
	const char *path, *key, *value; /* value NULL: delete the member */
} lcs_rejects[] = {
	{"", "tokens", "[]"},
	{"", "tokens", "\"x\""},
	{"", "tokens", NULL},
	{"tokens/0", "type", "null"},
	{"tokens/0", "type", "\"\""},
	{"tokens/0", "keyslots", "null"},
	{"tokens/0", "keyslots", NULL},
	{"tokens/0", "keyslots", "\"0\""},
	{"tokens", "1", "{\"type\":\"x\",\"keyslots\":[\"7\"]}"},
	{"tokens", "1", "{\"type\":\"x\",\"keyslots\":null}"},
	{"tokens", "1", "{\"type\":\"x\"}"},
	{"tokens", "1", "{\"type\":\"x\",\"keyslots\":[0]}"},
	{"tokens", "1", "{\"keyslots\":[]}"},
	{"segments/0", "flags", "\"x\""},
	{"segments/0", "flags", "[1]"},
	{"segments/0", "type", "null"},
	{"segments/0", "offset", "16777216"},
	{"segments/0", "iv_tweak", "\"abc\""},
	{"segments/0", "sector_size", "\"4096\""},
	{"segments/0", "encryption", "\"\""},
	{"config", "flags", "\"x\""},
	{"config", "flags", "[1]"},
	{"config", "requirements", "{\"mandatory\":\"x\"}"},
	{"config", "requirements", "[]"},
	{"config", "json_size", NULL},
	{"config", "keyslots_size", "\"4097\""},
	{"keyslots/0", "key_size", "\"64\""},
	{"keyslots/0", "type", "\"\""},
	{"keyslots/0/kdf", "iterations", "\"1000\""},
	{"keyslots/0/kdf", "salt", NULL},
	{"keyslots/0/area", "offset", "32768"},
	{"keyslots/0/af", "hash", NULL},
	{"digests/0", "keyslots", "[\"0\",\"5\"]"},
	{"digests/0", "segments", "[\"0\",\"1\"]"},
	{"digests/0", "type", "null"},
};

static char *mutated(size_t i)
{
	json_object *m = meta(), *o = m;
	char buf[128], *save = NULL, *tok, *out;

	snprintf(buf, sizeof(buf), "%s", lcs_rejects[i].path);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
		ck_assert(json_object_object_get_ex(o, tok, &o));
	if (lcs_rejects[i].value)
		json_object_object_add(o, lcs_rejects[i].key, json_tokener_parse(lcs_rejects[i].value));
	else
		json_object_object_del(o, lcs_rejects[i].key);
	out = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
	return out;
}

START_TEST(allow_list_vs_libcryptsetup)
{
	const char *orig = (const char *)area + 4096;

	/* The unmodified header: both accept (the harness is sound). */
	write_area((const uint8_t *)orig, strlen(orig));
	ck_assert_int_eq(cryptsetup_loads(), 0);
	ck_assert_int_eq(keyd_accepts(), 0);
	for (size_t i = 0; i < sizeof(lcs_rejects) / sizeof(lcs_rejects[0]); i++) {
		char *j = mutated(i);

		write_area((const uint8_t *)j, strlen(j));
		ck_assert_msg(cryptsetup_loads() < 0, "libcryptsetup accepts %s/%s=%s",
			      lcs_rejects[i].path, lcs_rejects[i].key, lcs_rejects[i].value);
		ck_assert_msg(keyd_accepts() != 0, "keyd accepts %s/%s=%s: libcryptsetup does not",
			      lcs_rejects[i].path, lcs_rejects[i].key, lcs_rejects[i].value);
		free(j);
	}
}
END_TEST

/* JSON area framing: libcryptsetup's first-byte and after-terminator rules. */
START_TEST(json_area_framing)
{
	const char *orig = (const char *)area + 4096;
	size_t n = strlen(orig);
	uint8_t buf[16384];
	struct kd_luks2_copy c;

	memset(buf, 0, sizeof(buf));
	buf[0] = ' ';
	memcpy(buf + 1, orig, n);
	write_area(buf, n + 1);
	ck_assert_int_lt(cryptsetup_loads(), 0);
	ck_assert_int_ne(keyd_accepts(), 0);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, orig, n);
	buf[n + 1] = 'x'; /* after the terminating NUL */
	write_area(buf, n + 2);
	ck_assert_int_lt(cryptsetup_loads(), 0);
	ck_assert_int_ne(keyd_accepts(), 0);
	/* The reader names it: a copy with bad framing is damaged. */
	/* One byte of leading whitespace before the JSON (shifted right). */
	memcpy(buf, area, 16384);
	buf[4096] = '\n';
	memcpy(buf + 4097, area + 4096, n);
	ck_assert_int_ne(kd_luks2_parse_copy(buf, sizeof(buf), 0, &c, NULL), 0);
}
END_TEST

/* Each allow-list check names itself in its refusal. */
START_TEST(allow_list_details)
{
	static const struct {
		const char *path, *key, *value, *detail;
	} cases[] = {
		{"tokens/0", "type", "null", "token 0: \"type\" is not a string"},
		{"tokens", "1", "{\"type\":\"x\",\"keyslots\":[\"7\"]}",
		 "token 1 (type x) names a keyslot that does not exist"},
		{"tokens", "1", "{\"type\":\"x\"}", "token 1: \"keyslots\" is missing"},
		{"segments/0", "flags", "\"x\"", "segment 0: \"flags\" is not an array"},
		{"config", "flags", "[\"x\"]", "unexpected persistent flag \"x\""},
		{"config", "keyslots_size", "\"268435456\"", "keyslots_size is not sane"},
		{"keyslots/0/kdf", "cpus", "1", "unexpected PBKDF2 parameters"},
		{"keyslots/0", "extra", "1", "keyslot 0: unexpected member \"extra\""},
		{"digests/0", "keyslots", "[\"0\",\"5\"]", "digest 0 names a keyslot that does not exist"},
		{"", "tokens", "[]", "LUKS2 metadata: \"tokens\" is not an object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *m = meta(), *o = m;
		char buf[128], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", cases[i].path);
		for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
			ck_assert(json_object_object_get_ex(o, tok, &o));
		json_object_object_add(o, cases[i].key, json_tokener_parse(cases[i].value));
		ck_assert_int_eq(kd_header_allow(m, 16384), KD_ETAMPER);
		ck_assert_msg(strstr(kd_err_detail(KD_ETAMPER), cases[i].detail), "%s: got '%s'",
			      cases[i].detail, kd_err_detail(KD_ETAMPER));
		json_object_put(m);
	}
}
END_TEST

/* ---------------------------------------------------------------- private copies, repair */

static void flip(off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 1;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void file_digest(uint8_t out[32])
{
	static uint8_t buf[32 << 20];
	int fd = open(path, O_RDONLY);
	unsigned dl = 0;

	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	ck_assert(EVP_Digest(buf, sizeof(buf), out, &dl, EVP_sha256(), NULL));
}

START_TEST(snapshot_is_private)
{
	struct kd_header_snap s;
	struct crypt_device *cd = NULL;
	uint8_t before[32], after[32];
	char vk[64];
	size_t vk_len = sizeof(vk);

	flip(16384 + 5000); /* the secondary's JSON */
	file_digest(before);
	ck_assert_int_eq(kd_header_snapshot(path, KD_SNAP_KEYSLOTS, &s), 0);
	ck_assert(s.health.primary.ok && !s.health.secondary.ok && s.health.used == 0);
	ck_assert_int_eq(s.health.allow_err, 0);
	/* libcryptsetup repairs the copy and opens the keyslot from it... */
	ck_assert_int_eq(crypt_init(&cd, s.path), 0);
	ck_assert_int_eq(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
	ck_assert_int_eq(crypt_volume_key_get(cd, 0, vk, &vk_len, "pw", 2), 0);
	crypt_free(cd);
	kd_header_snap_free(&s);
	/* ...and the device is untouched. */
	file_digest(after);
	ck_assert_mem_eq(before, after, 32);
	/* Without the keyslot areas the keyslot cannot open: only the header
	 * was copied. */
	ck_assert_int_eq(kd_header_snapshot(path, KD_SNAP_HEADER, &s), 0);
	ck_assert_int_eq(crypt_init(&cd, s.path), 0);
	ck_assert_int_eq(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
	vk_len = sizeof(vk);
	ck_assert_int_lt(crypt_volume_key_get(cd, 0, vk, &vk_len, "pw", 2), 0);
	crypt_free(cd);
	kd_header_snap_free(&s);
}
END_TEST

START_TEST(repair_both_copies)
{
	struct kd_header_health h;
	const char *which = NULL;
	char prefix[64], name[80];
	uint8_t dev[16384], saved[16384];
	int fd;

	snprintf(prefix, sizeof(prefix), "%s-bk", path);
	/* Nothing to repair on a healthy header. */
	ck_assert_int_eq(kd_header_repair(path, prefix, &which), KD_EREFUSED);
	flip(5000); /* the primary's JSON */
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(kd_header_read(fd, &h, NULL), 0);
	ck_assert_int_eq(kd_header_require_agree(&h), KD_EREFUSED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EREFUSED), "the primary copy is damaged"));
	ck_assert_int_eq(pread(fd, dev, sizeof(dev), 0), (ssize_t)sizeof(dev));
	close(fd);
	ck_assert_int_eq(kd_header_repair(path, prefix, &which), 0);
	ck_assert_str_eq(which, "primary");
	/* The damaged primary was saved as it was. */
	snprintf(name, sizeof(name), "%s.primary", prefix);
	fd = open(name, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, saved, sizeof(saved)), (ssize_t)sizeof(saved));
	close(fd);
	ck_assert_mem_eq(saved, dev, sizeof(dev));
	unlink(name);
	snprintf(name, sizeof(name), "%s.secondary", prefix);
	ck_assert_int_eq(access(name, F_OK), 0);
	unlink(name);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(kd_header_read(fd, &h, NULL), 0);
	close(fd);
	ck_assert(h.agree);
	ck_assert_int_eq(kd_header_require_agree(&h), 0);
	/* libcryptsetup finds nothing to recover either. */
	ck_assert_int_eq(cryptsetup_loads(), 0);
}
END_TEST

/* LVM2's label CRC (lib/misc/crc.c): libblkid checks it. */
static uint32_t lvm_crc(const uint8_t *b, size_t n)
{
	static const uint32_t tab[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
		0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
	uint32_t c = 0xf597a6cf;

	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		c = (c >> 4) ^ tab[c & 0xf];
		c = (c >> 4) ^ tab[c & 0xf];
	}
	return c;
}

/*
 * A second device signature (an LVM2 PV label in the primary's binary
 * padding, checksum fixed) with a damaged secondary: libcryptsetup refuses to
 * load such a device (ambiguous signatures), and keyd's status must say so
 * rather than promise a repair on the next load.
 */
START_TEST(ambiguous_signature)
{
	struct kd_header_health h;
	uint8_t lab[512] = {0}, copy[16384], d[32];
	unsigned dl = 0;
	uint32_t crc;
	int fd = open(path, O_RDWR);

	memcpy(lab, "LABELONE", 8);
	lab[8] = 1;   /* sector_xl */
	lab[20] = 32; /* offset_xl */
	memcpy(lab + 24, "LVM2 001", 8);
	memcpy(lab + 32, "keydUnitTestPvUuidXXXXXXXXXXXXXX", 32);
	lab[64 + 3] = 0x40; /* device size */
	crc = lvm_crc(lab + 20, sizeof(lab) - 20);
	for (int i = 0; i < 4; i++)
		lab[16 + i] = (uint8_t)(crc >> (8 * i));
	memcpy(copy, area, sizeof(copy));
	memcpy(copy + 512, lab, sizeof(lab));
	memset(copy + 448, 0, 64);
	ck_assert(EVP_Digest(copy, sizeof(copy), d, &dl, EVP_sha256(), NULL));
	memcpy(copy + 448, d, 32);
	ck_assert_int_eq(pwrite(fd, copy, sizeof(copy), 0), (ssize_t)sizeof(copy));
	/* Agreeing copies: libcryptsetup loads (it only probes to recover). */
	ck_assert_int_eq(kd_header_read(fd, &h, NULL), 0);
	ck_assert(h.agree && !h.ambiguous);
	close(fd);
	ck_assert_int_eq(cryptsetup_loads(), 0);
	flip(16384 + 5000);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(kd_header_read(fd, &h, NULL), 0);
	close(fd);
	ck_assert(!h.agree && h.ambiguous);
	ck_assert_ptr_nonnull(strstr(kd_header_health_summary(&h), "libcryptsetup refuses to load"));
	ck_assert_int_lt(cryptsetup_loads(), 0);
}
END_TEST


static void quiet(int level, const char *msg, void *usrptr)
{
	(void)level;
	(void)msg;
	(void)usrptr;
}

int main(void)
{
	Suite *s = suite_create("header");
	TCase *tc = tcase_create("header");
	SRunner *sr;
	int failed;

	crypt_set_log_callback(NULL, quiet, NULL); /* refusals are expected here */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, copies_parse);
	tcase_add_test(tc, copies_truncation_and_bitflips);
	tcase_add_test(tc, allow_list);
	tcase_add_test(tc, allow_list_integrity);
	tcase_add_test(tc, read_both_copies);
	tcase_add_test(tc, typed_accessors);
	tcase_add_test(tc, allow_list_vs_libcryptsetup);
	tcase_add_test(tc, json_area_framing);
	tcase_add_test(tc, allow_list_details);
	tcase_add_test(tc, snapshot_is_private);
	tcase_add_test(tc, repair_both_copies);
	tcase_add_test(tc, ambiguous_signature);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
