/* SPDX-License-Identifier: Apache-2.0 */
#include "vg.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

bool kd_under_valgrind(void)
{
	const char *v = getenv("KEYD_UNDER_VALGRIND");

	return v && *v && *v != '0';
}

size_t kd_vg_stride(void)
{
	return kd_under_valgrind() ? KD_VG_STRIDE : 1;
}

size_t kd_vg_first(void)
{
	static long phase = -1;
	const char *v;

	if (!kd_under_valgrind())
		return 0;
	if (phase < 0) {
		v = getenv("KEYD_VG_PHASE");
		if (v && *v)
			phase = strtol(v, NULL, 10) % KD_VG_STRIDE;
		else
			phase = (long)(((unsigned long)time(NULL) ^ (unsigned long)getpid()) % KD_VG_STRIDE);
		if (phase < 0)
			phase = 0;
		/* Named once so a failure can be replayed. */
		fprintf(stderr, "valgrind: exhaustive loops sample every %dth index from KEYD_VG_PHASE=%ld\n",
			KD_VG_STRIDE, phase);
	}
	return (size_t)phase;
}

int kd_vg_ms(int ms)
{
	return kd_under_valgrind() ? ms * KD_VG_SLOWDOWN : ms;
}
