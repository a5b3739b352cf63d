/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: k-of-n escrow. Every k-subset recovers and every (k-1)-subset
 * fails; CMS to RSA and EC admins; wrong keys; tampered shares and tokens
 * are detected, never mis-combined; the escrow keyslot on a real LUKS2 file;
 * keyd-recover's share checks (keyd/recover.h) name the file and say whether
 * a share is of an older escrow or damaged; header-restore asks last.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/recover.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define UUID "5d3b9c1e-7a41-4b8e-9f6d-0c2a1e3b4d5f"
#define NADM 5

static EVP_PKEY *keys[NADM];
static X509 *certs[NADM];

static X509 *self_signed(EVP_PKEY *k, const char *cn, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n;

	if (!x)
		abort();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		abort();
	return x;
}

static void admins_setup(void)
{
	for (int i = 0; i < NADM; i++) {
		char cn[16];

		/* Two RSA admins (OAEP), three P-256 admins (ECDH). */
		keys[i] = i < 2 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
				: EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		if (!keys[i])
			abort();
		snprintf(cn, sizeof(cn), "admin%d", i);
		certs[i] = self_signed(keys[i], cn, i + 1);
	}
}

static void admins_teardown(void)
{
	for (int i = 0; i < NADM; i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
}

static struct kd_secret *random_key(void)
{
	struct kd_secret *k = NULL;

	ck_assert_int_eq(kd_secret_new(KD_ESCROW_KEY_SIZE, &k), 0);
	ck_assert_int_eq(RAND_bytes(k->data, (int)k->len), 1);
	return k;
}

static void free_all(struct kd_secret **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kd_secret_free(s[i]);
}

/* Visit every subset of {0..n-1} of size m as a bit mask. */
static int popcount(unsigned m)
{
	return __builtin_popcount(m);
}

START_TEST(every_subset)
{
	for (unsigned n = 1; n <= 5; n++)
		for (unsigned k = 1; k <= n; k++) {
			_kd_secret_ struct kd_secret *key = random_key();
			struct kd_secret *sh[KD_ESCROW_MAX_SHARES] = {0};
			uint8_t commit[KD_ESCROW_COMMIT_SIZE];

			ck_assert_int_eq(kd_escrow_split(key, UUID, k, n, sh), 0);
			ck_assert_int_eq(kd_escrow_commitment(key, commit), 0);
			for (unsigned m = 1; m < (1u << n); m++) {
				struct kd_secret *pick[KD_ESCROW_MAX_SHARES];
				struct kd_secret *out = NULL;
				size_t c = 0;
				int r;

				if (popcount(m) != (int)k && popcount(m) != (int)k - 1)
					continue;
				for (unsigned i = 0; i < n; i++)
					if (m & (1u << i))
						pick[c++] = sh[i];
				r = kd_escrow_combine(pick, c, UUID, commit, &out);
				if (c == k) {
					ck_assert_int_eq(r, 0);
					ck_assert_mem_eq(out->data, key->data, KD_ESCROW_KEY_SIZE);
				} else {
					ck_assert_int_eq(r, KD_EREFUSED);
					ck_assert_ptr_null(out);
				}
				kd_secret_free(out);
			}
			free_all(sh, n);
		}
}
END_TEST

/*
 * k-1 shares that lie about the threshold do interpolate, but to another
 * polynomial: the commitment catches it (Shamir's k-1 shares say nothing).
 */
START_TEST(below_threshold_is_cryptographic)
{
	for (unsigned n = 2; n <= 5; n++)
		for (unsigned k = 2; k <= n; k++) {
			_kd_secret_ struct kd_secret *key = random_key();
			struct kd_secret *sh[KD_ESCROW_MAX_SHARES] = {0}, *out = NULL;

			ck_assert_int_eq(kd_escrow_split(key, UUID, k, n, sh), 0);
			for (unsigned i = 0; i < n; i++)
				sh[i]->data[8] = (uint8_t)(k - 1);
			ck_assert_int_eq(kd_escrow_combine(sh, k - 1, UUID, NULL, &out), KD_ETAMPER);
			ck_assert_ptr_null(out);
			ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ETAMPER), "commitment"));
			free_all(sh, n);
		}
}
END_TEST

