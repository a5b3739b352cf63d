/* SPDX-License-Identifier: Apache-2.0 */
/*
 * k-of-n recovery escrow (docs/formats.md §8: no single admin can recover).
 *
 * A random 32-byte recovery key R gets its own LUKS2 keyslot (PBKDF2-SHA512,
 * 1000 iterations, set explicitly: R is high-entropy; passphrase = hex(R)).
 * R is split k-of-n with Shamir's scheme (libgfshare, GF(2^8)). Each share
 * plaintext is
 *
 *   "KDSHARE1" | threshold u8 | count u8 | index u8 | key_len u8 |
 *   uuid_len u8 | uuid | commitment[48] | share[key_len]
 *
 * with commitment = SHA-384("keyd-escrow-v1" || R). It binds the share to
 * its volume and its escrow generation, so shares of two escrows are never
 * combined. Each plaintext is encrypted to one admin's certificate as CMS
 * EnvelopedData (AES-256-CBC content; RSA-OAEP or ECDH key transport), which
 * stock `openssl cms -decrypt` opens.
 *
 * The ciphertexts live in one "keyd-escrow" LUKS2 token, public metadata:
 *
 *   {"type": "keyd-escrow", "keyslots": ["2"], "version": 1,
 *    "threshold": 2, "commitment": "<96 hex>", "created": "<RFC 3339>",
 *    "shares": [{"index": 1, "admin": "<64 hex SHA-256 of the cert DER>",
 *                "subject": "CN=alice", "digest": "<64 hex SHA-256 of the
 *                share plaintext>", "cms": "<base64 DER>"}, ...]}
 *
 * Tamper evidence: a share whose plaintext does not hash to the token's
 * digest is refused before combining, and the combined key must match the
 * commitment (R is high-entropy, so the commitment reveals nothing). A
 * tampered share or token is therefore refused, never silently mis-combined
 * into a wrong key.
 *
 * Every function returns 0 or a negative KD_E* code with a kd_fail() detail.
 */
#ifndef KEYD_ESCROW_H
#define KEYD_ESCROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyd/secret.h"
#include "keyd/token.h"

struct kd_volume;
struct kd_launch;
struct kd_backend;
struct json_object;

#define KD_ESCROW_VERSION 1u
#define KD_ESCROW_KEY_SIZE 32u
#define KD_ESCROW_PASS_LEN (2u * KD_ESCROW_KEY_SIZE)
#define KD_ESCROW_MAX_SHARES 8u
#define KD_ESCROW_COMMIT_SIZE 48u
#define KD_ESCROW_FP_SIZE 32u
#define KD_ESCROW_DIGEST_SIZE 32u
#define KD_ESCROW_SUBJECT_MAX 127u
#define KD_ESCROW_CMS_MAX 4096u      /* one share's CMS DER */
#define KD_ESCROW_JSON_MAX 49152u    /* the whole token */
#define KD_ESCROW_SHARE_MAX 256u     /* one share plaintext */

/* ---------------------------------------------------------------- shares */

/* A decrypted share plaintext, parsed (the bytes stay in the secret). */
struct kd_escrow_share_info {
	unsigned threshold, count, index;
	char uuid[41];
	uint8_t commitment[KD_ESCROW_COMMIT_SIZE];
};

/* commitment = SHA-384("keyd-escrow-v1" || key). */
int kd_escrow_commitment(const struct kd_secret *key, uint8_t out[KD_ESCROW_COMMIT_SIZE]);

/*
 * Split key (KD_ESCROW_KEY_SIZE bytes) k-of-n (1 <= k <= n <= 8) into n share
 * plaintexts for volume uuid; ret_shares[i] has index i+1. Randomness comes
 * from OpenSSL RAND_priv_bytes (libgfshare's default is random(3)).
 */
int kd_escrow_split(const struct kd_secret *key, const char *uuid, unsigned k, unsigned n,
		    struct kd_secret *ret_shares[]);

