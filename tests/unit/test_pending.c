/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: pending handoff slots, format 2 (keyd/pending.h) -- N's
 * key-agreement key, the wrap of O's fresh secrets and what it binds, the
 * evidence digest, the token fields, and the session binding of N's key.
 * The evidence check against a chip runs in tests/integration/65-*.sh.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/pending.h"
#include "keyd/token.h"
#include "keyd/volume.h"

static const char uuid1[] = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
static const char uuid2[] = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1";

static struct kd_secret *derived(uint8_t fill)
{
	uint8_t b[32];
	struct kd_secret *s = NULL;

	memset(b, fill, sizeof(b));
	ck_assert_int_eq(kd_secret_dup(b, sizeof(b), &s), 0);
	return s;
}

static EVP_PKEY *kex(uint8_t fill, uint8_t pub[KD_KEX_PUB_LEN])
{
	struct kd_secret *d = derived(fill);
	EVP_PKEY *k = NULL;

	ck_assert_int_eq(kd_kex_from_derived(d, &k, pub), 0);
	kd_secret_free(d);
	return k;
}

static void token(struct kd_token *t)
{
	memset(t, 0, sizeof(*t));
	t->token_id = -1;
	t->keyslot = 3;
	t->version = KD_TOKEN_VERSION;
	strcpy(t->backend, "sim");
	t->fields = 0x7;
	t->tcb = 0x0300000000000873ull;
	memset(t->measurement, 0xb2, sizeof(t->measurement));
	t->policy = 0x30000;
	strcpy(t->label, "2.0");
	t->state = KD_TOKEN_PENDING;
	t->svn = 2;
	strcpy(t->created, "2026-01-01T00:00:00Z");
	memset(t->pin, 0x44, sizeof(t->pin));
}

START_TEST(kex_is_a_function_of_the_sealing_key)
{
	uint8_t a[KD_KEX_PUB_LEN], b[KD_KEX_PUB_LEN], c[KD_KEX_PUB_LEN];
	EVP_PKEY *ka = kex(1, a), *kb = kex(1, b), *kc = kex(2, c);

	/* Boot derives the same key the handoff announced; another launch another. */
	ck_assert_mem_eq(a, b, sizeof(a));
	ck_assert_mem_ne(a, c, sizeof(a));
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kc);
}
END_TEST

START_TEST(fresh_secrets_are_fresh)
{
	struct kd_secret *p1, *k1, *p2, *k2;

	ck_assert_int_eq(kd_pending_fresh_secrets(&p1, &k1), 0);
	ck_assert_int_eq(kd_pending_fresh_secrets(&p2, &k2), 0);
	ck_assert_uint_eq(p1->len, KD_PASSPHRASE_LEN);
	ck_assert_uint_eq(k1->len, KD_PIN_KEY_SIZE);
	ck_assert_mem_ne(p1->data, p2->data, p1->len);
	ck_assert_mem_ne(k1->data, k2->data, k1->len);
	for (size_t i = 0; i < p1->len; i++)
		ck_assert(strchr("0123456789abcdef", p1->data[i]));
	ck_assert(kd_secret_is_locked(p1) && kd_secret_is_locked(k1));
	kd_secret_free(p1);
	kd_secret_free(k1);
	kd_secret_free(p2);
	kd_secret_free(k2);
}
END_TEST