START_TEST(tampered_share_without_token)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_secret *sh[3] = {0}, *out = NULL;
	size_t last;

	ck_assert_int_eq(kd_escrow_split(key, UUID, 2, 3, sh), 0);
	last = sh[1]->len - 1;
	/* Every bit of the share bytes is covered. */
	for (unsigned bit = 0; bit < 8; bit++) {
		sh[1]->data[last] ^= (uint8_t)(1u << bit);
		ck_assert_int_eq(kd_escrow_combine(sh, 2, UUID, NULL, &out), KD_ETAMPER);
		ck_assert_ptr_null(out);
		/* With a third, honest share the disagreement is found too. */
		ck_assert_int_eq(kd_escrow_combine((struct kd_secret *[]){sh[0], sh[2], sh[1]}, 3, UUID,
						   NULL, &out),
				 KD_ETAMPER);
		sh[1]->data[last] ^= (uint8_t)(1u << bit);
	}
	ck_assert_int_eq(kd_escrow_combine(sh, 3, UUID, NULL, &out), 0);
	kd_secret_free(out);
	/* Wrong volume, duplicate index, truncation, trailing byte. */
	ck_assert_int_eq(kd_escrow_combine(sh, 2, "other-uuid", NULL, &out), KD_EREFUSED);
	ck_assert_int_eq(kd_escrow_combine((struct kd_secret *[]){sh[0], sh[0]}, 2, UUID, NULL, &out),
			 KD_EREFUSED);
	for (size_t len = 0; len < sh[2]->len; len++) {
		struct kd_secret *t = NULL;
		struct kd_escrow_share_info info;

		if (!len)
			continue;
		ck_assert_int_eq(kd_secret_dup(sh[2]->data, len, &t), 0);
		ck_assert_int_lt(kd_escrow_share_parse(t, &info), 0);
		kd_secret_free(t);
	}
	{
		struct kd_secret *t = NULL;
		struct kd_escrow_share_info info;
		uint8_t buf[KD_ESCROW_SHARE_MAX];

		memcpy(buf, sh[2]->data, sh[2]->len);
		buf[sh[2]->len] = 0;
		ck_assert_int_eq(kd_secret_dup(buf, sh[2]->len + 1, &t), 0);
		ck_assert_int_eq(kd_escrow_share_parse(t, &info), KD_EMALFORMED);
		kd_secret_free(t);
	}
	free_all(sh, 3);
}
END_TEST

START_TEST(two_generations_never_mix)
{
	_kd_secret_ struct kd_secret *k1 = random_key(), *k2 = random_key();
	struct kd_secret *a[2] = {0}, *b[2] = {0}, *out = NULL;

	ck_assert_int_eq(kd_escrow_split(k1, UUID, 2, 2, a), 0);
	ck_assert_int_eq(kd_escrow_split(k2, UUID, 2, 2, b), 0);
	ck_assert_int_eq(kd_escrow_combine((struct kd_secret *[]){a[0], b[1]}, 2, UUID, NULL, &out),
			 KD_EREFUSED);
	free_all(a, 2);
	free_all(b, 2);
}
END_TEST

START_TEST(bad_parameters)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_secret *sh[KD_ESCROW_MAX_SHARES] = {0};

	ck_assert_int_eq(kd_escrow_split(key, UUID, 0, 3, sh), KD_EINVAL);
	ck_assert_int_eq(kd_escrow_split(key, UUID, 4, 3, sh), KD_EINVAL);
	ck_assert_int_eq(kd_escrow_split(key, UUID, 2, 9, sh), KD_EINVAL);
	ck_assert_int_eq(kd_escrow_split(key, "", 2, 3, sh), KD_EINVAL);
}
END_TEST

/* ---------------------------------------------------------------- CMS */

START_TEST(cms_rsa_and_ec)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_secret *sh[NADM] = {0};

	ck_assert_int_eq(kd_escrow_split(key, UUID, 3, NADM, sh), 0);
	for (int i = 0; i < NADM; i++) {
		uint8_t *der = NULL;
		size_t len = 0;
		struct kd_secret *back = NULL;
		int o = (i + 1) % NADM;

		ck_assert_int_eq(kd_escrow_encrypt(sh[i], certs[i], &der, &len), 0);
		ck_assert_int_eq(kd_escrow_decrypt(der, len, keys[i], certs[i], &back), 0);
		ck_assert_uint_eq(back->len, sh[i]->len);
		ck_assert_mem_eq(back->data, sh[i]->data, back->len);
		kd_secret_free(back);
		back = NULL;
		/* Another admin's key, with or without its certificate. */
		ck_assert_int_eq(kd_escrow_decrypt(der, len, keys[o], certs[o], &back), KD_EVERIFY);
		ck_assert_int_eq(kd_escrow_decrypt(der, len, keys[o], certs[i], &back), KD_EINVAL);
		ck_assert_int_lt(kd_escrow_decrypt(der, len, keys[o], NULL, &back), 0);
		ck_assert_ptr_null(back);
		/* Truncated or trailing bytes. */
		ck_assert_int_eq(kd_escrow_decrypt(der, len - 1, keys[i], certs[i], &back), KD_EMALFORMED);
		OPENSSL_free(der);
	}
	free_all(sh, NADM);
}
END_TEST

