/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two ends of the handoff (docs/handoff-protocol.md): O serves, N receives.
 *
 * Safety argument, per step, for O's volumes:
 *  - nothing is written before N is fully verified and its ACCEPT parsed;
 *  - each volume gets a *pending* keyslot + token: a pending slot only adds a
 *    way in for N's measured image on this chip (its secrets are wrapped to
 *    N's public key, which N's report vouched for), and O's own slot is never
 *    touched, so a crash or a vanished peer at any point leaves a volume that
 *    opens with O's key;
 *  - a pending slot left by an earlier, interrupted handoff to the same
 *    measurement is retired before the new one is added, and keyslots a
 *    crash left without a token are killed, so reruns replace rather than
 *    pile up slots.
 *
 * And for N's secrets: N sends its public key and nothing else derived from
 * its sealing key. O invents every slot secret (fresh per volume and per
 * handoff), so an O that names a volume it does not hold learns nothing
 * that opens N's slot anywhere (the harvest attack on format 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/handoff.h"
#include "keyd/pending.h"
#include "keyd/util.h"
#include "keyd/verify.h"
#include "keyd/volume.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include "handoff/internal.h"

struct side {
	const struct kd_handoff_opts *o;
	char role;
	struct kd_tls *tls;
	struct kd_io io;
	struct kd_launch launch;
	struct kd_manifest *own_manifest;
	struct kd_handoff_trust trust; /* o->trust with the floor settled */
	struct kd_verifier *own_vek;   /* this chip's VCEK, to re-check the peer */
	struct kd_manifest *peer_manifest;
	struct kd_report peer_report;
	uint8_t exporter[KD_HANDOFF_EXPORTER_LEN];
	uint8_t kex[KD_KEX_PUB_LEN];      /* N: key-agreement key; O: evidence signing key */
	size_t kex_len;
	EVP_PKEY *sign_key;               /* O: signs the evidence of N's pending slots */
	uint8_t own_report[KD_REPORT_SIZE]; /* O: its HELLO report, the evidence's anchor */
	uint8_t peer_kex[KD_KEX_PUB_LEN]; /* O: N's public key, vouched for by N's report */
	char *own_manifest_compact;       /* O: travels in N's pending tokens */
	uint8_t *own_certs;               /* the certificate table of the launch report */
	size_t own_certs_len;
	int64_t t_mark;
};

/* Phase timings need sub-millisecond resolution. */
static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double lap(struct side *s)
{
	int64_t now = now_us();
	double d = (double)(now - s->t_mark) / 1000.0;

	s->t_mark = now;
	return d;
}

/* Tell the peer why we stop (best effort), keep our own error and detail. */
static int send_error(struct side *s, int err)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", kd_err_detail(err));
	if (s->tls && err != KD_EREFUSED && err != KD_ETIMEOUT && err != KD_EIO) {
		struct kd_io quick = s->io;

		quick.read_timeout_ms = 1000;
		quick.deadline_ms = 0;
		kd_frame_send(&quick, KD_MSG_ERROR, why, strlen(why));
	}
	return kd_fail(err, "%s", why);
}

/* Test peers that stop talking: hold the connection open, then give up. */
static int stall(struct side *s, enum kd_handoff_stall at)
{
	int64_t until;

	if (s->o->stall != at)
		return 0;
	until = s->io.deadline_ms ? s->io.deadline_ms : kd_now_ms() + 60000;
	while (kd_now_ms() < until && !kd_tls_peer_gone(s->tls, 20))
		;
	return kd_fail(KD_ETIMEOUT, "stalled on request (test)");
}

static int setup_common(struct side *s, const struct kd_handoff_opts *o, char role)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->o = o;
	s->role = role;
	s->t_mark = now_us();
	if (!o->backend || !o->manifest || !o->trust.keys)
		return kd_fail(KD_EINVAL, "handoff needs a backend, a manifest and release keys");
	r = kd_manifest_parse(o->manifest, o->manifest_len, &s->own_manifest);
	if (r)
		return kd_fail_prefix(r, "own manifest");
	/* One AMD-SP request for the launch and its certificate table. */
	r = kd_launch_get_certs(o->backend, &s->launch, &s->own_certs, &s->own_certs_len);
	if (r)
		return r;
	/* Our own release is judged before we listen or connect. */
	return kd_handoff_check_self(role, s->own_manifest, &s->launch.report, &o->trust,
				     &s->trust);
}

