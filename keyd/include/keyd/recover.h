/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin workflows behind keyd-recover (and the parts keyd shares with
 * it): the whole-picture status, the re-key, retire with its "another way
 * in" rule, recovery from k escrow shares with re-enrollment, and the
 * operator's share files.
 *
 * The tools only parse options and print; every check and every header
 * write is here, in the order the threat model relies on.
 *
 * Every function returns 0 or a negative KD_E* code with a kd_fail() detail.
 */
#ifndef KEYD_RECOVER_H
#define KEYD_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "keyd/escrow.h"
#include "keyd/secret.h"
#include "keyd/volume.h"

struct json_object;

/* Version of the status JSON document; bumped when a field changes meaning. */
#define KD_RECOVER_STATUS_SCHEMA 2

/* The first bytes of a chip-ID digest shown to humans ("chip 1a2b3c4d"). */
#define KD_CHIP_FP_BYTES 4u

/* ---------------------------------------------------------------- logging */


/* ---------------------------------------------------------------- status */

/*
 * Everything an on-call admin needs about v, as one JSON document (the
 * schema is in man/keyd-recover.8; "schema" is KD_RECOVER_STATUS_SCHEMA):
 * header copies, every keyslot with what describes it, the keyd tokens
 * (with the chip they are sealed to: this chip or another), pending
 * handoffs, the escrow, whether the launch l (NULL: none reachable;
 * no_launch says why) can unlock with a stable reason code, and a verdict
 * in words: what can open the volume now and what to do next.
 */
int kd_recover_status(struct kd_volume *v, const struct kd_launch *l, const char *no_launch,
		      struct json_object **ret);

/*
 * kd_recover_status of device, with the launch from the backend o picks (a
 * backend that does not answer gives launch verdict "unknown", not an
 * error). Errors: those of kd_volume_open.
 */
int kd_recover_status_device(const char *device, const struct kd_backend_opts *o,
			     struct json_object **ret);

/* The text rendering of a kd_recover_status document (keyd and keyd-recover). */
void kd_recover_status_print(struct json_object *st, FILE *out);

/* One line per keyslot: slot -> kind, state, label, chip, version. */
void kd_recover_list_print(struct json_object *st, FILE *out);

/*
 * Stable reason codes for a launch that cannot unlock (launch.reason):
 * "no-backend", "header-refused", "header-needs-repair", "no-keyd-slot", "other-measurement",
 * "other-policy", "debug-launch", "other-chip", "tcb-rollback".
 */

/* ---------------------------------------------------------------- rekey */

/*
 * TCB roll-forward of this launch's slot on device (keyd rekey and
 * keyd-recover rekey): open through the launch's slot (allow-list, pin),
 * then kd_volume_rekey. *ret_done: whether a slot was re-keyed.
 */
int kd_recover_rekey(const char *device, struct kd_backend *b, const struct kd_launch *l,
		     bool *ret_done);

/* ---------------------------------------------------------------- retire */

struct kd_retire_plan {
	int keyslot;
	enum { KD_RETIRE_KEYD, KD_RETIRE_ESCROW, KD_RETIRE_UNTOKENED } kind;
	int way_in;            /* keyslot that opens now after the retire, or -1 */
	bool way_in_is_escrow; /* way_in is the (checked) escrow */
	char consequence[160]; /* e.g. "afterwards only the escrow opens the volume" */
};

/*
 * Decide whether keyslot may go. "Another way in" is a slot that opens now:
 * this launch's ACTIVE keyd slot, proven by deriving its key and opening it
 * without activating (allow-list, pin), or an escrow whose token parses
 * strictly and names an existing keyslot. Slots sealed to another chip or
 * another measurement do not count (that chip may be the lost one), nor do
 * pending slots (their launch has not booted). l may be NULL (no backend:
 * only the escrow counts). Refused (KD_EREFUSED, naming what is missing)
 * unless force. Writes nothing.
 */
int kd_recover_retire_plan(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			   int keyslot, bool force, struct kd_retire_plan *ret);

/* Carry out a plan (the caller reopens v afterwards). */
int kd_recover_retire(struct kd_volume *v, const struct kd_retire_plan *p, bool force);

/* ---------------------------------------------------------------- shares */

/*
 * Decrypt share files with the operator's key and certificate (key_path may
 * be a PEM/DER file or a pkcs11: URI). Errors name the file.
 */
int kd_recover_read_shares(const char *const files[], size_t n, const char *key_path,
			   const char *cert_path, struct kd_secret *ret[]);
void kd_recover_free_shares(struct kd_secret *s[], size_t n);

/*
 * Check which escrow each share belongs to before anything else, and name
 * the file: another volume (UUID), an older escrow of this volume (rotated
 * since), another generation than the first share, or damaged (digest).
 * Then combine and open the escrow keyslot (kd_escrow_volume_key).
 */
int kd_recover_volume_key(struct kd_volume *v, const char *const files[],
			  struct kd_secret *const shares[], size_t n, struct kd_secret **ret_vk);

/* The commitment as lowercase hex, and a strict parse of one (96 hex). */
void kd_recover_commitment_hex(const uint8_t c[KD_ESCROW_COMMIT_SIZE],
			       char out[2 * KD_ESCROW_COMMIT_SIZE + 1]);
int kd_recover_commitment_parse(const char *hex, uint8_t out[KD_ESCROW_COMMIT_SIZE]);

/* ---------------------------------------------------------------- unlock */

struct kd_recover_unlock_opts {
	const char *label;       /* label of the new keyd token ("recovered") */
	const char *name;        /* activate as /dev/mapper/NAME, or NULL */
	X509 *const *admins;     /* rotate the escrow to these when n_admins */
	size_t n_admins;
	unsigned threshold;      /* of the rotated escrow; 0: the old one */
};

struct kd_recover_unlock_result {
	int enrolled;            /* new keyd keyslot, -1 if the launch had one */
	int verified;            /* keyslot the normal unlock path opened */
	int escrow_keyslot;      /* rotated escrow's keyslot, -1 if not rotated */
	unsigned threshold;
	size_t admins;
	uint8_t commitment[KD_ESCROW_COMMIT_SIZE]; /* of the rotated escrow */
};

/*
 * Recovery with k decrypted shares: recover the volume key from the escrow
 * (kd_recover_volume_key), enroll an ACTIVE keyd slot and token for launch l
 * unless it already has one (failpoints recover.after-keyslot,
 * recover.after-token), prove it through the ordinary unlock path
 * (allow-list, derive, pin) and that it opens the same volume key, then
 * optionally rotate the escrow (new first, old destroyed after) and
 * activate. Every step is on a freshly opened and checked header.
 */
int kd_recover_unlock(const char *device, struct kd_backend *b, const struct kd_launch *l,
		      const char *const files[], struct kd_secret *const shares[], size_t n,
		      const struct kd_recover_unlock_opts *o, struct kd_recover_unlock_result *ret);

/*
 * The escrow of device after a write (to print its commitment at
 * provisioning time).
 */
int kd_recover_escrow_info(const char *device, struct kd_escrow_token *ret);

#endif
