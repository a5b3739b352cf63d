/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: keyd token JSON (strict parse, round trip) and seal keys. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/secret.h"
#include "keyd/token.h"
#include "keyd/volume.h"

static struct kd_token sample(void)
{
	struct kd_token t;

	memset(&t, 0, sizeof(t));
	t.keyslot = 3;
	t.version = KD_TOKEN_VERSION;
	strcpy(t.backend, "sim");
	t.root_key_select = KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT;
	t.fields = KD_FIELDS_SEAL;
	t.tcb = 0x7308000000000003ull;
	memset(t.measurement, 0xa1, sizeof(t.measurement));
	t.policy = 0x30000;
	t.has_chip = true;
	memset(t.chip, 0x42, sizeof(t.chip));
	strcpy(t.label, "guestos-1.4");
	t.state = KD_TOKEN_PENDING;
	t.svn = 7;
	strcpy(t.created, "2025-01-02T03:04:05Z");
	memset(t.pin, 0x5a, sizeof(t.pin));
	return t;
}

START_TEST(token_round_trip)
{
	struct kd_token t = sample(), u;
	char *json = NULL;

	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &u), 0);
	ck_assert_int_eq(u.token_id, -1);
	t.token_id = -1;
	ck_assert_int_eq(memcmp(&t, &u, sizeof(t)), 0);
	free(json);
}
END_TEST

/* Replace the first occurrence of from by to in the formatted sample. */
static int parse_edited(const char *from, const char *to)
{
	struct kd_token t = sample(), u;
	char *json = NULL, buf[4096], *p;
	int r;

	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	p = strstr(json, from);
	ck_assert_ptr_nonnull(p);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - json), json, to, p + strlen(from));
	free(json);
	memset(&u, 0x77, sizeof(u));
	r = kd_token_parse(buf, strlen(buf), &u);
	if (r)
		ck_assert_uint_eq(((uint8_t *)&u)[0], 0x77); /* untouched on failure */
	return r;
}

START_TEST(token_strict)
{
	ck_assert_int_eq(parse_edited("\"svn\":7", "\"svn\":7,\"extra\":1"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"svn\":7", "\"svn\":\"7\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"svn\":7", "\"svn\":-1"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"keyslots\":[\"3\"]", "\"keyslots\":[\"3\",\"4\"]"), KD_ETAMPER);
	ck_assert_int_eq(parse_edited("\"keyslots\":[\"3\"]", "\"keyslots\":[\"03\"]"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"keyslots\":[\"3\"]", "\"keyslots\":[3]"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"state\":\"pending\"", "\"state\":\"open\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"version\":1", "\"version\":2"), KD_EUNSUPP);
	ck_assert_int_eq(parse_edited("\"type\":\"keyd\"", "\"type\":\"systemd-tpm2\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"root\":\"vcek\"", "\"root\":\"none\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"created\":\"2025", "\"created\":\"x025"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"pin\":\"5a", "\"pin\":\"zz"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"pin\":\"5a", "\"pin\":\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"label\":\"guestos-1.4\"", "\"label\":\"a\\nb\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("\"chip\":\"4242", "\"chip\":\"none\",\"x\":\"4242"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("{", "["), KD_EMALFORMED);
	ck_assert_int_eq(parse_edited("5a\"}", "5a\"} x"), KD_EMALFORMED);
}
END_TEST

START_TEST(token_truncation)
{
	struct kd_token t = sample(), u;
	char *json = NULL;

	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	for (size_t n = 0; n < strlen(json); n++)
		ck_assert_int_ne(kd_token_parse(json, n, &u), 0);
	free(json);
}
END_TEST

START_TEST(token_chip_none)
{
	struct kd_token t = sample(), u;
	char *json = NULL;

	t.has_chip = false;
	memset(t.chip, 0, sizeof(t.chip));
	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"chip\":\"none\""));
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &u), 0);
	ck_assert(!u.has_chip);
	free(json);
}
END_TEST

START_TEST(seal_keys_bound_to_uuid_and_key)
{
	struct kd_secret *d1 = NULL, *d2 = NULL, *p1 = NULL, *k1 = NULL, *p2 = NULL, *k2 = NULL,
			 *p3 = NULL, *k3 = NULL, *p4 = NULL, *k4 = NULL;
	uint8_t a[32], b[32];
	const char *u1 = "700ee4d9-a072-4b14-8d6e-ab51a5a54656";
	const char *u2 = "800ee4d9-a072-4b14-8d6e-ab51a5a54656";

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	ck_assert_int_eq(kd_secret_dup(a, sizeof(a), &d1), 0);
	ck_assert_int_eq(kd_secret_dup(b, sizeof(b), &d2), 0);
	ck_assert_int_eq(kd_seal_keys_from_derived(d1, u1, &p1, &k1), 0);
	ck_assert_int_eq(kd_seal_keys_from_derived(d1, u1, &p2, &k2), 0);
	ck_assert_int_eq(kd_seal_keys_from_derived(d1, u2, &p3, &k3), 0);
	ck_assert_int_eq(kd_seal_keys_from_derived(d2, u1, &p4, &k4), 0);
	ck_assert_uint_eq(p1->len, KD_PASSPHRASE_LEN);
	ck_assert_uint_eq(k1->len, KD_PIN_KEY_SIZE);
	for (size_t i = 0; i < p1->len; i++)
		ck_assert(strchr("0123456789abcdef", p1->data[i]));
	ck_assert(kd_ct_equal(p1->data, p2->data, p1->len));
	ck_assert(kd_ct_equal(k1->data, k2->data, k1->len));
	ck_assert(!kd_ct_equal(p1->data, p3->data, p1->len));
	ck_assert(!kd_ct_equal(p1->data, p4->data, p1->len));
	ck_assert(!kd_ct_equal(k1->data, k3->data, k1->len));
	/* Distinct purpose labels: the pin key is not the passphrase. */
	ck_assert(!kd_ct_equal(k1->data, p1->data, 32));
	ck_assert(kd_secret_is_locked(p1) && kd_secret_is_locked(k1));
	ck_assert_int_eq(kd_seal_keys_from_derived(d1, "", &p3, &k3), KD_EINVAL);
	kd_secret_free(d1), kd_secret_free(d2), kd_secret_free(p1), kd_secret_free(k1);
	kd_secret_free(p2), kd_secret_free(k2), kd_secret_free(p3), kd_secret_free(k3);
	kd_secret_free(p4), kd_secret_free(k4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("token");
	TCase *tc = tcase_create("token");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, token_round_trip);
	tcase_add_test(tc, token_strict);
	tcase_add_test(tc, token_truncation);
	tcase_add_test(tc, token_chip_none);
	tcase_add_test(tc, seal_keys_bound_to_uuid_and_key);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
