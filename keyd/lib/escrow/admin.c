/* SPDX-License-Identifier: Apache-2.0 */
/* Header backup/restore, crypto-erase and slot cleanup (escrow.h, admin). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"

/* Prefix the current detail (copied first: kd_fail writes the same buffer). */
static int kd_fail_prefixed(int r, const char *what)
{
	char d[300];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(r, "%s: %s", what, d);
}

int kd_admin_header_backup(struct kd_volume *v, const char *file)
{
	struct kd_header_snap s;
	struct crypt_device *cd = NULL;
	const struct kd_header_health *h;
	int r;

	if (!access(file, F_OK))
		return kd_fail(KD_EEXIST, "%.200s exists; refusing to overwrite it", file);
	/* From a private copy of the metadata: libcryptsetup's load may repair
	 * a damaged copy, and the device must stay as the admin found it. */
	if ((r = kd_header_snapshot(kd_volume_path(v), KD_SNAP_METADATA, &s)))
		return r;
	h = &s.health;
	if (strcmp(h->used ? h->secondary.uuid : h->primary.uuid, kd_volume_uuid(v))) {
		kd_header_snap_free(&s);
		return kd_fail(KD_ETAMPER, "LUKS2 header UUID changed since the volume was opened");
	}
	if ((r = crypt_init(&cd, s.path)) < 0) {
		kd_header_snap_free(&s);
		return kd_fail(KD_ELUKS, "cannot open the header copy of %.200s: %s",
			       kd_volume_path(v), strerror(-r));
	}
	if ((r = crypt_load(cd, CRYPT_LUKS2, NULL)) < 0 ||
	    strcmp(crypt_get_uuid(cd) ? crypt_get_uuid(cd) : "", kd_volume_uuid(v))) {
		crypt_free(cd);
		kd_header_snap_free(&s);
		return kd_fail(KD_ELUKS, "libcryptsetup cannot load the LUKS2 header of %.200s",
			       kd_volume_path(v));
	}
	r = crypt_header_backup(cd, CRYPT_LUKS2, file);
	crypt_free(cd);
	kd_header_snap_free(&s);
	return r < 0 ? kd_fail(KD_ELUKS, "header backup to %.200s failed: %s", file, strerror(-r)) : 0;
}

static int read_path(const char *path, struct kd_header_health *h, json_object **meta)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %.200s: %s", path,
			       strerror(errno));
	r = kd_header_read(fd, h, meta);
	close(fd);
	return r;
}

static const char *used_uuid(const struct kd_header_health *h)
{
	return h->used == 1 ? h->secondary.uuid : h->primary.uuid;
}

int kd_admin_header_restore(const char *device, const char *file, bool force,
			    kd_admin_confirm_fn confirm, void *ctx)
{
	struct kd_header_health bh, dh;
	json_object *bmeta = NULL, *dmeta = NULL, *bslots, *dslots;
	struct crypt_device *cd = NULL;
	char lost[128] = "";
	char *path = NULL;
	int r;

	if ((r = read_path(file, &bh, &bmeta)))
		return kd_fail_prefixed(r, "not a LUKS2 header backup");
	if (bh.allow_err) {
		r = kd_fail(KD_EREFUSED, "the backup's header fails the allow-list (%s); refusing to "
					 "restore it", bh.allow_detail);
		goto out;
	}
	if ((r = kd_device_resolve(device, &path)))
		goto out;
	if (read_path(path, &dh, &dmeta) || !dmeta) {
		if (!force) {
			r = kd_fail(KD_EREFUSED, "%.200s has no readable LUKS2 header to check the "
						 "backup's UUID %s against; --force restores anyway",
				    path, used_uuid(&bh));
			goto out;
		}
	} else {
		if (strcmp(used_uuid(&dh), used_uuid(&bh))) {
			r = kd_fail(KD_EREFUSED, "the backup is of volume %s, %.200s is volume %s; "
						 "refusing to restore another volume's header",
				    used_uuid(&bh), path, used_uuid(&dh));
			goto out;
		}
		/* Keyslots written since the backup would be lost with it. */
		/* Both passed kd_header_read; the device's may fail the allow-list. */
		if (kd_lj_obj(bmeta, "backup", "keyslots", &bslots) ||
		    kd_lj_obj(dmeta, "device", "keyslots", &dslots)) {
			r = kd_fail_prefixed(KD_EREFUSED, "cannot compare the keyslots of the backup "
							  "and the device");
			goto out;
		}
		json_object_object_foreach(dslots, id, ks) {
			json_object *b = NULL;

			if (kd_lj_opt(bslots, "backup keyslots", id, json_type_object, &b) || !b ||
			    !json_object_equal(b, ks))
				snprintf(lost + strlen(lost), sizeof(lost) - strlen(lost), "%s%s",
					 lost[0] ? "," : "", id);
		}
		if (lost[0] && !force) {
			r = kd_fail(KD_EREFUSED, "restoring would destroy keyslot(s) %s, added or changed "
						 "since the backup; --force restores anyway", lost);
			goto out;
		}
	}
	/* Every check passed: only now ask the admin, then write. */
	if (confirm && (r = confirm(used_uuid(&bh),
				    bh.used == 1 ? bh.secondary.label : bh.primary.label, ctx)))
		goto out;
	if ((r = crypt_init(&cd, path)) < 0) {
		r = kd_fail(KD_ELUKS, "cannot open %.200s: %s", path, strerror(-r));
		goto out;
	}
	r = crypt_header_restore(cd, CRYPT_LUKS2, file);
	r = r < 0 ? kd_fail(KD_ELUKS, "header restore from %.200s failed: %s", file, strerror(-r)) : 0;
out:
	crypt_free(cd);
	json_object_put(bmeta);
	json_object_put(dmeta);
	free(path);
	return r;
}

