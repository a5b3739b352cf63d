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

#include "keyd/error.h"
#include "keyd/header.h"

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

int main(void)
{
	Suite *s = suite_create("header");
	TCase *tc = tcase_create("header");
	SRunner *sr;
	int failed;

	crypt_set_log_callback(NULL, NULL, NULL);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, copies_parse);
	tcase_add_test(tc, copies_truncation_and_bitflips);
	tcase_add_test(tc, allow_list);
	tcase_add_test(tc, allow_list_integrity);
	tcase_add_test(tc, read_both_copies);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
