/* SPDX-License-Identifier: Apache-2.0 */
/* Recovery from k escrow shares and re-enrollment for this launch (recover.h). */
#include <string.h>

#include "keyd/error.h"
#include "keyd/recover.h"
#include "keyd/util.h"

int kd_recover_escrow_info(const char *device, struct kd_escrow_token *ret)
{
	struct kd_volume *v = NULL;
	int r;

	if ((r = kd_volume_open(device, &v)))
		return r;
	r = kd_escrow_find(v, ret);
	kd_volume_close(v);
	return r;
}

/* Enroll an active slot for l unless it has one; *ret_slot -1 if it had. */
static int enroll_launch(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			 const struct kd_secret *vk, const char *label, int *ret_slot)
{
	_kd_secret_ struct kd_secret *pass = NULL, *pin = NULL;
	struct kd_token tok;
	size_t idx;
	int r, slot = -1;

	if (kd_volume_match(v, l, &idx) == 0) {
		*ret_slot = -1;
		return 0;
	}
	kd_err_clear();
	if ((r = kd_token_for_launch(l, label, 0, KD_TOKEN_ACTIVE, &tok)) ||
	    (r = kd_seal_keys_for_token(b, &tok, kd_volume_uuid(v), &pass, &pin)) ||
	    (r = kd_volume_add_slot_fp(v, vk, pass, pin, &tok, "recover.after-keyslot",
				       "recover.after-token", &slot)))
		return r;
	*ret_slot = slot;
	return 0;
}

int kd_recover_unlock(const char *device, struct kd_backend *b, const struct kd_launch *l,
		      const char *const files[], struct kd_secret *const shares[], size_t n,
		      const struct kd_recover_unlock_opts *o, struct kd_recover_unlock_result *ret)
{
	_kd_secret_ struct kd_secret *vk = NULL, *vk2 = NULL;
	struct kd_recover_unlock_result res;
	struct kd_escrow_token old, now;
	struct kd_volume *v = NULL;
	struct kd_token used;
	unsigned k = o->threshold;
	int r;

	memset(&res, 0, sizeof(res));
	res.escrow_keyslot = -1;
	if ((r = kd_volume_open(device, &v)) || (r = kd_recover_volume_key(v, files, shares, n, &vk)))
		goto out;
	/* A rotation that cannot happen is refused before anything is written. */
	if (o->n_admins) {
		if ((r = kd_escrow_find(v, &old)))
			goto out;
		if (!k)
			k = old.threshold;
		kd_escrow_token_clear(&old);
		if (k > o->n_admins) {
			r = kd_fail(KD_EINVAL, "threshold %u is above the %zu admins of the new escrow", k,
				    o->n_admins);
			goto out;
		}
	}
	if ((r = enroll_launch(v, b, l, vk, o->label ? o->label : "recovered", &res.enrolled)))
		goto out;
	/* Prove the slot through the ordinary unlock path, on a fresh header. */
	kd_volume_close(v);
	v = NULL;
	if ((r = kd_volume_open(device, &v)) || (r = kd_volume_get_key(v, b, l, &vk2, &used)))
		goto out;
	if (vk2->len != vk->len || !kd_ct_equal(vk2->data, vk->data, vk->len)) {
		r = kd_fail(KD_ETAMPER, "the keyd slot opens a different volume key than the escrow");
		goto out;
	}
	res.verified = used.keyslot;
	if (o->n_admins) {
		if ((r = kd_escrow_add(v, vk, k, o->admins, o->n_admins, true, &res.escrow_keyslot)))
			goto out;
		kd_volume_close(v);
		v = NULL;
		if ((r = kd_volume_open(device, &v)) || (r = kd_escrow_find(v, &now)))
			goto out;
		res.threshold = now.threshold;
		res.admins = now.n;
		memcpy(res.commitment, now.commitment, sizeof(res.commitment));
		kd_escrow_token_clear(&now);
	}
	if (o->name) {
		kd_volume_close(v);
		v = NULL;
		if ((r = kd_volume_open(device, &v)) || (r = kd_volume_activate(v, o->name, vk, 0)))
			goto out;
	}
	*ret = res;
out:
	kd_volume_close(v);
	return r;
}