/* Parse a share plaintext strictly (cursor; trailing bytes refused). */
int kd_escrow_share_parse(const struct kd_secret *share, struct kd_escrow_share_info *ret);

/*
 * Combine shares: all must parse and agree (uuid, threshold, count,
 * commitment), indices must be distinct, and at least threshold of them are
 * needed (KD_EREFUSED otherwise). If commitment is non-NULL, the shares must
 * carry it. The result must hash to the commitment (KD_ETAMPER otherwise).
 */
int kd_escrow_combine(struct kd_secret *const shares[], size_t n, const char *uuid,
		      const uint8_t *commitment, struct kd_secret **ret_key);

/* ---------------------------------------------------------------- CMS */

/* Certificates in PEM or DER. */
int kd_escrow_load_cert(const char *path, X509 **ret);
/*
 * A private key: a PEM or DER file (a passphrase-protected PEM key asks on
 * the terminal), or a "pkcs11:" URI (RFC 7512) of a key that stays in a
 * PKCS#11 token, through OpenSSL's pkcs11 engine ($KEYD_PKCS11_MODULE picks
 * the module). KD_EUNSUPP when the engine is not installed, KD_ENOENT when
 * no token key matches.
 */
int kd_escrow_load_key(const char *path, EVP_PKEY **ret);
/* SHA-256 of the certificate's DER encoding. */
int kd_escrow_cert_fp(X509 *cert, uint8_t out[KD_ESCROW_FP_SIZE]);

/* CMS EnvelopedData (DER) of a share to one recipient certificate. */
int kd_escrow_encrypt(const struct kd_secret *share, X509 *cert, uint8_t **ret_der,
		      size_t *ret_len);
/*
 * Decrypt a CMS EnvelopedData with key (+ its certificate, which picks the
 * recipient). KD_EVERIFY when this key cannot open it.
 */
int kd_escrow_decrypt(const uint8_t *der, size_t len, EVP_PKEY *key, X509 *cert,
		      struct kd_secret **ret_share);

/* ---------------------------------------------------------------- token */

struct kd_escrow_slot {
	unsigned index;
	uint8_t admin[KD_ESCROW_FP_SIZE];
	char subject[KD_ESCROW_SUBJECT_MAX + 1];
	uint8_t digest[KD_ESCROW_DIGEST_SIZE];
	uint8_t *cms; /* malloc'ed DER */
	size_t cms_len;
};

struct kd_escrow_token {
	int token_id; /* -1 before it is written */
	int keyslot;
	uint32_t version;
	unsigned threshold;
	size_t n;
	uint8_t commitment[KD_ESCROW_COMMIT_SIZE];
	char created[32];
	struct kd_escrow_slot shares[KD_ESCROW_MAX_SHARES];
};

/* Free the CMS buffers (the struct itself is the caller's). */
void kd_escrow_token_clear(struct kd_escrow_token *t);

/*
 * Strict parse (json-c): every key required, unknown keys and wrong types
 * refused, indices 1..count distinct, threshold <= count, hex/base64 exact.
 * Errors: KD_EMALFORMED naming the key, KD_EUNSUPP (version).
 */
int kd_escrow_token_parse(const char *json, size_t len, struct kd_escrow_token *ret);
int kd_escrow_token_format(const struct kd_escrow_token *t, char **ret);

/*
 * Build a token (keyslot -1) and the shares' CMS for key, k-of-n to certs.
 * created = now.
 */
int kd_escrow_build(const struct kd_secret *key, const char *uuid, unsigned k, X509 *const certs[],
		    size_t n, struct kd_escrow_token *ret);

/*
 * Check a decrypted share against the token: same threshold and count, its
 * index is listed, and its plaintext hashes to the recorded digest
 * (KD_ETAMPER otherwise).
 */
int kd_escrow_check_share(const struct kd_escrow_token *t, const struct kd_secret *share);

