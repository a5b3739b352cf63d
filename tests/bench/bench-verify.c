/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bench: reports verified per second on one core with a cached chain
 * (kd_verifier_verify: parse, SHA-384, ECDSA P-384, extension and policy
 * compares), next to OpenSSL's own P-384 verify rate (EVP_PKEY_verify on a
 * prepared context, digest and DER signature) in the same run, same key.
 * Rounds of both are interleaved and the best round of each is kept, so
 * frequency changes and noisy neighbours hit both sides alike.
 *
 * Usage: bench-verify VECTORS_DIR [SECONDS_PER_ROUND] [ROUNDS]
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"
#include "keyd/verify.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *load(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	uint8_t *b = NULL;

	snprintf(path, sizeof(path), "%s/snp/virtee-sev-milan/%s", dir, name);
	if (kd_read_file(path, 1 << 20, &b, len) < 0) {
		fprintf(stderr, "bench-verify: cannot read %s\n", path);
		exit(1);
	}
	return b;
}

/* The raw side: what OpenSSL does for one P-384 verification, nothing else. */
struct raw {
	EVP_PKEY_CTX *ctx;
	unsigned char md[48];
	unsigned char der[160];
	size_t derlen;
};

static int raw_setup(struct raw *r, const uint8_t *vek, size_t vek_len, const uint8_t *rep)
{
	const unsigned char *p = vek;
	X509 *x = d2i_X509(NULL, &p, (long)vek_len);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *q = r->der;
	int ok;

	if (!x || !sig)
		return -1;
	ECDSA_SIG_set0(sig, BN_lebin2bn(rep + 0x2A0, 72, NULL), BN_lebin2bn(rep + 0x2E8, 72, NULL));
	r->derlen = (size_t)i2d_ECDSA_SIG(sig, &q);
	r->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(x), NULL);
	ok = r->ctx && EVP_Digest(rep, KD_REPORT_SIGNED_LEN, r->md, NULL, EVP_sha384(), NULL) &&
	     EVP_PKEY_verify_init(r->ctx) == 1 && EVP_PKEY_CTX_set_signature_md(r->ctx, EVP_sha384()) == 1 &&
	     EVP_PKEY_verify(r->ctx, r->der, r->derlen, r->md, 48) == 1;
	ECDSA_SIG_free(sig);
	X509_free(x);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : KD_TEST_VECTORS;
	double secs = argc > 2 ? atof(argv[2]) : 0.3;
	int rounds = argc > 3 ? atoi(argv[3]) : 8;
	size_t rep_len, vek_len;
	uint8_t *rep = load(dir, "report.bin", &rep_len), *vek = load(dir, "vcek.der", &vek_len);
	struct kd_cert_inputs in = {.vek = vek, .vek_len = vek_len};
	struct kd_verifier *v = NULL;
	struct kd_verify_policy pol = {0};
	uint8_t meas[1][48];
	struct raw raw;
	double best_v = 0, best_r = 0, t0, dt;
	long n;
	int r;

	if ((r = kd_verifier_new(&in, &v, NULL)) < 0) {
		fprintf(stderr, "bench-verify: %s\n", kd_err_detail(r));
		return 1;
	}
	memcpy(meas[0], rep + 0x90, 48);
	pol.measurements = (const uint8_t(*)[48])meas;
	pol.n_measurements = 1;
	pol.has_min_tcb = true;
	pol.min_tcb = 0;
	if (kd_verifier_verify(v, rep, rep_len, &pol, NULL, NULL) < 0 || raw_setup(&raw, vek, vek_len, rep) < 0) {
		fprintf(stderr, "bench-verify: the vector does not verify: %s\n", kd_err_detail(KD_EVERIFY));
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		t0 = now();
		n = 0;
		do {
			for (int k = 0; k < 32; k++)
				if (kd_verifier_verify(v, rep, rep_len, &pol, NULL, NULL) < 0)
					return 1;
			n += 32;
		} while ((dt = now() - t0) < secs);
		if (n / dt > best_v)
			best_v = (double)n / dt;

		t0 = now();
		n = 0;
		do {
			for (int k = 0; k < 32; k++)
				if (EVP_PKEY_verify(raw.ctx, raw.der, raw.derlen, raw.md, 48) != 1)
					return 1;
			n += 32;
		} while ((dt = now() - t0) < secs);
		if (n / dt > best_r)
			best_r = (double)n / dt;
	}
	printf("verify: %.0f reports/s (cached chain), OpenSSL raw P-384 verify %.0f/s, ratio %.1f%% (target >= 80%%)\n",
	       best_v, best_r, 100.0 * best_v / best_r);
	kd_verifier_free(v);
	EVP_PKEY_CTX_free(raw.ctx);
	free(rep);
	free(vek);
	return 0;
}
