/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KEYD_HKDF_H
#define KEYD_HKDF_H

#include <stddef.h>

#include "keyd/secret.h"

/*
 * Purpose keys (docs/formats.md): HKDF-SHA384(ikm = derived key, salt, info =
 * purpose label) -> out_len bytes in a new secret. Via OpenSSL EVP_KDF.
 */
int kd_hkdf(const struct kd_secret *ikm, const void *salt, size_t salt_len, const char *info,
	    size_t out_len, struct kd_secret **ret);
/* The same with a binary info string (the simulator's derivation context). */
int kd_hkdf_bin(const struct kd_secret *ikm, const void *salt, size_t salt_len, const void *info,
		size_t info_len, size_t out_len, struct kd_secret **ret);

#endif
