/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attested upgrade handoff (docs/handoff-protocol.md).
 *
 * O (old version, holds the unlocked volumes) listens; N (new version,
 * booted in upgrade mode, no disk) connects.
 *
 *   1. TCP, then TLS 1.3 only, each side with a throwaway self-signed P-384
 *      certificate made in memory for this run. TLS authenticates nothing;
 *      it gives a private channel and a per-session exporter secret.
 *   2. E = TLS exporter("EXPORTER-keyd-handoff", 48 bytes, no context).
 *      N derives a static X25519 key-agreement key from its sealing key
 *      (pending.h); O makes a fresh Ed25519 key that will sign the evidence
 *      of N's pending slots. Each side's binding is
 *        B = SHA-384("keyd-handoff-v2/bind" || E || u8 32 || its public key)
 *      and report_data = SHA-512("keyd-handoff-v2" || role || B), role 'O'|'N'.
 *      A report from another session carries another E, so it cannot be
 *      replayed; the role byte stops reflecting O's own report back to it;
 *      each report vouches for its sender's public key.
 *   3. Both send HELLO (report, GHCB cert table, release manifest, handoff
 *      public key) and both verify the peer: chain + signature + report_data, same
 *      chip_id as their own report, no debug / migration agent, VMPL 0, TCB
 *      >= floor, peer measurement in the peer's manifest, manifest signed by
 *      k of n pinned release keys and valid now, and N.svn >= O.svn. Both
 *      sides enforce the SVN rule: O so that no older image gets its data; N
 *      so that it never enrolls itself under a newer release it would
 *      downgrade. The SVN compared is the manifest's (signed by the release
 *      keys and bound to the measurement), not the ID block's guest_svn.
 *   4. O -> N VOLUMES (UUIDs); N -> O ACCEPT (the same UUIDs: N is still
 *      there and takes them; no secret). O makes fresh random slot secrets
 *      per volume, adds a pending keyslot + token (label = N's version,
 *      measurement = N's, svn = N's) with the pin computed from the volume
 *      key O holds, the secrets wrapped to N's public key and O's evidence
 *      (O's HELLO report, and a signature over the wrap and the pin by the key
 *      that report binds), and replies DONE. N
 *      sends nothing derived from its sealing key but its public key; the
 *      volume key never leaves O. docs/handoff-protocol.md has the details.
 *
 * Frame payloads (all integers little-endian, parsed with kd_cursor):
 *   HELLO   u8 role, u8 0 (MBZ), u16 0 (MBZ),
 *           u32 len + report, u32 len + cert table, u32 len + manifest JSON,
 *           u32 len + handoff public key (32 bytes: N's X25519, O's Ed25519)
 *   VOLUMES u16 n (1..KD_HANDOFF_MAX_VOLUMES), n x 36-byte UUID text
 *   ACCEPT  u16 n, n x 36-byte UUID text (exactly VOLUMES, in order)
 *   DONE    u16 n, n x { 36-byte UUID, u32 keyslot }
 *   ERROR   printable ASCII reason (no secrets)
 */
#ifndef KEYD_HANDOFF_H
#define KEYD_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "keyd/frame.h"
#include "keyd/manifest.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/token.h"

#define KD_HANDOFF_EXPORTER_LABEL "EXPORTER-keyd-handoff"
#define KD_HANDOFF_EXPORTER_LEN 48u
#define KD_HANDOFF_CONTEXT "keyd-handoff-v2"
#define KD_HANDOFF_BIND_CONTEXT "keyd-handoff-v2/bind"
#define KD_HANDOFF_MAX_VOLUMES 16u
#define KD_UUID_LEN 36u
#define KD_HANDOFF_SECRET_MAX 256u

enum kd_handoff_role { KD_ROLE_OLD = 'O', KD_ROLE_NEW = 'N' };

/*
 * report_data = SHA-512("keyd-handoff-v2" || role || B); B is the session
 * binding below (or, for callers without a key, any 48-byte session value).
 */
int kd_handoff_report_data(char role, const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			   uint8_t out[64]);

/*
 * B = SHA-384("keyd-handoff-v2/bind" || E || u8 kex_len || kex), kex_len
 * KD_KEX_PUB_LEN (0 only for callers without a key). B takes E's place in
 * report_data, so a report vouches for both the session and the sender's
 * public key.
 */
