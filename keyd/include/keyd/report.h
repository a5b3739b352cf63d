/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP ATTESTATION_REPORT codec (versions 2, 3/4 and 5; 1184 bytes,
 * little-endian). Offsets: docs/snp-facts.md §2 (go-sev-guest abi.ReportToProto,
 * cross-checked with virtee and every real vector in tests/vectors/snp).
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

/* POLICY bits (docs/snp-facts.md §2.3). */
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
 * the layout differs between Milan/Genoa and Turin (docs/snp-facts.md §2.6).
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
/*
 * True if every component of a is >= the same component of b. For
 * KD_PRODUCT_UNKNOWN every one of the 8 bytes is compared, which is
 * conservative for both layouts (each component is one byte in both).
 */
bool kd_tcb_ge(uint64_t a, uint64_t b, enum kd_product p);

/*
 * The 8 TCB bytes in report (memory) order as 16 hex digits, e.g.
 * "0300000000000873" -- the form of fields.txt, `keyd report show` and
 * --min-tcb. kd_tcb_parse_hex() is its inverse (KD_EMALFORMED otherwise).
 */
#define KD_TCB_HEX_LEN 17
void kd_tcb_hex(uint64_t raw, char out[KD_TCB_HEX_LEN]);
int kd_tcb_parse_hex(const char *s, uint64_t *ret);
/* "bl=3 tee=0 snp=8 ucode=115", with "fmc=N " first on Turin. */
#define KD_TCB_STR_MAX 64
void kd_tcb_format(uint64_t raw, enum kd_product p, char *buf, size_t len);

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
 * The product of a report: v3+ from CPUID_FAM_ID/CPUID_MOD_ID; v2 reports
 * carry no CPUID, so (virtee's heuristic) CHIP_ID[0:8] non-zero with
 * CHIP_ID[8:64] all zero means Turin, anything else -- including an all-zero
 * (masked) CHIP_ID -- is KD_PRODUCT_UNKNOWN (Milan or Genoa: both share the
 * legacy TCB layout, which kd_tcb_decode uses for UNKNOWN). A verifier should
 * then take the product from the VCEK's productName.
 */
enum kd_product kd_report_product(const struct kd_report *r);

/*
 * Parse a report. Checks length (exactly KD_REPORT_SIZE), version (2..5),
 * and every MBZ range and bit of its version. Does not verify the signature.
 * Errors: KD_ETRUNC, KD_EMALFORMED, KD_EUNSUPP (version), KD_ERESERVED.
 * *ret is written only on success.
 *
 * POLICY bit 17 is "reserved, must be one": SNP_LAUNCH_START refuses a policy
 * without it, so genuine firmware never signs such a report. A clear bit 17
 * is therefore a parse error (KD_ERESERVED), like the MBZ bits, not a
 * verification-policy choice. Unknown PLATFORM_INFO bits are accepted (real
 * Turin sets bit 6), and SIGNING_KEY values 2..6 are kept as they are: a
 * verifier refuses anything but VCEK/VLEK.
 */
int kd_report_parse(const uint8_t *buf, size_t len, struct kd_report *ret);

/*
 * Serialise a report (the simulator's job). out must hold KD_REPORT_SIZE
 * bytes. Signature bytes are copied from sig_r/sig_s. Refuses (KD_EINVAL,
 * out untouched) what kd_report_parse would refuse: a version outside 2..5,
 * policy MBZ bits or a clear bit 17, signer-info MBZ bits, CPUID bytes on v2
 * or mitigation vectors below v5. product/signing_key are ignored.
 */
int kd_report_encode(const struct kd_report *r, uint8_t out[KD_REPORT_SIZE]);

/* "VCEK", "VLEK", "none" or "reserved" for a SIGNING_KEY value. */
const char *kd_signing_key_name(int signing_key);
/*
 * Enumerate the named POLICY / PLATFORM_INFO bits: the i-th name (as used in
 * the JSON) and its mask, or NULL past the end. For text output.
 */
const char *kd_policy_bit_name(size_t i, uint64_t *bit);
const char *kd_platform_bit_name(size_t i, uint64_t *bit);

/*
 * Every field as one JSON object (json-c); NULL on allocation failure.
 * Integers are JSON numbers; 64-bit bit fields are "0x.." strings; byte
 * arrays are lowercase hex; TCBs are {raw (kd_tcb_hex), [fmc], bootloader,
 * tee, snp, microcode} decoded for r->product. "cpuid" appears from v3 and
 * the mitigation vectors from v5; signature.r/.s are the 72 little-endian
 * bytes as stored in the report. "product_source" is "cpuid" or
 * "v2-heuristic" (see kd_report_product).
 */
struct json_object;
struct json_object *kd_report_to_json(const struct kd_report *r);

/*
 * MSG_REPORT_RSP (status u32, report_size u32, 24 reserved bytes, report at
 * 0x20): status must be 0 and report_size exactly KD_REPORT_SIZE. On
 * success *ret is a malloc'ed copy of the report. Shared by the snp and sim
 * backends.
 */
int kd_report_rsp_parse(const uint8_t *buf, size_t len, uint8_t **ret);

#endif
