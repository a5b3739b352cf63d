/* SPDX-License-Identifier: Apache-2.0 */
/* The whole picture of a volume for an admin, as JSON and as text (recover.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"
#include "keyd/recover.h"
#include "keyd/rotate.h"
#include "keyd/token.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define MAX_ESCROWS 4u
#define MHEX (2 * KD_MEASUREMENT_SIZE + 1)
#define CHIP_FP_HEX (2 * KD_CHIP_FP_BYTES + 1)

static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static void say(json_object *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(json_object *arr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_array_add(arr, jstr(buf));
}

/* What status needs to know about the launch, computed once. */
struct launch_view {
	const struct kd_launch *l;
	bool has_chip;
	uint8_t chip[KD_CHIP_DIGEST_SIZE];
	bool ok;     /* kd_volume_match found a token */
	size_t idx;  /* ... this one */
	int err;     /* ... or this error */
	char detail[300];
};

/* ---------------------------------------------------------------- pieces */

static json_object *header_json(const struct kd_header_health *h)
{
	json_object *hdr = json_object_new_object();

	json_object_object_add(hdr, "copies_agree", json_object_new_boolean(h->agree));
	json_object_object_add(hdr, "needs_repair", json_object_new_boolean(!h->agree));
	json_object_object_add(hdr, "summary", jstr(kd_header_health_summary(h)));
	json_object_object_add(hdr, "primary", kd_luks2_copy_status_json(&h->primary));
	json_object_object_add(hdr, "secondary", kd_luks2_copy_status_json(&h->secondary));
	json_object_object_add(hdr, "allow_list", jstr(h->allow_err ? h->allow_detail : "passed"));
	return hdr;
}

static json_object *escrow_json(const struct kd_escrow_token *e, size_t generations)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];

	json_object_object_add(o, "keyslot", json_object_new_int(e->keyslot));
	json_object_object_add(o, "token", json_object_new_int(e->token_id));
	json_object_object_add(o, "threshold", json_object_new_int((int)e->threshold));
	json_object_object_add(o, "admins", json_object_new_int((int)e->n));
	json_object_object_add(o, "created", jstr(e->created));
	kd_recover_commitment_hex(e->commitment, hex);
	json_object_object_add(o, "commitment", jstr(hex));
	json_object_object_add(o, "generations", json_object_new_int((int)generations));
	for (size_t i = 0; i < e->n; i++) {
		json_object *s = json_object_new_object();

		kd_hex(e->shares[i].admin, sizeof(e->shares[i].admin), hex);
		json_object_object_add(s, "index", json_object_new_int((int)e->shares[i].index));
		json_object_object_add(s, "admin", jstr(hex));
		json_object_object_add(s, "subject", jstr(e->shares[i].subject));
		json_object_array_add(arr, s);
	}
	json_object_object_add(o, "shares", arr);
	return o;
}

/* "pbkdf2-sha512/1000", "argon2id/t4,m32768KiB,p1". */
/* An integer member of host-written JSON, or 0 when it is not one. */
static int64_t kdf_int(json_object *kdf, const char *key)
{
	int64_t v;

	return kd_lj_int(kdf, "keyslot kdf", key, 0, UINT32_MAX, &v) ? 0 : v;
}

static void pbkdf_text(json_object *kdf, char *buf, size_t len)
{
	const char *type = NULL, *hash = NULL;

	/* kdf is whatever the host wrote: typed getters only. */
	if (!kdf || kd_lj_str(kdf, "keyslot kdf", "type", &type))
		type = NULL;
	if (type && !strncmp(type, "argon2", 6))
		snprintf(buf, len, "%.32s/t%lld,m%lldKiB,p%lld", type, (long long)kdf_int(kdf, "time"),
			 (long long)kdf_int(kdf, "memory"), (long long)kdf_int(kdf, "cpus"));
	else
		snprintf(buf, len, "%.32s-%.32s/%lld", type ? type : "?",
			 kdf && !kd_lj_str(kdf, "keyslot kdf", "hash", &hash) ? hash : "?",
			 kdf ? (long long)kdf_int(kdf, "iterations") : 0LL);
}

/* A malformed foreign token describes nothing (the allow-list says why). */
static bool token_names_slot(json_object *tok, const char *tid, int slot)
{
	char where[24];
	uint32_t m = 0;

	return kd_lj_id(tid, "LUKS2 tokens", "token") >= 0 &&
	       !kd_lj_id_set(tok, kd_lj_where(where, sizeof(where), "token", tid), "keyslots", &m) &&
	       (m & (1u << slot));
}

