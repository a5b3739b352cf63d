/* SPDX-License-Identifier: Apache-2.0 */
/* Private interfaces between the simulator's chip and firmware parts. */
#ifndef KEYD_SIM_INTERNAL_H
#define KEYD_SIM_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyd/sim.h"

/* The chip secret (32 bytes), owned by the chip. */
const struct kd_secret *kd_sim_chip_secret(const struct kd_sim_chip *c);
/* VCEK key and certificate for a TCB, borrowed from the chip's cache. */
int kd_sim_chip_vcek(struct kd_sim_chip *c, uint64_t tcb, EVP_PKEY **ret_key, X509 **ret_cert);

/* SPLs of a TCB_VERSION in the chip's product layout (docs/snp-facts.md §2.6). */
struct kd_sim_spl {
	unsigned fmc, bl, tee, snp, ucode;
};
void kd_sim_tcb_spl(uint64_t tcb, enum kd_product p, struct kd_sim_spl *ret);
/* Every byte of a <= the same byte of b (each component is one byte). */
bool kd_sim_tcb_le(uint64_t a, uint64_t b);

#endif