int kd_handoff_binding(const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN], const uint8_t *kex,
		       size_t kex_len, uint8_t out[KD_HANDOFF_EXPORTER_LEN]);

/* ---------------------------------------------------------------- TLS */

struct kd_tls;

/* Parse "HOST:PORT" / "[V6]:PORT" and listen (SO_REUSEADDR). */
int kd_tls_listen(const char *addr, int *ret_fd);
/* Accept one peer within timeout_ms and complete the TLS 1.3 handshake. */
int kd_tls_accept(int listen_fd, int timeout_ms, struct kd_tls **ret);
/* Connect to addr within timeout_ms and complete the TLS 1.3 handshake. */
int kd_tls_connect(const char *addr, int timeout_ms, struct kd_tls **ret);
/*
 * The same in two steps. The throwaway key, certificate and SSL_CTX do not
 * depend on the peer, so kd_tls_new() makes them before the peer is waited
 * for or dialled (a P-384 key, a signature and OpenSSL's context set-up cost
 * several ms that would otherwise sit inside the handshake). A context
 * carries one connection in the role it was made for (server 1 / client 0);
 * if kd_tls_accept_on / kd_tls_connect_on fail, the caller still closes it.
 */
int kd_tls_new(int server, struct kd_tls **ret);
int kd_tls_accept_on(struct kd_tls *t, int listen_fd, int timeout_ms);
int kd_tls_connect_on(struct kd_tls *t, const char *addr, int timeout_ms);
/*
 * O's listening socket with a bounded set of unauthenticated connections.
 * kd_tls_listener_accept() waits until `deadline` (kd_now_ms clock) for a
 * connection that has sent something (N's ClientHello) and runs the TLS
 * handshake on the fresh server context t within handshake_ms. Connections
 * that stay silent are held, at most KD_HANDOFF_MAX_PENDING (the oldest is
 * dropped for a newcomer), and dropped after handshake_ms: a stray or
 * hostile connection costs only its own timeout. On failure the caller
 * closes t and may call again with a new context.
 */
#define KD_HANDOFF_MAX_PENDING 8
struct kd_tls_listener;
int kd_tls_listener_new(const char *addr, struct kd_tls_listener **ret);
int kd_tls_listener_accept(struct kd_tls_listener *l, struct kd_tls *t, int64_t deadline,
			   int handshake_ms);
void kd_tls_listener_free(struct kd_tls_listener *l);
/* Exporter E (48 bytes, label KD_HANDOFF_EXPORTER_LABEL, no context). */
int kd_tls_exporter(struct kd_tls *t, uint8_t out[KD_HANDOFF_EXPORTER_LEN]);
/* Frame I/O over the TLS stream (poll on the socket, SSL_pending aware). */
void kd_tls_io(struct kd_tls *t, struct kd_io *io);
/* Wait up to timeout_ms for the peer to hang up; 1 if it did, else 0. */
int kd_tls_peer_gone(struct kd_tls *t, int timeout_ms);
/* Bidirectional shutdown attempt, then close. NULL is fine. */
void kd_tls_close(struct kd_tls *t);
static inline void kd_tls_closep(struct kd_tls **t)
{
	kd_tls_close(*t);
	*t = NULL;
}
#define _kd_tls_ __attribute__((cleanup(kd_tls_closep)))

/* ---------------------------------------------------------------- HELLO */

struct kd_hello {
	uint8_t role;
	const uint8_t *report;
	size_t report_len;
	const uint8_t *certs; /* GHCB certificate table; may be empty */
	size_t certs_len;
	const uint8_t *manifest;
	size_t manifest_len;
	const uint8_t *kex; /* KD_KEX_PUB_LEN bytes: N's X25519 key, O's Ed25519 key */
	size_t kex_len;
};

int kd_hello_encode(const struct kd_hello *h, uint8_t **ret, size_t *ret_len);
/* Strict parse; pointers borrow from buf. KD_ETRUNC/KD_EMALFORMED/KD_ERESERVED;
 * a kex key of the wrong length for the role is KD_EMALFORMED. */
int kd_hello_parse(const uint8_t *buf, size_t len, struct kd_hello *ret);

