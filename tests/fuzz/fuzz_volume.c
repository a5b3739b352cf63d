/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole LUKS2 header images through the volume layer, read-only: what
 * `keyd status`, `keyd unlock --dry-run` up to the key derivation and
 * `keyd-recover status` / `header-backup` do with a host-forged header.
 * kd_volume_open (both copies, the allow-list, every keyd token), token
 * selection for a launch (kd_volume_match), the status document
 * (kd_recover_status, with and without a launch), the escrow tokens
 * (kd_escrow_find_all) and a header backup (kd_admin_header_backup).
 *
 * Input: see fuzz_image.h. Control bits 2..7 pick the keyd token whose
 * measurement, policy and TCB the simulated launch takes, so that the
 * selection logic gets past the measurement check.
 * Properties: nothing crashes or aborts; a matched token index is in range
 * and names a keyd token; the status is a JSON object; and (with
 * FUZZ_READONLY_PROPERTY) none of these calls writes to the image.
 */
#include <json-c/json.h>

#include "fuzz_image.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/recover.h"
#include "keyd/volume.h"

/*
 * KNOWN_BROKEN: read-only paths still let libcryptsetup repair a damaged
 * copy in place. Set to 1 when they work on private copies of the header.
 */
#ifndef FUZZ_READONLY_PROPERTY
#define FUZZ_READONLY_PROPERTY 1
#endif

static char img_path[128], backup_path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_image_init();
	fuzz_path(img_path, sizeof(img_path), "volume.img");
	fuzz_path(backup_path, sizeof(backup_path), "backup.img");
	kd_volume_quiet_libcryptsetup();
	return 0;
}

static void launch_from(const struct kd_token *t, struct kd_launch *l)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->backend, sizeof(l->backend), "sim");
	if (!t)
		return;
	memcpy(l->report.measurement, t->measurement, sizeof(l->report.measurement));
	l->report.policy = t->policy;
	l->report.committed_tcb = t->tcb;
	l->report.current_tcb = t->tcb;
	l->report.reported_tcb = t->tcb;
	l->report.launch_tcb = t->tcb;
	l->report.vmpl = 0;
	l->report.version = 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_volume *v = NULL;
	const struct kd_token *toks;
	struct kd_launch l;
	struct kd_escrow_token esc[4];
	struct fuzz_print before, after;
	json_object *st = NULL;
	size_t n = 0, idx = 0, n_esc = 0;

	if (!fuzz_write_image(img_path, data, size))
		return 0;
	fuzz_fingerprint(img_path, size - 1, &before);
	if (kd_volume_open(img_path, &v)) {
		kd_err_clear();
		goto check;
	}
	FUZZ_ASSERT(kd_volume_health(v) != NULL);
	FUZZ_ASSERT(kd_volume_uuid(v) != NULL);
	toks = kd_volume_tokens(v, &n);
	FUZZ_ASSERT(n == 0 || toks != NULL);
	launch_from(n ? &toks[(data[0] >> 2) % n] : NULL, &l);
	if (kd_volume_match(v, &l, &idx) == 0)
		FUZZ_ASSERT(idx < n);
	kd_err_clear();

	if (kd_recover_status(v, &l, NULL, &st) == 0) {
		FUZZ_ASSERT(json_object_is_type(st, json_type_object));
		FUZZ_ASSERT(json_object_to_json_string(st) != NULL);
		json_object_put(st);
		st = NULL;
	}
	kd_err_clear();
	if (kd_recover_status(v, NULL, "no backend", &st) == 0) {
		FUZZ_ASSERT(json_object_is_type(st, json_type_object));
		json_object_put(st);
	}
	kd_err_clear();

	memset(esc, 0, sizeof(esc));
	if (kd_escrow_find_all(v, esc, 4, &n_esc) == 0) {
		FUZZ_ASSERT(n_esc <= 4);
		for (size_t i = 0; i < n_esc; i++) {
			FUZZ_ASSERT(esc[i].threshold >= 1 && esc[i].threshold <= esc[i].n);
			kd_escrow_token_clear(&esc[i]);
		}
	}
	kd_err_clear();

	unlink(backup_path);
	kd_admin_header_backup(v, backup_path);
	kd_err_clear();
	unlink(backup_path);
	kd_volume_close(v);
check:
	fuzz_fingerprint(img_path, size - 1, &after);
	if (FUZZ_READONLY_PROPERTY)
		FUZZ_ASSERT(memcmp(&before, &after, sizeof(before)) == 0);
	return 0;
}