int kd_admin_wipe(const char *device, size_t *ret_n)
{
	struct crypt_device *cd = NULL;
	char *path = NULL;
	size_t n = 0;
	int r;

	if ((r = kd_device_resolve(device, &path)))
		return r;
	r = crypt_init(&cd, path);
	if (r >= 0 && (r = crypt_load(cd, CRYPT_LUKS2, NULL)) >= 0) {
		/* Tokens first: a crash in between leaves keyslots without
		 * tokens, which the next wipe removes. */
		for (int t = 0; t < 32; t++)
			if (crypt_token_status(cd, t, NULL) != CRYPT_TOKEN_INACTIVE)
				(void)crypt_token_json_set(cd, t, NULL);
		for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2) && r >= 0; s++) {
			crypt_keyslot_info st = crypt_keyslot_status(cd, s);

			if (st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST &&
			    st != CRYPT_SLOT_UNBOUND)
				continue;
			if ((r = crypt_keyslot_destroy(cd, s)) >= 0)
				n++;
		}
	}
	crypt_free(cd);
	if (r < 0) {
		r = kd_fail(KD_ELUKS, "crypto-erase of %.200s failed after %zu keyslot(s): %s", path, n,
			    strerror(-r));
		free(path);
		return r;
	}
	free(path);
	if (ret_n)
		*ret_n = n;
	return 0;
}

int kd_admin_kill_untokened(struct kd_volume *v, int keyslot)
{
	struct kd_checked_cd c;
	json_object *meta, *tokens, *slots;
	char id[12];
	int r, live = 0;

	if ((r = kd_volume_checked_cd(v, KD_CD_WRITE, &c)))
		return r;
	meta = c.meta;
	snprintf(id, sizeof(id), "%d", keyslot);
	/* meta passed the allow-list: these are objects and id arrays. */
	if ((r = kd_lj_obj(meta, "LUKS2 metadata", "tokens", &tokens)) ||
	    (r = kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &slots)))
		goto out;
	if (keyslot < 0 || keyslot >= (int)KD_LJ_MAX_ID ||
	    !kd_lj_has(slots, id)) {
		r = kd_fail(KD_ENOENT, "keyslot %d does not exist", keyslot);
		goto out;
	}
	json_object_object_foreach(tokens, tid, tok) {
		char where[24];
		uint32_t m = 0;

		if ((r = kd_lj_id_set(tok, kd_lj_where(where, sizeof(where), "token", tid),
				      "keyslots", &m)))
			goto out;
		if (m & (1u << keyslot)) {
			r = kd_fail(KD_EREFUSED, "keyslot %d is described by a token", keyslot);
			goto out;
		}
		live++;
	}
	if (!live) {
		r = kd_fail(KD_EREFUSED, "keyslot %d may be the only way into the volume (no token "
					 "describes any keyslot); refusing to kill it", keyslot);
		goto out;
	}
	r = crypt_keyslot_destroy(c.cd, keyslot);
	r = r < 0 ? kd_fail(KD_ELUKS, "cannot kill keyslot %d: %s", keyslot, strerror(-r)) : 0;
out:
	kd_checked_cd_free(&c);
	return r;
}