/* ---------------------------------------------------------------- token */

static char *built_json(struct kd_escrow_token *t, struct kd_secret *key)
{
	char *json = NULL;

	ck_assert_int_eq(kd_escrow_build(key, UUID, 2, certs, 3, t), 0);
	t->keyslot = 4;
	ck_assert_int_eq(kd_escrow_token_format(t, &json), 0);
	return json;
}

START_TEST(token_round_trip_and_shares)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_escrow_token t, u;
	struct kd_secret *dec[3] = {0}, *out = NULL;
	char *json = built_json(&t, key), *again = NULL;

	ck_assert_int_eq(kd_escrow_token_parse(json, strlen(json), &u), 0);
	ck_assert_int_eq(u.keyslot, 4);
	ck_assert_uint_eq(u.threshold, 2);
	ck_assert_uint_eq(u.n, 3);
	ck_assert_int_eq(kd_escrow_token_format(&u, &again), 0);
	ck_assert_str_eq(json, again);
	for (int i = 0; i < 3; i++) {
		uint8_t fp[KD_ESCROW_FP_SIZE];

		ck_assert_int_eq(kd_escrow_cert_fp(certs[i], fp), 0);
		ck_assert_mem_eq(fp, u.shares[i].admin, sizeof(fp));
		ck_assert_int_eq(kd_escrow_decrypt(u.shares[i].cms, u.shares[i].cms_len, keys[i],
						   certs[i], &dec[i]),
				 0);
		ck_assert_int_eq(kd_escrow_check_share(&u, dec[i]), 0);
	}
	ck_assert_int_eq(kd_escrow_combine(dec + 1, 2, UUID, u.commitment, &out), 0);
	kd_secret_free(out);
	out = NULL;
	/* A tampered share: its digest in the token no longer matches. */
	dec[0]->data[dec[0]->len - 1] ^= 1;
	ck_assert_int_eq(kd_escrow_check_share(&u, dec[0]), KD_ETAMPER);
	dec[0]->data[dec[0]->len - 1] ^= 1;
	/* A tampered token digest. */
	u.shares[2].digest[0] ^= 1;
	ck_assert_int_eq(kd_escrow_check_share(&u, dec[2]), KD_ETAMPER);
	u.shares[2].digest[0] ^= 1;
	/* A token from another escrow generation (commitment) is refused. */
	u.commitment[5] ^= 1;
	ck_assert_int_eq(kd_escrow_combine(dec, 2, UUID, u.commitment, &out), KD_ETAMPER);
	free_all(dec, 3);
	kd_escrow_token_clear(&t);
	kd_escrow_token_clear(&u);
	free(json);
	free(again);
}
END_TEST

static int parse_edit(const char *from, const char *to)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_escrow_token t, u;
	char *json = built_json(&t, key), *p, *buf;
	int r;

	p = strstr(json, from);
	ck_assert_ptr_nonnull(p);
	buf = malloc(strlen(json) + strlen(to) + 1);
	memcpy(buf, json, (size_t)(p - json));
	strcpy(buf + (p - json), to);
	strcat(buf, p + strlen(from));
	r = kd_escrow_token_parse(buf, strlen(buf), &u);
	if (!r)
		kd_escrow_token_clear(&u);
	free(buf);
	free(json);
	kd_escrow_token_clear(&t);
	return r;
}