/*
 * This chip's own VCEK, prepared while nobody waits on it (O: before its
 * first accept; N: before it connects), for re-checking the peer.
 */
static int prepare_own_vek(struct side *s)
{
	int r = kd_handoff_own_verifier(s->own_certs, s->own_certs_len, &s->trust, &s->own_vek);

	free(s->own_certs);
	s->own_certs = NULL;
	return r;
}

/* O: its manifest as compact JSON, for the evidence in N's pending tokens. */
static int compact_manifest(struct side *s)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *m = tok ? json_tokener_parse_ex(tok, (const char *)s->o->manifest,
						     (int)s->o->manifest_len)
			     : NULL;
	const char *txt = m ? json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN) : NULL;
	int r = 0;

	json_tokener_free(tok);
	if (!txt)
		r = kd_fail(KD_EMALFORMED, "own manifest is not JSON");
	else if (strlen(txt) > KD_EVIDENCE_MANIFEST_MAX)
		r = kd_fail(KD_EINVAL, "own manifest is %zu bytes compact, above the %u that travel "
				       "in a pending token", strlen(txt), KD_EVIDENCE_MANIFEST_MAX);
	else if (!(s->own_manifest_compact = strdup(txt)))
		r = kd_fail(KD_ENOMEM, "out of memory (handoff)");
	json_object_put(m);
	return r;
}

/* N: the public half of the key-agreement key sealed to this launch. */
static int own_kex(struct side *s, const struct kd_token *tok)
{
	EVP_PKEY *priv = NULL;
	int r = kd_kex_for_token(s->o->backend, tok, &priv, s->kex);

	EVP_PKEY_free(priv);
	if (r)
		return r;
	s->kex_len = KD_KEX_PUB_LEN;
	return 0;
}

static void teardown(struct side *s)
{
	kd_verifier_free(s->own_vek);
	kd_tls_close(s->tls);
	kd_manifest_free(s->own_manifest);
	kd_manifest_free(s->peer_manifest);
	free(s->own_manifest_compact);
	free(s->own_certs);
	EVP_PKEY_free(s->sign_key);
	kd_wipe(s->exporter, sizeof(s->exporter));
}

/* The report data of our HELLO: the session's exporter bound to our key. */
static int own_report_data(struct side *s, uint8_t rd[64])
{
	uint8_t bind[KD_HANDOFF_EXPORTER_LEN];
	int r;

	r = kd_tls_exporter(s->tls, s->exporter);
	if (r)
		return r;
	r = kd_handoff_binding(s->exporter, s->kex, s->kex_len, bind);
	if (r)
		return r;
	return kd_handoff_report_data(s->role, bind, rd);
}

/* Step 2, our half: a report that vouches for the session, sent as HELLO. */
static int send_hello(struct side *s)
{
	struct kd_handoff_timings *tm = s->o->timings;
	_kd_free_ uint8_t *report = NULL, *certs = NULL, *out = NULL;
	size_t report_len = 0, certs_len = 0, out_len = 0;
	struct kd_hello mine;
	uint8_t rd[64];
	int r;

	r = own_report_data(s, rd);
	if (r)
		return r;
	r = kd_backend_report(s->o->backend, rd, 0, &report, &report_len, &certs, &certs_len);
	if (tm)
		tm->report_ms = lap(s);
	if (r)
		return r;
	if (report_len != KD_REPORT_SIZE)
		return kd_fail(KD_EPROTO, "own report is %zu bytes", report_len);
	memcpy(s->own_report, report, KD_REPORT_SIZE);
	mine = (struct kd_hello){(uint8_t)s->role, report, report_len, certs, certs_len,
				 s->o->manifest, s->o->manifest_len, s->kex_len ? s->kex : NULL,
				 s->kex_len};
	r = kd_hello_encode(&mine, &out, &out_len);
	if (r)
		return r;
	r = stall(s, KD_STALL_TLS);
	if (r)
		return r;
	return kd_frame_send(&s->io, KD_MSG_HELLO, out, out_len);
}