START_TEST(wrap_roundtrip_and_binding)
{
	uint8_t pub[KD_KEX_PUB_LEN], opub[KD_KEX_PUB_LEN];
	EVP_PKEY *priv = kex(1, pub), *other = kex(2, opub);
	struct kd_secret *pass, *pin, *p2 = NULL, *k2 = NULL;
	struct kd_token t, t2, bad;

	ck_assert_int_eq(kd_pending_fresh_secrets(&pass, &pin), 0);
	token(&t);
	ck_assert_int_eq(kd_pending_wrap(pub, uuid1, pass, pin, &t), 0);
	ck_assert(t.has_wrap);
	ck_assert_int_eq(kd_pending_unwrap(priv, uuid1, &t, &p2, &k2), 0);
	ck_assert_mem_eq(p2->data, pass->data, pass->len);
	ck_assert_mem_eq(k2->data, pin->data, pin->len);
	kd_secret_freep(&p2);
	kd_secret_freep(&k2);

	/* The same secrets wrapped twice look unrelated (fresh ephemeral key). */
	token(&t2);
	ck_assert_int_eq(kd_pending_wrap(pub, uuid1, pass, pin, &t2), 0);
	ck_assert_mem_ne(t.wrap_epk, t2.wrap_epk, sizeof(t.wrap_epk));
	ck_assert_mem_ne(t.wrap_ct, t2.wrap_ct, sizeof(t.wrap_ct));

	/* Another launch's key, volume, keyslot, measurement, SVN, or a flipped bit. */
	ck_assert_int_eq(kd_pending_unwrap(other, uuid1, &t, &p2, &k2), KD_ETAMPER);
	ck_assert_int_eq(kd_pending_unwrap(priv, uuid2, &t, &p2, &k2), KD_ETAMPER);
	bad = t;
	bad.keyslot = 4;
	ck_assert_int_eq(kd_pending_unwrap(priv, uuid1, &bad, &p2, &k2), KD_ETAMPER);
	bad = t;
	bad.measurement[0] ^= 1;
	ck_assert_int_eq(kd_pending_unwrap(priv, uuid1, &bad, &p2, &k2), KD_ETAMPER);
	bad = t;
	bad.svn = 3;
	ck_assert_int_eq(kd_pending_unwrap(priv, uuid1, &bad, &p2, &k2), KD_ETAMPER);
	for (size_t i = 0; i < KD_WRAP_CT_LEN; i += 17) {
		bad = t;
		bad.wrap_ct[i] ^= 0x80;
		ck_assert_int_eq(kd_pending_unwrap(priv, uuid1, &bad, &p2, &k2), KD_ETAMPER);
	}
	bad = t;
	bad.wrap_epk[5] ^= 1;
	ck_assert_int_lt(kd_pending_unwrap(priv, uuid1, &bad, &p2, &k2), 0);
	ck_assert_ptr_null(p2);
	ck_assert_ptr_null(k2);
	/* Wrong sizes are refused before anything is done. */
	ck_assert_int_eq(kd_pending_wrap(pub, uuid1, pin, pass, &t2), KD_EINVAL);
	kd_secret_free(pass);
	kd_secret_free(pin);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(other);
}
END_TEST

START_TEST(evidence_binds_everything)
{
	uint8_t pub[KD_KEX_PUB_LEN], pub2[KD_KEX_PUB_LEN], base[48], rd[48];
	EVP_PKEY *k1 = kex(1, pub), *k2 = kex(2, pub2);
	struct kd_secret *pass, *pin;
	struct kd_token t, m;

	ck_assert_int_eq(kd_pending_fresh_secrets(&pass, &pin), 0);
	token(&t);
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &t, pub, base), KD_EINVAL); /* no wrap */
	ck_assert_int_eq(kd_pending_wrap(pub, uuid1, pass, pin, &t), 0);
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &t, pub, base), 0);
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &t, pub, rd), 0);
	ck_assert_mem_eq(base, rd, 48);
	ck_assert_int_eq(kd_pending_evidence_digest(uuid2, &t, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &t, pub2, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	m = t;
	m.pin[47] ^= 1;
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &m, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	m = t;
	m.wrap_ct[0] ^= 1;
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &m, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	m = t;
	m.wrap_epk[0] ^= 1;
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &m, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	m = t;
	m.keyslot = 9;
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &m, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	m = t;
	m.svn = 1;
	ck_assert_int_eq(kd_pending_evidence_digest(uuid1, &m, pub, rd), 0);
	ck_assert_mem_ne(base, rd, 48);
	/* O's handoff key signs "keyd-pending-v2/evidence" || D. */
	{
		uint8_t kp[KD_KEX_PUB_LEN], msg[64 + 48];
		size_t n = strlen(KD_PENDING_EVIDENCE_CONTEXT);
		EVP_PKEY *sk = NULL, *vk;
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		ck_assert_int_eq(kd_evidence_key_new(&sk, kp), 0);
		ck_assert_int_eq(kd_pending_evidence_sign(sk, uuid1, &t, pub), 0);
		ck_assert_mem_eq(t.ev_key, kp, sizeof(kp));
		memcpy(msg, KD_PENDING_EVIDENCE_CONTEXT, n);
		memcpy(msg + n, base, 48);
		vk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, kp, sizeof(kp));
		ck_assert(EVP_DigestVerifyInit(md, NULL, NULL, NULL, vk) == 1);
		ck_assert(EVP_DigestVerify(md, t.ev_sig, sizeof(t.ev_sig), msg, n + 48) == 1);
		EVP_MD_CTX_free(md);
		EVP_PKEY_free(vk);
		EVP_PKEY_free(sk);
	}
	kd_secret_free(pass);
	kd_secret_free(pin);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}
END_TEST

