/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to keyd/lib/attest: built-in roots and certificate helpers. */
#ifndef KEYD_ATTEST_INTERNAL_H
#define KEYD_ATTEST_INTERNAL_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "keyd/report.h"

struct kd_builtin_root {
	enum kd_product product;
	const char *ark_pem;
	const char *ask_pem;
	const char *asvk_pem;
	const char *ark_sha256; /* lowercase hex of the DER's SHA-256 */
};

#define KD_N_BUILTIN_ROOTS 3
extern const struct kd_builtin_root kd_builtin_roots[KD_N_BUILTIN_ROOTS];

/* One certificate from DER or PEM bytes; NULL if neither parses completely. */
X509 *kd_x509_load(const uint8_t *buf, size_t len);

/* The AMD extensions of an already-decoded certificate (see kd_vek_parse). */
struct kd_vek_info;
int kd_vek_parse_x509(X509 *cert, struct kd_vek_info *ret);

#endif
