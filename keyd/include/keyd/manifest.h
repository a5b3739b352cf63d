/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed release manifests (docs/formats.md §9): which launch measurements belong
 * to which GuestOS release, its SVN and validity window, signed with Ed25519
 * by k of n release keys that are pinned in the (measured) image.
 *
 * JSON form (json-c):
 *   {
 *     "format": "keyd-manifest-v1",
 *     "version": "1.4",                   label, 1..64 printable ASCII
 *     "svn": 3,                           0..2^32-1
 *     "measurements": ["<96 hex>", ...],  1..64 launch digests
 *     "not_before": "2026-01-01T00:00:00Z",
 *     "not_after":  "2027-01-01T00:00:00Z",
 *     "signatures": [ {"key": "<sha256 hex of SPKI DER>", "sig": "<128 hex>"} ]
 *   }
 * Unknown members are refused, so nothing unsigned can ride along.
 *
 * Canonical signed form (our own fixed serialisation; JSON text is never
 * signed, so whitespace, member order and hex case do not matter and cannot
 * be used to smuggle anything):
 *
 *   "keyd-manifest-v1\n"
 *   "version:" <len decimal> ":" <label bytes> "\n"
 *   "svn:" <decimal> "\n"
 *   "not_before:" <unix seconds decimal> "\n"
 *   "not_after:" <unix seconds decimal> "\n"
 *   "measurements:" <count decimal> "\n"
 *   <lowercase hex> "\n"   (one per measurement, in manifest order)
 *
 * Signature = Ed25519 (pure, EVP_DigestSign with NULL md) over those bytes.
 *
 * Release-key configuration (/etc/keyd/release-keys.json, baked into the
 * image): {"threshold": k, "keys": ["-----BEGIN PUBLIC KEY-----...", ...]}.
 */
#ifndef KEYD_MANIFEST_H
#define KEYD_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>

#include "keyd/report.h"

#define KD_MANIFEST_FORMAT "keyd-manifest-v1"
#define KD_MANIFEST_MAX_MEAS 64u
#define KD_MANIFEST_MAX_SIGS 32u
#define KD_MANIFEST_MAX_BYTES 32768u
#define KD_MANIFEST_LABEL_MAX 64u
#define KD_RELEASE_KEYS_MAX 32u
#define KD_RELEASE_KEYS_DEFAULT "/etc/keyd/release-keys.json"

struct kd_manifest_sig {
	uint8_t key_id[32]; /* SHA-256 of the signer's SubjectPublicKeyInfo DER */
	uint8_t sig[64];
};

struct kd_manifest {
	char version[KD_MANIFEST_LABEL_MAX + 1];
	uint32_t svn;
	uint8_t (*measurements)[48];
	size_t n_measurements;
	time_t not_before;
	time_t not_after;
	struct kd_manifest_sig *sigs;
	size_t n_sigs;
	bool has_min_peer_svn;
	uint32_t min_peer_svn;
	bool has_min_tcb[KD_PRODUCT_TURIN + 1]; /* indexed by enum kd_product */
	uint64_t min_tcb[KD_PRODUCT_TURIN + 1];
	/*
	 * "rotate": true asks every node that commits to this release to rotate
	 * its volume key right after the commit (keyd commit --manifest): the
	 * release revokes its predecessors' keys, so that a restored old header
	 * opens nothing. Signed when set; false is the same as absent; any other
	 * value is KD_EMALFORMED.
	 */
	bool rotate;
};

struct kd_release_keys {
	unsigned threshold;
	size_t n;
	void *pkeys[KD_RELEASE_KEYS_MAX]; /* EVP_PKEY * (Ed25519) */
	uint8_t ids[KD_RELEASE_KEYS_MAX][32];
};

/* Lifecycle. kd_manifest_new makes an empty, unsigned manifest. */
int kd_manifest_new(struct kd_manifest **ret);
void kd_manifest_free(struct kd_manifest *m);
static inline void kd_manifest_freep(struct kd_manifest **m)
{
	kd_manifest_free(*m);
	*m = NULL;
}
#define _kd_manifest_ __attribute__((cleanup(kd_manifest_freep)))
int kd_manifest_add_measurement(struct kd_manifest *m, const uint8_t meas[48]);

/*
 * Parse manifest JSON strictly (unknown members, bad hex, wrong lengths,
 * too many entries, duplicate measurements: KD_EMALFORMED). Does not verify.
 */
int kd_manifest_parse(const uint8_t *buf, size_t len, struct kd_manifest **ret);
/* Serialise to pretty JSON (malloc'ed NUL-terminated string). */
int kd_manifest_to_json(const struct kd_manifest *m, char **ret);

/* The canonical signed bytes (malloc'ed). */
int kd_manifest_canonical(const struct kd_manifest *m, uint8_t **ret, size_t *ret_len);

/*
 * Sign with an Ed25519 private key PEM. A previous signature by the same key
 * is replaced, never duplicated. Errors: KD_EINVAL (not Ed25519), KD_ECRYPTO.
 */
int kd_manifest_sign(struct kd_manifest *m, const uint8_t *key_pem, size_t key_len);

/* Release keys config. Errors: KD_EMALFORMED, KD_EINVAL (threshold 0 or > n,
 * a key that is not Ed25519, the same key listed twice). */
int kd_release_keys_parse(const uint8_t *buf, size_t len, struct kd_release_keys **ret);
int kd_release_keys_load(const char *path, struct kd_release_keys **ret);
void kd_release_keys_free(struct kd_release_keys *k);

/*
 * Verify: at least k valid signatures by distinct pinned keys (a signature by
 * an unknown key is ignored; two by the same key count once), and
 * not_before <= at <= not_after (at = 0: now). KD_EVERIFY or KD_EPOLICY with a
 * detail naming the check. ret_valid (optional) gets the count.
 */
int kd_manifest_verify(const struct kd_manifest *m, const struct kd_release_keys *keys, time_t at,
		       unsigned *ret_valid);

/*
 * The TCB floor this manifest gives for product p: 0 and *ret set, or
 * KD_ENOENT when it gives none.
 */
int kd_manifest_tcb_floor(const struct kd_manifest *m, enum kd_product p, uint64_t *ret);

/* 0 if meas is listed, else KD_EPOLICY "measurement 9a3f... not in manifest for version X". */
int kd_manifest_has_measurement(const struct kd_manifest *m, const uint8_t meas[48]);

/*
 * Generate an Ed25519 key pair: private key PEM (PKCS#8) and public key PEM
 * (SPKI), both malloc'ed NUL-terminated.
 */
int kd_manifest_keygen(char **ret_priv_pem, char **ret_pub_pem);

/* RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" <-> time_t (UTC only). */
int kd_manifest_parse_time(const char *s, time_t *ret);
void kd_manifest_format_time(time_t t, char out[32]);

#endif
