/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd commit: N has really booted and opened the volume through the pending
 * slot O made. N replaces that slot with one sealed to itself (O invented the
 * pending secrets; nothing O saw may open the slot N keeps), then the
 * previous version's slot is kept for one rollback (retired) or killed.
 *
 * Crash safety, in write order:
 *   1. keyslots no token names (remnants of an interrupted write) are killed;
 *   2. N's sealed keyslot is added, then its active token (a crash between
 *      the two leaves a remnant for step 1 of the rerun);
 *   3. the pending token is removed, then its keyslot (a crash between them
 *      leaves a remnant; a crash before leaves both slots, and the rerun
 *      opens through the active one and removes the pending one);
 *   4. the policy on the other slots: the only slot ever killed is one that
 *      is not ours, after ours was proven to open (keyslot + pin) in this
 *      very run. With keep-previous, older slots are killed *before* the
 *      previous active one is marked retired, and the slot kept is "the
 *      previous active one, else the newest retired one", so a rerun after a
 *      crash at any point keeps the same slot and never kills the one meant
 *      for rollback.
 */
#include <string.h>

#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"
#include "keyd/pending.h"
#include "keyd/volume.h"

#include <time.h>
#include "handoff/internal.h"

#define KILL_MAX 32 /* LUKS2 keyslots */

/* Is a newer than b (created timestamp, then keyslot)? */
static bool newer(const struct kd_token *a, const struct kd_token *b)
{
	int c = strcmp(a->created, b->created);

	return c > 0 || (c == 0 && a->keyslot > b->keyslot);
}

/* Is t a pending slot of the same launch binding as ours (left by a crash)? */
static bool same_launch(const struct kd_token *t, const struct kd_token *ours)
{
	return !memcmp(t->measurement, ours->measurement, sizeof(t->measurement)) &&
	       t->policy == ours->policy && t->has_chip == ours->has_chip &&
	       (!t->has_chip || !memcmp(t->chip, ours->chip, sizeof(t->chip)));
}

/* Steps 1-3: a slot sealed to this launch takes the pending slot's place. */
static int replace_pending(struct kd_volume *v, struct kd_backend *b, const struct kd_secret *vk,
			   const struct kd_token *pending, int *ret_slot)
{
	_kd_secret_ struct kd_secret *pass = NULL, *pin_key = NULL;
	struct kd_token meta = *pending;
	time_t now = time(NULL);
	struct tm tm;
	int slot = -1, r;

	meta.state = KD_TOKEN_ACTIVE;
	meta.has_wrap = false;
	memset(meta.wrap_epk, 0, sizeof(meta.wrap_epk));
	memset(meta.wrap_ct, 0, sizeof(meta.wrap_ct));
	memset(meta.ev_report, 0, sizeof(meta.ev_report));
	meta.ev_manifest[0] = '\0';
	meta.keyslot = -1;
	meta.token_id = -1;
	gmtime_r(&now, &tm);
	strftime(meta.created, sizeof(meta.created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	kd_failpoint("commit.before-activate");
	r = kd_volume_reclaim_orphans(v, "commit.after-reclaim", NULL);
	if (r)
		return r;
	r = kd_seal_keys_for_token(b, &meta, kd_volume_uuid(v), &pass, &pin_key);
	if (r)
		return r;
	r = kd_volume_add_slot_fp(v, vk, pass, pin_key, &meta, "commit.after-keyslot",
				  "commit.after-token", &slot);
	if (r)
		return r;
	r = kd_volume_retire_fp(v, pending->keyslot, "commit.before-kill", "commit.after-kill");
	if (r)
		return r;
	*ret_slot = slot;
	return 0;
}

/* Leftovers of an interrupted earlier run: our pending slot, remnants. */
static int drop_leftovers(struct kd_volume *v, const struct kd_token *ours, int keyslot)
{
	int r;

	for (;;) {
		size_t n = 0;
		const struct kd_token *t = kd_volume_tokens(v, &n);
		int drop = -1;

		for (size_t i = 0; i < n; i++)
			if (t[i].state == KD_TOKEN_PENDING && t[i].keyslot != keyslot &&
			    same_launch(&t[i], ours))
				drop = t[i].keyslot;
		if (drop < 0)
			break;
		r = kd_volume_retire_fp(v, drop, "commit.before-kill", "commit.after-kill");
		if (r)
			return r;
	}
	return kd_volume_reclaim_orphans(v, "commit.after-reclaim", NULL);
}

/*
 * The earlier slots the policy lets go: every one but ours, or with
 * KEEP_PREVIOUS every one but the newest (an active one preferred), which
 * is kept and, if active, retired.
 */
struct retire_plan {
	int kill[KILL_MAX];
	size_t n_kill;
	int keep_slot;
	bool keep_active;
};

static void plan_retire(const struct kd_volume *v, int keyslot, enum kd_commit_policy policy,
			struct retire_plan *p)
{
	size_t n = 0;
	const struct kd_token *t = kd_volume_tokens(v, &n);
	int keep = -1, keep_active = 0;

	p->n_kill = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].keyslot == keyslot || t[i].state == KD_TOKEN_PENDING)
			continue;
		if (policy == KD_COMMIT_KEEP_PREVIOUS) {
			bool act = t[i].state == KD_TOKEN_ACTIVE;

			if (keep < 0 || (act && !keep_active) ||
			    (act == (bool)keep_active && newer(&t[i], &t[(size_t)keep]))) {
				if (keep >= 0 && p->n_kill < KILL_MAX)
					p->kill[p->n_kill++] = t[(size_t)keep].keyslot;
				keep = (int)i;
				keep_active = act;
				continue;
			}
		}
		if (p->n_kill < KILL_MAX)
			p->kill[p->n_kill++] = t[i].keyslot;
	}
	p->keep_slot = keep >= 0 ? t[(size_t)keep].keyslot : -1;
	p->keep_active = keep_active;
}

