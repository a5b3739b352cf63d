/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: release manifests, canonical form, Ed25519 k-of-n. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/manifest.h"

#define NKEYS 4
static char *priv[NKEYS], *pub[NKEYS];
static char *stranger_priv, *stranger_pub;

static void make_keys(void)
{
	/* Outside a test: Check's assertions cannot be used here. */
	for (int i = 0; i < NKEYS; i++)
		if (kd_manifest_keygen(&priv[i], &pub[i]))
			abort();
	if (kd_manifest_keygen(&stranger_priv, &stranger_pub))
		abort();
}

static void free_keys(void)
{
	for (int i = 0; i < NKEYS; i++) {
		free(priv[i]);
		free(pub[i]);
	}
	free(stranger_priv);
	free(stranger_pub);
}

/* {"threshold": k, "keys": [pub 0..n-1]} */
static struct kd_release_keys *keys_cfg(unsigned k, int n)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct kd_release_keys *ks = NULL;
	const char *s;

	for (int i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(pub[i]));
	json_object_object_add(o, "threshold", json_object_new_int((int)k));
	json_object_object_add(o, "keys", a);
	s = json_object_to_json_string(o);
	ck_assert_int_eq(kd_release_keys_parse((const uint8_t *)s, strlen(s), &ks), 0);
	json_object_put(o);
	return ks;
}

static struct kd_manifest *base(void)
{
	struct kd_manifest *m;
	uint8_t a[48], b[48];

	memset(a, 0xaa, 48);
	memset(b, 0xbb, 48);
	ck_assert_int_eq(kd_manifest_new(&m), 0);
	strcpy(m->version, "1.4");
	m->svn = 3;
	ck_assert_int_eq(kd_manifest_parse_time("2026-01-01T00:00:00Z", &m->not_before), 0);
	ck_assert_int_eq(kd_manifest_parse_time("2027-01-01T00:00:00Z", &m->not_after), 0);
	ck_assert_int_eq(kd_manifest_add_measurement(m, a), 0);
	ck_assert_int_eq(kd_manifest_add_measurement(m, b), 0);
	return m;
}

static time_t at(const char *s)
{
	time_t t;

	ck_assert_int_eq(kd_manifest_parse_time(s, &t), 0);
	return t;
}

static void sign(struct kd_manifest *m, const char *pem)
{
	ck_assert_int_eq(kd_manifest_sign(m, (const uint8_t *)pem, strlen(pem)), 0);
}

/* JSON round trip: what is verified is what was parsed. */
static struct kd_manifest *reparse(const struct kd_manifest *m)
{
	struct kd_manifest *r;
	char *j;

	ck_assert_int_eq(kd_manifest_to_json(m, &j), 0);
	ck_assert_int_eq(kd_manifest_parse((const uint8_t *)j, strlen(j), &r), 0);
	free(j);
	return r;
}

START_TEST(k_of_n)
{
	struct kd_release_keys *ks = keys_cfg(2, 3);
	struct kd_manifest *m = base(), *r;
	time_t now = at("2026-06-01T00:00:00Z");
	unsigned valid = 9;

	sign(m, priv[0]);
	r = reparse(m);
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, &valid), KD_EVERIFY); /* k-1 */
	ck_assert_uint_eq(valid, 1);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EVERIFY), "1 valid signature(s)"));
	kd_manifest_free(r);
	/* The same key twice still counts once; re-signing replaces. */
	sign(m, priv[0]);
	ck_assert_uint_eq(m->n_sigs, 1);
	m->sigs = realloc(m->sigs, 2 * sizeof(*m->sigs));
	m->sigs[1] = m->sigs[0];
	m->n_sigs = 2;
	ck_assert_int_eq(kd_manifest_verify(m, ks, now, &valid), KD_EVERIFY);
	ck_assert_uint_eq(valid, 1);
	m->n_sigs = 1;
	/* A signature by an unknown key is ignored. */
	sign(m, stranger_priv);
	ck_assert_int_eq(kd_manifest_verify(m, ks, now, &valid), KD_EVERIFY);
	ck_assert_uint_eq(valid, 1);
	/* A pinned key beyond n (key 3 is not in the 3-key config) does not count. */
	sign(m, priv[3]);
	ck_assert_int_eq(kd_manifest_verify(m, ks, now, &valid), KD_EVERIFY);
	sign(m, priv[2]);
	r = reparse(m);
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, &valid), 0);
	ck_assert_uint_eq(valid, 2);
	kd_manifest_free(r);
	kd_manifest_free(m);
	kd_release_keys_free(ks);
}
END_TEST