/* Every keyslot in the metadata, with what describes it. */
static json_object *keyslots_json(json_object *meta, const struct kd_token *toks, size_t n,
				  const struct kd_escrow_token *esc, size_t n_esc)
{
	json_object *slots = json_object_new_array(), *ks = NULL, *jt = NULL;
	char buf[128], id[12];

	/* meta may be any JSON the host wrote: typed getters only. */
	if (!meta || kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &ks) ||
	    kd_lj_obj(meta, "LUKS2 metadata", "tokens", &jt))
		return slots;
	for (int s = 0; s < 32; s++) {
		const char *kind = "untokened", *state = "no token (interrupted enrollment?)";
		json_object *k, *so, *kdf;
		int token = -1;

		snprintf(id, sizeof(id), "%d", s);
		if (kd_lj_opt(ks, "LUKS2 keyslots", id, json_type_object, &k) || !k)
			continue;
		for (size_t i = 0; i < n; i++)
			if (toks[i].keyslot == s) {
				kind = "keyd";
				state = kd_token_state_name(toks[i].state);
				token = toks[i].token_id;
			}
		for (size_t i = 0; i < n_esc; i++)
			if (esc[i].keyslot == s) {
				kind = "escrow";
				state = i ? "old-generation" : "current";
				token = esc[i].token_id;
			}
		if (!strcmp(kind, "untokened") && kd_rotate_keyslot_role(meta, s)) {
			kind = "rotation";
			state = kd_rotate_keyslot_role(meta, s);
		}
		if (!strcmp(kind, "untokened")) {
			/* A token of another type (not keyd's) may still describe it. */
			json_object_object_foreach(jt, tid, tok) {
				if (token_names_slot(tok, tid, s)) {
					kind = "foreign";
					state = "foreign token";
					token = atoi(tid);
				}
			}
		}
		if (kd_lj_obj(k, "keyslot", "kdf", &kdf))
			kdf = NULL;
		pbkdf_text(kdf, buf, sizeof(buf));
		so = json_object_new_object();
		json_object_object_add(so, "keyslot", json_object_new_int(s));
		json_object_object_add(so, "kind", jstr(kind));
		json_object_object_add(so, "state", jstr(state));
		json_object_object_add(so, "token", token >= 0 ? json_object_new_int(token) : NULL);
		json_object_object_add(so, "pbkdf", jstr(buf));
		json_object_array_add(slots, so);
	}
	return slots;
}

static void chip_fp(const uint8_t *chip, char out[CHIP_FP_HEX])
{
	kd_hex(chip, KD_CHIP_FP_BYTES, out);
}

/* true/false, or -1 when one side has no chip ID. */
static int same_chip(const struct kd_token *t, const struct launch_view *lv)
{
	if (!t->has_chip || !lv->l || !lv->has_chip)
		return -1;
	return !memcmp(t->chip, lv->chip, KD_CHIP_DIGEST_SIZE);
}

static json_object *tokens_json(const struct kd_token *toks, size_t n, const struct launch_view *lv)
{
	json_object *arr = json_object_new_array();
	char fp[CHIP_FP_HEX], pol[24];

	for (size_t i = 0; i < n; i++) {
		json_object *t = kd_token_status_json(&toks[i]);
		int same = same_chip(&toks[i], lv);

		snprintf(pol, sizeof(pol), "0x%llx", (unsigned long long)toks[i].policy);
		json_object_object_add(t, "policy_hex", jstr(pol));
		if (toks[i].has_chip) {
			chip_fp(toks[i].chip, fp);
			json_object_object_add(t, "chip", jstr(fp));
		} else {
			json_object_object_add(t, "chip", NULL);
		}
		json_object_object_add(t, "chip_is_this", same < 0 ? NULL : json_object_new_boolean(same));
		json_object_array_add(arr, t);
	}
	return arr;
}

/*
 * The stable reason code for a launch that cannot unlock, with the same
 * precedence as kd_volume_match's words.
 */