START_TEST(token_strict)
{
	ck_assert_int_eq(parse_edit("\"threshold\":2", "\"threshold\":4"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"threshold\":2", "\"threshold\":0"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"threshold\":2", "\"threshold\":\"2\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"version\":1", "\"version\":2"), KD_EUNSUPP);
	/* A refusal names the token it is about. */
	ck_assert_str_eq(kd_err_detail(KD_EUNSUPP), "keyd-escrow token: version 2 is not supported");
	ck_assert_int_eq(parse_edit("\"version\":1", "\"version\":1,\"x\":1"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"version\":1,", ""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"keyslots\":[\"4\"]", "\"keyslots\":[\"4\",\"5\"]"), KD_ETAMPER);
	ck_assert_int_eq(parse_edit("\"keyslots\":[\"4\"]", "\"keyslots\":[\"04\"]"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"index\":2", "\"index\":1"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"index\":2", "\"index\":9"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"cms\":\"M", "\"cms\":\"*"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"cms\":\"M", "\"cms\":\" M"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"subject\":\"", "\"subject\":\"\\u0001"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"commitment\":\"", "\"commitment\":\"0"), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("\"type\":\"keyd-escrow\"", "\"type\":\"keyd\""), KD_EMALFORMED);
	ck_assert_int_eq(parse_edit("}]}", "}]}x"), KD_EMALFORMED);
}
END_TEST

START_TEST(token_truncated)
{
	_kd_secret_ struct kd_secret *key = random_key();
	struct kd_escrow_token t, u;
	char *json = built_json(&t, key);
	size_t len = strlen(json);

	for (size_t l = 0; l < len; l += (l < 200 ? 1 : 97))
		ck_assert_int_lt(kd_escrow_token_parse(json, l, &u), 0);
	free(json);
	kd_escrow_token_clear(&t);
}
END_TEST

/* ---------------------------------------------------------------- volume */

static char img[] = "/tmp/keyd-test-escrow-XXXXXX";
static uint8_t vk_bytes[KD_VOLUME_KEY_SIZE];

/* A keyd-profile LUKS2 volume with one keyslot and no keyd token. */
static void volume_setup(void)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_luks2 p = {.sector_size = 4096};
	const struct crypt_pbkdf_type pb = {.type = CRYPT_KDF_PBKDF2, .hash = "sha512",
					    .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
	int fd;

	strcpy(img, "/tmp/keyd-test-escrow-XXXXXX");
	fd = mkstemp(img);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 20 << 20), 0);
	close(fd);
	ck_assert_int_eq(RAND_bytes(vk_bytes, sizeof(vk_bytes)), 1);
	ck_assert_int_eq(crypt_init(&cd, img), 0);
	ck_assert_int_eq(crypt_set_pbkdf_type(cd, &pb), 0);
	ck_assert_int_eq(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL,
				      (const char *)vk_bytes, sizeof(vk_bytes), &p),
			 0);
	ck_assert_int_eq(crypt_keyslot_add_by_volume_key(cd, 0, (const char *)vk_bytes,
							 sizeof(vk_bytes), "pw", 2),
			 0);
	crypt_free(cd);
}

static void volume_teardown(void)
{
	unlink(img);
}

static void decrypt_shares(struct kd_escrow_token *t, const int *who, size_t n,
			   struct kd_secret **out)
{
	for (size_t i = 0; i < n; i++) {
		int a = who[i];

		ck_assert_int_eq(kd_escrow_decrypt(t->shares[a].cms, t->shares[a].cms_len, keys[a],
						   certs[a], &out[i]),
				 0);
	}
}

