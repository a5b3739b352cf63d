/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volume-key rotation: re-encrypt a keyd volume in place under a fresh
 * random volume key (LUKS2 reencryption through libcryptsetup), so that no
 * header, keyslot or escrow share from before the rotation opens the data.
 *
 * Keyslots only guard copies of the volume key. A host that kept an old
 * header (or an admin who kept old escrow shares) still holds a way to the
 * old key, and retiring a keyslot does not take that away. Re-encrypting the
 * data under a new key does: the old key then decrypts nothing written
 * after the rotation, and nothing written before it once the rotation is done.
 *
 * Steps (failpoint names in brackets; the same steps are in the SPIN model,
 * threat-model/model/rotate.pml):
 *
 *   1. open through this launch's active slot A (allow-list, derive, pin);
 *      refuse integrity volumes, pending handoff slots (unless dropped) and
 *      an escrow without new admin certificates (unless dropped)
 *   2. new random key K'; add keyslot A' for K' with A's passphrase as an
 *      unbound key (CRYPT_VOLUME_KEY_NO_SEGMENT)      [rotate.after-keyslot]
 *   3. write A's token record for A', active, with the pin over K'
 *                                                     [rotate.after-token]
 *   4. remove every other token (A's, other launches', the retired previous
 *      version's, the escrow): libcryptsetup refuses token writes while it
 *      re-encrypts and kills every keyslot of the old key when it finishes,
 *      so no token may name one         [rotate.after-old-tokens]
 *                                                     [rotate.before-init]
 *   5. crypt_reencrypt_init_by_passphrase(old key -> A'): the header now
 *      carries the reencryption requirement, both digests and the resilience
 *      keyslot                                        [rotate.after-init]
 *   6. crypt_reencrypt_run on the same handle, hotzone by hotzone
 *                                                     [rotate.mid-run]
 *                                                     [rotate.before-finalize]
 *      libcryptsetup finishes by dropping the old digest and every keyslot
 *      bound to it                                    [rotate.after-finish]
 *   7. a fresh k-of-n escrow for K', to the admin certificates given or,
 *      on a resume without them, to those of the rotation's escrow plan
 *                                                     [rotate.after-escrow]
 *      then the plan goes                             [rotate.after-plan-done]
 *
 * The escrow plan. A rotation that re-splits the escrow records, before any
 * old token goes (step 3, [rotate.after-plan]), the admins' certificates and
 * the threshold in a "keyd-rotate-plan" token (no keyslot; docs/formats.md
 * §8.1), authenticated with this launch's pin key (HMAC-SHA384 over the
 * volume UUID, the new key's keyslot and its token's pin, the threshold and
 * the certificates' SHA-256). Whatever finishes the rotation (this process,
 * `keyd rotate --resume-only` at boot, `keyd rotate` again, `keyd-recover
 * finish-rotation`) does step 7 from the plan when it is given no
 * certificates; [rotate.before-escrow] sits between the finished data and
 * step 7. A plan that does not verify (the host changed it, or another
 * launch made it) is never used: the rotation finishes the data, fails with
 * "escrow re-split pending: ..." and keeps the plan, which `status` shows
 * until a launch re-splits (keyd rotate --escrow, keyd-recover escrow add).
 * A volume whose escrow would be dropped and for which no plan exists is
 * refused before any token goes.
 *
 * From step 2 to the finish the volume opens with this launch's passphrase,
 * which opens a keyslot of each key (keyd unlock activates by passphrase;
 * libcryptsetup replays an interrupted hotzone first). Running kd_rotate
 * again resumes from whatever step the header shows; it replays an
 * interrupted hotzone, and finishes itself the one state libcryptsetup 2.6
 * resumes wrongly (every data segment under K', metadata not yet final: its
 * resume starts again at offset 0 and re-encrypts data already under K').
 *
 * Why A' has the same passphrase as A: a LUKS2 volume in reencryption is
 * opened with one passphrase that must open a keyslot of each digest; and a
 * keyd passphrase is a function of the launch and the volume UUID, so the
 * same launch always derives the same one. Freshness comes from K', which
 * no earlier keyslot holds; the pin (an HMAC over K') is therefore new too.
 *
 * Resilience: "journal" by default. Each hotzone is first written to the
 * journal in the header's keyslots area and committed there, then to the
 * data area; after power loss at any point the next open replays it. It
 * assumes nothing about the device (checksum mode instead assumes that a
 * 4096-byte sector is written whole or not at all, which virtual disks and
 * their host caches do not promise), at the cost of writing every byte twice.
 * "checksum" is offered for speed where that assumption holds.
 *
 * Every function returns 0 or a negative KD_E* code with a kd_fail() detail.
 */
#ifndef KEYD_ROTATE_H
#define KEYD_ROTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

struct json_object;
struct kd_backend;
struct kd_launch;
struct kd_volume;
struct kd_secret;

#define KD_ROTATE_RESILIENCE_DEFAULT "journal"
#define KD_ROTATE_PLAN_TOKEN_TYPE "keyd-rotate-plan"
#define KD_ROTATE_PLAN_MAX 8u /* certificates in a plan (KD_ESCROW_MAX_SHARES) */

/* Where a volume stands. */
enum kd_rotate_phase {
	KD_ROTATE_NONE = 0,  /* plain keyd header */
	KD_ROTATE_PREPARED,  /* new key in an unbound keyslot, data untouched */
	KD_ROTATE_RUNNING,   /* reencryption in progress (clean or interrupted) */
};

struct kd_rotate_progress {
	uint64_t size;    /* bytes of data to re-encrypt */
	uint64_t done;    /* bytes re-encrypted so far */
	uint64_t start;   /* done when this run began (a resume starts above 0) */
	double elapsed;   /* seconds since this run began */
	double rate;      /* bytes/s over this run */
};

struct kd_rotate_opts {
	const char *name;         /* active mapping for an online rotation; NULL:
				   * look for one, offline if none */
	const char *resilience;   /* "journal" (NULL) or "checksum" */
	uint64_t max_rate;        /* bytes/s; 0 = unthrottled */
	uint64_t hotzone;         /* max hotzone bytes; 0 = libcryptsetup's choice */
	bool drop_pending;        /* pending handoff slots of other launches */
	bool drop_escrow;         /* remove the escrow instead of re-splitting */
	bool resume_only;         /* finish a rotation in progress; start none
				   * (the boot path: ret->idle when there is none) */
	X509 *const *escrow_certs; /* re-split the escrow to these admins ... */
	size_t n_escrow_certs;
	unsigned escrow_threshold; /* ... k-of-n; 0 = the old escrow's k */
	/*
	 * The recovery escrow lives above this module (keyd/escrow.h), so its
	 * two steps come from the caller (kd_escrow_rotate_hooks): escrow_find
	 * reports an existing escrow's k and n (KD_ENOENT: none); escrow_add
	 * re-splits it for the new volume key. With escrow_find NULL, a volume
	 * whose header holds an escrow token is refused.
	 */
	int (*escrow_find)(struct kd_volume *v, unsigned *ret_k, size_t *ret_n, void *usr);
	int (*escrow_add)(struct kd_volume *v, const struct kd_secret *vk, unsigned k,
			  X509 *const *certs, size_t n_certs, void *usr);
	/*
	 * The escrow plan (above): plan_make returns the token JSON for a
	 * k-of-n plan to certs, made with pin_key for the new key's keyslot and
	 * its token's pin; plan_open verifies such JSON (KD_ETAMPER when it does
	 * not) and returns the plan's k and certificates (ret_certs holds
	 * KD_ROTATE_PLAN_MAX; the caller frees them).
	 */
	int (*plan_make)(const struct kd_secret *pin_key, const char *uuid, int keyslot,
			 const uint8_t *pin, unsigned k, X509 *const *certs, size_t n,
			 char **ret_json, void *usr);
	int (*plan_open)(const char *json, const struct kd_secret *pin_key, const char *uuid,
			 int keyslot, const uint8_t *pin, unsigned *ret_k, X509 **ret_certs,
			 size_t *ret_n, void *usr);
	void *escrow_usr;
	/* Called after every hotzone; a non-zero return stops the run (it can
	 * be resumed). */
	int (*progress)(const struct kd_rotate_progress *p, void *usr);
	void *usr;
};

struct kd_rotate_result {
	bool idle;             /* resume_only and no rotation in progress: nothing done */
	bool resumed;          /* a rotation found in progress was finished */
	bool online;
	bool recovered;        /* an interrupted hotzone was replayed first */
	int keyslot;           /* this launch's keyslot for the new key */
	size_t tokens_dropped; /* keyd and escrow tokens of the old key removed */
	bool escrow_resplit;
	bool escrow_from_plan; /* ... to the certificates of the escrow plan */
	bool escrow_only;      /* resume_only: the data was already under the new key
				* (an earlier run); only the escrow step ran */
	uint64_t bytes;        /* re-encrypted in this run */
	double seconds;
	char resilience[16];
};

/*
 * Rotate device's volume key (or finish an interrupted rotation) for the
 * launch l, whose slot must be active. Errors: the unlock errors of
 * kd_volume_get_key, KD_EREFUSED (integrity volume, pending slot, escrow
 * without certificates, this launch only pending), KD_ELUKS.
 */
int kd_rotate(const char *device, struct kd_backend *b, const struct kd_launch *l,
	      const struct kd_rotate_opts *o, struct kd_rotate_result *ret);

/* What `status` shows about a rotation; read from the header only. */
struct kd_rotate_status {
	enum kd_rotate_phase phase;
	bool interrupted;      /* a hotzone awaits recovery (crash mid-write) */
	char resilience[16];
	uint64_t done, size;   /* bytes; size 0 when unknown */
	char advice[320];
	/* A "keyd-rotate-plan" token: the escrow is still to be re-split
	 * (k-of-n, n certificates); plan_advice says what happens next. */
	bool escrow_pending;
	unsigned plan_k;
	size_t plan_n;
	char plan_advice[512];
};

/* From the parsed LUKS2 metadata of the device at path (size from stat). */
int kd_rotate_status_of(struct json_object *meta, const char *path, struct kd_rotate_status *ret);
/* The same, for an open volume (re-reads its header). */
int kd_rotate_status(struct kd_volume *v, struct kd_rotate_status *ret);
struct json_object *kd_rotate_status_json(const struct kd_rotate_status *s);
const char *kd_rotate_phase_name(enum kd_rotate_phase p);

/*
 * The allow-list's view of a header in the middle of a rotation (header.c):
 * for a plain header *ret_view is NULL. For a prepared or running rotation,
 * the rotation-specific parts are checked here (the requirement is exactly
 * online reencryption; one reencrypt keyslot, mode reencrypt, forward,
 * journal or checksum, inside the keyslots area; every segment crypt
 * aes-xts-plain64 with 4096-byte sectors and no foreign flag; the old and
 * final segments identical but for their flags; the old-key, new-key and
 * reencrypt digests and nothing else), and *ret_view is the header as it
 * will be after the rotation: segment 0 is the final segment, one digest
 * binds every luks2 keyslot to it, no requirements. The regular allow-list
 * and the pin run on that view, so a keyslot's pin does not change while
 * its volume is being rotated. Errors: KD_ETAMPER naming the check.
 */
int kd_rotate_header_view(struct json_object *meta, struct json_object **ret_view);

/*
 * What a keyslot no token describes is for, during a rotation: the old
 * volume key (needed until the rotation finishes) or the reencryption
 * journal; NULL otherwise. For status, so that nobody retires them.
 */
const char *kd_rotate_keyslot_role(struct json_object *meta, int keyslot);

/* Is this header (parsed metadata) in a prepared or running rotation? */
enum kd_rotate_phase kd_rotate_phase_of(struct json_object *meta);

/*
 * Activate a volume whose rotation is running: both keys are needed, and
 * libcryptsetup opens one keyslot of each digest with this launch's
 * passphrase (which kd_volume_unlock_secrets checked against the pin), and
 * recovers an interrupted hotzone first.
 */
int kd_rotate_activate(struct kd_volume *v, const char *name, const struct kd_secret *pass,
		       uint32_t flags);

#endif