static const char *cannot_reason(const struct kd_volume *v, const struct launch_view *lv)
{
	const struct kd_report *rep = &lv->l->report;
	const struct kd_token *toks;
	bool tcb = false, chip = false, pol = false;
	size_t n;

	if (kd_volume_health(v)->allow_err)
		return "header-refused";
	if (!kd_volume_health(v)->agree)
		return "header-needs-repair";
	toks = kd_volume_tokens(v, &n);
	if (!n)
		return "no-keyd-slot";
	for (size_t i = 0; i < n; i++) {
		const struct kd_token *t = &toks[i];

		if (memcmp(t->measurement, rep->measurement, sizeof(t->measurement)))
			continue;
		if (t->policy != rep->policy)
			pol = true;
		else if (same_chip(t, lv) == 0)
			chip = true;
		else if (!kd_tcb_ge(rep->committed_tcb, t->tcb, rep->product))
			tcb = true;
	}
	if (tcb)
		return "tcb-rollback";
	if (chip)
		return "other-chip";
	if (pol)
		return rep->policy & KD_POLICY_DEBUG ? "debug-launch" : "other-policy";
	return "other-measurement";
}

static json_object *launch_json(const struct kd_volume *v, const struct launch_view *lv,
				const char *no_launch)
{
	json_object *lo = json_object_new_object();
	char mhex[MHEX], fp[CHIP_FP_HEX];

	if (lv->ok) {
		json_object_object_add(lo, "verdict", jstr("can-unlock"));
		json_object_object_add(lo, "reason", NULL);
		json_object_object_add(lo, "detail", jstr(lv->detail));
	} else if (lv->l) {
		json_object_object_add(lo, "verdict", jstr("cannot-unlock"));
		json_object_object_add(lo, "reason", jstr(cannot_reason(v, lv)));
		json_object_object_add(lo, "detail", jstr(lv->detail));
	} else {
		json_object_object_add(lo, "verdict", jstr("unknown"));
		json_object_object_add(lo, "reason", jstr("no-backend"));
		json_object_object_add(lo, "detail", jstr(no_launch ? no_launch : "no launch"));
	}
	if (lv->l) {
		kd_hex(lv->l->report.measurement, sizeof(lv->l->report.measurement), mhex);
		json_object_object_add(lo, "measurement", jstr(mhex));
		if (lv->has_chip) {
			chip_fp(lv->chip, fp);
			json_object_object_add(lo, "chip", jstr(fp));
		}
	}
	return lo;
}

/* ---------------------------------------------------------------- verdict */

/* "a launch with measurement 1a2b3c… on chip 5e6f7a8b (another chip)". */
static void describe_token(const struct kd_token *t, const struct launch_view *lv, char *buf,
			   size_t len)
{
	char m[MHEX], fp[CHIP_FP_HEX];
	int same = same_chip(t, lv);

	kd_hex(t->measurement, 6, m);
	if (t->has_chip)
		chip_fp(t->chip, fp);
	snprintf(buf, len, "a launch with measurement %s\u2026 and policy 0x%llx%s (%s%s%slabel %s), "
			   "keyslot %d, %s", m, (unsigned long long)t->policy,
		 same < 0 ? "" : same ? " on this chip" : " on another chip",
		 t->has_chip ? "chip " : "", t->has_chip ? fp : "", t->has_chip ? ", " : "", t->label,
		 t->keyslot, kd_token_state_name(t->state));
}

static void can_open(json_object *can, const struct kd_volume *v, const struct launch_view *lv,
		     const struct kd_escrow_token *esc, size_t n_esc, int esc_err)
{
	const struct kd_header_health *h = kd_volume_health(v);
	const struct kd_token *toks;
	char buf[300];
	size_t n;

	if (h->allow_err) {
		say(can, "nothing: the header fails the allow-list (%s)", h->allow_detail);
		return;
	}
	if (!h->agree) {
		say(can, "nothing until the header is repaired (%s)", kd_header_health_summary(h));
		return;
	}
	toks = kd_volume_tokens(v, &n);
	if (lv->ok)
		say(can, "this launch, through keyslot %d", toks[lv->idx].keyslot);
	for (size_t i = 0; i < n; i++) {
		if (toks[i].state == KD_TOKEN_RETIRED || (lv->ok && i == lv->idx))
			continue;
		describe_token(&toks[i], lv, buf, sizeof(buf));
		/* This launch has that measurement and is refused: say so, so the
		 * line is not read as "this launch can open it". */
		if (lv->l && !memcmp(toks[i].measurement, lv->l->report.measurement,
				     sizeof(toks[i].measurement)))
			say(can, "%s -- not this launch: %s", buf,
			    same_chip(&toks[i], lv) == 0 ? "it runs on another chip"
							  : "its policy or TCB does not match");
		else
			say(can, "%s", buf);
	}
	if (n_esc && !esc_err)
		say(can, "any %u of the %zu escrow admins, keyslot %d", esc[0].threshold, esc[0].n,
		    esc[0].keyslot);
}

