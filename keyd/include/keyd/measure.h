/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP launch digest, as sev-snp-measure 0.0.13 (mode snp) computes it
 * (docs/snp-facts.md §4 and §5).
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
 * KD_EINVAL for a kernel given to an OVMF without a kernel-hashes section,
 * for an initrd or non-empty append without a kernel (sev-snp-measure would
 * silently ignore them), and for vcpus outside 1..KD_MEASURE_MAX_VCPUS.
 * The kernel and initrd are streamed, never held in memory whole.
 */
#define KD_MEASURE_MAX_VCPUS 4096u
int kd_measure(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE]);

/* vCPU signature from a QEMU -cpu name ("EPYC-v4"); KD_ENOENT if unknown. */
int kd_vcpu_sig_from_name(const char *name, uint32_t *ret);

/* Same as kd_measure(), but calls trace (if not NULL) after every PAGE_INFO
 * update with the page type, GPA, the PAGE_INFO contents field and the new
 * running digest: a debugging map that lines up with the sev-snp-measure
 * trace in the vectors. */
typedef void (*kd_measure_trace_fn)(void *arg, unsigned page_type, uint64_t gpa,
				    const uint8_t contents[KD_LD_SIZE],
				    const uint8_t ld[KD_LD_SIZE]);
int kd_measure_traced(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE],
		      kd_measure_trace_fn trace, void *arg);

/* The digest after the OVMF pages only: the value for --snp-ovmf-hash. */
int kd_measure_ovmf_hash(const char *ovmf_path, uint8_t out[KD_LD_SIZE]);

/* vCPU signature (CPUID(1).EAX) from family, model and stepping (docs/snp-facts.md §5). */
uint32_t kd_vcpu_sig(unsigned family, unsigned model, unsigned stepping);

/*
 * OVMF footer table and SEV metadata, parsed from untrusted image bytes.
 * Exposed for the fuzzer and tests; kd_measure() uses it internally.
 */
#define KD_OVMF_MAX_SECTIONS 64u

enum kd_ovmf_section_type {
	KD_OVMF_SEC_MEM = 1,
	KD_OVMF_SECRETS = 2,
	KD_OVMF_CPUID = 3,
	KD_OVMF_SVSM_CAA = 4,
	KD_OVMF_KERNEL_HASHES = 0x10,
};

struct kd_ovmf_section {
	uint32_t gpa;
	uint32_t size;
	uint32_t type;  /* enum kd_ovmf_section_type */
};

struct kd_ovmf_info {
	uint64_t gpa;               /* 4 GiB - image size */
	uint32_t reset_eip;         /* SEV-ES reset block (AP entry) */
	int has_hash_table;
	uint32_t hash_table_gpa;
	uint32_t hash_table_size;
	unsigned n_sections;
	struct kd_ovmf_section sections[KD_OVMF_MAX_SECTIONS];
};

/*
 * Parse the footer table and SEV metadata of an OVMF image. Errors
 * (KD_EMALFORMED or KD_EUNSUPP, with a one-line detail): size not a positive
 * multiple of 4 KiB, footer GUID missing, entry sizes out of bounds, no SEV-ES
 * reset block, metadata header outside the image, bad "ASEV"
 * signature or version, item count beyond the header size, unknown section
 * type, section size not page-aligned. An image without a SEV metadata
 * entry parses with n_sections = 0 (older OVMF builds).
 */
int kd_ovmf_parse(const uint8_t *buf, size_t len, struct kd_ovmf_info *ret);

#endif
