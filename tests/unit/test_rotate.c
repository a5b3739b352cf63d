/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: the allow-list's view of a LUKS2 header in the middle of a
 * volume-key rotation (rotate.h), on headers libcryptsetup itself made.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/rotate.h"
#include "keyd/volume.h"

#define HDR_SIZE 16384u

static char path[] = "/tmp/keyd-test-rotate-XXXXXX";
static json_object *plain, *prepared, *running;

static json_object *dump(struct crypt_device *cd)
{
	const char *j = NULL;
	json_object *o;

	ck_assert_int_eq(crypt_dump_json(cd, &j, 0), 0);
	o = json_tokener_parse(j);
	ck_assert_ptr_nonnull(o);
	return o;
}

/* Plain keyd-shaped header, then an unbound new key, then reencryption metadata. */
static void setup(void)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_luks2 p = {.sector_size = 4096};
	const struct crypt_pbkdf_type pb = {.type = CRYPT_KDF_PBKDF2, .hash = "sha512",
					    .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
	struct crypt_params_reencrypt rp = {.mode = CRYPT_REENCRYPT_REENCRYPT,
					    .direction = CRYPT_REENCRYPT_FORWARD,
					    .resilience = "journal",
					    .luks2 = &p,
					    .flags = CRYPT_REENCRYPT_INITIALIZE_ONLY};
	int fd;
	char vk[64] = {1}, vk2[64] = {2};

	/* mkstemp fills in the template: a fresh one for each fixture run
	 * (without fork, as under valgrind, the static buffer is reused). */
	strcpy(path, "/tmp/keyd-test-rotate-XXXXXX");
	fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 32 << 20), 0);
	close(fd);
	ck_assert_int_eq(crypt_init(&cd, path), 0);
	ck_assert_int_eq(crypt_set_pbkdf_type(cd, &pb), 0);
	ck_assert_int_eq(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, vk, 64, &p), 0);
	ck_assert_int_eq(crypt_keyslot_add_by_volume_key(cd, 0, vk, 64, "pw", 2), 0);
	plain = dump(cd);
	ck_assert_int_eq(crypt_keyslot_add_by_key(cd, 1, vk2, 64, "pw", 2,
						  CRYPT_VOLUME_KEY_NO_SEGMENT), 1);
	prepared = dump(cd);
	ck_assert_int_ge(crypt_reencrypt_init_by_passphrase(cd, NULL, "pw", 2, 0, 1, "aes",
							    "xts-plain64", &rp), 0);
	running = dump(cd);
	crypt_free(cd);
}

static void teardown(void)
{
	json_object_put(plain);
	json_object_put(prepared);
	json_object_put(running);
	unlink(path);
}

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	ck_assert_int_eq(json_object_deep_copy(o, &c, NULL), 0);
	return c;
}

static json_object *seg_flagged(json_object *meta, const char *flag)
{
	json_object_object_foreach(json_object_object_get(meta, "segments"), id, seg) {
		json_object *f = json_object_object_get(seg, "flags");

		(void)id;
		for (size_t i = 0; f && i < json_object_array_length(f); i++)
			if (!strcmp(json_object_get_string(json_object_array_get_idx(f, i)), flag))
				return seg;
	}
	return NULL;
}

static json_object *reenc_slot(json_object *meta)
{
	json_object_object_foreach(json_object_object_get(meta, "keyslots"), id, ks) {
		(void)id;
		if (!strcmp(json_object_get_string(json_object_object_get(ks, "type")), "reencrypt"))
			return ks;
	}
	return NULL;
}

START_TEST(phases_and_view)
{
	json_object *view = NULL;

	ck_assert_int_eq(kd_rotate_phase_of(plain), KD_ROTATE_NONE);
	ck_assert_int_eq(kd_rotate_phase_of(prepared), KD_ROTATE_PREPARED);
	ck_assert_int_eq(kd_rotate_phase_of(running), KD_ROTATE_RUNNING);
	ck_assert_int_eq(kd_rotate_header_view(plain, &view), 0);
	ck_assert_ptr_null(view);
	/* A libcryptsetup-made rotation passes the allow-list in both phases. */
	ck_assert_int_eq(kd_header_allow(plain, HDR_SIZE), 0);
	ck_assert_int_eq(kd_header_allow(prepared, HDR_SIZE), 0);
	ck_assert_int_eq(kd_header_allow(running, HDR_SIZE), 0);
	/* The view is the header after the rotation: one segment, one digest,
	 * both luks2 keyslots, no reencrypt keyslot, no requirements. */
	ck_assert_int_eq(kd_rotate_header_view(running, &view), 0);
	ck_assert_ptr_nonnull(view);
	ck_assert_int_eq(json_object_object_length(json_object_object_get(view, "segments")), 1);
	ck_assert_int_eq(json_object_object_length(json_object_object_get(view, "digests")), 1);
	ck_assert_int_eq(json_object_object_length(json_object_object_get(view, "keyslots")), 2);
	ck_assert(!json_object_object_get_ex(json_object_object_get(view, "config"), "requirements",
					     NULL));
	json_object_put(view);
}
END_TEST