/* What this image trusts (baked into the image, overridable for tests). */
struct kd_handoff_trust {
	const struct kd_release_keys *keys;
	const uint8_t *ark; /* simulator root; NULL = the built-in AMD roots */
	size_t ark_len;
	bool has_tcb_floor; /* pinned floor; else the own manifest's min_tcb */
	uint64_t tcb_floor;
	bool no_tcb_floor;  /* explicit opt-out: judge no TCB at all */
	/* The revocation floor the image pins (the one N's boot applies to a
	 * pending slot's maker); applied with the manifest's min_peer_svn. */
	bool has_peer_svn_floor;
	uint32_t peer_svn_floor;
	time_t at; /* 0 = now; the guest clock is the host's: never a revocation */
};

/*
 * Before a side listens or connects it judges its own release: its
 * manifest (handed over by the host) must be signed by k of the n pinned
 * release keys, inside its window, list this launch's own measurement, and
 * have an svn not below its own revocation floor; its own CHIP_ID must not
 * be all zero (a masked chip ID makes "same chip" meaningless). It also
 * settles the TCB floor: trust->tcb_floor when pinned, else the manifest's
 * min_tcb for this chip's product, else refused unless trust->no_tcb_floor.
 * A manifest whose min_peer_svn is above the floor the image pins
 * (trust->peer_svn_floor) is refused: N's boot judges a pending slot's
 * maker by the pinned floor alone, so it must not be the lower one.
 * *ret_trust is trust with the TCB floor settled and the peer floor the
 * higher of the two. KD_EVERIFY / KD_EPOLICY otherwise.
 */
int kd_handoff_check_self(char my_role, const struct kd_manifest *own,
			  const struct kd_report *own_report, const struct kd_handoff_trust *trust,
			  struct kd_handoff_trust *ret_trust);

/*
 * Verify a peer's HELLO (step 3). own_report is this side's own (already
 * parsed) report, for chip_id; own_manifest is this side's manifest, for the
 * SVN rule. my_role is the role of the caller; the peer must be the other.
 * `exporter` is the peer's session binding B (kd_handoff_binding over E and
 * the peer's HELLO public key), the value its report_data must commit to.
 * On success *ret_report and *ret_manifest (owned by the caller) are set.
 * Errors: KD_EVERIFY, KD_EPOLICY, KD_EMALFORMED... with a detail naming the
 * check, prefixed with "peer O" / "peer N".
 */
int kd_handoff_verify_peer(char my_role, const struct kd_hello *peer,
			   const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			   const struct kd_report *own_report, const struct kd_manifest *own_manifest,
			   const struct kd_handoff_trust *trust, struct kd_report *ret_report,
			   struct kd_manifest **ret_manifest);

/*
 * This chip's own VCEK, from this side's certificate table (own_certs, as
 * the backend returns it with a report), its chain verified to the pinned
 * root (trust->ark or the AMD roots). KD_EVERIFY "own VCEK: ..." otherwise.
 */
struct kd_verifier;
int kd_handoff_own_verifier(const uint8_t *own_certs, size_t own_certs_len,
			    const struct kd_handoff_trust *trust, struct kd_verifier **ret);

/*
 * The same checks, run in a forked, unprivileged, seccomp-confined child
 * without key material (privilege separation, see privsep.c), and then
 * re-checked by the caller itself: the report signature under this chip's
 * own VCEK (own_vek, from kd_handoff_own_verifier; the peer must be on this
 * chip at this reported TCB) and every policy check on the report and on
 * the manifest fields the child returns. *ret_manifest carries those fields
 * (label, svn, window, floors, measurements, signatures).
 * Errors: as kd_handoff_verify_peer, plus KD_ETIMEOUT / KD_EVERIFY /
 * KD_EPROTO if the child does not answer, dies (a seccomp kill included) or
 * answers garbage, and "parent re-check: ..." when the child's verdict does
 * not hold.
 */
int kd_handoff_verify_peer_isolated(char my_role, const struct kd_hello *peer,
				    struct kd_verifier *own_vek,
				    const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
				    const struct kd_report *own_report,
				    const struct kd_manifest *own_manifest,
				    const struct kd_handoff_trust *trust, int timeout_ms,
				    struct kd_report *ret_report, struct kd_manifest **ret_manifest);

/* ---------------------------------------------------------------- VOLUMES/ACCEPT/DONE */

int kd_volumes_encode(const char (*uuids)[KD_UUID_LEN + 1], size_t n, uint8_t **ret,
		      size_t *ret_len);
int kd_volumes_parse(const uint8_t *buf, size_t len, char (*ret)[KD_UUID_LEN + 1],
		     size_t *ret_n);