static void next_steps(json_object *next, const struct kd_volume *v, const struct launch_view *lv,
		       const struct kd_escrow_token *esc, size_t n_esc, int esc_err, size_t pending,
		       bool openable, json_object *slots)
{
	const struct kd_header_health *h = kd_volume_health(v);
	const struct kd_token *toks;
	char fp[CHIP_FP_HEX];
	size_t n;

	toks = kd_volume_tokens(v, &n);
	if (h->allow_err)
		say(next, "do not unlock; restore a known-good header with keyd-recover header-restore");
	/* keyd unlocks and writes nothing while the copies disagree. */
	if (!h->agree && h->used >= 0 && !h->allow_err)
		say(next, "the header copies disagree (the %s copy is not the one in use): keyd "
			  "refuses to unlock or write until keyd-recover repair DEVICE BACKUP, which "
			  "saves both copies and then rewrites the %s one",
		    kd_header_damaged_copy(h), kd_header_damaged_copy(h));
	else if (!h->agree && h->used >= 0)
		say(next, "the header copies disagree and the copy in use fails the allow-list: do "
			  "not repair from it; restore a known-good header with keyd-recover "
			  "header-restore");
	if (pending)
		say(next, "a handoff is pending: boot the new version and run keyd commit, or roll back "
			  "with keyd-recover retire DEVICE SLOT on the pending slot");
	/* After a recovery onto this chip, the lost chip's slot is still there. */
	for (size_t i = 0; lv->ok && i < n; i++) {
		if (toks[i].state != KD_TOKEN_ACTIVE || same_chip(&toks[i], lv) != 0)
			continue;
		chip_fp(toks[i].chip, fp);
		say(next, "keyslot %d (label %s) is sealed to another chip (%s): if that chip is lost "
			  "or replaced (a recovery onto this chip), retire it: keyd-recover retire "
			  "%s %d", toks[i].keyslot, toks[i].label, fp, kd_volume_path(v), toks[i].keyslot);
	}
	/* Left by an interrupted enrollment or escrow rotation: whoever knows
	 * its passphrase (e.g. holders of an old escrow's shares) still opens it. */
	for (size_t i = 0; lv->ok && i < json_object_array_length(slots); i++) {
		json_object *so = json_object_array_get_idx(slots, i);

		if (strcmp(json_object_get_string(json_object_object_get(so, "kind")), "untokened"))
			continue;
		say(next, "keyslot %d has no token (an interrupted enrollment or escrow rotation): "
			  "retire it: keyd-recover retire %s %d",
		    json_object_get_int(json_object_object_get(so, "keyslot")), kd_volume_path(v),
		    json_object_get_int(json_object_object_get(so, "keyslot")));
	}
	if (!h->allow_err && h->agree && !lv->ok && lv->l && n_esc && !esc_err)
		say(next, "this launch cannot open the volume: recover with %u admins (export-shares, "
			  "decrypt-share, unlock --share)", esc[0].threshold);
	if (!h->allow_err && h->agree && !lv->ok && lv->l && !n_esc)
		say(next, "this launch cannot open the volume and there is no escrow: boot a launch "
			  "that can (see the tokens), or restore a header backup");
	if (lv->ok && toks[lv->idx].tcb != lv->l->report.committed_tcb)
		say(next, "run keyd-recover rekey: the firmware's committed TCB is newer than the seal");
	if (!n_esc && !esc_err)
		say(next, "no recovery escrow: add one with keyd-recover escrow add");
	if (n_esc > 1)
		say(next, "an escrow rotation was interrupted: rerun keyd-recover escrow add --rotate");
	if (esc_err && esc_err != KD_ENOENT)
		say(next, "the escrow token is damaged (%s): rotate it from a launch that can unlock",
		    kd_err_detail(esc_err));
	if (!openable && h->agree)
		say(next, "no key this host knows of opens the volume: restore a header backup");
	if (!json_object_array_length(next))
		say(next, "nothing to do");
}

