/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bench: the fixed costs inside a handoff, measured in one process with no
 * protocol around them, so that tests/bench/handoff.sh can print what part
 * of its figures no code change in keyd can remove:
 *
 *   p384-keygen    EVP_PKEY_Q_keygen EC P-384 (TLS key share, throwaway
 *                  certificate key)
 *   p384-sign      ECDSA P-384 / SHA-384 (TLS CertificateVerify, the
 *                  certificate's self-signature, O's evidence signature,
 *                  each attestation report the firmware signs)
 *   p384-verify    ECDSA P-384 / SHA-384 (CertificateVerify, report)
 *   p384-ecdh      P-384 key agreement (TLS 1.3 key share)
 *   keyslot-open   crypt_volume_key_get through one keyd keyslot
 *                  (PBKDF2-SHA512/1000, 4000 AF stripes, digest check)
 *   keyslot-add    crypt_keyslot_add_by_volume_key of one keyd keyslot
 *                  (same kind: AF split, PBKDF2, both header copies written)
 *   token-write    crypt_token_json_set of one token (both header copies)
 *
 * Each line: "NAME MEDIAN_MS" over ROUNDS rounds, the time this thread
 * spent on a CPU (CLOCK_THREAD_CPUTIME_ID): a loaded, shared host moves it
 * far less than wall time, and none of these waits on another process
 * (the header writes' fsync aside). keyslot-add and token-write are undone
 * between rounds (not timed).
 *
 * Usage: handoff-floor IMAGE KEYFILE [ROUNDS]   (IMAGE: a LUKS2 image whose
 * keyslot 0 opens with the contents of KEYFILE; it is written to)
 */
#include <errno.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyd/error.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define MAX_ROUNDS 200

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *name, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%s %.3f\n", name, t[n / 2]);
}

static void die(const char *what)
{
	fprintf(stderr, "handoff-floor: %s failed\n", what);
	exit(1);
}

static void bench_p384(int n)
{
	double kg[MAX_ROUNDS], sg[MAX_ROUNDS], vf[MAX_ROUNDS], dh[MAX_ROUNDS];
	static const unsigned char msg[] = "keyd handoff floor";

	for (int i = 0; i < n; i++) {
		EVP_PKEY *a, *b;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		EVP_PKEY_CTX *dc = NULL;
		unsigned char sig[128], sec[64];
		size_t sl = sizeof(sig), secl = sizeof(sec);
		double t0 = now_ms();

		a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		kg[i] = now_ms() - t0;
		b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		if (!a || !b || !md)
			die("P-384 keygen");
		t0 = now_ms();
		if (EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, a) != 1 ||
		    EVP_DigestSign(md, sig, &sl, msg, sizeof(msg)) != 1)
			die("ECDSA sign");
		sg[i] = now_ms() - t0;
		EVP_MD_CTX_reset(md);
		t0 = now_ms();
		if (EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, a) != 1 ||
		    EVP_DigestVerify(md, sig, sl, msg, sizeof(msg)) != 1)
			die("ECDSA verify");
		vf[i] = now_ms() - t0;
		t0 = now_ms();
		dc = EVP_PKEY_CTX_new(a, NULL);
		if (!dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, b) != 1 ||
		    EVP_PKEY_derive(dc, sec, &secl) != 1)
			die("ECDH");
		dh[i] = now_ms() - t0;
		EVP_PKEY_CTX_free(dc);
		EVP_MD_CTX_free(md);
		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
	}
	report("p384-keygen", kg, n);
	report("p384-sign", sg, n);
	report("p384-verify", vf, n);
	report("p384-ecdh", dh, n);
}

static void bench_luks(const char *img, const char *keyfile, int n)
{
	double op[MAX_ROUNDS], ad[MAX_ROUNDS], tk[MAX_ROUNDS];
	struct crypt_device *cd = NULL;
	char vk[128], pass[256];
	size_t vkl = sizeof(vk), pl = 0;
	uint8_t *key = NULL;
	size_t keyl = 0;

	if (kd_read_file(keyfile, 4096, &key, &keyl) < 0)
		die("reading the key file");
	if (crypt_init(&cd, img) < 0 || crypt_load(cd, CRYPT_LUKS2, NULL) < 0)
		die("crypt_load");
	for (int i = 0; i < n; i++) {
		double t0;
		int slot, tok;

		vkl = sizeof(vk);
		t0 = now_ms();
		if (crypt_volume_key_get(cd, 0, vk, &vkl, (const char *)key, keyl) < 0)
			die("crypt_volume_key_get");
		op[i] = now_ms() - t0;
		pl = (size_t)snprintf(pass, sizeof(pass), "bench-pass-%d", i);
		if (kd_volume_set_pbkdf(cd))
			die("kd_volume_set_pbkdf");
		t0 = now_ms();
		slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, vk, vkl, pass, pl);
		ad[i] = now_ms() - t0;
		if (slot < 0)
			die("crypt_keyslot_add_by_volume_key");
		t0 = now_ms();
		tok = crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
					   "{\"type\":\"bench\",\"keyslots\":[],\"x\":\"0\"}");
		tk[i] = now_ms() - t0;
		if (tok < 0 || crypt_token_json_set(cd, tok, NULL) < 0 ||
		    crypt_keyslot_destroy(cd, slot) < 0)
			die("undo");
	}
	memset(vk, 0, sizeof(vk));
	memset(key, 0, keyl);
	free(key);
	crypt_free(cd);
	report("keyslot-open", op, n);
	report("keyslot-add", ad, n);
	report("token-write", tk, n);
}

int main(int argc, char **argv)
{
	int n = argc > 3 ? atoi(argv[3]) : 20;

	if (argc < 3 || n < 1 || n > MAX_ROUNDS) {
		fprintf(stderr, "usage: handoff-floor IMAGE KEYFILE [ROUNDS 1..%d]\n", MAX_ROUNDS);
		return 2;
	}
	bench_p384(n);
	bench_luks(argv[1], argv[2], n);
	return 0;
}
