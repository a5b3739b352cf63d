/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP launch digest, as sev-snp-measure 0.0.13 (mode snp) computes it
 * (SNP-FACTS.md §4 and §7).
 */
#ifndef KEYD_MEASURE_H
#define KEYD_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#define KD_LD_SIZE 48u

enum kd_vmm_type { KD_VMM_QEMU = 0, KD_VMM_EC2, KD_VMM_GCE };

struct kd_measure_params {
	const char *ovmf_path;      /* required */
	const char *kernel_path;    /* NULL: not given (hashes page measured as zero pages) */
	const char *initrd_path;    /* NULL: no initrd (hashes SHA-256("")) */
	const char *append;         /* NULL: empty command line */
	unsigned vcpus;             /* >= 1 */
	uint32_t vcpu_sig;          /* CPUID(1).EAX */
	uint64_t guest_features;    /* default 0x1 */
	enum kd_vmm_type vmm;
	const uint8_t *ovmf_hash;   /* optional precomputed OVMF digest (48 bytes) */
};

/*
 * Compute the launch digest. Errors: KD_ENOENT/KD_EIO for files,
 * KD_EMALFORMED for a truncated or garbled OVMF footer/metadata,
 * KD_EINVAL for a kernel given to an OVMF without a kernel-hashes section.
 */
int kd_measure(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE]);

/* vCPU signature from a QEMU -cpu name ("EPYC-v4"); KD_ENOENT if unknown. */
int kd_vcpu_sig_from_name(const char *name, uint32_t *ret);

#endif
