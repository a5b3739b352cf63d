/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed LUKS2 state volumes (docs/formats.md §1).
 *
 * A keyd volume is LUKS2, aes-xts-plain64, a 512-bit random volume key and
 * 4096-byte sectors. Each keyd keyslot is PBKDF2-SHA512 at 1000 iterations
 * (set explicitly, never benchmarked: the secret is high-entropy) and is
 * described by one "keyd" token (token.h) holding the binding, the
 * measurement and TCB it is sealed to, a label, a state and the volume-key
 * pin.
 *
 *   derived   = MSG_KEY_REQ(VCEK, MEASUREMENT|GUEST_POLICY|TCB_VERSION,
 *                           vmpl 0, tcb = the token's TCB)
 *   passphrase = hex(HKDF-SHA384(derived, salt = UUID text, "keyd/v1/keyslot", 32))
 *   pin key    = HKDF-SHA384(derived, salt = UUID text, "keyd/v1/pin", 48)
 *   pin        = HMAC-SHA384(pin key, volume key || header parameters)
 *
 * Order of every unlock: header allow-list (header.h), pick the token for
 * this launch, derive, open the keyslot without activating, verify the pin
 * in constant time, only then activate. A refused unlock writes nothing.
 *
 * Every function returns 0 or a negative KD_E* code with a kd_fail() detail.
 */
#ifndef KEYD_VOLUME_H
#define KEYD_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyd/backend.h"
#include "keyd/header.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/token.h"

#define KD_VOLUME_KEY_SIZE 64u     /* aes-xts-plain64 with AES-256: 512 bits */
/* keyd enroll --integrity: LUKS2 authenticated encryption. The volume key is
 * the 64-byte XTS key followed by a 32-byte HMAC-SHA256 key; dm-integrity
 * stores a 32-byte tag per 4096-byte sector. */
#define KD_VOLUME_INTEGRITY "hmac(sha256)"
#define KD_VOLUME_INTEGRITY_KEY_SIZE 32u
#define KD_VOLUME_KEY_SIZE_MAX (KD_VOLUME_KEY_SIZE + KD_VOLUME_INTEGRITY_KEY_SIZE)
#define KD_VOLUME_SECTOR_SIZE 4096u
#define KD_VOLUME_CIPHER "aes"
#define KD_VOLUME_CIPHER_MODE "xts-plain64"
#define KD_KEYSLOT_PBKDF_ITER 1000u /* the floor the allow-list enforces */
#define KD_PASSPHRASE_RAW 32u       /* HKDF bytes; the passphrase is their hex */
#define KD_PASSPHRASE_LEN (2u * KD_PASSPHRASE_RAW)
#define KD_PIN_KEY_SIZE 48u
#define KD_PROVISIONING_LABEL "keyd-provisioning"
#define KD_INFO_KEYSLOT "keyd/v1/keyslot"
#define KD_INFO_PIN "keyd/v1/pin"

/*
 * What the current launch is, from a backend report with zero report data:
 * measurement, policy, committed TCB (sealing uses it), chip ID, product.
 */
struct kd_launch {
	struct kd_report report;
	char backend[16]; /* backend ops name: "snp", "sim", ... */
};

/* Get and parse a report (report_data all zero, VMPL 0). */
int kd_launch_get(struct kd_backend *b, struct kd_launch *ret);
/*
 * The same, and the certificate table the AMD-SP's report came with
 * (malloc'ed, possibly empty): one request where a caller needs both.
 */
int kd_launch_get_certs(struct kd_backend *b, struct kd_launch *ret, uint8_t **ret_certs,
			size_t *ret_certs_len);

/*
 * Fill a token record for sealing to this launch at its committed TCB:
 * default binding (VCEK, KD_FIELDS_SEAL, vmpl 0), measurement, policy,
 * chip-ID digest, label, svn, state, created = now. keyslot/pin are left for
 * kd_volume_add_slot to fill. label may be NULL ("").
 */
int kd_token_for_launch(const struct kd_launch *l, const char *label, uint32_t svn,
			enum kd_token_state state, struct kd_token *ret);

/* The MSG_KEY_REQ a token needs. */
void kd_token_key_req(const struct kd_token *t, struct kd_key_req *ret);

/* Derive the key token t is sealed to (its MSG_KEY_REQ). Errors: kd_backend_derive's. */
int kd_token_derive(struct kd_backend *b, const struct kd_token *t, struct kd_secret **ret);

/*
 * Keyslot passphrase and pin key from a derived key (docs/formats.md §3). This is what
 * a handoff peer N computes on its side and sends to O. uuid is the LUKS2
 * UUID text exactly as in the header (36 characters).
 */
int kd_seal_keys_from_derived(const struct kd_secret *derived, const char *uuid,
			      struct kd_secret **ret_pass, struct kd_secret **ret_pin_key);

/* Derive with the backend for token t and compute both keys. */
int kd_seal_keys_for_token(struct kd_backend *b, const struct kd_token *t, const char *uuid,
			   struct kd_secret **ret_pass, struct kd_secret **ret_pin_key);

/* ---------------------------------------------------------------- volumes */

struct kd_volume;

/*
 * Open a volume: DEVICE is a path or UUID=, LABEL=, PARTLABEL= (libblkid).
 * Reads both LUKS2 header copies itself (read-only), runs the allow-list on
 * the copy libcryptsetup would use and parses every keyd token. Nothing is
 * written. The allow-list result is kept in the health record; a volume that
 * fails it can still be opened for `status`, but every key operation is then
 * refused with the allow-list's error.
 * Errors: KD_ENOENT (no device), KD_EIO, KD_EMALFORMED (not LUKS2).
 */
int kd_volume_open(const char *device, struct kd_volume **ret);
void kd_volume_close(struct kd_volume *v);

const char *kd_volume_path(const struct kd_volume *v);  /* resolved path */
const char *kd_volume_uuid(const struct kd_volume *v);  /* LUKS2 UUID text */
const struct kd_header_health *kd_volume_health(const struct kd_volume *v);
/* Volume key length of v: KD_VOLUME_KEY_SIZE, or KD_VOLUME_KEY_SIZE_MAX for
 * an --integrity volume (segment 0 carries the integrity profile). */
size_t kd_volume_key_size(const struct kd_volume *v);
/* The keyd tokens, ordered by token id; borrowed, valid until close/reload. */
const struct kd_token *kd_volume_tokens(const struct kd_volume *v, size_t *ret_n);

/*
 * Why can (or can't) this launch unlock v? Picks the token it would use
 * (matching measurement, policy and chip, TCB <= committed; active preferred,
 * then pending) and returns its index in kd_volume_tokens() via ret_index.
 * Without a match: KD_ENOKEY with a detail in words ("sealed to measurement
 * a1f3... (label guestos-1.4), this launch is 9b2c...; no handoff enrolled
 * it"), or KD_EPOLICY (debug / other policy, other chip), or KD_EFIRMWARE
 * ("firmware TCB rolled back below the sealed TCB; no key can be derived").
 */
int kd_volume_match(const struct kd_volume *v, const struct kd_launch *l, size_t *ret_index);

/*
 * The whole check-derive-open-verify path without activation. On success
 * *ret_vk is the 64-byte volume key (a new secret) and *ret_tok a copy of the
 * token that opened it. Nothing is written to the header.
 * Errors: allow-list errors (KD_ETAMPER, KD_EPOLICY), kd_volume_match errors,
 * KD_ETAMPER (keyslot did not open or pin mismatch), KD_ELUKS.
 */
int kd_volume_get_key(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
		      struct kd_secret **ret_vk, struct kd_token *ret_tok);

/*
 * As kd_volume_get_key, and also hands out the keyslot passphrase (for the
 * token plugin and the crypttab keyscript, which give it to cryptsetup).
 * ret_pass and ret_tok may be NULL.
 */
int kd_volume_unlock_secrets(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			     struct kd_secret **ret_vk, struct kd_secret **ret_pass,
			     struct kd_token *ret_tok);

/*
 * As kd_volume_unlock_secrets, and also hands out the pin key of the same
 * derivation (for keyd rotate, which pins the new volume key with it): one
 * request to the AMD-SP instead of two. ret_pass, ret_pin_key and ret_tok
 * may be NULL.
 */
int kd_volume_unlock_keys(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			  struct kd_secret **ret_vk, struct kd_secret **ret_pass,
			  struct kd_secret **ret_pin_key, struct kd_token *ret_tok);

/*
 * Activate as /dev/mapper/NAME with the no_read/no_write workqueue flags,
 * then check the live dm table (target crypt, cipher, key size, device,
 * offset, sector size) through libdevmapper; on a mismatch the mapping is
 * removed again. extra_flags are further CRYPT_ACTIVATE_* flags.
 */
int kd_volume_activate(struct kd_volume *v, const char *name, const struct kd_secret *vk,
		       uint32_t extra_flags);

/*
 * Add a keyd keyslot + token. vk must be the volume key (checked against the
 * LUKS2 digest), pass/pin_key come from kd_seal_keys_from_derived for the
 * sealed launch, meta is the token record (kd_token_for_launch or built from
 * a handoff peer's report); its keyslot and pin are computed here. The new
 * slot is written first and the token after it, so a crash in between
 * leaves a slot without a token, which only ever adds a way in for the
 * sealed launch, and a failed token write destroys the slot again.
 * *ret_keyslot optional. fp_slot and fp_token name the caller's failpoints
 * (failpoint.h) after the keyslot write and after the token write (e.g.
 * handoff.after-keyslot and handoff.after-token); either may be NULL.
 */
int kd_volume_add_slot_fp(struct kd_volume *v, const struct kd_secret *vk,
			  const struct kd_secret *pass, const struct kd_secret *pin_key,
			  const struct kd_token *meta, const char *fp_slot, const char *fp_token,
			  int *ret_keyslot);

/*
 * Called by kd_volume_add_slot_sealed after the keyslot is written and the
 * token's keyslot and pin are filled in, before the token is written: a
 * handoff wraps the slot secrets and attaches its evidence here (pending.h).
 * uuid is the volume's LUKS2 UUID. An error destroys the new keyslot again.
 */
typedef int (*kd_slot_seal_fn)(void *ctx, const char *uuid, struct kd_token *t);

int kd_volume_add_slot_sealed(struct kd_volume *v, const struct kd_secret *vk,
			      const struct kd_secret *pass, const struct kd_secret *pin_key,
			      const struct kd_token *meta, const char *fp_slot, const char *fp_token,
			      kd_slot_seal_fn seal, void *seal_ctx, int *ret_keyslot);

/*
 * How an unlock opens a pending handoff slot: its secrets were made by the
 * old version and wrapped to this launch's key-agreement key, with the old
 * version's evidence (pending.h has the format and every check). The handoff
 * module provides the opener (kd_pending_opener; ctx the release keys that
 * judge the evidence, NULL for the image's pinned ones), reached as a
 * callback so that luks2 does not depend on handoff. A volume uses its own
 * opener if set, else the process default (the tools install
 * kd_pending_opener at start); with neither, a pending slot is refused
 * (KD_EUNSUPP). ctx is borrowed and must outlive v.
 */
struct kd_report;
typedef int (*kd_pending_open_fn)(const void *ctx, struct kd_backend *b,
				  const struct kd_report *own, const char *uuid,
				  const struct kd_token *t, struct kd_secret **ret_pass,
				  struct kd_secret **ret_pin_key);
void kd_volume_set_pending_opener(struct kd_volume *v, kd_pending_open_fn fn, const void *ctx);
void kd_volume_default_pending_opener(kd_pending_open_fn fn, const void *ctx);

/*
 * Kill every keyslot that no LUKS2 token of any type names. The allow-list
 * tolerates such a slot only as the remnant of a keyd write interrupted
 * between keyslot and token (or between token removal and keyslot kill),
 * and no unlock path ever uses one, so killing it never costs a way in; a
 * remnant of a handoff holds one-time secrets nobody keeps. fp_after (may be
 * NULL) is the failpoint after each kill. *ret_n optional: slots killed.
 */
int kd_volume_reclaim_orphans(struct kd_volume *v, const char *fp_after, size_t *ret_n);

/*
 * kd_volume_retire (never forced) with the caller's failpoint names around
 * the keyslot kill (the token is removed first).
 */
int kd_volume_retire_fp(struct kd_volume *v, int keyslot, const char *fp_before,
			const char *fp_after);

/*
 * Kill keyslots that no keyd token describes and that open with pass (the
 * caller's own passphrase): what a crash between keyslot and token write
 * leaves behind. Never the last active keyslot. The caller reopens v after
 * (its token list is unchanged, its header is not). *ret_n: slots killed.
 */
int kd_volume_reclaim_untokened(struct kd_volume *v, const struct kd_secret *pass,
				size_t *ret_n);
/*
 * Keyslots in v's allow-listed metadata that no keyd token names, i.e. what
 * kd_volume_reclaim_untokened could consider; (size_t)-1 when v has no
 * parsed metadata.
 */
size_t kd_volume_untokened_keyslots(const struct kd_volume *v);

/* Set the state of the keyd token on keyslot (pending -> active, ...). */
int kd_volume_set_state(struct kd_volume *v, int keyslot, enum kd_token_state state);

/*
 * Retire a keyd slot: its token is removed and the keyslot killed. Refused
 * (KD_EREFUSED) when it is the last active or pending keyd slot unless force.
 */
int kd_volume_retire(struct kd_volume *v, int keyslot, bool force);

/*
 * TCB roll-forward (docs/formats.md §2): when the launch's committed TCB is above the
 * TCB of the token that opens the volume, derive at the recorded TCB, add a
 * slot at the committed TCB with the same state, then retire the old slot.
 * *ret_done tells whether anything was re-keyed. vk is the volume key.
 */
int kd_volume_rekey(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
		    const struct kd_secret *vk, const struct kd_token *used, bool *ret_done);

/* ---------------------------------------------------------------- checked libcryptsetup handles */

struct crypt_device;
struct json_object;

/* What a libcryptsetup handle on a volume is for. */
enum kd_cd_mode {
	KD_CD_READ_HEADER,   /* metadata only, on a private copy */
	KD_CD_READ_KEYSLOTS, /* opening a keyslot, on a private copy with the areas */
	KD_CD_WRITE,         /* writing or activating: the device itself */
};

/* A libcryptsetup handle whose metadata passed the allow-list. */
struct kd_checked_cd {
	struct crypt_device *cd;
	struct json_object *meta; /* the allow-listed metadata cd holds */
	int snap_fd;              /* the private copy behind cd, or -1 */
};

/*
 * The one way keyd hands a volume to libcryptsetup. The header is read
 * again (a private copy for the READ modes, see kd_header_snapshot: the
 * device is never written, repaired or locked; the device itself for
 * KD_CD_WRITE, which also requires both header copies to agree), put
 * through the allow-list, required to carry v's UUID, loaded by
 * libcryptsetup, and libcryptsetup's view of the metadata must equal what
 * the allow-list passed: the host could swap the header between the check
 * and the use. Errors: the allow-list's (KD_ETAMPER, KD_EPOLICY),
 * KD_EREFUSED (copies disagree, WRITE), KD_ETAMPER (header changed),
 * KD_ELUKS, KD_EIO.
 */
int kd_volume_checked_cd(struct kd_volume *v, enum kd_cd_mode mode, struct kd_checked_cd *ret);

/*
 * keyd's keyslot PBKDF on cd: PBKDF2-SHA512 at KD_KEYSLOT_PBKDF_ITER, no
 * benchmark. keyd's passphrases are 256-bit derived or random secrets, so a
 * slow KDF adds nothing, and Argon2id's default 1 GiB does not fit an
 * initramfs. Every keyslot keyd writes uses it.
 */
int kd_volume_set_pbkdf(struct crypt_device *cd);

/* The volume-key pin of keyslot: HMAC-SHA384(pin key, volume key || header parameters). */
int kd_volume_pin(const struct kd_secret *pin_key, const struct kd_secret *vk,
		  struct json_object *meta, const char *uuid, int keyslot,
		  uint8_t out[KD_PIN_SIZE]);
void kd_checked_cd_free(struct kd_checked_cd *c);

/* ---------------------------------------------------------------- enroll */

struct kd_enroll_opts {
	const char *label; /* GuestOS version, may be NULL */
	uint32_t svn;
	bool force;        /* format over a signature / a completed keyd volume */
	bool integrity;    /* aes-xts-plain64 + hmac(sha256) through dm-integrity */
	bool integrity_no_wipe; /* skip initialising the tags (unwritten sectors
				 * then read as integrity errors until written) */
};

/*
 * Provision DEVICE: probe signatures (libblkid), format LUKS2 with the
 * provisioning label, add the first keyd slot (active) for this launch, then
 * clear the label. An unfinished provisioning (label still set, no active
 * keyd token) is redone without --force. *ret_redone (optional) reports it.
 * With o->integrity the format goes through device-mapper (dm-integrity
 * initialises its superblock and, unless integrity_no_wipe, every tag), so it
 * is refused up front where device-mapper is not available.
 * Errors: KD_EREFUSED (signature found / completed volume, no force), ...
 */
int kd_volume_enroll(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     const struct kd_enroll_opts *o, bool *ret_redone);

/* Resolve UUID=/LABEL=/PARTLABEL= or return a copy of a path (malloc'ed). */
int kd_device_resolve(const char *spec, char **ret_path);

/*
 * keyd reports every failure itself, in one line naming the check:
 * libcryptsetup's own log lines ("Device contains ambiguous signatures")
 * would add lines to it. The executables call this once; $KEYD_DEBUG shows
 * them again. Not for the token plugin (libcryptsetup's host owns its log).
 */
void kd_volume_quiet_libcryptsetup(void);

#endif