static const char manifest[] =
	"{\"format\":\"keyd-manifest-v1\",\"version\":\"1.0\",\"svn\":1,\"measurements\":[\"" 
	"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	"\"],\"not_before\":\"2020-01-01T00:00:00Z\",\"not_after\":\"2099-01-01T00:00:00Z\","
	"\"signatures\":[]}";

START_TEST(token_fields_roundtrip_and_strict)
{
	uint8_t pub[KD_KEX_PUB_LEN];
	EVP_PKEY *k = kex(1, pub);
	struct kd_secret *pass, *pin;
	struct kd_token t, back;
	char *json, *p;

	ck_assert_int_eq(kd_pending_fresh_secrets(&pass, &pin), 0);
	token(&t);
	ck_assert_int_eq(kd_pending_wrap(pub, uuid1, pass, pin, &t), 0);
	for (size_t i = 0; i < sizeof(t.ev_report); i++)
		t.ev_report[i] = (uint8_t)(i * 7);
	memset(t.ev_exporter, 0x31, sizeof(t.ev_exporter));
	memset(t.ev_key, 0x32, sizeof(t.ev_key));
	memset(t.ev_sig, 0x33, sizeof(t.ev_sig));
	strcpy(t.ev_manifest, manifest);
	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &back), 0);
	ck_assert(back.has_wrap);
	ck_assert_mem_eq(back.wrap_epk, t.wrap_epk, sizeof(t.wrap_epk));
	ck_assert_mem_eq(back.wrap_ct, t.wrap_ct, sizeof(t.wrap_ct));
	ck_assert_mem_eq(back.ev_report, t.ev_report, sizeof(t.ev_report));
	ck_assert_mem_eq(back.ev_exporter, t.ev_exporter, sizeof(t.ev_exporter));
	ck_assert_mem_eq(back.ev_key, t.ev_key, sizeof(t.ev_key));
	ck_assert_mem_eq(back.ev_sig, t.ev_sig, sizeof(t.ev_sig));
	ck_assert_str_eq(back.ev_manifest, manifest);

	/* Non-canonical base64 (a changed padding bit) is refused. */
	p = strstr(json, "\"report\":\"");
	ck_assert_ptr_nonnull(p);
	p = strchr(p + 10, '=');
	ck_assert_ptr_nonnull(p);
	{
		static const char b64[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *c = strchr(b64, p[-1]);

		ck_assert_ptr_nonnull(c);
		p[-1] = b64[(c - b64) ^ 1]; /* a padding bit only */
	}
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &back), KD_EMALFORMED);
	free(json);

	/* Wrapped secrets only on a pending slot, and never without evidence. */
	t.state = KD_TOKEN_ACTIVE;
	ck_assert_int_eq(kd_token_format(&t, &json), KD_EINVAL);
	t.state = KD_TOKEN_PENDING;
	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	p = strstr(json, "\"state\":\"pending\"");
	ck_assert_ptr_nonnull(p);
	memcpy(p, "\"state\":\"active\" ", 17);
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &back), KD_EMALFORMED);
	free(json);
	ck_assert_int_eq(kd_token_format(&t, &json), 0);
	p = strstr(json, ",\"evidence\":");
	ck_assert_ptr_nonnull(p);
	*p = '}';
	p[1] = '\0';
	ck_assert_int_eq(kd_token_parse(json, strlen(json), &back), KD_EMALFORMED);
	free(json);

	/* Host-written members of the wrong JSON type, null included, are
	 * refused by the typed getters, never read as "absent". */
	{
		static const char *const tails[] = {
			",\"wrap\":null,\"evidence\":null}",
			",\"wrap\":[],\"evidence\":{}}",
		};

		t.has_wrap = false;
		for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
			char buf[KD_TOKEN_JSON_MAX];

			ck_assert_int_eq(kd_token_format(&t, &json), 0);
			ck_assert_int_eq(kd_token_parse(json, strlen(json), &back), 0);
			ck_assert(!back.has_wrap);
			ck_assert_uint_lt(strlen(json) + strlen(tails[i]), sizeof(buf));
			strcpy(buf, json);
			strcpy(strrchr(buf, '}'), tails[i]);
			free(json);
			ck_assert_int_eq(kd_token_parse(buf, strlen(buf), &back), KD_EMALFORMED);
		}
		t.has_wrap = true;
		ck_assert_int_eq(kd_token_format(&t, &json), 0);
		p = strstr(json, "\"manifest\":{");
		ck_assert_ptr_nonnull(p);
		{
			char buf[KD_TOKEN_JSON_MAX];

			/* "manifest":null in place of the object */
			ck_assert_uint_lt(strlen(json), sizeof(buf));
			snprintf(buf, sizeof(buf), "%.*s\"manifest\":null}}", (int)(p - json), json);
			ck_assert_int_eq(kd_token_parse(buf, strlen(buf), &back), KD_EMALFORMED);
		}
		free(json);
	}
	kd_secret_free(pass);
	kd_secret_free(pin);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(session_binding_covers_the_key)
{
	uint8_t e[KD_HANDOFF_EXPORTER_LEN], k1[KD_KEX_PUB_LEN], k2[KD_KEX_PUB_LEN];
	uint8_t b0[48], b1[48], b2[48], rd1[64], rd2[64];

	memset(e, 0x33, sizeof(e));
	memset(k1, 0x01, sizeof(k1));
	memset(k2, 0x02, sizeof(k2));
	ck_assert_int_eq(kd_handoff_binding(e, NULL, 0, b0), 0);
	ck_assert_int_eq(kd_handoff_binding(e, k1, sizeof(k1), b1), 0);
	ck_assert_int_eq(kd_handoff_binding(e, k2, sizeof(k2), b2), 0);
	ck_assert_mem_ne(b0, b1, 48);
	ck_assert_mem_ne(b1, b2, 48);
	ck_assert_int_eq(kd_handoff_report_data('N', b1, rd1), 0);
	ck_assert_int_eq(kd_handoff_report_data('N', b2, rd2), 0);
	ck_assert_mem_ne(rd1, rd2, 64);
	ck_assert_int_eq(kd_handoff_binding(e, k1, 31, b1), KD_EINVAL);
}
END_TEST

