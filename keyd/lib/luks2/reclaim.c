/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reclaiming keyslots left without a token by a crash between the keyslot
 * write and the token write (failpoint handoff.after-keyslot): such a slot
 * is harmless (only the launch that derives its passphrase can use it) but
 * a rerun should not pile them up. Only a slot that provably belongs to the
 * caller's launch is killed: one that no keyd token describes and that
 * opens with the very passphrase the caller is about to enroll (a 256-bit
 * HKDF output of that launch's derived key). The last active keyslot is
 * never touched.
 */
#include <libcryptsetup.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/volume.h"

int kd_volume_reclaim_untokened(struct kd_volume *v, const struct kd_secret *pass,
				size_t *ret_n)
{
	struct kd_checked_cd c;
	struct crypt_device *cd;
	const struct kd_token *t;
	size_t n_tok = 0, n = 0;
	int max, r;

	if (!pass)
		return kd_fail(KD_EINVAL, "reclaim: passphrase needed");
	if (ret_n)
		*ret_n = 0;
	/*
	 * Every keyslot of the metadata v holds is described: nothing to try,
	 * and no libcryptsetup load (a header read and parse) on the handoff's
	 * critical path. A slot added behind v's back since it was read is only
	 * housekeeping left for the next run; any write still goes through the
	 * allow-list comparison of kd_volume_checked_cd and libcryptsetup's seqid
	 * check.
	 */
	if (kd_volume_untokened_keyslots(v) == 0)
		return 0;
	t = kd_volume_tokens(v, &n_tok);
	if ((r = kd_volume_checked_cd(v, KD_CD_WRITE, &c)))
		return r;
	cd = c.cd;
	max = crypt_keyslot_max(CRYPT_LUKS2);
	for (int slot = 0; slot < max; slot++) {
		bool described = false;

		if (crypt_keyslot_status(cd, slot) != CRYPT_SLOT_ACTIVE)
			continue; /* inactive, invalid, or the last one (CRYPT_SLOT_ACTIVE_LAST) */
		for (size_t i = 0; i < n_tok; i++)
			described |= t[i].keyslot == slot;
		if (described)
			continue;
		/* NULL name: check the passphrase only, activate nothing. */
		if (crypt_activate_by_passphrase(cd, NULL, slot, (const char *)pass->data, pass->len,
						 0) != slot)
			continue;
		r = crypt_keyslot_destroy(cd, slot);
		if (r < 0) {
			kd_checked_cd_free(&c);
			return kd_fail(KD_ELUKS, "cannot reclaim keyslot %d: %s", slot, strerror(-r));
		}
		n++;
	}
	kd_checked_cd_free(&c);
	if (ret_n)
		*ret_n = n;
	return 0;
}
