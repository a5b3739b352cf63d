/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP ATTESTATION_REPORT codec (versions 2, 3/4 and 5; 1184 bytes,
 * little-endian). Offsets: SNP-FACTS.md §2 (go-sev-guest abi.ReportToProto,
 * cross-checked with virtee and every real vector in shared/vectors/snp).
 */
#ifndef KEYD_REPORT_H
#define KEYD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KD_REPORT_SIZE 0x4A0u
#define KD_REPORT_SIGNED_LEN 0x2A0u

enum kd_product {
	KD_PRODUCT_UNKNOWN = 0,
	KD_PRODUCT_MILAN,
	KD_PRODUCT_GENOA,
	KD_PRODUCT_TURIN,
};
const char *kd_product_name(enum kd_product p); /* "Milan", "Genoa", "Turin", "unknown" */
int kd_product_from_name(const char *s, enum kd_product *ret); /* case-insensitive */

/* Product from CPUID family/model (trustee get_processor_generation). */
enum kd_product kd_product_from_cpuid(uint8_t family, uint8_t model);

/* POLICY bits (SNP-FACTS §2). */
#define KD_POLICY_SMT (1ull << 16)
#define KD_POLICY_RSVD1 (1ull << 17) /* must be 1 */
#define KD_POLICY_MIGRATE_MA (1ull << 18)
#define KD_POLICY_DEBUG (1ull << 19)
#define KD_POLICY_SINGLE_SOCKET (1ull << 20)
#define KD_POLICY_CXL_ALLOW (1ull << 21)
#define KD_POLICY_MEM_AES_256_XTS (1ull << 22)
#define KD_POLICY_RAPL_DIS (1ull << 23)
#define KD_POLICY_CIPHERTEXT_HIDING (1ull << 24)
#define KD_POLICY_PAGE_SWAP_DISABLE (1ull << 25)
#define KD_POLICY_MBZ_MASK (~((1ull << 26) - 1))

/* signer info at 0x48 */
#define KD_SIGNER_AUTHOR_KEY_EN (1u << 0)
#define KD_SIGNER_MASK_CHIP_KEY (1u << 1)
#define KD_SIGNER_KEY_SHIFT 2
#define KD_SIGNER_KEY_MASK (7u << 2)
enum { KD_SIGNING_KEY_VCEK = 0, KD_SIGNING_KEY_VLEK = 1, KD_SIGNING_KEY_NONE = 7 };

/*
 * A TCB_VERSION decoded for one product. The raw 8 bytes are authoritative;
 * the layout differs between Milan/Genoa and Turin (SNP-FACTS §2 table).
 */
struct kd_tcb {
	uint64_t raw;
	uint8_t fmc;         /* Turin only */
	uint8_t bootloader;
	uint8_t tee;
	uint8_t snp;
	uint8_t microcode;
};
void kd_tcb_decode(uint64_t raw, enum kd_product p, struct kd_tcb *ret);
uint64_t kd_tcb_encode(const struct kd_tcb *t, enum kd_product p);
/* True if every component of a is >= the same component of b. */
bool kd_tcb_ge(uint64_t a, uint64_t b, enum kd_product p);

struct kd_report {
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t signature_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t signer_info;
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	uint8_t cpuid_fam_id; /* v3+ */
	uint8_t cpuid_mod_id;
	uint8_t cpuid_step;
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_tcb;
	uint64_t launch_mit_vector;  /* v5 */
	uint64_t current_mit_vector; /* v5 */
	uint8_t sig_r[72];           /* little-endian, as in the report */
	uint8_t sig_s[72];

	/* Derived at parse time. */
	enum kd_product product; /* from CPUID (v3+) or the v2 heuristic */
	int signing_key;         /* KD_SIGNING_KEY_* */
};

/*
 * Parse a report. Checks length (exactly KD_REPORT_SIZE), version (2..5),
 * and every MBZ range and bit of its version. Does not verify the signature.
 * Errors: KD_ETRUNC, KD_EMALFORMED, KD_EUNSUPP (version), KD_ERESERVED.
 * *ret is written only on success.
 */
int kd_report_parse(const uint8_t *buf, size_t len, struct kd_report *ret);

/*
 * Serialise a report (the simulator's job). out must hold KD_REPORT_SIZE
 * bytes. Signature bytes are copied from sig_r/sig_s.
 */
int kd_report_encode(const struct kd_report *r, uint8_t out[KD_REPORT_SIZE]);

/* Print every field, one per line, or as a JSON object (json-c). */
struct json_object;
struct json_object *kd_report_to_json(const struct kd_report *r);

#endif
