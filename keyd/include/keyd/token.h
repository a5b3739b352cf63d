/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "keyd" LUKS2 token (docs/formats.md §5): public metadata of one keyd keyslot.
 *
 *   {"type": "keyd", "keyslots": ["1"], "version": 1, "backend": "sim",
 *    "root": "vcek", "fields": "policy,measurement,tcb", "vmpl": 0,
 *    "guest_svn": 0, "tcb": "<16 hex, report byte order>",
 *    "measurement": "<96 hex>", "policy": "0x30000",
 *    "chip": "<96 hex SHA-384 of CHIP_ID>" | "none", "label": "guestos-1.4",
 *    "state": "active", "svn": 0, "created": "2025-01-01T00:00:00Z",
 *    "pin": "<96 hex HMAC-SHA384>"}
 *
 * A pending token made by a handoff (format 2, keyd/pending.h,
 * docs/handoff-protocol.md) also carries the slot secrets wrapped to the new
 * version's key-agreement key and the old version's evidence:
 *
 *    "wrap": {"epk": "<64 hex X25519>", "ct": "<256 hex AES-256-GCM>"},
 *    "evidence": {"report": "<base64 of O's 1184-byte HELLO report>",
 *                 "exporter": "<96 hex>", "key": "<64 hex Ed25519>",
 *                 "sig": "<128 hex>", "manifest": { O's signed release manifest }}
 *
 * Both or neither; only on a pending token. `keyd commit` replaces such a
 * slot with one sealed to the new version itself.
 *
 * Nothing in it helps an attacker: the pin is an HMAC under a key only the
 * sealed launch can derive. Parsing is strict (json-c): every key required,
 * unknown keys and wrong types refused, strings bounded.
 */
#ifndef KEYD_TOKEN_H
#define KEYD_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KD_TOKEN_TYPE "keyd"
/* The recovery escrow's token (keyd/escrow.h), named here for every reader of tokens. */
#define KD_ESCROW_TOKEN_TYPE "keyd-escrow"
#define KD_TOKEN_VERSION 1u
#define KD_TOKEN_JSON_MAX 12288u
#define KD_TOKEN_LABEL_MAX 63u
#define KD_PIN_SIZE 48u
#define KD_MEASUREMENT_SIZE 48u
#define KD_CHIP_DIGEST_SIZE 48u
#define KD_KEX_PUB_LEN 32u
#define KD_WRAP_CT_LEN (64u + 48u + 16u) /* passphrase, pin key, GCM tag */
#define KD_EVIDENCE_REPORT_SIZE 1184u   /* KD_REPORT_SIZE */
#define KD_EVIDENCE_MANIFEST_MAX 4096u  /* compact JSON of O's manifest */
#define KD_EVIDENCE_EXPORTER_LEN 48u    /* the TLS exporter of O's handoff session */
#define KD_EVIDENCE_SIG_LEN 64u         /* Ed25519 */

enum kd_token_state { KD_TOKEN_PENDING = 0, KD_TOKEN_ACTIVE, KD_TOKEN_RETIRED };
const char *kd_token_state_name(enum kd_token_state s);
int kd_token_state_parse(const char *s, enum kd_token_state *ret);

struct kd_token {
	int token_id;   /* LUKS2 token number; -1 before it is written */
	int keyslot;
	uint32_t version;
	char backend[16];
	uint32_t root_key_select; /* KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT */
	uint64_t fields;          /* KD_FIELD_* */
	uint32_t vmpl;
	uint32_t guest_svn;
	uint64_t tcb;             /* kd_report TCB value (raw) */
	uint8_t measurement[KD_MEASUREMENT_SIZE];
	uint64_t policy;
	bool has_chip;
	uint8_t chip[KD_CHIP_DIGEST_SIZE]; /* SHA-384(CHIP_ID) */
	char label[KD_TOKEN_LABEL_MAX + 1];
	enum kd_token_state state;
	uint32_t svn;
	char created[32];
	uint8_t pin[KD_PIN_SIZE];
	/* Pending slot of a handoff (format 2): wrapped secrets and evidence. */
	bool has_wrap;
	uint8_t wrap_epk[KD_KEX_PUB_LEN];
	uint8_t wrap_ct[KD_WRAP_CT_LEN];
	uint8_t ev_report[KD_EVIDENCE_REPORT_SIZE];     /* O's HELLO report */
	uint8_t ev_exporter[KD_EVIDENCE_EXPORTER_LEN];  /* its session's exporter E */
	uint8_t ev_key[KD_KEX_PUB_LEN];                 /* O's Ed25519 handoff key, bound in it */
	uint8_t ev_sig[KD_EVIDENCE_SIG_LEN];            /* by that key, over the slot */
	char ev_manifest[KD_EVIDENCE_MANIFEST_MAX + 1]; /* compact JSON text */
};

/*
 * Parse a token's JSON text strictly. Errors: KD_EMALFORMED with a detail
 * naming the key ("keyd token: unknown key \"x\""), KD_EUNSUPP (version).
 * *ret is written only on success; token_id is set to -1.
 */
int kd_token_parse(const char *json, size_t len, struct kd_token *ret);

/* Serialise (json-c, plain format) into a malloc'ed NUL-terminated string. */
int kd_token_format(const struct kd_token *t, char **ret);

/* The token's public fields as a status JSON object (keyd and keyd-recover status). */
struct json_object;
struct json_object *kd_token_status_json(const struct kd_token *t);

/* SHA-384 digest of a 64-byte CHIP_ID, as stored in "chip". */
int kd_chip_digest(const uint8_t chip_id[64], uint8_t out[KD_CHIP_DIGEST_SIZE]);

#endif
