/* SPDX-License-Identifier: Apache-2.0 */
/* Private helpers of the handoff module. */
#ifndef KEYD_HANDOFF_INTERNAL_H
#define KEYD_HANDOFF_INTERNAL_H

#include <stdio.h>

#include "keyd/error.h"

/*
 * Re-record the current failure detail with a prefix ("disk.img: ...").
 * The detail is copied out first: kd_fail() formats into the very buffer
 * kd_err_detail() returns.
 */
static inline int kd_fail_prefix(int err, const char *prefix)
{
	char d[512];

	snprintf(d, sizeof(d), "%s", kd_err_detail(err));
	return kd_fail(err, "%s: %s", prefix, d);
}

#endif