/* Step 3: the peer's HELLO, verified. */
static int recv_hello(struct side *s)
{
	struct kd_handoff_timings *tm = s->o->timings;
	uint8_t peer_bind[KD_HANDOFF_EXPORTER_LEN];
	_kd_free_ uint8_t *in = NULL;
	size_t in_len = 0;
	struct kd_hello peer;
	int r;

	r = stall(s, KD_STALL_HELLO);
	if (r)
		return r;
	r = kd_frame_recv(&s->io, KD_MSG_HELLO, &in, &in_len);
	if (tm)
		tm->hello_ms = lap(s);
	if (r)
		return r;
	r = kd_hello_parse(in, in_len, &peer);
	if (r)
		return r;
	/* The peer's report must vouch for the session and for its public key. */
	r = kd_handoff_binding(s->exporter, peer.kex, peer.kex_len, peer_bind);
	if (r)
		return r;
	/* The untrusted HELLO is parsed and judged in a child without keys. */
	r = kd_handoff_verify_peer_isolated(s->role, &peer, s->own_vek, peer_bind,
					    &s->launch.report, s->own_manifest, &s->trust,
					    s->o->read_timeout_ms, &s->peer_report,
					    &s->peer_manifest);
	if (r)
		return r;
	if (peer.kex_len == KD_KEX_PUB_LEN)
		memcpy(s->peer_kex, peer.kex, KD_KEX_PUB_LEN);
	if (tm)
		tm->verify_ms = lap(s);
	return 0;
}

/* Steps 2 and 3: bind, exchange HELLO, verify the peer. */
static int hello_exchange(struct side *s)
{
	int r = send_hello(s);

	if (r)
		return r;
	return recv_hello(s);
}

/* ---------------------------------------------------------------- O */

struct o_volume {
	struct kd_volume *v;
	struct kd_secret *vk;
	char uuid[KD_UUID_LEN + 1];
};

/*
 * A pending slot for the same measurement from an interrupted handoff is
 * replaced, not duplicated (a crash between keyslot and token write leaves
 * a token-less slot, which the add-slot callers reclaim).
 */
static int drop_stale_pending(struct o_volume *ov, const uint8_t meas[48])
{
	for (;;) {
		size_t n = 0;
		const struct kd_token *t = kd_volume_tokens(ov->v, &n);
		int slot = -1, r;

		for (size_t i = 0; i < n; i++)
			if (t[i].state == KD_TOKEN_PENDING && !memcmp(t[i].measurement, meas, 48))
				slot = t[i].keyslot;
		if (slot < 0)
			return 0;
		r = kd_volume_retire(ov->v, slot, false);
		if (r)
			return r;
	}
}

/*
 * Step 4 for one volume, called between the keyslot write and the token
 * write: wrap the fresh secrets to N's key, and sign exactly this slot with
 * the handoff key our HELLO report vouched for: with that report, proof that
 * an attested signed release made the slot (pending.h).
 */
struct seal_ctx {
	struct side *s;
	const struct kd_secret *pass, *pin_key;
};

static int seal_pending(void *ctx, const char *uuid, struct kd_token *t)
{
	struct seal_ctx *c = ctx;
	int r;

	r = kd_pending_wrap(c->s->peer_kex, uuid, c->pass, c->pin_key, t);
	if (r)
		return r;
	r = kd_pending_evidence_sign(c->s->sign_key, uuid, t, c->s->peer_kex);
	if (r)
		return r;
	memcpy(t->ev_report, c->s->own_report, KD_EVIDENCE_REPORT_SIZE);
	memcpy(t->ev_exporter, c->s->exporter, KD_EVIDENCE_EXPORTER_LEN);
	snprintf(t->ev_manifest, sizeof(t->ev_manifest), "%s", c->s->own_manifest_compact);
	return 0;
}

