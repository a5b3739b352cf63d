/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover status: the whole picture of a volume for an admin (escrow.h). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"
#include "keyd/token.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define S(x) json_object_new_string(x)

static json_object *escrow_json(const struct kd_escrow_token *e, size_t generations)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];

	json_object_object_add(o, "keyslot", json_object_new_int(e->keyslot));
	json_object_object_add(o, "token", json_object_new_int(e->token_id));
	json_object_object_add(o, "threshold", json_object_new_int((int)e->threshold));
	json_object_object_add(o, "admins", json_object_new_int((int)e->n));
	json_object_object_add(o, "created", S(e->created));
	kd_hex(e->commitment, sizeof(e->commitment), hex);
	json_object_object_add(o, "commitment", S(hex));
	json_object_object_add(o, "generations", json_object_new_int((int)generations));
	for (size_t i = 0; i < e->n; i++) {
		json_object *s = json_object_new_object();

		kd_hex(e->shares[i].admin, sizeof(e->shares[i].admin), hex);
		json_object_object_add(s, "index", json_object_new_int((int)e->shares[i].index));
		json_object_object_add(s, "admin", S(hex));
		json_object_object_add(s, "subject", S(e->shares[i].subject));
		json_object_array_add(arr, s);
	}
	json_object_object_add(o, "shares", arr);
	return o;
}