/* ---------------------------------------------------------------- status */

static void launch_view_init(const struct kd_volume *v, const struct kd_launch *l,
			     struct launch_view *lv)
{
	const struct kd_token *toks;
	size_t n;

	memset(lv, 0, sizeof(*lv));
	lv->l = l;
	if (!l)
		return;
	lv->has_chip = false;
	for (size_t i = 0; i < sizeof(l->report.chip_id); i++)
		lv->has_chip |= l->report.chip_id[i] != 0;
	if (lv->has_chip && kd_chip_digest(l->report.chip_id, lv->chip))
		lv->has_chip = false;
	toks = kd_volume_tokens(v, &n);
	lv->err = kd_volume_match(v, l, &lv->idx);
	lv->ok = !lv->err && kd_volume_health(v)->agree;
	if (!lv->err && !lv->ok)
		/* The key would derive, but a real unlock refuses until repair. */
		snprintf(lv->detail, sizeof(lv->detail), "keyslot %d (label %s) matches this launch, "
			 "but the header copies disagree: run keyd-recover repair first",
			 toks[lv->idx].keyslot, toks[lv->idx].label);
	else if (lv->ok)
		snprintf(lv->detail, sizeof(lv->detail), "keyslot %d (label %s, %s)%s",
			 toks[lv->idx].keyslot, toks[lv->idx].label,
			 kd_token_state_name(toks[lv->idx].state),
			 toks[lv->idx].tcb != l->report.committed_tcb
				 ? "; committed TCB is newer: the next unlock re-keys (or run "
				   "keyd-recover rekey)"
				 : "");
	else
		snprintf(lv->detail, sizeof(lv->detail), "%s", kd_err_detail(lv->err));
}

int kd_recover_status(struct kd_volume *v, const struct kd_launch *l, const char *no_launch,
		      json_object **ret)
{
	const struct kd_header_health *h = kd_volume_health(v);
	struct kd_header_health fresh;
	struct kd_escrow_token esc[MAX_ESCROWS];
	struct launch_view lv;
	const struct kd_token *toks;
	json_object *o, *pend, *verdict, *can, *next, *slots, *meta = NULL;
	size_t n, n_esc = 0, live = 0;
	int fd, r, esc_err;
	char mhex[MHEX];
	bool openable;

	toks = kd_volume_tokens(v, &n);
	fd = open(kd_volume_path(v), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %.200s: %s", kd_volume_path(v), strerror(errno));
	r = kd_header_read(fd, &fresh, &meta);
	close(fd);
	if (r)
		return r;
	esc_err = kd_escrow_find_all(v, esc, MAX_ESCROWS, &n_esc);
	if (esc_err)
		n_esc = 0;
	launch_view_init(v, l, &lv);

	o = json_object_new_object();
	json_object_object_add(o, "schema", json_object_new_int(KD_RECOVER_STATUS_SCHEMA));
	json_object_object_add(o, "device", jstr(kd_volume_path(v)));
	json_object_object_add(o, "uuid", jstr(kd_volume_uuid(v)));
	json_object_object_add(o, "header", header_json(h));
	slots = keyslots_json(meta, toks, n, esc, n_esc);
	json_object_object_add(o, "keyslots", slots);
	json_object_object_add(o, "tokens", tokens_json(toks, n, &lv));
	pend = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		live += toks[i].state != KD_TOKEN_RETIRED;
		if (toks[i].state == KD_TOKEN_PENDING) {
			json_object *p = json_object_new_object();

			kd_hex(toks[i].measurement, sizeof(toks[i].measurement), mhex);
			json_object_object_add(p, "keyslot", json_object_new_int(toks[i].keyslot));
			json_object_object_add(p, "label", jstr(toks[i].label));
			json_object_object_add(p, "measurement", jstr(mhex));
			json_object_array_add(pend, p);
		}
	}
	json_object_object_add(o, "pending_handoff", pend);
	json_object_object_add(o, "escrow", n_esc ? escrow_json(&esc[0], n_esc) : NULL);
	if (esc_err && esc_err != KD_ENOENT)
		json_object_object_add(o, "escrow_error", jstr(kd_err_detail(esc_err)));
	json_object_object_add(o, "launch", launch_json(v, &lv, no_launch));

	/* The verdict in words. */
	/* keyd unlocks nothing while the copies disagree (kd_header_require_agree). */
	openable = !h->allow_err && h->agree && (lv.ok || live || n_esc);
	verdict = json_object_new_object();
	can = json_object_new_array();
	next = json_object_new_array();
	can_open(can, v, &lv, esc, n_esc, esc_err);
	next_steps(next, v, &lv, esc, n_esc, esc_err, json_object_array_length(pend), openable, slots);
	json_object_object_add(verdict, "openable", json_object_new_boolean(openable));
	json_object_object_add(verdict, "can_open", can);
	json_object_object_add(verdict, "next", next);
	json_object_object_add(o, "verdict", verdict);
	/* A volume-key rotation (keyd rotate) in progress: how far, what to do. */
	{
		struct kd_rotate_status rs;

		if (!kd_rotate_status_of(meta, kd_volume_path(v), &rs)) {
			json_object_object_add(o, "rotation", kd_rotate_status_json(&rs));
			if (rs.phase != KD_ROTATE_NONE)
				json_object_array_add(next, jstr(rs.advice));
			if (rs.escrow_pending)
				json_object_array_add(next, jstr(rs.plan_advice));
		}
	}
	for (size_t i = 0; i < n_esc; i++)
		kd_escrow_token_clear(&esc[i]);
	json_object_put(meta);
	*ret = o;
	return 0;
}

