/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retire one keyslot, never the last way in that works now (recover.h).
 *
 * After a recovery the volume still carries the lost chip's slot. Counting
 * it as "another way in" let an admin retire the recovered slot and the
 * escrow one after the other, leaving a volume only the lost chip opens.
 * So only what can be shown to open now counts: this launch's own active
 * slot, opened through the ordinary path (allow-list, derive, pin) without
 * activating, or the escrow, whose token must parse strictly and name an
 * existing keyslot.
 */
#include <stdio.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/recover.h"

/* This launch's active slot, other than keyslot, proven to open now. */
static int launch_way_in(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			 int keyslot, char *why, size_t len)
{
	_kd_secret_ struct kd_secret *vk = NULL;
	struct kd_token used;
	int r;

	if (!l || !b) {
		snprintf(why, len, "no trust backend answered, so no slot of this launch can be "
				   "checked");
		return -1;
	}
	if ((r = kd_volume_get_key(v, b, l, &vk, &used))) {
		snprintf(why, len, "this launch opens no slot (%.200s)", kd_err_detail(r));
		return -1;
	}
	if (used.keyslot == keyslot) {
		snprintf(why, len, "keyslot %d is this launch's own way in", keyslot);
		return -1;
	}
	if (used.state != KD_TOKEN_ACTIVE) {
		snprintf(why, len, "this launch opens only its %s keyslot %d, which has not been "
				   "committed", kd_token_state_name(used.state), used.keyslot);
		return -1;
	}
	return used.keyslot;
}

int kd_recover_retire_plan(struct kd_volume *v, struct kd_backend *b, const struct kd_launch *l,
			   int keyslot, bool force, struct kd_retire_plan *ret)
{
	struct kd_retire_plan p;
	struct kd_escrow_token e;
	const struct kd_token *toks;
	char why[300] = "";
	bool has_escrow;
	size_t n;
	int esc_err;

	memset(&p, 0, sizeof(p));
	p.keyslot = keyslot;
	p.kind = KD_RETIRE_UNTOKENED;
	p.way_in = -1;
	esc_err = kd_escrow_find(v, &e);
	has_escrow = !esc_err;
	toks = kd_volume_tokens(v, &n);
	for (size_t i = 0; i < n; i++)
		if (toks[i].keyslot == keyslot)
			p.kind = KD_RETIRE_KEYD;
	if (has_escrow && e.keyslot == keyslot)
		p.kind = KD_RETIRE_ESCROW;

	p.way_in = launch_way_in(v, b, l, keyslot, why, sizeof(why));
	if (p.way_in < 0 && has_escrow && e.keyslot != keyslot) {
		p.way_in = e.keyslot;
		p.way_in_is_escrow = true;
	}
	if (has_escrow)
		kd_escrow_token_clear(&e);

	if (p.way_in >= 0 && p.way_in_is_escrow)
		snprintf(p.consequence, sizeof(p.consequence),
			 "afterwards only the escrow (keyslot %d) opens the volume", p.way_in);
	else if (p.way_in >= 0)
		snprintf(p.consequence, sizeof(p.consequence),
			 "this launch still opens the volume through keyslot %d", p.way_in);
	else
		snprintf(p.consequence, sizeof(p.consequence),
			 "FORCED: nothing that works now will open the volume");

	if (p.way_in < 0 && !force) {
		if (p.kind == KD_RETIRE_ESCROW)
			return kd_fail(KD_EREFUSED, "keyslot %d holds the escrow, the only way into this "
						    "volume that works now (%s; slots sealed to other "
						    "chips or launches do not count); refusing to remove "
						    "it (--force)", keyslot, why);
		return kd_fail(KD_EREFUSED, "keyslot %d is the last slot that opens this volume now "
					    "(%s; %s; slots sealed to other chips or launches do not "
					    "count); retiring it can destroy all access to the data "
					    "(--force)", keyslot, why,
			       has_escrow ? "the escrow is this slot"
			       : esc_err == KD_ENOENT ? "no escrow" : "the escrow token is damaged");
	}
	*ret = p;
	return 0;
}

int kd_recover_retire(struct kd_volume *v, const struct kd_retire_plan *p, bool force)
{
	switch (p->kind) {
	case KD_RETIRE_ESCROW:
		return kd_escrow_remove(v, force || p->way_in >= 0);
	case KD_RETIRE_KEYD:
		/* The plan has checked a stronger rule than kd_volume_retire's own. */
		return kd_volume_retire(v, p->keyslot, true);
	case KD_RETIRE_UNTOKENED:
		return kd_admin_kill_untokened(v, p->keyslot);
	}
	return kd_fail(KD_EINVAL, "unknown retire plan");
}