START_TEST(unwrapped_pending_refused)
{
	struct kd_secret *pass = NULL, *pin = NULL;
	struct kd_token t;

	/* A format-1 pending slot (no wrapped secrets) is refused before
	 * anything is derived: nothing to unwrap, no evidence. */
	token(&t);
	ck_assert_int_eq(kd_pending_open(NULL, NULL, NULL, uuid1, &t, &pass, &pin), KD_ETAMPER);
	ck_assert_ptr_null(pass);
	ck_assert_ptr_null(pin);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ETAMPER), "redo the handoff"));
}
END_TEST

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void drop(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

START_TEST(floors_from_the_image)
{
	char dir[] = "/tmp/keyd-floor-XXXXXX";
	struct kd_pending_policy p;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Nothing pinned: both floors unset, no opt-out (evidence is refused). */
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), 0);
	ck_assert(!p.has_peer_svn_floor && !p.no_peer_svn_floor && !p.has_tcb_floor);
	/* The opt-out file, and a floor that wins over it. */
	put(dir, "no-peer-svn-floor", "");
	ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), 0);
	ck_assert(!p.has_peer_svn_floor && p.no_peer_svn_floor);
	put(dir, "peer-svn-floor", " 7\n");
	put(dir, "tcb-floor", "0300000000000973\n");
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), 0);
	ck_assert(p.has_peer_svn_floor && !p.no_peer_svn_floor);
	ck_assert_uint_eq(p.peer_svn_floor, 7);
	ck_assert(p.has_tcb_floor);
	ck_assert_uint_eq(p.tcb_floor, 0x7309000000000003ull);
	/* What the caller set is kept. */
	memset(&p, 0, sizeof(p));
	p.has_peer_svn_floor = true;
	p.peer_svn_floor = 2;
	ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), 0);
	ck_assert_uint_eq(p.peer_svn_floor, 2);
	/* A file that is not one number refuses. */
	for (size_t i = 0; i < 5; i++) {
		static const char *bad[] = {"", "-1", "4294967296", "3 4", "0x10"};

		put(dir, "peer-svn-floor", bad[i]);
		memset(&p, 0, sizeof(p));
		ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), KD_EMALFORMED);
	}
	put(dir, "peer-svn-floor", "4294967295");
	put(dir, "tcb-floor", "03000000");
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(kd_pending_policy_from_image(&p, dir), KD_EMALFORMED);
	drop(dir, "peer-svn-floor");
	drop(dir, "no-peer-svn-floor");
	drop(dir, "tcb-floor");
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pending");
	TCase *tc = tcase_create("pending");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, kex_is_a_function_of_the_sealing_key);
	tcase_add_test(tc, fresh_secrets_are_fresh);
	tcase_add_test(tc, wrap_roundtrip_and_binding);
	tcase_add_test(tc, evidence_binds_everything);
	tcase_add_test(tc, token_fields_roundtrip_and_strict);
	tcase_add_test(tc, session_binding_covers_the_key);
	tcase_add_test(tc, unwrapped_pending_refused);
	tcase_add_test(tc, floors_from_the_image);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
