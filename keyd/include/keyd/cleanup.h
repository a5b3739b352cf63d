/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cleanup attributes for the library objects keyd holds, in the style of
 * _kd_free_ (util.h) and _kd_secret_ (secret.h).
 *
 * keyd has one error idiom: a failure returns at once, through kd_fail() if
 * it starts there, and every resource is released by the cleanup attribute
 * of the variable that holds it (goto out only where the release must happen
 * in a set order, or a result is built over several steps). A value that
 * outlives the function leaves with KD_TAKE_PTR(), which clears the holder.
 * A run of checks may share one early return: if ((r = a()) || (r = b()))
 * return r; stops at the first failure. No chains of "if (!r) r = ...;"
 * (tests/unit/test_errors.c scans for them).
 */
#ifndef KEYD_CLEANUP_H
#define KEYD_CLEANUP_H

#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static inline void kd_pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
	*p = NULL;
}
#define _kd_pkey_ __attribute__((cleanup(kd_pkey_freep)))

static inline void kd_md_ctx_freep(EVP_MD_CTX **p)
{
	EVP_MD_CTX_free(*p);
	*p = NULL;
}
#define _kd_md_ctx_ __attribute__((cleanup(kd_md_ctx_freep)))

static inline void kd_x509_freep(X509 **p)
{
	X509_free(*p);
	*p = NULL;
}
#define _kd_x509_ __attribute__((cleanup(kd_x509_freep)))

static inline void kd_ssl_ctx_freep(SSL_CTX **p)
{
	SSL_CTX_free(*p);
	*p = NULL;
}
#define _kd_ssl_ctx_ __attribute__((cleanup(kd_ssl_ctx_freep)))

static inline void kd_json_putp(json_object **p)
{
	json_object_put(*p);
	*p = NULL;
}
#define _kd_json_ __attribute__((cleanup(kd_json_putp)))

/* A file descriptor, -1 when there is none. */
static inline void kd_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
#define _kd_fd_ __attribute__((cleanup(kd_closep)))

#endif