/*
 * No downgrade below any ACTIVE slot of this volume, not only below O:
 * after a host rolls the disk or O back, O may be older than the volume's
 * newest active release (model property 3).
 */
static int refuse_downgrade(const struct side *s, const struct o_volume *ov)
{
	size_t n = 0;
	const struct kd_token *t = kd_volume_tokens(ov->v, &n);

	for (size_t i = 0; i < n; i++)
		if (t[i].state == KD_TOKEN_ACTIVE && t[i].svn > s->peer_manifest->svn)
			return kd_fail(KD_EPOLICY, "SVN downgrade: peer release %s has SVN %u, "
						   "but the volume has an active slot at SVN %u "
						   "(label %s)", s->peer_manifest->version,
				       (unsigned)s->peer_manifest->svn, (unsigned)t[i].svn, t[i].label);
	return 0;
}

static int enroll_one(struct side *s, struct o_volume *ov, int *ret_slot)
{
	_kd_secret_ struct kd_secret *pass = NULL, *pin_key = NULL;
	struct kd_launch peer = {0};
	struct kd_token meta;
	struct seal_ctx sc;
	int r;

	r = refuse_downgrade(s, ov);
	if (r)
		return r;
	peer.report = s->peer_report;
	snprintf(peer.backend, sizeof(peer.backend), "%s", s->launch.backend);
	r = kd_token_for_launch(&peer, s->peer_manifest->version, s->peer_manifest->svn,
				KD_TOKEN_PENDING, &meta);
	if (r)
		return r;
	r = drop_stale_pending(ov, s->peer_report.measurement);
	if (r)
		return r;
	/* A crash between keyslot and token write left a slot nobody can use. */
	r = kd_volume_reclaim_orphans(ov->v, "handoff.after-reclaim", NULL);
	if (r)
		return r;
	/* Fresh for this volume and this handoff: unrelated to anything N has. */
	r = kd_pending_fresh_secrets(&pass, &pin_key);
	if (r)
		return r;
	sc = (struct seal_ctx){s, pass, pin_key};
	kd_failpoint("handoff.before-keyslot");
	return kd_volume_add_slot_sealed(ov->v, ov->vk, pass, pin_key, &meta,
					 "handoff.after-keyslot", "handoff.after-token", seal_pending,
					 &sc, ret_slot);
}

typedef char uuid_str[KD_UUID_LEN + 1];

/* Step 3, O's side: offer the volumes, and parse N's ACCEPT of them. */
static int offer_volumes(struct side *s, const uuid_str *uuids, size_t nv)
{
	_kd_free_ uint8_t *out = NULL, *in = NULL;
	size_t out_len = 0, in_len = 0;
	int r;

	r = kd_volumes_encode(uuids, nv, &out, &out_len);
	if (r)
		return r;
	r = kd_frame_send(&s->io, KD_MSG_VOLUMES, out, out_len);
	if (r)
		return r;
	r = stall(s, KD_STALL_VOLUMES);
	if (r)
		return r;
	r = kd_frame_recv(&s->io, KD_MSG_ACCEPT, &in, &in_len);
	if (r)
		return r;
	return kd_accept_parse(in, in_len, uuids, nv);
}

/* Step 4: a pending slot on every volume, each refusal named by its device. */
static int enroll_all(struct side *s, struct o_volume *vols, size_t nv, uint32_t *slots)
{
	for (size_t i = 0; i < nv; i++) {
		int slot = -1;
		int r = enroll_one(s, &vols[i], &slot);

		if (r)
			return kd_fail_prefix(r, s->o->devices[i]);
		slots[i] = (uint32_t)slot;
	}
	return 0;
}

/* Step 5: DONE names the slot made on each volume. */
static int send_done(struct side *s, const uuid_str *uuids, const uint32_t *slots, size_t nv)
{
	_kd_free_ uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = kd_done_encode(uuids, slots, nv, &buf, &len);
	if (r)
		return r;
	return kd_frame_send(&s->io, KD_MSG_DONE, buf, len);
}

/*
 * Steps 2 to 4 with the peer on s->tls. *ret_final is set when enrollment
 * fails: that error is about O's volumes, not about the peer, and ends the
 * serving.
 */
