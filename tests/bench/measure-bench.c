/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-process comparison for `make bench`: kd_measure() on an OVMF image (read,
 * parse, per-page SHA-384 chain, VMSA) against one EVP SHA-384 pass over the
 * same bytes already in memory. Medians of N runs each, interleaved so both
 * see the same machine state.
 *
 * Usage: measure-bench OVMF [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "keyd/error.h"
#include "keyd/measure.h"
#include "keyd/util.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	struct kd_measure_params p = {.vcpus = 1, .vcpu_sig = 0x800f12, .guest_features = 1};
	uint8_t ld[KD_LD_SIZE], md[64];
	_kd_free_ uint8_t *img = NULL;
	double *tm, *tr;
	size_t len = 0, runs = 15;
	unsigned int n;
	int err;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s OVMF [RUNS]\n", argv[0]);
		return 2;
	}
	if (argc == 3)
		runs = strtoul(argv[2], NULL, 10);
	if (runs < 1 || runs > 10000)
		runs = 15;
	p.ovmf_path = argv[1];
	err = kd_read_file(argv[1], 64u << 20, &img, &len);
	if (err < 0) {
		fprintf(stderr, "%s\n", kd_err_detail(err));
		return 1;
	}
	tm = calloc(runs, sizeof(*tm));
	tr = calloc(runs, sizeof(*tr));
	if (!tm || !tr)
		return 1;
	for (size_t i = 0; i < runs; i++) {
		double t0 = now_ms();

		err = kd_measure(&p, ld);
		tm[i] = now_ms() - t0;
		if (err < 0) {
			fprintf(stderr, "kd_measure: %s\n", kd_err_detail(err));
			return 1;
		}
		t0 = now_ms();
		if (EVP_Digest(img, len, md, &n, EVP_sha384(), NULL) != 1)
			return 1;
		tr[i] = now_ms() - t0;
	}
	{
		double m = median(tm, runs), r = median(tr, runs);

		printf("in-process (%zu bytes, %zu runs): kd_measure %.2f ms, EVP sha384 %.2f ms "
		       "(%.0f MB/s), ratio %.2f\n",
		       len, runs, m, r, (double)len / 1e3 / r, m / r);
	}
	free(tm);
	free(tr);
	return 0;
}
