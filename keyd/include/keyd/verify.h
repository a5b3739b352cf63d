/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation verification: AMD chain (ARK -> ASK/ASVK -> VCEK/VLEK), the
 * report signature, VCEK extensions against the report, and policy.
 * Built-in roots: the ARK, ASK and ASVK of Milan, Genoa and Turin, the ARKs
 * pinned by SHA-256 fingerprint. A caller-supplied ARK (simulator, tests)
 * replaces them.
 */
#ifndef KEYD_VERIFY_H
#define KEYD_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "keyd/report.h"

/* Certificates as given by the caller; each DER or PEM. All optional but vek. */
struct kd_cert_inputs {
	const uint8_t *vek;        /* VCEK or VLEK */
	size_t vek_len;
	const uint8_t *ask;        /* ASK or ASVK */
	size_t ask_len;
	const uint8_t *ark;        /* replaces the built-in roots when set */
	size_t ark_len;
	const uint8_t *chain_pem;  /* KDS cert_chain: ASK (or ASVK) then ARK */
	size_t chain_pem_len;
	const uint8_t *cert_table; /* GHCB certificate table (ext report / auxblob); may hold all */
	size_t cert_table_len;
};

struct kd_verify_policy {
	const uint8_t (*measurements)[48]; /* any of these; NULL = not checked */
	size_t n_measurements;
	const uint8_t *chip_id;     /* 64 bytes or NULL */
	const uint8_t *report_data; /* 64 bytes or NULL */
	bool has_min_tcb;
	uint64_t min_tcb;           /* every component must be >= */
	bool allow_debug;           /* allows DEBUG and MIGRATE_MA */
	uint32_t max_vmpl;          /* default 0 */
	time_t at;                  /* 0 = now */
};

#define KD_VERIFY_MAX_CHECKS 40
struct kd_check_result {
	const char *name;  /* "ark-self-signature", "report-signature", ... */
	bool ok;
	char detail[200];
};
struct kd_verify_result {
	struct kd_check_result checks[KD_VERIFY_MAX_CHECKS];
	size_t n;
};

/*
 * Verify a report end to end. Returns 0 if every check passed; otherwise the
 * first failing check's code (KD_EVERIFY, KD_EPOLICY, KD_EMALFORMED...) with
 * a kd_fail() detail naming it. res (optional) lists every check run.
 * ret_report (optional) receives the parsed report on success.
 */
int kd_verify_report(const uint8_t *report, size_t len, const struct kd_cert_inputs *certs,
		     const struct kd_verify_policy *pol, struct kd_report *ret_report,
		     struct kd_verify_result *res);

/*
 * The AMD extensions of a VCEK or VLEK (OID prefix 1.3.6.1.4.1.3704.1,
 * docs/snp-facts.md §3.2), parsed with OpenSSL's DER decoders.
 */
struct kd_vek_info {
	bool is_vlek;             /* cspID present, no hwID */
	enum kd_product product;  /* from productName */
	char product_name[32];    /* "Milan-B0", "Genoa", "Turin", "Milan" */
	int struct_version;       /* .1; -1 if absent */
	uint8_t bl_spl, tee_spl, snp_spl, ucode_spl, fmc_spl;
	bool has_fmc_spl;         /* .3.9, Turin */
	uint8_t hwid[64];         /* .4, VCEK only */
	size_t hwid_len;          /* 64, or 8 on Turin; 0 for a VLEK */
	bool hwid_wrapped;        /* hwID came as an OCTET STRING (04 40 ...) */
	char csp_id[128];         /* .5, VLEK only */
};

/*
 * Parse the AMD extensions of a VCEK/VLEK certificate (DER or PEM). The
 * signature is not checked. Errors: KD_EMALFORMED (not a certificate, an
 * extension that is not the DER it must be, an SPL outside 0..255, hwID of
 * another length, both or neither of hwID and cspID), KD_EUNSUPP (unknown
 * productName), KD_ENOMEM.
 */
int kd_vek_parse(const uint8_t *cert, size_t len, struct kd_vek_info *ret);

/*
 * A verified certificate chain, kept for many reports (the service's cached
 * path): the RSA-PSS chain, the X.509 path validation and the extension
 * parsing happen once in kd_verifier_new(); kd_verifier_verify() then costs
 * one SHA-384, one ECDSA P-384 verification and compares.
 *
 * kd_verifier_new: chain checks that do not depend on time (validity is
 * checked on every kd_verifier_verify() against pol->at or now). Errors: as
 * kd_verify_report for the chain; KD_EINVAL when no VCEK/VLEK is given, or
 * --ark without an ASK; res (optional) lists the chain checks.
 * A verifier is not thread-safe (it keeps one EVP_PKEY_CTX); use one per
 * thread.
 */
struct kd_verifier;
int kd_verifier_new(const struct kd_cert_inputs *certs, struct kd_verifier **ret,
		    struct kd_verify_result *res);
int kd_verifier_verify(struct kd_verifier *v, const uint8_t *report, size_t len,
		       const struct kd_verify_policy *pol, struct kd_report *ret_report,
		       struct kd_verify_result *res);
const struct kd_vek_info *kd_verifier_vek(const struct kd_verifier *v);
void kd_verifier_free(struct kd_verifier *v);

/*
 * Verify only the chain ARK -> ASK/ASVK -> VCEK/VLEK (no report), including
 * validity at `at` (0 = now). ret_vek (optional) receives the parsed
 * extensions on success.
 */
int kd_verify_chain(const struct kd_cert_inputs *certs, time_t at, struct kd_vek_info *ret_vek,
		    struct kd_verify_result *res);

/* Parse an RFC 3339 time ("2025-01-01T00:00:00Z", offsets allowed). KD_EMALFORMED. */
int kd_parse_rfc3339(const char *s, time_t *ret);

#endif