/* A keyslot's pin covers the same parameters before, during and after. */
START_TEST(pin_params_stable)
{
	uint8_t *a = NULL, *b = NULL, *c = NULL;
	size_t la = 0, lb = 0, lc = 0;
	const char *uuid = "11111111-2222-3333-4444-555555555555";

	ck_assert_int_eq(kd_header_pin_params(plain, uuid, 0, &a, &la), 0);
	ck_assert_int_eq(kd_header_pin_params(prepared, uuid, 0, &b, &lb), 0);
	ck_assert_int_eq(kd_header_pin_params(running, uuid, 0, &c, &lc), 0);
	ck_assert_uint_eq(la, lb);
	ck_assert_uint_eq(la, lc);
	ck_assert_mem_eq(a, b, la);
	ck_assert_mem_eq(a, c, la);
	free(a);
	free(b);
	free(c);
}
END_TEST

static void refused(json_object *m, const char *what)
{
	int r = kd_header_allow(m, HDR_SIZE);

	if (r != KD_ETAMPER)
		ck_abort_msg("%s: allow-list returned %d, want KD_ETAMPER", what, r);
	json_object_put(m);
}

START_TEST(view_refusals)
{
	json_object *m, *a;

	m = copy(running);
	json_object_object_add(seg_flagged(m, "backup-final"), "encryption",
			       json_object_new_string("cipher_null-ecb"));
	refused(m, "cipher_null final segment");

	m = copy(running);
	json_object_object_add(json_object_object_get(json_object_object_get(m, "segments"), "0"),
			       "encryption", json_object_new_string("cipher_null-ecb"));
	refused(m, "cipher_null data segment");

	m = copy(running);
	json_object_object_add(seg_flagged(m, "backup-final"), "offset",
			       json_object_new_string("20971520"));
	refused(m, "final segment elsewhere than the old one");

	m = copy(running);
	a = json_object_object_get(json_object_object_get(json_object_object_get(m, "config"),
							  "requirements"), "mandatory");
	json_object_array_add(a, json_object_new_string("foreign"));
	refused(m, "foreign requirement");

	m = copy(running);
	json_object_object_add(reenc_slot(m), "mode", json_object_new_string("decrypt"));
	refused(m, "decryption");

	m = copy(running);
	json_object_object_add(json_object_object_get(reenc_slot(m), "area"), "type",
			       json_object_new_string("none"));
	refused(m, "no resilience");

	m = copy(running);
	json_object_object_add(json_object_object_get(reenc_slot(m), "area"), "offset",
			       json_object_new_string("4096"));
	refused(m, "journal over the header");

	m = copy(running);
	{
		json_object *integ = json_object_new_object();

		json_object_object_add(integ, "type", json_object_new_string("hmac(sha256)"));
		json_object_object_add(integ, "journal_encryption", json_object_new_string("none"));
		json_object_object_add(integ, "journal_integrity", json_object_new_string("none"));
		json_object_object_add(seg_flagged(m, "backup-final"), "integrity", integ);
	}
	refused(m, "integrity segment");

	m = copy(running);
	{
		json_object *d = copy(json_object_object_get(json_object_object_get(m, "digests"), "0"));

		json_object_object_add(json_object_object_get(m, "digests"), "9", d);
	}
	refused(m, "extra digest");

	/* Prepared: the unbound digest may not claim a segment of its own. */
	m = copy(prepared);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("1"));
	json_object_object_add(json_object_object_get(json_object_object_get(m, "digests"), "1"),
			       "segments", a);
	refused(m, "second digest bound to another segment");
}
END_TEST

/* Status must never advise retiring the old key's keyslot mid-rotation. */
START_TEST(keyslot_roles)
{
	int reenc = -1;

	json_object_object_foreach(json_object_object_get(running, "keyslots"), id, ks) {
		if (!strcmp(json_object_get_string(json_object_object_get(ks, "type")), "reencrypt"))
			reenc = atoi(id);
	}
	ck_assert_int_ge(reenc, 2);
	ck_assert_ptr_null(kd_rotate_keyslot_role(plain, 0));
	ck_assert_ptr_nonnull(kd_rotate_keyslot_role(prepared, 0));
	ck_assert_ptr_null(kd_rotate_keyslot_role(prepared, 1));
	ck_assert_ptr_nonnull(kd_rotate_keyslot_role(running, 0));
	ck_assert_ptr_null(kd_rotate_keyslot_role(running, 1));
	ck_assert_ptr_nonnull(strstr(kd_rotate_keyslot_role(running, reenc), "journal"));
	ck_assert_ptr_null(kd_rotate_keyslot_role(running, 31));
}
END_TEST