int kd_recover_status_device(const char *device, const struct kd_backend_opts *o,
			     json_object **ret)
{
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_launch l;
	char why[300] = "";
	bool have_launch;
	int r;

	if ((r = kd_volume_open(device, &v)))
		return r;
	r = kd_backend_open(o, &b);
	if (r == 0)
		r = kd_launch_get(b, &l);
	have_launch = r == 0;
	if (!have_launch)
		snprintf(why, sizeof(why), "no trust backend answered (%.250s)", kd_err_detail(r));
	r = kd_recover_status(v, have_launch ? &l : NULL, why, ret);
	kd_backend_close(b);
	kd_volume_close(v);
	return r;
}

/* ---------------------------------------------------------------- text */

static const char *str(json_object *o, const char *key)
{
	const char *s = json_object_get_string(json_object_object_get(o, key));

	return s ? s : "-";
}

static int num(json_object *o, const char *key)
{
	return json_object_get_int(json_object_object_get(o, key));
}

static void print_list(FILE *out, const char *title, json_object *arr)
{
	fprintf(out, "%s\n", title);
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		fprintf(out, "  - %s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
}

static const char *chip_words(json_object *t)
{
	json_object *is = json_object_object_get(t, "chip_is_this");

	if (!json_object_object_get(t, "chip"))
		return "no chip binding";
	if (!is)
		return "chip unknown here";
	return json_object_get_boolean(is) ? "this chip" : "another chip";
}

static void copy_line(FILE *out, const char *name, json_object *c)
{
	fprintf(out, "  %-10s %s\n", name,
		json_object_get_boolean(json_object_object_get(c, "ok")) ? "ok" : str(c, "error"));
}

void kd_recover_status_print(json_object *st, FILE *out)
{
	json_object *h = json_object_object_get(st, "header"), *arr, *e, *lo, *vd, *ro;

	fprintf(out, "device:     %s\nuuid:       %s\n", str(st, "device"), str(st, "uuid"));
	fprintf(out, "header:     %s\n", str(h, "summary"));
	copy_line(out, "primary:", json_object_object_get(h, "primary"));
	copy_line(out, "secondary:", json_object_object_get(h, "secondary"));
	fprintf(out, "allow-list: %s\n", str(h, "allow_list"));
	arr = json_object_object_get(st, "keyslots");
	fprintf(out, "keyslots:\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i);

		fprintf(out, "  keyslot %d: %s (%s), %s\n", num(s, "keyslot"), str(s, "kind"),
			str(s, "state"), str(s, "pbkdf"));
	}
	arr = json_object_object_get(st, "tokens");
	fprintf(out, "keyd tokens:%s\n", json_object_array_length(arr) ? "" : " none");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		fprintf(out, "  token %d: keyslot %d, %s, label \"%s\", svn %d, created %s\n"
			     "    measurement %s\n    chip %s (%s), tcb %s, policy %s, backend %s\n",
			num(t, "token"), num(t, "keyslot"), str(t, "state"), str(t, "label"),
			num(t, "svn"), str(t, "created"), str(t, "measurement"), str(t, "chip"),
			chip_words(t), str(t, "tcb"), str(t, "policy_hex"), str(t, "backend"));
	}
	arr = json_object_object_get(st, "pending_handoff");
	fprintf(out, "pending handoff:%s\n", json_object_array_length(arr) ? "" : " none");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		fprintf(out, "  keyslot %d, label \"%s\", waits for keyd commit\n", num(p, "keyslot"),
			str(p, "label"));
	}
	e = json_object_object_get(st, "escrow");
	if (e) {
		fprintf(out, "escrow:     %d of %d admins, keyslot %d, created %s\n",
			num(e, "threshold"), num(e, "admins"), num(e, "keyslot"), str(e, "created"));
		fprintf(out, "  commitment %s\n", str(e, "commitment"));
		arr = json_object_object_get(e, "shares");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *s = json_object_array_get_idx(arr, i);

			fprintf(out, "  share %d: %s\n    sha256 %s\n", num(s, "index"),
				str(s, "subject"), str(s, "admin"));
		}
	} else {
		fprintf(out, "escrow:     %s\n", json_object_object_get(st, "escrow_error")
						     ? str(st, "escrow_error") : "none");
	}
	ro = json_object_object_get(st, "rotation");
	if (ro && strcmp(str(ro, "phase"), "none"))
		fprintf(out, "rotation:   %s%s, %lld of %lld bytes re-encrypted, %s resilience\n",
			str(ro, "phase"),
			json_object_get_boolean(json_object_object_get(ro, "interrupted"))
				? " (interrupted)" : "",
			(long long)json_object_get_int64(json_object_object_get(ro, "bytes_done")),
			(long long)json_object_get_int64(json_object_object_get(ro, "bytes_total")),
			str(ro, "resilience"));
	if (ro && json_object_object_get(ro, "escrow_resplit_pending"))
		fprintf(out, "rotation:   %s\n",
			str(json_object_object_get(ro, "escrow_resplit_pending"), "advice"));
	lo = json_object_object_get(st, "launch");
	fprintf(out, "this launch: %s: %s\n", str(lo, "verdict"), str(lo, "detail"));
	if (json_object_object_get(lo, "measurement"))
		fprintf(out, "  measurement %s, chip %s%s%s\n", str(lo, "measurement"), str(lo, "chip"),
			json_object_object_get(lo, "reason") ? ", reason " : "",
			json_object_object_get(lo, "reason") ? str(lo, "reason") : "");
	vd = json_object_object_get(st, "verdict");
	print_list(out, json_object_get_boolean(json_object_object_get(vd, "openable"))
				? "VERDICT: openable. Can open it now:"
				: "VERDICT: NOT openable. Can open it now:",
		   json_object_object_get(vd, "can_open"));
	print_list(out, "Next:", json_object_object_get(vd, "next"));
}