START_TEST(volume_escrow)
{
	_kd_secret_ struct kd_secret *vk = NULL, *wrong = NULL, *got = NULL;
	struct kd_volume *v = NULL;
	struct kd_escrow_token t, t2;
	struct kd_secret *sh[3] = {0}, *sh2[2] = {0};
	int slot = -1;

	ck_assert_int_eq(kd_secret_dup(vk_bytes, sizeof(vk_bytes), &vk), 0);
	ck_assert_int_eq(kd_secret_new(KD_VOLUME_KEY_SIZE, &wrong), 0);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_escrow_find(v, &t), KD_ENOENT);
	ck_assert_int_eq(kd_escrow_add(v, wrong, 2, certs, 3, false, NULL), KD_EINVAL);
	ck_assert_int_eq(kd_escrow_add(v, vk, 2, certs, 3, false, &slot), 0);
	ck_assert_int_eq(slot, 1);
	kd_volume_close(v);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_volume_health(v)->allow_err, 0);
	ck_assert_int_eq(kd_escrow_add(v, vk, 2, certs, 3, false, NULL), KD_EEXIST);
	ck_assert_int_eq(kd_escrow_find(v, &t), 0);
	ck_assert_int_eq(t.keyslot, 1);
	decrypt_shares(&t, (const int[]){0, 1, 2}, 3, sh);
	/* One share is not enough; two are; a tampered one is caught. */
	ck_assert_int_eq(kd_escrow_volume_key(v, sh, 1, &got), KD_EREFUSED);
	ck_assert_int_eq(kd_escrow_volume_key(v, sh + 1, 2, &got), 0);
	ck_assert_mem_eq(got->data, vk_bytes, sizeof(vk_bytes));
	kd_secret_freep(&got);
	sh[0]->data[sh[0]->len - 3] ^= 0x40;
	ck_assert_int_eq(kd_escrow_volume_key(v, sh, 2, &got), KD_ETAMPER);
	ck_assert_ptr_null(got);
	/* Rotation: the new escrow goes in, the old shares stop working. */
	ck_assert_int_eq(kd_escrow_add(v, vk, 2, certs + 3, 2, true, &slot), 0);
	kd_volume_close(v);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_escrow_volume_key(v, sh + 1, 2, &got), KD_EREFUSED);
	ck_assert_int_eq(kd_escrow_find(v, &t2), 0);
	ck_assert_int_eq(t2.keyslot, slot);
	ck_assert_uint_eq(t2.n, 2);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kd_escrow_decrypt(t2.shares[i].cms, t2.shares[i].cms_len, keys[3 + i],
						   certs[3 + i], &sh2[i]),
				 0);
	ck_assert_int_eq(kd_escrow_volume_key(v, sh2, 2, &got), 0);
	ck_assert_mem_eq(got->data, vk_bytes, sizeof(vk_bytes));
	/* No keyd slot: removing the escrow would lock the volume. */
	ck_assert_int_eq(kd_escrow_remove(v, false), KD_EREFUSED);
	ck_assert_int_eq(kd_escrow_remove(v, true), 0);
	kd_volume_close(v);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_escrow_find(v, &t2), KD_ENOENT);
	kd_volume_close(v);
	free_all(sh, 3);
	free_all(sh2, 2);
	kd_escrow_token_clear(&t);
	kd_escrow_token_clear(&t2);
}
END_TEST

