/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keyd/error.h"

static _Thread_local char detail[512];
static _Thread_local int detail_err;

static const char *const messages[] = {
	[0] = "success",
	[1] = "out of memory or cannot lock memory",
	[2] = "invalid argument",
	[3] = "input is truncated",
	[4] = "input is malformed",
	[5] = "reserved field is not zero",
	[6] = "unsupported",
	[7] = "verification failed",
	[8] = "refused by policy",
	[9] = "firmware returned an error",
	[10] = "I/O error",
	[11] = "cryptographic operation failed",
	[12] = "not found",
	[13] = "already exists",
	[14] = "refused to protect existing data",
	[15] = "timed out",
	[16] = "protocol violation by peer",
	[17] = "not supported by this backend",
	[18] = "integrity check failed (tampering?)",
	[19] = "no key of this launch opens the volume",
	[20] = "cryptsetup operation failed",
};

const char *kd_strerror(int err)
{
	if (err > 0 || err <= KD__EMAX)
		return "unknown error";
	return messages[-err];
}

int kd_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* One line: a refusal is printed as a single line on stderr. */
	for (char *p = detail; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	detail_err = err;
	return err;
}

const char *kd_err_detail(int err)
{
	if (detail[0] && detail_err == err)
		return detail;
	return kd_strerror(err);
}

void kd_err_clear(void)
{
	detail[0] = '\0';
	detail_err = 0;
}
