/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd error codes.
 *
 * Every libkeyd function that can fail returns 0 on success or a negative
 * KD_E* code. A refusal also records one line of detail naming the check
 * that failed ("report signature does not verify under VCEK"); callers print
 * kd_err_detail() once, where they handle the failure. The detail is
 * thread-local and never contains key material.
 *
 * Every failure a function originates leaves through kd_fail(), never as a
 * bare "return KD_EIO;": kd_err_detail() matches the detail on its code
 * alone, so a bare code would surface the detail of an earlier, unrelated
 * failure with the same code. A code passed up from a callee is returned
 * as is (the callee recorded its detail). tests/unit/test_errors.c scans
 * the sources for bare failures; a caller prints kd_err_detail(r) of the
 * code it got, never of a code it assumes.
 *
 * A NULL argument that a public function documents as KD_EINVAL is a
 * refusal like any other. A broken internal contract (a NULL that no
 * caller may pass, an impossible state) is a programmer error: assert(),
 * which stays on in every build (the Makefile undefines NDEBUG).
 */
#ifndef KEYD_ERROR_H
#define KEYD_ERROR_H

#include <stddef.h>

enum {
	KD_OK = 0,
	KD_ENOMEM = -1,      /* allocation or mlock failed */
	KD_EINVAL = -2,      /* bad argument from the caller */
	KD_ETRUNC = -3,      /* input shorter than its format needs */
	KD_EMALFORMED = -4,  /* input does not follow its format */
	KD_ERESERVED = -5,   /* a must-be-zero field is not zero */
	KD_EUNSUPP = -6,     /* valid but unsupported (version, product, ...) */
	KD_EVERIFY = -7,     /* a signature or chain does not verify */
	KD_EPOLICY = -8,     /* verified, but refused by policy */
	KD_EFIRMWARE = -9,   /* the (simulated) AMD-SP returned an error status */
	KD_EIO = -10,        /* read/write/ioctl/socket failure */
	KD_ECRYPTO = -11,    /* OpenSSL failure */
	KD_ENOENT = -12,     /* not found */
	KD_EEXIST = -13,     /* already exists / would overwrite */
	KD_EREFUSED = -14,   /* refused to protect data (e.g. volume holds data) */
	KD_ETIMEOUT = -15,   /* a read or the whole exchange timed out */
	KD_EPROTO = -16,     /* peer broke the protocol */
	KD_ENOTSUP = -17,    /* the backend lacks this capability */
	KD_ETAMPER = -18,    /* header or metadata failed an integrity check */
	KD_ENOKEY = -19,     /* no key of this launch opens the volume */
	KD_ELUKS = -20,      /* libcryptsetup failure */
	KD__EMAX = -21,
};

/* Short generic message for a code ("signature does not verify"). */
const char *kd_strerror(int err);

/*
 * Record a one-line detail for the current failure and return err, so a
 * refusal reads: return kd_fail(KD_EPOLICY, "debug policy bit is set");
 */
int kd_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The detail of the last kd_fail() on this thread, or kd_strerror(err). */
const char *kd_err_detail(int err);

/* Forget the recorded detail. */
void kd_err_clear(void);

#endif