void kd_recover_list_print(json_object *st, FILE *out)
{
	json_object *slots = json_object_object_get(st, "keyslots");
	json_object *toks = json_object_object_get(st, "tokens");
	json_object *e = json_object_object_get(st, "escrow");

	for (size_t i = 0; i < json_object_array_length(slots); i++) {
		json_object *s = json_object_array_get_idx(slots, i), *t = NULL;
		const char *kind = str(s, "kind");

		for (size_t j = 0; j < json_object_array_length(toks); j++)
			if (num(json_object_array_get_idx(toks, j), "keyslot") == num(s, "keyslot"))
				t = json_object_array_get_idx(toks, j);
		if (t)
			fprintf(out, "%d: keyd %s \"%s\" svn %d chip %s (%s) measurement %.12s\u2026\n",
				num(s, "keyslot"), str(t, "state"), str(t, "label"), num(t, "svn"),
				str(t, "chip"), chip_words(t), str(t, "measurement"));
		else if (!strcmp(kind, "escrow") && e && !strcmp(str(s, "state"), "current"))
			fprintf(out, "%d: escrow %d-of-%d commitment %.16s\u2026\n", num(s, "keyslot"),
				num(e, "threshold"), num(e, "admins"), str(e, "commitment"));
		else
			fprintf(out, "%d: %s (%s)\n", num(s, "keyslot"), kind, str(s, "state"));
	}
}