/* ---------------------------------------------------------------- volumes */

/*
 * Read the escrow token of v (re-reading the header through header.h).
 * KD_ENOENT if there is none, KD_ETAMPER if there are several or it does not
 * parse or names a keyslot that does not exist.
 */
int kd_escrow_find(struct kd_volume *v, struct kd_escrow_token *ret);
/*
 * Every escrow token, newest first (two after a rotation was interrupted
 * between writing the new escrow and removing the old one). Clear each.
 */
int kd_escrow_find_all(struct kd_volume *v, struct kd_escrow_token *ret, size_t max, size_t *ret_n);

/*
 * Add an escrow to v: fresh recovery key, keyslot (failpoint
 * escrow.after-keyslot), token (escrow.after-token). vk is the volume key.
 * If v already has an escrow it is KD_EEXIST unless replace: then the new
 * escrow goes in first and the old token and keyslot are removed after
 * (escrow.after-new), so an interruption leaves at least one working escrow.
 * The caller reopens v afterwards. *ret_keyslot optional.
 */
int kd_escrow_add(struct kd_volume *v, const struct kd_secret *vk, unsigned k, X509 *const certs[],
		  size_t n, bool replace, int *ret_keyslot);

/*
 * Recover the volume key from decrypted shares: allow-list (the volume's
 * health), escrow token, per-share digests, combine, commitment, then the
 * recovery keyslot through libcryptsetup on the very header that was
 * checked. Writes nothing.
 */
int kd_escrow_volume_key(struct kd_volume *v, struct kd_secret *const shares[], size_t n,
			 struct kd_secret **ret_vk);

/*
 * Remove the escrow (token first, keyslot after). Refused (KD_EREFUSED) when
 * no active or pending keyd slot remains, unless force. The caller reopens v.
 */
int kd_escrow_remove(struct kd_volume *v, bool force);

/*
 * Provisioning-time escrow (keyd enroll --escrow): open device, get the
 * volume key through this launch's keyd slot (allow-list, pin), load the
 * admin certificates from cert_paths and add a k-of-n escrow.
 */
int kd_escrow_enroll(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     const char *const cert_paths[], size_t n, unsigned k);

/* ---------------------------------------------------------------- admin */

/*
 * Recovery administration on the header as a whole (keyd-recover). Each
 * names what it would destroy in its refusal.
 */

/* crypt_header_backup of v to file (refused if file exists). */
int kd_admin_header_backup(struct kd_volume *v, const char *file);

/*
 * Asked after every check passed and before anything is written, with the
 * backup's UUID and label; a non-zero return (a KD_E* refusal) stops.
 */
typedef int (*kd_admin_confirm_fn)(const char *uuid, const char *label, void *ctx);

/*
 * Restore a header backup onto device. Refused (KD_EREFUSED) when the backup
 * is of another volume (UUID), fails the allow-list, or would drop keyslots
 * the device has and the backup lacks; force overrides only the last and a
 * device with no readable header to compare with. confirm may be NULL.
 */
int kd_admin_header_restore(const char *device, const char *file, bool force,
			    kd_admin_confirm_fn confirm, void *ctx);

/*
 * Crypto-erase: destroy every keyslot (libcryptsetup overwrites each
 * keyslot area) and every token. The data is unrecoverable afterwards.
 * *ret_n (optional): keyslots destroyed.
 */
int kd_admin_wipe(const char *device, size_t *ret_n);

/*
 * Kill one keyslot that no token describes (left by an interrupted
 * enrollment). Refused if a token describes it or it is the only keyslot.
 */
int kd_admin_kill_untokened(struct kd_volume *v, int keyslot);

/* The escrow steps of a volume-key rotation (kd_rotate_opts in keyd/rotate.h). */
struct kd_rotate_opts;
void kd_escrow_rotate_hooks(struct kd_rotate_opts *o);

#endif