START_TEST(validity_window)
{
	struct kd_release_keys *ks = keys_cfg(1, 1);
	struct kd_manifest *m = base();

	sign(m, priv[0]);
	ck_assert_int_eq(kd_manifest_verify(m, ks, at("2026-06-01T00:00:00Z"), NULL), 0);
	ck_assert_int_eq(kd_manifest_verify(m, ks, at("2027-01-01T00:00:01Z"), NULL), KD_EPOLICY);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPOLICY), "expired"));
	ck_assert_int_eq(kd_manifest_verify(m, ks, at("2025-12-31T23:59:59Z"), NULL), KD_EPOLICY);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPOLICY), "not valid before"));
	kd_manifest_free(m);
	kd_release_keys_free(ks);
}
END_TEST

/* Any field edited after signing breaks every signature. */
START_TEST(edits_after_signing)
{
	struct kd_release_keys *ks = keys_cfg(1, 1);
	time_t now = at("2026-06-01T00:00:00Z");
	struct kd_manifest *m;

	for (int field = 0; field < 6; field++) {
		m = base();
		sign(m, priv[0]);
		switch (field) {
		case 0: m->svn++; break;
		case 1: strcpy(m->version, "1.5"); break;
		case 2: m->measurements[1][47] ^= 1; break;
		case 3: m->not_after += 1; break;
		case 4: m->not_before -= 1; break;
		case 5: m->n_measurements = 1; break;
		}
		ck_assert_int_eq(kd_manifest_verify(m, ks, now, NULL), KD_EVERIFY);
		kd_manifest_free(m);
	}
	/* A measurement *added* after signing, via the JSON. */
	m = base();
	sign(m, priv[0]);
	{
		uint8_t c[48];

		memset(c, 0xcc, 48);
		ck_assert_int_eq(kd_manifest_add_measurement(m, c), 0);
		ck_assert_int_eq(kd_manifest_verify(m, ks, now, NULL), KD_EVERIFY);
	}
	kd_manifest_free(m);
	kd_release_keys_free(ks);
}
END_TEST

START_TEST(canonical_form)
{
	struct kd_manifest *m = base();
	uint8_t *c;
	size_t n;
	char want[512];

	ck_assert_int_eq(kd_manifest_canonical(m, &c, &n), 0);
	snprintf(want, sizeof(want),
		 "keyd-manifest-v1\nversion:3:1.4\nsvn:3\nnot_before:1767225600\n"
		 "not_after:1798761600\nmeasurements:2\n%.96s\n%.96s\n",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(c, want, n);
	free(c);
	kd_manifest_free(m);
}
END_TEST

static int parse_str(const char *s)
{
	struct kd_manifest *m = NULL;
	int r = kd_manifest_parse((const uint8_t *)s, strlen(s), &m);

	kd_manifest_free(m);
	return r;
}

#define M48 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
#define HEAD "{\"format\":\"keyd-manifest-v1\",\"version\":\"1.4\",\"svn\":3,"
#define TIMES "\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2027-01-01T00:00:00Z\""

START_TEST(strict_parse)
{
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES "}"), 0);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"extra\":1}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "," M48 "]," TIMES "}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[]," TIMES "}"), KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[\"abcd\"]," TIMES "}"), KD_EMALFORMED);
	ck_assert_int_eq(parse_str("{\"format\":\"keyd-manifest-v1\",\"version\":\"1.4\",\"svn\":-1,"
				   "\"measurements\":[" M48 "]," TIMES "}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str("{\"format\":\"keyd-manifest-v1\",\"version\":\"a b\",\"svn\":1,"
				   "\"measurements\":[" M48 "]," TIMES "}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "],\"not_before\":\"2026-01-01\","
					"\"not_after\":\"2027-01-01T00:00:00Z\"}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"signatures\":[{\"key\":\"00\",\"sig\":\"00\"}]}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES "} trailing"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str("[1,2]"), KD_EMALFORMED);
	ck_assert_int_eq(parse_str("{\"format\":\"other\"}"), KD_EUNSUPP);
	ck_assert_int_eq(parse_str(""), KD_EMALFORMED);
}
END_TEST