static int serve_one(struct side *s, struct o_volume *vols, const uuid_str *uuids, size_t nv,
		     bool *ret_final)
{
	const struct kd_handoff_opts *o = s->o;
	uint32_t slots[KD_HANDOFF_MAX_VOLUMES];
	int r;

	*ret_final = false;
	r = hello_exchange(s);
	if (r)
		return r;
	r = offer_volumes(s, uuids, nv);
	if (o->timings)
		o->timings->keys_ms = lap(s);
	if (r)
		return r;
	r = stall(s, KD_STALL_ACCEPT);
	if (r)
		return r;
	*ret_final = true;
	r = enroll_all(s, vols, nv, slots);
	if (r)
		return r;
	/* Enrolled: a lost DONE is the connection's fault, and N's retry
	 * replaces the pending slot. */
	*ret_final = false;
	if (o->timings)
		o->timings->enroll_ms = lap(s);
	return send_done(s, uuids, slots, nv);
}

/* O proves it can open every volume before anyone connects. */
static int open_volumes(struct side *s, struct o_volume *vols, uuid_str *uuids)
{
	const struct kd_handoff_opts *o = s->o;
	struct kd_token used;
	int r;

	for (size_t i = 0; i < o->n_devices; i++) {
		r = kd_volume_open(o->devices[i], &vols[i].v);
		if (r)
			return kd_fail_prefix(r, o->devices[i]);
		r = kd_volume_get_key(vols[i].v, o->backend, &s->launch, &vols[i].vk, &used);
		if (r)
			return kd_fail_prefix(r, o->devices[i]);
		snprintf(vols[i].uuid, sizeof(vols[i].uuid), "%s", kd_volume_uuid(vols[i].v));
		memcpy(uuids[i], vols[i].uuid, sizeof(uuids[i]));
		for (size_t j = 0; j < i; j++)
			if (!strcmp(uuids[i], uuids[j]))
				return kd_fail(KD_EINVAL, "%s: the same volume is given twice",
					       o->devices[i]);
	}
	return 0;
}

/* O before anyone connects: its own release, its evidence key, its volumes. */
static int serve_prepare(struct side *s, const struct kd_handoff_opts *o, struct o_volume *vols,
			 uuid_str *uuids)
{
	int r;

	r = setup_common(s, o, KD_ROLE_OLD);
	if (r)
		return r;
	r = compact_manifest(s);
	if (r)
		return r;
	r = kd_evidence_key_new(&s->sign_key, s->kex);
	if (r)
		return r;
	s->kex_len = KD_KEX_PUB_LEN;
	return open_volumes(s, vols, uuids);
}

/* How the serving went so far: what ends it, and what O says when it ends. */
struct serve_state {
	char last[400];
	int last_r, attempts;
	bool final;
	int64_t t0, deadline;
};

static void note_attempt(struct serve_state *st, int r)
{
	snprintf(st->last, sizeof(st->last), "%s", kd_err_detail(r));
	st->last_r = r;
	st->attempts++;
}

/* One accepted connection on s->tls, told why if it fails, then closed. */
static int serve_connection(struct side *s, struct o_volume *vols, const uuid_str *uuids,
			    struct serve_state *st)
{
	const struct kd_handoff_opts *o = s->o;
	int r;

	st->t0 = s->t_mark = now_us();
	kd_tls_io(s->tls, &s->io);
	s->io.read_timeout_ms = o->read_timeout_ms;
	/* Each handoff has its own deadline from its accept: waiting for
	 * N (a VM that may still be booting) is not the peer's fault. */
	s->io.deadline_ms = kd_now_ms() + o->total_timeout_ms;
	if (o->timings)
		o->timings->tls_ms = 0;
	r = serve_one(s, vols, uuids, o->n_devices, &st->final);
	if (r) {
		r = send_error(s, r);
		note_attempt(st, r);
	}
	kd_tls_close(s->tls);
	s->tls = NULL;
	kd_manifest_free(s->peer_manifest);
	s->peer_manifest = NULL;
	return r;
}

