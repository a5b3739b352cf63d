/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd commit: N's pending slot becomes active once N has really booted and
 * opened the volume with it; then the previous version's slot is kept for
 * one rollback (retired) or killed.
 *
 * Crash safety: the only slot ever killed is one that is not ours, after
 * ours was proven to open (keyslot + pin) in this very run. With
 * keep-previous, older slots are killed *before* the previous active one is
 * marked retired, and the slot kept is "the previous active one, else the
 * newest retired one", so a rerun after a crash at any point keeps the same
 * slot and never kills the one meant for rollback.
 */
#include <string.h>

#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/handoff.h"
#include "keyd/volume.h"
#include "handoff/internal.h"

#define KILL_MAX 32 /* LUKS2 keyslots */

/* Is a newer than b (created timestamp, then keyslot)? */
static bool newer(const struct kd_token *a, const struct kd_token *b)
{
	int c = strcmp(a->created, b->created);

	return c > 0 || (c == 0 && a->keyslot > b->keyslot);
}

int kd_handoff_commit(const char *device, struct kd_backend *b, enum kd_commit_policy policy,
		      struct kd_commit_result *ret)
{
	struct kd_commit_result res = {.keyslot = -1};
	int kill[KILL_MAX];
	size_t n_kill = 0, n = 0;
	int keep = -1, keep_active = 0;
	struct kd_volume *v = NULL;
	struct kd_secret *vk = NULL;
	const struct kd_token *t;
	struct kd_launch l;
	struct kd_token ours;
	int r;

	r = kd_launch_get(b, &l);
	if (!r)
		r = kd_volume_open(device, &v);
	if (r)
		return r;
	/* The proof that N really boots: this launch's key opens it, pin verified. */
	r = kd_volume_get_key(v, b, &l, &vk, &ours);
	kd_secret_free(vk);
	if (r) {
		r = kd_fail_prefix(r, "this launch cannot open the volume, nothing committed");
		goto out;
	}
	res.keyslot = ours.keyslot;
	res.was_pending = ours.state != KD_TOKEN_ACTIVE;
	if (res.was_pending) {
		kd_failpoint("commit.before-activate");
		r = kd_volume_set_state(v, ours.keyslot, KD_TOKEN_ACTIVE);
		if (r)
			goto out;
		kd_failpoint("commit.after-activate");
	}

	/* Reload: the token list may have changed under the previous write. */
	kd_volume_close(v);
	v = NULL;
	r = kd_volume_open(device, &v);
	if (r)
		goto out;
	t = kd_volume_tokens(v, &n);
	for (size_t i = 0; i < n; i++) {
		if (t[i].keyslot == ours.keyslot || t[i].state == KD_TOKEN_PENDING)
			continue;
		if (policy == KD_COMMIT_KEEP_PREVIOUS) {
			bool act = t[i].state == KD_TOKEN_ACTIVE;

			if (keep < 0 || (act && !keep_active) ||
			    (act == (bool)keep_active && newer(&t[i], &t[(size_t)keep]))) {
				if (keep >= 0 && n_kill < KILL_MAX)
					kill[n_kill++] = t[(size_t)keep].keyslot;
				keep = (int)i;
				keep_active = act;
				continue;
			}
		}
		if (n_kill < KILL_MAX)
			kill[n_kill++] = t[i].keyslot;
	}
	{
		int keep_slot = keep >= 0 ? t[(size_t)keep].keyslot : -1;

		for (size_t i = 0; !r && i < n_kill; i++) {
			r = kd_volume_retire(v, kill[i], false);
			if (!r)
				res.n_killed++;
		}
		if (!r && keep_slot >= 0 && keep_active) {
			r = kd_volume_set_state(v, keep_slot, KD_TOKEN_RETIRED);
			if (!r)
				res.n_retired++;
		}
	}
	if (r)
		goto out;
	kd_failpoint("commit.after-retire");
	*ret = res;
out:
	kd_volume_close(v);
	return r;
}