/* The revocation floor and TCB floors: optional, signed, strictly parsed. */
START_TEST(floors)
{
	struct kd_release_keys *ks = keys_cfg(1, 1);
	time_t now = at("2026-06-01T00:00:00Z");
	struct kd_manifest *m = base(), *r;
	uint8_t *c;
	size_t n;
	uint64_t f = 0;

	ck_assert_int_eq(kd_manifest_tcb_floor(m, KD_PRODUCT_MILAN, &f), KD_ENOENT);
	m->has_min_peer_svn = true;
	m->min_peer_svn = 2;
	m->has_min_tcb[KD_PRODUCT_GENOA] = true;
	m->min_tcb[KD_PRODUCT_GENOA] = 0x1500000000000004ull;
	ck_assert_int_eq(kd_manifest_canonical(m, &c, &n), 0);
	ck_assert_ptr_nonnull(memmem(c, n, "\nmin_peer_svn:2\nmin_tcb:genoa:0400000000000015\n", 47));
	free(c);
	sign(m, priv[0]);
	r = reparse(m);
	ck_assert(r->has_min_peer_svn && r->min_peer_svn == 2);
	ck_assert_int_eq(kd_manifest_tcb_floor(r, KD_PRODUCT_GENOA, &f), 0);
	ck_assert_uint_eq(f, 0x1500000000000004ull);
	ck_assert_int_eq(kd_manifest_tcb_floor(r, KD_PRODUCT_MILAN, &f), KD_ENOENT);
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), 0);
	/* Each floor is signed: lowering or dropping one breaks the signature. */
	r->min_peer_svn = 1;
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), KD_EVERIFY);
	r->min_peer_svn = 2;
	r->has_min_tcb[KD_PRODUCT_GENOA] = false;
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), KD_EVERIFY);
	r->has_min_tcb[KD_PRODUCT_GENOA] = true;
	r->min_tcb[KD_PRODUCT_GENOA]--;
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), KD_EVERIFY);
	kd_manifest_free(r);
	kd_manifest_free(m);
	kd_release_keys_free(ks);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"min_peer_svn\":-1}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"min_peer_svn\":\"1\"}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES
					",\"min_tcb\":{\"zen9\":\"0000000000000000\"}}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES
					",\"min_tcb\":{\"milan\":\"00\"}}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"min_tcb\":{}}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES
					",\"min_peer_svn\":3,\"min_tcb\":{\"turin\":\"0100000000000000\"}}"),
			 0);
}
END_TEST

/*
 * "rotate": true asks the committing node to rotate its volume key. It is
 * signed (dropping it breaks the signature), false is the same as absent
 * (canonical bytes and signatures of older manifests unchanged), and any
 * other value is refused.
 */
START_TEST(rotate_flag)
{
	struct kd_release_keys *ks = keys_cfg(1, 1);
	time_t now = at("2026-06-01T00:00:00Z");
	struct kd_manifest *m = base(), *r;
	uint8_t *c0, *c1;
	size_t n0, n1;
	char *j;

	ck_assert_int_eq(kd_manifest_canonical(m, &c0, &n0), 0);
	m->rotate = true;
	ck_assert_int_eq(kd_manifest_canonical(m, &c1, &n1), 0);
	ck_assert_uint_eq(n1, n0 + strlen("rotate:1\n"));
	ck_assert_mem_eq(c1, c0, n0);
	ck_assert_mem_eq(c1 + n0, "rotate:1\n", n1 - n0);
	free(c0);
	free(c1);
	sign(m, priv[0]);
	ck_assert_int_eq(kd_manifest_to_json(m, &j), 0);
	ck_assert_ptr_nonnull(strstr(j, "\"rotate\""));
	free(j);
	r = reparse(m);
	ck_assert(r->rotate);
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), 0);
	/* The host cannot strip the request from a signed manifest. */
	r->rotate = false;
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), KD_EVERIFY);
	kd_manifest_free(r);
	/* ... nor add it to a manifest signed without it. */
	m->rotate = false;
	kd_manifest_free(m);
	m = base();
	sign(m, priv[0]);
	r = reparse(m);
	ck_assert(!r->rotate);
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), 0);
	r->rotate = true;
	ck_assert_int_eq(kd_manifest_verify(r, ks, now, NULL), KD_EVERIFY);
	kd_manifest_free(r);
	kd_manifest_free(m);
	kd_release_keys_free(ks);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotate\":true}"), 0);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotate\":false}"), 0);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotate\":1}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotate\":\"yes\"}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotate\":null}"),
			 KD_EMALFORMED);
	ck_assert_int_eq(parse_str(HEAD "\"measurements\":[" M48 "]," TIMES ",\"rotation\":true}"),
			 KD_EMALFORMED);
}
END_TEST

/*
 * A parsed manifest's own JSON form parses again to the same manifest: a
 * year below 1000 once formatted as "440-..." and did not (the fuzz target
 * fuzz_manifest found it; its input is tests/fuzz/regressions/manifest/).
 */
