/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exhaustive loops under valgrind. tests/run-valgrind.sh exports
 * KEYD_UNDER_VALGRIND; memcheck runs crypto 50-100x slower, so there an
 * exhaustive loop visits every KD_VG_STRIDE-th index only, starting at a
 * phase that changes from run to run (every index class is hit across runs;
 * KEYD_VG_PHASE=N replays one). The normal and ASan runs keep every index:
 *
 *	for (size_t off = kd_vg_first(); off < n; off += kd_vg_stride())
 */
#ifndef KEYD_TEST_VG_H
#define KEYD_TEST_VG_H

#include <stdbool.h>
#include <stddef.h>

#define KD_VG_STRIDE 37

bool kd_under_valgrind(void);
/* 1, or KD_VG_STRIDE under valgrind. */
size_t kd_vg_stride(void);
/* 0, or the run's phase in [0, KD_VG_STRIDE) under valgrind. */
size_t kd_vg_first(void);
/* A timeout for work that must succeed (a TLS handshake): ms, or
 * KD_VG_SLOWDOWN times that under valgrind. Bounds a test expects to hit
 * stay as they are. */
#define KD_VG_SLOWDOWN 20
int kd_vg_ms(int ms);

#endif
