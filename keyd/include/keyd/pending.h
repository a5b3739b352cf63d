/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pending handoff slots, format 2 (docs/handoff-protocol.md).
 *
 * N never discloses anything derived from its sealing key except one public
 * key. O makes fresh slot secrets for every volume of every handoff and
 * stores them in N's pending token wrapped to that key, together with
 * evidence (an attestation report of O) that an attested, signed release
 * made the slot.
 *
 *   derived  = MSG_KEY_REQ(N's sealing binding, the token's binding)
 *   kex seed = HKDF-SHA384(derived, salt "", info "keyd/v2/handoff-kex", 32)
 *   N's key  = X25519 private key = kex seed; pub = its 32-byte public key
 *
 * Wrap (O, per volume, per handoff):
 *   e        = fresh X25519 key; epk its public key
 *   z        = X25519(e, pub)
 *   k || iv  = HKDF-SHA384(z, salt = epk || pub, info "keyd/v2/wrap", 32 + 12)
 *   aad      = "keyd-pending-v2" || UUID (36 ASCII) || le32 keyslot
 *              || N's measurement (48) || le32 N's SVN
 *   ct       = AES-256-GCM(k, iv, aad, passphrase (64 hex chars) || pin key (48)) || tag (16)
 *
 * Evidence (O, per volume):
 *   O makes a fresh Ed25519 key for the handoff; its HELLO report binds it
 *   (report_data = SHA-512("keyd-handoff-v2" || 'O' || SHA-384(
 *   "keyd-handoff-v2/bind" || E || 32 || key)), handoff.h).
 *   D   = SHA-384(aad || pub || epk || ct || pin)
 *   sig = Ed25519(key, "keyd-pending-v2/evidence" || D)
 *   The token carries O's HELLO report, E, the key, sig and O's signed
 *   manifest. N accepts the slot only if the report verifies under this
 *   chip's own VCEK and binds E and the key, sig verifies, O's measurement
 *   is in that manifest, the manifest is signed by k of the release keys
 *   pinned in N's image, O's SVN <= N's, O's SVN is not below the revocation
 *   floor pinned in N's image (and O's reported TCB not below its pinned TCB
 *   floor), and no debug / migration agent / VMPL above 0. (One report per
 *   handoff, not per volume: the AMD-SP's signature is the slow step.)
 *
 * All of it through OpenSSL EVP. Every function returns 0 or a negative
 * KD_E* code with a kd_fail() detail; ret_ parameters are set on success only.
 */
#ifndef KEYD_PENDING_H
#define KEYD_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "keyd/backend.h"
#include "keyd/manifest.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/token.h"

#define KD_PENDING_CONTEXT "keyd-pending-v2"
#define KD_PENDING_EVIDENCE_CONTEXT "keyd-pending-v2/evidence"
#define KD_INFO_KEX "keyd/v2/handoff-kex"
#define KD_INFO_WRAP "keyd/v2/wrap"

/*
 * What N's own image pins to judge a pending slot by. N's signed release
 * manifest cannot be in N's image (it lists the image's measurement, which
 * would then depend on itself), so the release's revocation floor is pinned
 * beside the release keys, as a measured file: one decimal SVN. Without it a
 * pending slot is refused, unless the image opts out by shipping
 * KD_NO_PEER_SVN_FLOOR_FILE. The TCB floor file is the one the handoff uses
 * (16 hex digits, report byte order); at boot it is applied when present.
 */
#define KD_PEER_SVN_FLOOR_FILE "/etc/keyd/peer-svn-floor"
#define KD_NO_PEER_SVN_FLOOR_FILE "/etc/keyd/no-peer-svn-floor"
#define KD_TCB_FLOOR_FILE "/etc/keyd/tcb-floor"

struct kd_pending_policy {
	const struct kd_release_keys *keys; /* NULL: KD_RELEASE_KEYS_DEFAULT */
	bool has_peer_svn_floor;            /* O's svn must be >= peer_svn_floor */
	uint32_t peer_svn_floor;
	bool no_peer_svn_floor;             /* explicit opt-out: no revocation at boot */
	bool has_tcb_floor;                 /* O's reported TCB must be >= tcb_floor */
	uint64_t tcb_floor;
};

struct evp_pkey_st;

/* N's static key-agreement key from a derived key (X25519). *ret is an EVP_PKEY. */
int kd_kex_from_derived(const struct kd_secret *derived, struct evp_pkey_st **ret,
			uint8_t ret_pub[KD_KEX_PUB_LEN]);

/* Derive with the backend for token t (its binding), then as kd_kex_from_derived. */
int kd_kex_for_token(struct kd_backend *b, const struct kd_token *t, struct evp_pkey_st **ret,
		     uint8_t ret_pub[KD_KEX_PUB_LEN]);

/*
 * Fresh slot secrets: a 64-character hex passphrase (256 random bits) and a
 * 48-byte pin key, from the OpenSSL private DRBG.
 */
int kd_pending_fresh_secrets(struct kd_secret **ret_pass, struct kd_secret **ret_pin_key);

/*
 * O: wrap pass || pin_key to N's public key for token t (t->keyslot,
 * measurement and svn are the associated data; uuid is the LUKS2 UUID
 * text). Fills t->wrap_epk and t->wrap_ct and sets t->has_wrap.
 */
int kd_pending_wrap(const uint8_t pub[KD_KEX_PUB_LEN], const char *uuid,
		    const struct kd_secret *pass, const struct kd_secret *pin_key,
		    struct kd_token *t);

/*
 * N: unwrap the secrets of a wrapped pending token with N's private key.
 * KD_ETAMPER when the tag does not verify (another key, another volume,
 * slot, measurement or SVN, or altered bytes).
 */
int kd_pending_unwrap(struct evp_pkey_st *priv, const char *uuid, const struct kd_token *t,
		      struct kd_secret **ret_pass, struct kd_secret **ret_pin_key);

/* D for token t (wrap and pin filled in) and N's public key. */
int kd_pending_evidence_digest(const char *uuid, const struct kd_token *t,
			       const uint8_t pub[KD_KEX_PUB_LEN], uint8_t out[48]);

/* O's handoff signing key (Ed25519), made fresh for each handoff. */
int kd_evidence_key_new(struct evp_pkey_st **ret, uint8_t ret_pub[KD_KEX_PUB_LEN]);

/* O: sign token t's evidence digest; fills t->ev_sig and t->ev_key. */
int kd_pending_evidence_sign(struct evp_pkey_st *key, const char *uuid, struct kd_token *t,
			     const uint8_t pub[KD_KEX_PUB_LEN]);

/*
 * This chip's VCEK (DER, malloc'ed), proven to be the key that signs this
 * launch's reports: a fresh report from our own AMD-SP must verify under
 * it, so a host that hands over another certificate gains nothing. The
 * source today is the backend's certificate table; a certificate cache can
 * be wired in here.
 * Errors: KD_ENOENT (no VCEK available), KD_EVERIFY (it does not sign our
 * own report), backend errors.
 */
int kd_own_vcek(struct kd_backend *b, uint8_t **ret_der, size_t *ret_len);

/*
 * Fill the floors of p that are neither set nor opted out of from the files
 * the image pins (dir: NULL for /etc/keyd): peer-svn-floor, else
 * no-peer-svn-floor (the opt-out); tcb-floor. An absent file leaves the
 * floor unset. Errors: KD_EMALFORMED (a file that is not one number),
 * KD_EIO.
 */
int kd_pending_policy_from_image(struct kd_pending_policy *p, const char *dir);

/*
 * N at boot: check the evidence of wrapped pending token t (see above).
 * own is this launch's report. pol->keys are the pinned release keys (not
 * NULL here); pol's floors are applied to O's release and report, and a
 * policy with neither a revocation floor nor its opt-out refuses.
 * Errors: KD_EVERIFY / KD_EPOLICY / KD_EMALFORMED with a detail naming the
 * check ("pending slot evidence: ...").
 */
int kd_pending_verify_evidence(struct kd_backend *b, const struct kd_report *own,
			       const struct kd_pending_policy *pol, const char *uuid,
			       const struct kd_token *t, const uint8_t pub[KD_KEX_PUB_LEN]);

/*
 * The whole boot-side open of a wrapped pending token: derive N's key for
 * the token's binding, verify the evidence, unwrap. pol may be NULL, its
 * keys may be NULL (the image's pinned keys, KD_RELEASE_KEYS_DEFAULT), and
 * floors it leaves unset are read from the image (kd_pending_policy_from_image).
 */
int kd_pending_open(struct kd_backend *b, const struct kd_report *own,
		    const struct kd_pending_policy *pol, const char *uuid, const struct kd_token *t,
		    struct kd_secret **ret_pass, struct kd_secret **ret_pin_key);

/*
 * kd_pending_open in the shape of volume.h's kd_pending_open_fn, for
 * kd_volume_set_pending_opener / kd_volume_default_pending_opener: pol is
 * a const struct kd_pending_policy * or NULL (everything from the image).
 */
int kd_pending_opener(const void *pol, struct kd_backend *b, const struct kd_report *own,
		      const char *uuid, const struct kd_token *t, struct kd_secret **ret_pass,
		      struct kd_secret **ret_pin_key);

#endif