/* Accept until a verified peer completes, enrollment fails or the deadline passes. */
static int serve_loop(struct side *s, struct kd_tls_listener *l, struct o_volume *vols,
		      const uuid_str *uuids, struct serve_state *st)
{
	const struct kd_handoff_opts *o = s->o;
	struct kd_tls *pre = NULL;
	int r;

	st->deadline = kd_now_ms() + o->total_timeout_ms;
	for (;;) {
		/* Our TLS credentials are made while nobody waits on them. */
		if (!pre) {
			r = kd_tls_new(1, &pre);
			if (r)
				break;
		}
		r = kd_tls_listener_accept(l, pre, st->deadline, o->read_timeout_ms);
		if (r && kd_now_ms() >= st->deadline)
			break;
		if (r) {
			/* Not even TLS: nothing to tell this one. */
			note_attempt(st, r);
			kd_tls_close(pre);
			pre = NULL;
			continue;
		}
		s->tls = pre;
		pre = NULL;
		r = serve_connection(s, vols, uuids, st);
		/* A test peer that stops talking (--stall-after) serves once. */
		if (!r || st->final || o->stall != KD_STALL_NONE)
			break;
	}
	kd_tls_close(pre);
	return r;
}

/*
 * O serves until a verified peer completes or its deadline passes. Each
 * connection that fails before enrollment (a stray, a hostile or a refused
 * peer) is told why and closed, and O waits for the next: nobody but a
 * verified N can end the serving early.
 */
int kd_handoff_serve(const struct kd_handoff_opts *o, const char *listen_addr)
{
	struct o_volume vols[KD_HANDOFF_MAX_VOLUMES];
	char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	size_t nv = o->n_devices;
	struct kd_tls_listener *l = NULL;
	struct serve_state st = {.t0 = now_us()};
	struct side s;
	int r;

	memset(vols, 0, sizeof(vols));
	if (nv == 0 || nv > KD_HANDOFF_MAX_VOLUMES)
		return kd_fail(KD_EINVAL, "serve needs 1..%u devices", KD_HANDOFF_MAX_VOLUMES);
	r = serve_prepare(&s, o, vols, uuids);
	if (r)
		goto out;
	r = kd_tls_listener_new(listen_addr, &l);
	if (r)
		goto out;
	r = prepare_own_vek(&s);
	if (r)
		goto out;
	r = serve_loop(&s, l, vols, (const uuid_str *)uuids, &st);
out:
	if (r && !st.final && st.attempts && kd_now_ms() >= st.deadline &&
	    o->stall == KD_STALL_NONE)
		r = kd_fail(st.last_r, "no new version completed the handoff before the deadline "
				       "(%d attempt(s)); last: %s", st.attempts, st.last);
	else if (r && !st.final && !st.attempts && r == KD_ETIMEOUT)
		r = kd_fail(r, "no peer connected within %d ms", o->total_timeout_ms);
	if (o->timings)
		o->timings->total_ms = (double)(now_us() - st.t0) / 1000.0;
	kd_tls_listener_free(l);
	for (size_t i = 0; i < nv; i++) {
		kd_secret_free(vols[i].vk);
		kd_volume_close(vols[i].v);
	}
	teardown(&s);
	return r;
}

/* ---------------------------------------------------------------- N */

/* One connection attempt may take a read timeout, never past the deadline. */
static int connect_ms(const struct kd_handoff_opts *o, int64_t deadline)
{
	int64_t left = deadline - kd_now_ms();

	if (left < 1)
		left = 1;
	return left < o->read_timeout_ms ? (int)left : o->read_timeout_ms;
}

/* N before it talks to anyone: its own release, its key, its VCEK, its TLS credentials. */
static int receive_prepare(struct side *s, const struct kd_handoff_opts *o, struct kd_tls **ret_pre)
{
	struct kd_token tok;
	int r;

	r = setup_common(s, o, KD_ROLE_NEW);
	if (r)
		return r;
	/* Sealed to our own launch at our committed TCB: exactly what boot derives. */
	r = kd_token_for_launch(&s->launch, s->own_manifest->version, s->own_manifest->svn,
				KD_TOKEN_PENDING, &tok);
	if (r)
		return r;
	r = own_kex(s, &tok);
	if (r)
		return r;
	/* Like O, N makes its TLS credentials and its own VCEK before it talks
	 * to anyone. */
	r = prepare_own_vek(s);
	if (r)
		return r;
	return kd_tls_new(0, ret_pre);
}