static void say(json_object *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(json_object *arr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_array_add(arr, S(buf));
}

int kd_recover_status(struct kd_volume *v, const struct kd_launch *l, const char *no_launch,
		      json_object **ret)
{
	const struct kd_header_health *h = kd_volume_health(v);
	struct kd_header_health fresh;
	struct kd_escrow_token esc[4];
	const struct kd_token *toks;
	json_object *o, *hdr, *slots, *arr, *pend, *lo, *verdict, *can, *next, *meta = NULL, *ks = NULL,
			  *jt = NULL;
	size_t n, n_esc = 0, idx = 0, live = 0;
	int fd, r, esc_err = 0;
	bool launch_ok = false, openable;
	char mhex[2 * KD_MEASUREMENT_SIZE + 1];
	const char *launch_detail = no_launch ? no_launch : "no launch";
	char buf[512];

	toks = kd_volume_tokens(v, &n);
	fd = open(kd_volume_path(v), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %.200s: %s", kd_volume_path(v), strerror(errno));
	r = kd_header_read(fd, &fresh, &meta);
	close(fd);
	if (r)
		return r;
	esc_err = kd_escrow_find_all(v, esc, 4, &n_esc);

	o = json_object_new_object();
	json_object_object_add(o, "device", S(kd_volume_path(v)));
	json_object_object_add(o, "uuid", S(kd_volume_uuid(v)));
	hdr = json_object_new_object();
	json_object_object_add(hdr, "copies_agree", json_object_new_boolean(h->agree));
	json_object_object_add(hdr, "needs_repair", json_object_new_boolean(!h->agree));
	json_object_object_add(hdr, "summary", S(kd_header_health_summary(h)));
	json_object_object_add(hdr, "primary", kd_luks2_copy_status_json(&h->primary));
	json_object_object_add(hdr, "secondary", kd_luks2_copy_status_json(&h->secondary));
	json_object_object_add(hdr, "allow_list", S(h->allow_err ? h->allow_detail : "passed"));
	json_object_object_add(o, "header", hdr);

	/* Every keyslot, with what describes it. */
	slots = json_object_new_array();
	/* meta may be any JSON the host wrote: typed getters only. */
	if (meta && !kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &ks) &&
	    !kd_lj_obj(meta, "LUKS2 metadata", "tokens", &jt)) {
		for (int s = 0; s < 32; s++) {
			char id[12];
			json_object *k, *kdf, *so;
			const char *kind = "untokened", *state = "unknown", *kt = "?", *kh = "-";
			int64_t iter = 0;
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
					state = i ? "escrow (old generation)" : "escrow";
					token = esc[i].token_id;
				}
			if (!strcmp(kind, "untokened")) {
				/* A token of another type (not keyd's) may still describe it;
				 * a malformed one describes nothing (the allow-list says why). */
				json_object_object_foreach(jt, tid, tok) {
					char where[24];
					uint32_t m = 0;
					int t = kd_lj_id(tid, "LUKS2 tokens", "token");

					if (t >= 0 &&
					    !kd_lj_id_set(tok, kd_lj_where(where, sizeof(where), "token", tid),
							  "keyslots", &m) &&
					    (m & (1u << s))) {
						kind = "foreign";
						token = t;
					}
				}
				state = !strcmp(kind, "foreign") ? "foreign token"
								 : "no token (interrupted enrollment?)";
			}
			if (!kd_lj_obj(k, "keyslot", "kdf", &kdf)) {
				if (kd_lj_str(kdf, "keyslot kdf", "type", &kt))
					kt = "?";
				if (kd_lj_str(kdf, "keyslot kdf", "hash", &kh))
					kh = "-";
				if (kd_lj_int(kdf, "keyslot kdf", "iterations", 0, UINT32_MAX, &iter))
					iter = 0;
			}
			snprintf(buf, sizeof(buf), "%.32s-%.32s/%lld", kt, kh, (long long)iter);
			so = json_object_new_object();
			json_object_object_add(so, "keyslot", json_object_new_int(s));
			json_object_object_add(so, "kind", S(kind));
			json_object_object_add(so, "state", S(state));
			json_object_object_add(so, "token", token >= 0 ? json_object_new_int(token) : NULL);
			json_object_object_add(so, "pbkdf", S(buf));
			json_object_array_add(slots, so);
		}
	}
	json_object_object_add(o, "keyslots", slots);

	arr = json_object_new_array();
	pend = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(arr, kd_token_status_json(&toks[i]));
		live += toks[i].state != KD_TOKEN_RETIRED;
		if (toks[i].state == KD_TOKEN_PENDING) {
			json_object *p = json_object_new_object();

			kd_hex(toks[i].measurement, sizeof(toks[i].measurement), mhex);
			json_object_object_add(p, "keyslot", json_object_new_int(toks[i].keyslot));
			json_object_object_add(p, "label", S(toks[i].label));
			json_object_object_add(p, "measurement", S(mhex));
			json_object_array_add(pend, p);
		}
	}
	json_object_object_add(o, "tokens", arr);
	json_object_object_add(o, "pending_handoff", pend);
	if (!esc_err && n_esc)
		json_object_object_add(o, "escrow", escrow_json(&esc[0], n_esc));
	else
		json_object_object_add(o, "escrow", NULL);
	if (esc_err && esc_err != KD_ENOENT)
		json_object_object_add(o, "escrow_error", S(kd_err_detail(esc_err)));

	lo = json_object_new_object();
	if (l && (r = kd_volume_match(v, l, &idx)) == 0 && !h->agree) {
		/* The key would derive, but a real unlock refuses until repair. */
		snprintf(buf, sizeof(buf), "keyslot %d (label %s) matches this launch, but the header "
			 "copies disagree: run keyd-recover repair first", toks[idx].keyslot,
			 toks[idx].label);
		json_object_object_add(lo, "verdict", S("cannot-unlock"));
		json_object_object_add(lo, "detail", S(buf));
	} else if (l && r == 0) {
		launch_ok = true;
		snprintf(buf, sizeof(buf), "keyslot %d (label %s, %s)%s", toks[idx].keyslot,
			 toks[idx].label, kd_token_state_name(toks[idx].state),
			 toks[idx].tcb != l->report.committed_tcb
				 ? "; committed TCB is newer: run keyd-recover rekey"
				 : "");
		json_object_object_add(lo, "verdict", S("can-unlock"));
		json_object_object_add(lo, "detail", S(buf));
	} else {
		json_object_object_add(lo, "verdict", S(l ? "cannot-unlock" : "unknown"));
		json_object_object_add(lo, "detail", S(l ? kd_err_detail(r) : launch_detail));
	}
	if (l) {
		kd_hex(l->report.measurement, sizeof(l->report.measurement), mhex);
		json_object_object_add(lo, "measurement", S(mhex));
	}
	json_object_object_add(o, "launch", lo);

	/* The verdict in words. */
	verdict = json_object_new_object();
	can = json_object_new_array();
	next = json_object_new_array();
	if (h->allow_err) {
		say(can, "nothing: the header fails the allow-list (%s)", h->allow_detail);
		say(next, "do not unlock; restore a known-good header with keyd-recover header-restore");
	} else if (!h->agree) {
		say(can, "nothing until the header is repaired (%s)", kd_header_health_summary(h));
	} else {
		if (launch_ok)
			say(can, "this launch, through keyslot %d", toks[idx].keyslot);
		for (size_t i = 0; i < n; i++) {
			if (toks[i].state == KD_TOKEN_RETIRED || (launch_ok && i == idx))
				continue;
			kd_hex(toks[i].measurement, 6, mhex);
			say(can, "a launch with measurement %s... (label %s), keyslot %d, %s", mhex,
			    toks[i].label, toks[i].keyslot, kd_token_state_name(toks[i].state));
		}
		if (n_esc && !esc_err)
			say(can, "any %u of the %zu escrow admins, keyslot %d", esc[0].threshold,
			    esc[0].n, esc[0].keyslot);
	}
	/* keyd unlocks nothing while the copies disagree (kd_header_require_agree). */
	openable = !h->allow_err && h->agree && (launch_ok || live || (n_esc && !esc_err));
	if (!h->agree && h->used >= 0 && !h->allow_err)
		say(next, "the header copies disagree (the %s copy is not the one in use): keyd "
			  "refuses to unlock or write until keyd-recover repair DEVICE BACKUP, which "
			  "saves both copies and then rewrites the %s one",
		    kd_header_damaged_copy(h), kd_header_damaged_copy(h));
	else if (!h->agree && h->used >= 0)
		say(next, "the header copies disagree and the copy in use fails the allow-list: do "
			  "not repair from it; restore a known-good header with keyd-recover "
			  "header-restore");
	if (json_object_array_length(pend))
		say(next, "a handoff is pending: boot the new version and run keyd commit, or roll back "
			  "with keyd-recover retire DEVICE SLOT on the pending slot");
	if (!h->allow_err && h->agree && !launch_ok && l && n_esc && !esc_err)
		say(next, "this launch cannot open the volume: recover with %u admins (export-shares, "
			  "decrypt-share, unlock --shares)", esc[0].threshold);
	if (!h->allow_err && h->agree && !launch_ok && l && !n_esc)
		say(next, "this launch cannot open the volume and there is no escrow: boot a launch "
			  "that can (see the tokens), or restore a header backup");
	if (launch_ok && toks[idx].tcb != l->report.committed_tcb)
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
	json_object_object_add(verdict, "openable", json_object_new_boolean(openable));
	json_object_object_add(verdict, "can_open", can);
	json_object_object_add(verdict, "next", next);
	json_object_object_add(o, "verdict", verdict);
	for (size_t i = 0; i < n_esc; i++)
		kd_escrow_token_clear(&esc[i]);
	json_object_put(meta);
	*ret = o;
	return 0;
}
