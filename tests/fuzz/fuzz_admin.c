/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin paths of keyd-recover on whole header images, on a private
 * image file so that their writes harm nothing: retire a slot
 * (kd_volume_retire), change a token's state (kd_volume_set_state), kill an
 * untokened keyslot (kd_admin_kill_untokened), remove the escrow
 * (kd_escrow_remove), restore a header backup (kd_admin_header_restore) and
 * crypto-erase (kd_admin_wipe).
 *
 * Input: see fuzz_image.h. Control bits 2..4 pick the operation, bits 5..7
 * the keyslot it names (0..7) and whether it is forced.
 * Properties: nothing crashes or aborts; an operation on a volume whose
 * header failed the allow-list is refused and leaves the image as it was.
 */
#include <stdbool.h>

#include "fuzz_image.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/recover.h"
#include "keyd/volume.h"

static char img_path[128], backup_path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_image_init();
	fuzz_path(img_path, sizeof(img_path), "admin.img");
	fuzz_path(backup_path, sizeof(backup_path), "admin-backup.img");
	kd_volume_quiet_libcryptsetup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_volume *v = NULL;
	struct fuzz_print before, after;
	unsigned op, slot;
	bool force, refused_header;
	int r = 0;

	if (!fuzz_write_image(img_path, data, size))
		return 0;
	op = (data[0] >> 2) & 7;
	slot = (data[0] >> 5) & 3;
	force = data[0] >> 7;
	fuzz_fingerprint(img_path, size - 1, &before);

	if (op == 6) {
		/* Restore the image's own bytes as a backup onto itself. */
		FUZZ_ASSERT(fuzz_write_image(backup_path, data, size));
		r = kd_admin_header_restore(img_path, backup_path, force, NULL, NULL);
		kd_err_clear();
		return 0;
	}
	if (op == 7) {
		size_t n = 0;

		r = kd_admin_wipe(img_path, &n);
		kd_err_clear();
		return 0;
	}
	if (kd_volume_open(img_path, &v)) {
		kd_err_clear();
		return 0;
	}
	refused_header = kd_volume_health(v)->allow_err != 0;
	switch (op) {
	case 0:
	case 1:
		r = kd_volume_retire(v, (int)slot, force);
		break;
	case 2:
		r = kd_volume_set_state(v, (int)slot, KD_TOKEN_ACTIVE);
		break;
	case 3:
		r = kd_volume_set_state(v, (int)slot, KD_TOKEN_RETIRED);
		break;
	case 4:
		r = kd_admin_kill_untokened(v, (int)slot);
		break;
	case 5:
		r = kd_escrow_remove(v, force);
		break;
	}
	kd_err_clear();
	kd_volume_close(v);
	if (refused_header) {
		FUZZ_ASSERT(r != 0);
		fuzz_fingerprint(img_path, size - 1, &after);
		FUZZ_ASSERT(memcmp(&before, &after, sizeof(before)) == 0);
	}
	return 0;
}