START_TEST(volume_header_restore_refusals)
{
	char bak[] = "/tmp/keyd-test-escrow-bak-XXXXXX", other[] = "/tmp/keyd-test-escrow-o-XXXXXX";
	struct kd_volume *v = NULL;
	struct crypt_device *cd = NULL;
	struct crypt_params_luks2 p = {.sector_size = 4096};
	int fd;

	fd = mkstemp(bak);
	close(fd);
	unlink(bak);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_admin_header_backup(v, bak), 0);
	ck_assert_int_eq(kd_admin_header_backup(v, bak), KD_EEXIST);
	kd_volume_close(v);
	ck_assert_int_eq(kd_admin_header_restore(img, bak, false, NULL, NULL), 0);
	/* Another volume's backup. */
	fd = mkstemp(other);
	ck_assert_int_eq(ftruncate(fd, 20 << 20), 0);
	close(fd);
	ck_assert_int_eq(crypt_init(&cd, other), 0);
	ck_assert_int_eq(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &p), 0);
	crypt_free(cd);
	ck_assert_int_eq(kd_admin_header_restore(other, bak, false, NULL, NULL), KD_EREFUSED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EREFUSED), "another volume"));
	ck_assert_int_eq(kd_admin_header_restore(other, bak, true, NULL, NULL), KD_EREFUSED);
	/* Wipe: every keyslot destroyed. */
	{
		size_t n = 0;

		ck_assert_int_eq(kd_admin_wipe(img, &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	unlink(bak);
	unlink(other);
}
END_TEST

/* Identity before digest, with the file named (recover.h). */
START_TEST(recover_share_identity)
{
	_kd_secret_ struct kd_secret *vk = NULL, *got = NULL;
	struct kd_volume *v = NULL;
	struct kd_escrow_token t;
	struct kd_secret *sh[2] = {0};
	const char *files[] = {"first.der", "second.der"};
	uint8_t c[KD_ESCROW_COMMIT_SIZE];
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];

	ck_assert_int_eq(kd_secret_dup(vk_bytes, sizeof(vk_bytes), &vk), 0);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_escrow_add(v, vk, 2, certs, 3, false, NULL), 0);
	kd_volume_close(v);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_escrow_find(v, &t), 0);
	decrypt_shares(&t, (const int[]){0, 2}, 2, sh);
	ck_assert_int_eq(kd_recover_volume_key(v, files, sh, 2, &got), 0);
	ck_assert_mem_eq(got->data, vk_bytes, sizeof(vk_bytes));
	kd_secret_freep(&got);
	/* The commitment round-trips through its hex form; bad hex is refused. */
	kd_recover_commitment_hex(t.commitment, hex);
	ck_assert_int_eq(kd_recover_commitment_parse(hex, c), 0);
	ck_assert_mem_eq(c, t.commitment, sizeof(c));
	ck_assert_int_eq(kd_recover_commitment_parse("abc", c), KD_EINVAL);
	hex[5] = 'g';
	ck_assert_int_eq(kd_recover_commitment_parse(hex, c), KD_EINVAL);
	/* The same share twice is named with both files. */
	{
		struct kd_secret *twice[2] = {sh[0], sh[0]};

		ck_assert_int_eq(kd_recover_volume_key(v, files, twice, 2, &got), KD_EREFUSED);
		ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EREFUSED), "given twice"));
	}
	/* A damaged share: its file is named, and it is "damaged", not "older". */
	sh[1]->data[sh[1]->len - 1] ^= 1;
	ck_assert_int_eq(kd_recover_volume_key(v, files, sh, 2, &got), KD_ETAMPER);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ETAMPER), "second.der: "));
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ETAMPER), "does not match its digest"));
	sh[1]->data[sh[1]->len - 1] ^= 1;
	/* After a rotation the old shares are an older escrow, by file. */
	ck_assert_int_eq(kd_escrow_add(v, vk, 2, certs + 3, 2, true, NULL), 0);
	kd_volume_close(v);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_recover_volume_key(v, files, sh, 2, &got), KD_EREFUSED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EREFUSED), "first.der: share 1 is from an older escrow"));
	ck_assert_ptr_null(got);
	kd_volume_close(v);
	free_all(sh, 2);
	kd_escrow_token_clear(&t);
}
END_TEST

static int say_no(const char *uuid, const char *label, void *ctx)
{
	*(int *)ctx += 1;
	return kd_fail(KD_EREFUSED, "not confirmed (%s%s)", uuid, label);
}

/* The first 4 MiB of a file: the LUKS2 headers and keyslot areas. */
static uint8_t *head_of(const char *path)
{
	uint8_t *buf = calloc(1, 4u << 20);
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(buf, 1, 4u << 20, f), 4u << 20);
	fclose(f);
	return buf;
}

/*
 * A keyslot add with a key that is not the volume's is refused before
 * anything is written: libcryptsetup checks the key against the header's
 * digest inside crypt_keyslot_add_by_volume_key (keyd relies on that check
 * and makes no separate crypt_volume_key_verify call).
 */
START_TEST(add_slot_wrong_key)
{
	_kd_secret_ struct kd_secret *vk = NULL, *wrong = NULL, *pass = NULL, *pin_key = NULL;
	struct kd_token meta = {.state = KD_TOKEN_ACTIVE, .svn = 1};
	struct kd_volume *v = NULL;
	uint8_t *before, *after;
	int slot = -1;

	snprintf(meta.label, sizeof(meta.label), "test");
	ck_assert_int_eq(kd_secret_dup(vk_bytes, sizeof(vk_bytes), &vk), 0);
	ck_assert_int_eq(kd_secret_new(KD_VOLUME_KEY_SIZE, &wrong), 0);
	ck_assert_int_eq(RAND_bytes(wrong->data, (int)wrong->len), 1);
	ck_assert_int_eq(kd_secret_new(32, &pass), 0);
	ck_assert_int_eq(RAND_bytes(pass->data, (int)pass->len), 1);
	ck_assert_int_eq(kd_secret_new(32, &pin_key), 0);
	ck_assert_int_eq(RAND_bytes(pin_key->data, (int)pin_key->len), 1);
	before = head_of(img);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_volume_add_slot_fp(v, wrong, pass, pin_key, &meta, NULL, NULL, &slot),
			 KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "not this volume's key"));
	ck_assert_int_eq(slot, -1);
	after = head_of(img);
	ck_assert_mem_eq(before, after, 4u << 20);
	free(after);
	/* The volume's own key goes in. */
	ck_assert_int_eq(kd_volume_add_slot_fp(v, vk, pass, pin_key, &meta, NULL, NULL, &slot), 0);
	ck_assert_int_eq(slot, 1);
	kd_volume_close(v);
	after = head_of(img);
	ck_assert_int_ne(memcmp(before, after, 4u << 20), 0);
	free(before);
	free(after);
}
END_TEST