START_TEST(status_from_header)
{
	struct kd_rotate_status s;
	json_object *j;

	ck_assert_int_eq(kd_rotate_status_of(plain, path, &s), 0);
	ck_assert_int_eq(s.phase, KD_ROTATE_NONE);
	ck_assert_int_eq(kd_rotate_status_of(running, path, &s), 0);
	ck_assert_int_eq(s.phase, KD_ROTATE_RUNNING);
	ck_assert_str_eq(s.resilience, "journal");
	ck_assert_uint_eq(s.done, 0);
	ck_assert_uint_eq(s.size, (32u << 20) - 16u * 1024 * 1024);
	ck_assert(strstr(s.advice, "keyd rotate") != NULL);
	j = kd_rotate_status_json(&s);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(j, "phase")), "running");
	json_object_put(j);
}
END_TEST

/*
 * A rotation's old-key and journal keyslots have no token by design: the
 * orphan reclaim of a handoff or commit (kd_volume_reclaim_orphans) must
 * never kill them, or the data not yet re-encrypted is lost.
 */
START_TEST(reclaim_spares_rotation_keyslots)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_luks2 p = {.sector_size = 4096};
	const struct crypt_pbkdf_type pb = {.type = CRYPT_KDF_PBKDF2, .hash = "sha512",
					    .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
	struct crypt_params_reencrypt rp = {.mode = CRYPT_REENCRYPT_REENCRYPT,
					    .direction = CRYPT_REENCRYPT_FORWARD,
					    .resilience = "journal",
					    .luks2 = &p,
					    .flags = CRYPT_REENCRYPT_INITIALIZE_ONLY};
	char img[] = "/tmp/keyd-test-rotate-reclaim-XXXXXX", vk[64] = {1}, vk2[64] = {2};
	struct kd_volume *v = NULL;
	json_object *meta;
	int fd = mkstemp(img), reenc = -1, r;
	size_t n = 99;

	/* Two keyslots of the old key (so that keyslot 0 is not the last
	 * active one, which libcryptsetup would protect anyway), the new key's
	 * keyslot, then the reencryption metadata: a rotation in progress. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 32 << 20), 0);
	close(fd);
	ck_assert_int_eq(crypt_init(&cd, img), 0);
	ck_assert_int_eq(crypt_set_pbkdf_type(cd, &pb), 0);
	ck_assert_int_eq(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, vk, 64, &p), 0);
	ck_assert_int_eq(crypt_keyslot_add_by_volume_key(cd, 0, vk, 64, "pw", 2), 0);
	ck_assert_int_eq(crypt_keyslot_add_by_volume_key(cd, 5, vk, 64, "pw", 2), 5);
	ck_assert_int_eq(crypt_keyslot_add_by_key(cd, 1, vk2, 64, "pw", 2,
						  CRYPT_VOLUME_KEY_NO_SEGMENT), 1);
	ck_assert_int_ge(crypt_reencrypt_init_by_passphrase(cd, NULL, "pw", 2, 0, 1, "aes",
							    "xts-plain64", &rp), 0);
	meta = dump(cd);
	crypt_free(cd);
	cd = NULL;
	json_object_object_foreach(json_object_object_get(meta, "keyslots"), id, ks) {
		if (!strcmp(json_object_get_string(json_object_object_get(ks, "type")), "reencrypt"))
			reenc = atoi(id);
	}
	json_object_put(meta);
	ck_assert_int_ge(reenc, 2);

	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	r = kd_volume_reclaim_orphans(v, NULL, &n);
	kd_volume_close(v);
	ck_assert_msg(r == 0, "%s", kd_err_detail(r));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(crypt_init(&cd, img), 0);
	ck_assert_int_eq(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
	ck_assert_int_ne(crypt_keyslot_status(cd, 0), CRYPT_SLOT_INACTIVE);
	ck_assert_int_ne(crypt_keyslot_status(cd, 5), CRYPT_SLOT_INACTIVE);
	ck_assert_int_ne(crypt_keyslot_status(cd, reenc), CRYPT_SLOT_INACTIVE);
	crypt_free(cd);
	unlink(img);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rotate");
	TCase *tc = tcase_create("view");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, phases_and_view);
	tcase_add_test(tc, pin_params_stable);
	tcase_add_test(tc, view_refusals);
	tcase_add_test(tc, keyslot_roles);
	tcase_add_test(tc, status_from_header);
	tcase_add_test(tc, reclaim_spares_rotation_keyslots);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