static int retire_previous(struct kd_volume *v, const struct retire_plan *p,
			   struct kd_commit_result *res)
{
	int r;

	for (size_t i = 0; i < p->n_kill; i++) {
		r = kd_volume_retire(v, p->kill[i], false);
		if (r)
			return r;
		res->n_killed++;
	}
	if (p->keep_slot >= 0 && p->keep_active) {
		r = kd_volume_set_state(v, p->keep_slot, KD_TOKEN_RETIRED);
		if (r)
			return r;
		res->n_retired++;
	}
	return 0;
}

int kd_handoff_commit(const char *device, struct kd_backend *b,
		      const struct kd_pending_policy *pol, enum kd_commit_policy policy,
		      struct kd_commit_result *ret)
{
	struct kd_commit_result res = {.keyslot = -1};
	struct retire_plan plan;
	struct kd_volume *v = NULL;
	struct kd_secret *vk = NULL;
	struct kd_launch l;
	struct kd_token ours;
	int r;

	r = kd_launch_get(b, &l);
	if (r)
		return r;
	r = kd_volume_open(device, &v);
	if (r)
		return r;
	kd_volume_set_pending_opener(v, kd_pending_opener, pol);
	/*
	 * The proof that N really boots: this launch's key opens it, pin
	 * verified; for a pending slot also O's evidence, then the unwrap.
	 */
	r = kd_volume_get_key(v, b, &l, &vk, &ours);
	if (r) {
		r = kd_fail_prefix(r, "this launch cannot open the volume, nothing committed");
		goto out;
	}
	res.keyslot = ours.keyslot;
	res.was_pending = ours.state != KD_TOKEN_ACTIVE;
	if (ours.state == KD_TOKEN_PENDING) {
		r = replace_pending(v, b, vk, &ours, &res.keyslot);
	} else if (ours.state == KD_TOKEN_RETIRED) {
		kd_failpoint("commit.before-activate");
		r = kd_volume_set_state(v, ours.keyslot, KD_TOKEN_ACTIVE);
	}
	if (r)
		goto out;
	r = drop_leftovers(v, &ours, res.keyslot);
	if (r)
		goto out;
	/* Reload: the token list may have changed under the previous write. */
	kd_volume_close(v);
	v = NULL;
	r = kd_volume_open(device, &v);
	if (r)
		goto out;
	plan_retire(v, res.keyslot, policy, &plan);
	r = retire_previous(v, &plan, &res);
	if (r)
		goto out;
	kd_failpoint("commit.after-retire");
	*ret = res;
out:
	kd_secret_free(vk);
	kd_volume_close(v);
	return r;
}