/* header-restore asks only after every check, and a "no" writes nothing. */
START_TEST(restore_asks_last)
{
	char bak[] = "/tmp/keyd-test-escrow-bak-XXXXXX";
	uint8_t *before, *after;
	struct kd_volume *v = NULL;
	int fd, asked = 0;

	fd = mkstemp(bak);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(bak);
	ck_assert_int_eq(kd_volume_open(img, &v), 0);
	ck_assert_int_eq(kd_admin_header_backup(v, bak), 0);
	kd_volume_close(v);
	before = head_of(img);
	ck_assert_int_eq(kd_admin_header_restore(img, bak, false, say_no, &asked), KD_EREFUSED);
	ck_assert_int_eq(asked, 1);
	after = head_of(img);
	ck_assert_mem_eq(after, before, 4u << 20);
	/* A refusal by a check comes first: the question is never asked. */
	asked = 0;
	ck_assert_int_eq(kd_admin_header_restore(img, "/nonexistent", false, say_no, &asked),
			 KD_ENOENT);
	ck_assert_int_eq(asked, 0);
	free(before);
	free(after);
	unlink(bak);
}
END_TEST


/*
 * The escrow plan of a rotation (keyd/rotate.h, docs/formats.md 8.1): it
 * round-trips with the pin key, keyslot and pin it was made with, and any
 * change the host could make to it, or another launch's pin key, another
 * keyslot or another rotation's pin, is refused before a certificate is
 * returned.
 */
static int plan_open_json(struct kd_rotate_opts *o, const char *json,
			  const struct kd_secret *pk, int slot, const uint8_t *pin, unsigned *k,
			  size_t *n)
{
	X509 *out[KD_ROTATE_PLAN_MAX] = {0};
	int r = o->plan_open(json, pk, UUID, slot, pin, k, out, n, NULL);

	for (size_t i = 0; i < KD_ROTATE_PLAN_MAX; i++) {
		if (r)
			ck_assert_ptr_null(out[i]);
		X509_free(out[i]);
	}
	return r;
}

static char *replaced(const char *json, const char *from, const char *to)
{
	const char *at = strstr(json, from);
	char *out;

	ck_assert_ptr_nonnull(at);
	out = malloc(strlen(json) - strlen(from) + strlen(to) + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, json, (size_t)(at - json));
	strcpy(out + (at - json), to);
	strcat(out, at + strlen(from));
	return out;
}