/* ACCEPT: N takes exactly the volumes O offered. Parse checks them, in order. */
int kd_accept_encode(const char (*uuids)[KD_UUID_LEN + 1], size_t n, uint8_t **ret,
		     size_t *ret_len);
int kd_accept_parse(const uint8_t *buf, size_t len, const char (*uuids)[KD_UUID_LEN + 1],
		    size_t n);

int kd_done_encode(const char (*uuids)[KD_UUID_LEN + 1], const uint32_t *slots, size_t n,
		   uint8_t **ret, size_t *ret_len);
int kd_done_parse(const uint8_t *buf, size_t len, const char (*uuids)[KD_UUID_LEN + 1], size_t n,
		  uint32_t *ret_slots);

/* ---------------------------------------------------------------- flows */

struct kd_backend;

struct kd_handoff_timings {
	double tls_ms;    /* TCP connect/accept + TLS handshake + exporter */
	double report_ms; /* own report from the backend */
	double hello_ms;  /* HELLO exchange on the wire */
	double verify_ms; /* peer verification (chain, report, manifest) */
	double keys_ms;   /* O: VOLUMES sent -> ACCEPT parsed */
	double enroll_ms;  /* O: secrets, keyslot + token writes, evidence; N: wait for DONE */
	double total_ms;
};

/* Where a test peer stops talking (and then sleeps until killed). */
enum kd_handoff_stall {
	KD_STALL_NONE = 0,
	KD_STALL_TLS,     /* after the TLS handshake, before HELLO */
	KD_STALL_HELLO,   /* after sending HELLO */
	KD_STALL_VOLUMES, /* O: after VOLUMES; N: after receiving VOLUMES */
	KD_STALL_ACCEPT,  /* N: after ACCEPT, before DONE arrives (O: before enrolling) */
};
int kd_handoff_stall_parse(const char *s, enum kd_handoff_stall *ret);

struct kd_handoff_opts {
	struct kd_backend *backend;
	const uint8_t *manifest; /* this side's signed manifest (JSON) */
	size_t manifest_len;
	struct kd_handoff_trust trust;
	int read_timeout_ms;  /* each read; default 10000 */
	int total_timeout_ms; /* the whole handoff; default 60000 */
	const char *const *devices; /* O only */
	size_t n_devices;
	enum kd_handoff_stall stall;
	struct kd_handoff_timings *timings; /* optional */
};

/*
 * O: accept one N on `listen`, verify it and enroll it on every device.
 * Errors: any of the above; O's volumes are unchanged unless DONE was sent
 * for them (or hold only a harmless pending slot).
 */
int kd_handoff_serve(const struct kd_handoff_opts *o, const char *listen);
/* N: connect, verify O, derive and send keys, wait for DONE. */
int kd_handoff_receive(const struct kd_handoff_opts *o, const char *connect);

/* ---------------------------------------------------------------- commit */

enum kd_commit_policy {
	KD_COMMIT_KEEP_PREVIOUS = 0, /* previous active -> retired (one rollback); older killed */
	KD_COMMIT_RETIRE_PREVIOUS,   /* every other keyd slot killed */
};

struct kd_commit_result {
	int keyslot;          /* this launch's slot, now active */
	bool was_pending;     /* false: it was already active (rerun) */
	size_t n_retired;     /* slots marked retired (kept for rollback) */
	size_t n_killed;      /* slots killed */
};

/*
 * N's first real boot (docs/architecture.md#upgrade-path): open `device` with
 * this launch's key and verify the pin (the same dry-run path as unlock, which
 * for a pending slot checks O's evidence and unwraps the secrets O made;
 * nothing is written if that fails). Then replace the pending slot by one
 * sealed to this launch: add the new active keyslot + token first, then remove
 * the pending one, so nothing O ever saw opens the slot N keeps. Then apply the
 * policy to the other keyd slots. Never kills the slot that opens. Idempotent: a rerun
 * after a crash at any failpoint finishes the job.
 * pol: what judges the evidence (pending.h; NULL, or any part left unset:
 * the image's pinned release keys and floors).
 * Failpoints: commit.before-activate, commit.after-keyslot, commit.after-token,
 * commit.before-kill, commit.after-kill, commit.after-reclaim, commit.after-retire.
 */
struct kd_pending_policy;
int kd_handoff_commit(const char *device, struct kd_backend *b,
		      const struct kd_pending_policy *pol, enum kd_commit_policy policy,
		      struct kd_commit_result *ret);

#endif