/* Steps 3 to 5, N's side: take what O offers, accept it, wait for DONE. */
static int receive_volumes(struct side *s)
{
	char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	uint32_t slots[KD_HANDOFF_MAX_VOLUMES];
	_kd_free_ uint8_t *offer = NULL, *accept = NULL, *done = NULL;
	size_t offer_len = 0, accept_len = 0, done_len = 0, nv = 0;
	int r;

	r = kd_frame_recv(&s->io, KD_MSG_VOLUMES, &offer, &offer_len);
	if (r)
		return r;
	r = kd_volumes_parse(offer, offer_len, uuids, &nv);
	if (r)
		return r;
	r = stall(s, KD_STALL_VOLUMES);
	if (r)
		return r;
	/* N takes what O offers; it sends no secret, only the UUIDs back. */
	r = kd_accept_encode((const uuid_str *)uuids, nv, &accept, &accept_len);
	if (r)
		return r;
	r = kd_frame_send(&s->io, KD_MSG_ACCEPT, accept, accept_len);
	if (r)
		return r;
	r = stall(s, KD_STALL_ACCEPT);
	if (r)
		return r;
	r = kd_frame_recv(&s->io, KD_MSG_DONE, &done, &done_len);
	if (r)
		return r;
	return kd_done_parse(done, done_len, (const uuid_str *)uuids, nv, slots);
}

static int receive_once(const struct kd_handoff_opts *o, const char *connect_addr,
			int64_t deadline)
{
	struct kd_tls *pre = NULL;
	struct side s;
	int64_t t0 = now_us();
	int r;

	r = receive_prepare(&s, o, &pre);
	if (r)
		goto out;
	t0 = s.t_mark = now_us();
	r = kd_tls_connect_on(pre, connect_addr, connect_ms(o, deadline));
	if (o->timings)
		o->timings->tls_ms = lap(&s);
	if (r) {
		kd_tls_close(pre);
		goto out;
	}
	s.tls = pre;
	kd_tls_io(s.tls, &s.io);
	s.io.read_timeout_ms = o->read_timeout_ms;
	s.io.deadline_ms = deadline;
	r = hello_exchange(&s);
	if (r)
		goto out;
	r = receive_volumes(&s);
	if (o->timings)
		o->timings->enroll_ms = lap(&s);
out:
	if (r)
		r = send_error(&s, r);
	if (o->timings)
		o->timings->total_ms = (double)(now_us() - t0) / 1000.0;
	teardown(&s);
	return r;
}

/* What N retries: the connection failed, not a verdict. */
static bool retryable(int r)
{
	return r == KD_EIO || r == KD_ETIMEOUT || r == KD_EPROTO;
}

/*
 * N tries until its deadline while O is unreachable, slow, busy with a
 * stray connection or drops the connection; a refusal (a verdict about O,
 * about N's own release, or O's ERROR) is final.
 */
int kd_handoff_receive(const struct kd_handoff_opts *o, const char *connect_addr)
{
	int64_t deadline = kd_now_ms() + o->total_timeout_ms;
	char first[200] = "";
	int r, attempts = 0;

	for (;;) {
		r = receive_once(o, connect_addr, deadline);
		attempts++;
		/* A test peer that stops talking (--stall-after) tries once. */
		if (!r || !retryable(r) || o->stall != KD_STALL_NONE ||
		    kd_now_ms() + 100 >= deadline)
			break;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", kd_err_detail(r));
		usleep(100000);
	}
	if (r && attempts > 1 && retryable(r)) {
		char last[250];

		snprintf(last, sizeof(last), "%s", kd_err_detail(r));
		r = kd_fail(r, "no handoff before the deadline (%d attempts); first: %s; last: %s",
			    attempts, first, last);
	}
	return r;
}