START_TEST(json_round_trip_times)
{
	static const char *const good[] = {"0440-11-28T02:16:45Z", "0000-01-01T00:00:00Z",
					   "1969-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
					   "9999-12-31T23:59:59Z"};
	static const char *const bad[] = {"  40-01-01T00:00:00Z", "2026-02-29T00:00:00Z",
					  "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z",
					  "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z",
					  "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
					  "2026-1-01T00:00:00ZZ", "+026-01-01T00:00:00Z",
					  "2026-01-01 00:00:00Z", "2026-01-01T00:00:00z"};
	char out[32];
	time_t t;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct kd_manifest *m = NULL, *m2 = NULL;
		char doc[512], *json = NULL;

		ck_assert_int_eq(kd_manifest_parse_time(good[i], &t), 0);
		kd_manifest_format_time(t, out);
		ck_assert_str_eq(out, good[i]);
		snprintf(doc, sizeof(doc),
			 HEAD "\"measurements\":[" M48 "],\"not_before\":\"%s\","
			      "\"not_after\":\"9999-12-31T23:59:59Z\"}",
			 good[i]);
		ck_assert_int_eq(kd_manifest_parse((const uint8_t *)doc, strlen(doc), &m), 0);
		ck_assert_int_eq(kd_manifest_to_json(m, &json), 0);
		ck_assert_int_eq(kd_manifest_parse((const uint8_t *)json, strlen(json), &m2), 0);
		ck_assert(m2->not_before == m->not_before);
		free(json);
		kd_manifest_free(m);
		kd_manifest_free(m2);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(kd_manifest_parse_time(bad[i], &t) == KD_EMALFORMED, "accepted %s",
			      bad[i]);
}
END_TEST

START_TEST(release_keys_config)
{
	struct kd_release_keys *ks = NULL;
	char buf[4096];

	snprintf(buf, sizeof(buf), "{\"threshold\":0,\"keys\":[\"%s\"]}", "x");
	ck_assert_int_ne(kd_release_keys_parse((uint8_t *)buf, strlen(buf), &ks), 0);
	{
		struct json_object *o = json_object_new_object(), *a = json_object_new_array();
		const char *s;

		json_object_array_add(a, json_object_new_string(pub[0]));
		json_object_array_add(a, json_object_new_string(pub[0]));
		json_object_object_add(o, "threshold", json_object_new_int(1));
		json_object_object_add(o, "keys", a);
		s = json_object_to_json_string(o);
		ck_assert_int_eq(kd_release_keys_parse((const uint8_t *)s, strlen(s), &ks), KD_EINVAL);
		ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "twice"));
		json_object_put(o);
	}
	ks = keys_cfg(3, 3);
	ck_assert_uint_eq(ks->threshold, 3);
	kd_release_keys_free(ks);
	/* Keys are read without OpenSSL's generic decoder: only the one DER form
	 * of an Ed25519 SubjectPublicKeyInfo is taken; another key kind (X25519
	 * here: same length, another OID), a private key or no PEM is refused. */
	{
		static const char *bad[] = {
			"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			"-----END PUBLIC KEY-----\n",
			"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
			"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC"
			"\n-----END PRIVATE KEY-----\n",
			"not a key",
		};
		static const int want[] = {KD_EINVAL, KD_EMALFORMED, KD_EMALFORMED, KD_EMALFORMED};

		for (size_t i = 0; i < 4; i++) {
			struct json_object *o = json_object_new_object(), *a = json_object_new_array();
			const char *s;

			json_object_array_add(a, json_object_new_string(pub[0]));
			json_object_array_add(a, json_object_new_string(bad[i]));
			json_object_object_add(o, "threshold", json_object_new_int(1));
			json_object_object_add(o, "keys", a);
			s = json_object_to_json_string(o);
			ck_assert_int_eq(kd_release_keys_parse((const uint8_t *)s, strlen(s), &ks), want[i]);
			json_object_put(o);
		}
	}
	/* threshold > n */
	{
		struct json_object *o = json_object_new_object(), *a = json_object_new_array();
		const char *s;

		json_object_array_add(a, json_object_new_string(pub[0]));
		json_object_object_add(o, "threshold", json_object_new_int(2));
		json_object_object_add(o, "keys", a);
		s = json_object_to_json_string(o);
		ck_assert_int_eq(kd_release_keys_parse((const uint8_t *)s, strlen(s), &ks), KD_EINVAL);
		json_object_put(o);
	}
}
END_TEST

START_TEST(has_measurement)
{
	struct kd_manifest *m = base();
	uint8_t x[48];

	memset(x, 0xbb, 48);
	ck_assert_int_eq(kd_manifest_has_measurement(m, x), 0);
	x[0] = 0;
	ck_assert_int_eq(kd_manifest_has_measurement(m, x), KD_EPOLICY);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPOLICY), "not in manifest for version 1.4"));
	kd_manifest_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("manifest");
	SRunner *sr;
	int failed;

	make_keys();
	tcase_add_test(tc, k_of_n);
	tcase_add_test(tc, validity_window);
	tcase_add_test(tc, edits_after_signing);
	tcase_add_test(tc, canonical_form);
	tcase_add_test(tc, strict_parse);
	tcase_add_test(tc, json_round_trip_times);
	tcase_add_test(tc, release_keys_config);
	tcase_add_test(tc, has_measurement);
	tcase_add_test(tc, floors);
	tcase_add_test(tc, rotate_flag);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_keys();
	return failed ? 1 : 0;
}