START_TEST(rotate_plan)
{
	struct kd_rotate_opts o = {0};
	struct kd_secret *pk = random_key(), *pk2 = random_key();
	uint8_t pin[KD_PIN_SIZE], pin2[KD_PIN_SIZE];
	X509 *two[2] = {certs[0], certs[2]}, *swapped[2] = {certs[0], certs[3]};
	X509 *out[KD_ROTATE_PLAN_MAX] = {0};
	char *json = NULL, *other = NULL, *bad;
	unsigned k = 0;
	size_t n = 0;

	ck_assert_int_eq(RAND_bytes(pin, sizeof(pin)), 1);
	memcpy(pin2, pin, sizeof(pin));
	pin2[7] ^= 1;
	kd_escrow_rotate_hooks(&o);
	ck_assert_int_eq(o.plan_make(pk, UUID, 3, pin, 2, two, 2, &json, NULL), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"type\":\"" KD_ROTATE_PLAN_TOKEN_TYPE "\""));
	ck_assert_ptr_nonnull(strstr(json, "\"keyslots\":[]"));
	ck_assert_int_eq(o.plan_open(json, pk, UUID, 3, pin, &k, out, &n, NULL), 0);
	ck_assert_uint_eq(k, 2);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(X509_cmp(out[0], certs[0]), 0);
	ck_assert_int_eq(X509_cmp(out[1], certs[2]), 0);
	X509_free(out[0]);
	X509_free(out[1]);
	/* Another launch (pin key), keyslot, rotation (pin) or volume. */
	ck_assert_int_eq(plan_open_json(&o, json, pk2, 3, pin, &k, &n), KD_ETAMPER);
	ck_assert_int_eq(plan_open_json(&o, json, pk, 4, pin, &k, &n), KD_ETAMPER);
	ck_assert_int_eq(plan_open_json(&o, json, pk, 3, pin2, &k, &n), KD_ETAMPER);
	{
		X509 *o2[KD_ROTATE_PLAN_MAX] = {0};

		ck_assert_int_eq(o.plan_open(json, pk, "00000000-0000-0000-0000-000000000000", 3,
					     pin, &k, o2, &n, NULL),
				 KD_ETAMPER);
		ck_assert_ptr_null(o2[0]);
	}
	/* The host's edits: threshold, keyslot, a certificate swapped. */
	bad = replaced(json, "\"threshold\":2", "\"threshold\":1");
	ck_assert_int_eq(plan_open_json(&o, bad, pk, 3, pin, &k, &n), KD_ETAMPER);
	free(bad);
	bad = replaced(json, "\"keyslot\":3", "\"keyslot\":4");
	ck_assert_int_eq(plan_open_json(&o, bad, pk, 4, pin, &k, &n), KD_ETAMPER);
	free(bad);
	ck_assert_int_eq(o.plan_make(pk2, UUID, 3, pin, 2, swapped, 2, &other, NULL), 0);
	{
		/* mallory's plan, made with another key, under our mac */
		const char *m1 = strstr(json, "\"mac\":\""), *m2 = strstr(other, "\"mac\":\"");
		char *mix = strdup(other);

		ck_assert_ptr_nonnull(m1);
		ck_assert_ptr_nonnull(m2);
		ck_assert_ptr_nonnull(mix);
		memcpy(mix + (m2 - other), m1, 7 + 96);
		ck_assert_int_eq(plan_open_json(&o, mix, pk, 3, pin, &k, &n), KD_ETAMPER);
		free(mix);
	}
	/* Strictness: unknown key, no certs, k > n. */
	bad = replaced(json, "{", "{\"x\":1,");
	ck_assert_int_eq(plan_open_json(&o, bad, pk, 3, pin, &k, &n), KD_ETAMPER);
	free(bad);
	bad = replaced(json, "\"threshold\":2", "\"threshold\":3");
	ck_assert_int_eq(plan_open_json(&o, bad, pk, 3, pin, &k, &n), KD_ETAMPER);
	free(bad);
	ck_assert_int_ne(plan_open_json(&o, "{\"type\":\"keyd-rotate-plan\"}", pk, 3, pin, &k, &n), 0);
	ck_assert_int_ne(plan_open_json(&o, "not json", pk, 3, pin, &k, &n), 0);
	/* Bad plans are not made. */
	ck_assert_int_eq(o.plan_make(pk, UUID, 3, pin, 3, two, 2, &bad, NULL), KD_EINVAL);
	ck_assert_int_eq(o.plan_make(pk, UUID, 3, pin, 0, two, 2, &bad, NULL), KD_EINVAL);
	free(json);
	free(other);
	kd_secret_free(pk);
	kd_secret_free(pk2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("escrow");
	TCase *tc = tcase_create("shares");
	TCase *tv = tcase_create("volume");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_subset);
	tcase_add_test(tc, below_threshold_is_cryptographic);
	tcase_add_test(tc, tampered_share_without_token);
	tcase_add_test(tc, two_generations_never_mix);
	tcase_add_test(tc, bad_parameters);
	tcase_add_test(tc, cms_rsa_and_ec);
	tcase_add_test(tc, token_round_trip_and_shares);
	tcase_add_test(tc, token_strict);
	tcase_add_test(tc, token_truncated);
	tcase_add_test(tc, rotate_plan);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tv, 60);
	tcase_add_checked_fixture(tv, volume_setup, volume_teardown);
	tcase_add_test(tv, volume_escrow);
	tcase_add_test(tv, volume_header_restore_refusals);
	tcase_add_test(tv, recover_share_identity);
	tcase_add_test(tv, restore_asks_last);
	tcase_add_test(tv, add_slot_wrong_key);
	suite_add_tcase(s, tv);
	/* Once, before the forks (outside any test, so no ck_assert in it):
	 * RSA key generation is slow. */
	admins_setup();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	admins_teardown();
	return failed ? 1 : 0;
}
