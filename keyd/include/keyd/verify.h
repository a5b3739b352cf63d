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

#endif
