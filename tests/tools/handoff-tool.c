/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-only adversaries and probes for the handoff (never installed), built
 * on libkeyd like an attacker's own program would be:
 *
 *   harvest --listen ADDR --sim unix:O --manifest MO --uuid UUID --capture FILE [--proto v1]
 *       A rogue old version: a genuine signed O launch that holds no volume.
 *       It runs the protocol far enough for N to answer (it verifies
 *       nothing), offers UUID, a volume it does not hold, and writes every
 *       payload byte N sends after HELLO to FILE. --proto v1 speaks the
 *       format-1 binding and HELLO, to show what the old design disclosed.
 *
 *   reveal DEV --sim unix:N --release-keys K [--peer-svn-floor S] [--skip-evidence]
 *       Print the hex passphrase of N's pending slot on DEV as N would
 *       unwrap it at boot (with --skip-evidence: without O's evidence,
 *       to show that a forged slot fails only on the evidence). Without
 *       --peer-svn-floor, N's image opts out of the revocation floor.
 *
 *   forge DEV --sim-x unix:X --sim-n unix:N --manifest MO --label L --svn S
 *         (--evidence-from DEV2 | --evidence-self)
 *       The host, with a launch X of its own on the same chip that opens DEV
 *       (so it knows DEV's volume key) and nothing of N's but its public
 *       key, writes a pending slot for N on DEV: fresh secrets wrapped to
 *       N's key, with evidence copied from a genuine pending slot on DEV2,
 *       or evidence of X's own: its genuine report binding a key of its own
 *       that signs the new slot (X is not a signed release, so MO does not
 *       list it).
 *
 * Exit 0 on success, 1 on failure (one line on stderr).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/backend.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/frame.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"
#include "keyd/pending.h"
#include "keyd/util.h"
#include "keyd/volume.h"

static const char *arg(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static bool flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static int die(int r, const char *what)
{
	fprintf(stderr, "handoff-tool: %s: %s\n", what, kd_err_detail(r));
	return 1;
}

static int backend(const char *sim, struct kd_backend **ret)
{
	struct kd_backend_opts o = {.name = "sim", .sim_addr = sim};

	return kd_backend_open(&o, ret);
}

/* ---------------------------------------------------------------- harvest */

static void put_blob(uint8_t *buf, size_t *off, const uint8_t *p, size_t n)
{
	kd_put_le32(buf + *off, (uint32_t)n);
	memcpy(buf + *off + 4, p, n);
	*off += 4 + n;
}

/* Format 1: report_data = SHA-512("keyd-handoff-v1" || 'O' || E). */
static int v1_report_data(const uint8_t e[KD_HANDOFF_EXPORTER_LEN], uint8_t out[64])
{
	static const char ctx[] = "keyd-handoff-v1";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t role = 'O';
	unsigned n = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
		 EVP_DigestUpdate(md, ctx, strlen(ctx)) == 1 && EVP_DigestUpdate(md, &role, 1) == 1 &&
		 EVP_DigestUpdate(md, e, KD_HANDOFF_EXPORTER_LEN) == 1 &&
		 EVP_DigestFinal_ex(md, out, &n) == 1;

	EVP_MD_CTX_free(md);
	return ok ? 0 : KD_ECRYPTO;
}

static int harvest(int argc, char **argv)
{
	const char *addr = arg(argc, argv, "--listen"), *sim = arg(argc, argv, "--sim"),
		   *mpath = arg(argc, argv, "--manifest"), *uuid = arg(argc, argv, "--uuid"),
		   *cap = arg(argc, argv, "--capture"), *proto = arg(argc, argv, "--proto");
	bool v1 = proto && !strcmp(proto, "v1");
	char uuids[1][KD_UUID_LEN + 1];
	uint8_t e[KD_HANDOFF_EXPORTER_LEN], bind[KD_HANDOFF_EXPORTER_LEN], rd[64];
	uint8_t skpub[KD_KEX_PUB_LEN];
	EVP_PKEY *sk = NULL;
	uint8_t *man = NULL, *rep = NULL, *certs = NULL, *out = NULL, *in = NULL;
	size_t man_len = 0, rep_len = 0, certs_len = 0, out_len = 0, in_len = 0;
	struct kd_backend *b = NULL;
	struct kd_tls *t = NULL;
	struct kd_io io;
	FILE *f;
	int lfd = -1, r;

	if (!addr || !sim || !mpath || !uuid || !cap || strlen(uuid) != KD_UUID_LEN)
		return die(KD_EINVAL, "harvest needs --listen --sim --manifest --uuid --capture");
	snprintf(uuids[0], sizeof(uuids[0]), "%s", uuid);
	if ((r = kd_read_file(mpath, KD_MANIFEST_MAX_BYTES, &man, &man_len)) ||
	    (r = backend(sim, &b)) || (r = kd_tls_listen(addr, &lfd)) || (r = kd_tls_new(1, &t)) ||
	    (r = kd_tls_accept_on(t, lfd, 20000)))
		return die(r, "set-up");
	kd_tls_io(t, &io);
	io.read_timeout_ms = 10000;
	io.deadline_ms = kd_now_ms() + 30000;
	if ((r = kd_tls_exporter(t, e)))
		return die(r, "exporter");
	if (v1) {
		r = v1_report_data(e, rd);
	} else {
		r = kd_evidence_key_new(&sk, skpub);
		if (!r)
			r = kd_handoff_binding(e, skpub, sizeof(skpub), bind);
		if (!r)
			r = kd_handoff_report_data('O', bind, rd);
	}
	if (!r)
		r = kd_backend_report(b, rd, 0, &rep, &rep_len, &certs, &certs_len);
	if (r)
		return die(r, "own report");
	if (v1) {
		size_t off = 4;

		out = calloc(1, 4 + 12 + rep_len + certs_len + man_len);
		out[0] = 'O';
		put_blob(out, &off, rep, rep_len);
		put_blob(out, &off, certs, certs_len);
		put_blob(out, &off, man, man_len);
		out_len = off;
	} else {
		struct kd_hello h = {'O', rep, rep_len, certs, certs_len, man, man_len, skpub,
				     sizeof(skpub)};

		if ((r = kd_hello_encode(&h, &out, &out_len)))
			return die(r, "HELLO");
	}
	/* N's HELLO is taken on faith: a rogue O has no reason to check it. */
	if ((r = kd_frame_send(&io, KD_MSG_HELLO, out, out_len)) ||
	    (r = kd_frame_recv(&io, KD_MSG_HELLO, &in, &in_len)))
		return die(r, "HELLO exchange");
	free(in);
	free(out);
	if ((r = kd_volumes_encode((const char(*)[KD_UUID_LEN + 1])uuids, 1, &out, &out_len)) ||
	    (r = kd_frame_send(&io, KD_MSG_VOLUMES, out, out_len)))
		return die(r, "VOLUMES");
	free(out);
	/* Type 3: KEYS in format 1, ACCEPT in format 2. */
	if ((r = kd_frame_recv(&io, 3, &in, &in_len)))
		return die(r, "N's answer");
	if (!(f = fopen(cap, "wb")) || fwrite(in, 1, in_len, f) != in_len || fclose(f))
		return die(KD_EIO, "capture");
	/* Let N finish as if all went well. */
	{
		uint32_t slot = 7;

		if (!kd_done_encode((const char(*)[KD_UUID_LEN + 1])uuids, &slot, 1, &out, &out_len))
			kd_frame_send(&io, KD_MSG_DONE, out, out_len);
		free(out);
	}
	kd_tls_peer_gone(t, 2000);
	kd_tls_close(t);
	close(lfd);
	free(in);
	free(rep);
	free(certs);
	free(man);
	kd_backend_close(b);
	EVP_PKEY_free(sk);
	printf("captured %zu bytes N sent after HELLO\n", in_len);
	return 0;
}

/* ---------------------------------------------------------------- reveal */

static const struct kd_token *pending_of(struct kd_volume *v, const struct kd_launch *l)
{
	size_t n = 0;
	const struct kd_token *t = kd_volume_tokens(v, &n);

	for (size_t i = 0; i < n; i++)
		if (t[i].state == KD_TOKEN_PENDING && t[i].has_wrap &&
		    !memcmp(t[i].measurement, l->report.measurement, 48))
			return &t[i];
	return NULL;
}

static int reveal(int argc, char **argv)
{
	const char *sim = arg(argc, argv, "--sim"), *kp = arg(argc, argv, "--release-keys"),
		   *floor = arg(argc, argv, "--peer-svn-floor");
	_kd_secret_ struct kd_secret *pass = NULL, *pin = NULL;
	struct kd_pending_policy pol = {.no_peer_svn_floor = !floor};
	struct kd_release_keys *keys = NULL;
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	const struct kd_token *t;
	struct kd_launch l;
	int r;

	if (argc < 3 || !sim || !kp)
		return die(KD_EINVAL, "reveal DEV --sim S --release-keys K");
	if ((r = kd_release_keys_load(kp, &keys)) || (r = backend(sim, &b)) ||
	    (r = kd_launch_get(b, &l)) || (r = kd_volume_open(argv[2], &v)))
		return die(r, "set-up");
	if (!(t = pending_of(v, &l)))
		return die(kd_fail(KD_ENOENT, "no wrapped pending slot for this launch"), argv[2]);
	if (flag(argc, argv, "--skip-evidence")) {
		EVP_PKEY *priv = NULL;
		uint8_t pub[KD_KEX_PUB_LEN];

		r = kd_kex_for_token(b, t, &priv, pub);
		if (!r)
			r = kd_pending_unwrap(priv, kd_volume_uuid(v), t, &pass, &pin);
		EVP_PKEY_free(priv);
	} else {
		pol.keys = keys;
		pol.has_peer_svn_floor = floor != NULL;
		pol.peer_svn_floor = floor ? (uint32_t)strtoul(floor, NULL, 10) : 0;
		r = kd_pending_open(b, &l.report, &pol, kd_volume_uuid(v), t, &pass, &pin);
	}
	if (r)
		return die(r, "unwrap");
	printf("%d %.*s\n", t->keyslot, (int)pass->len, (const char *)pass->data);
	kd_volume_close(v);
	kd_backend_close(b);
	kd_release_keys_free(keys);
	return 0;
}

/* ---------------------------------------------------------------- forge */

struct forge_ctx {
	const uint8_t *pub;
	const struct kd_secret *pass, *pin;
	const struct kd_token *copy_from; /* evidence of a genuine slot, or NULL */
	struct kd_backend *x;             /* else a report of X's own */
	const char *manifest;
};

static int forge_seal(void *ctx, const char *uuid, struct kd_token *t)
{
	struct forge_ctx *c = ctx;
	uint8_t rd[64], bind[KD_HANDOFF_EXPORTER_LEN], kp[KD_KEX_PUB_LEN], *rep = NULL;
	size_t len = 0;
	EVP_PKEY *k = NULL;
	int r = kd_pending_wrap(c->pub, uuid, c->pass, c->pin, t);

	if (r)
		return r;
	if (c->copy_from) {
		memcpy(t->ev_report, c->copy_from->ev_report, sizeof(t->ev_report));
		memcpy(t->ev_exporter, c->copy_from->ev_exporter, sizeof(t->ev_exporter));
		memcpy(t->ev_key, c->copy_from->ev_key, sizeof(t->ev_key));
		memcpy(t->ev_sig, c->copy_from->ev_sig, sizeof(t->ev_sig));
		memcpy(t->ev_manifest, c->copy_from->ev_manifest, sizeof(t->ev_manifest));
		return 0;
	}
	/* X's own genuine report binding a key of its own, which signs the slot. */
	memset(t->ev_exporter, 0x77, sizeof(t->ev_exporter));
	if ((r = kd_evidence_key_new(&k, kp)) ||
	    (r = kd_pending_evidence_sign(k, uuid, t, c->pub)) ||
	    (r = kd_handoff_binding(t->ev_exporter, kp, sizeof(kp), bind)) ||
	    (r = kd_handoff_report_data('O', bind, rd)) ||
	    (r = kd_backend_report(c->x, rd, 0, &rep, &len, NULL, NULL))) {
		EVP_PKEY_free(k);
		return r;
	}
	EVP_PKEY_free(k);
	memcpy(t->ev_report, rep, sizeof(t->ev_report));
	snprintf(t->ev_manifest, sizeof(t->ev_manifest), "%s", c->manifest);
	free(rep);
	return 0;
}

static int forge(int argc, char **argv)
{
	const char *sx = arg(argc, argv, "--sim-x"), *sn = arg(argc, argv, "--sim-n"),
		   *mp = arg(argc, argv, "--manifest"), *label = arg(argc, argv, "--label"),
		   *svn = arg(argc, argv, "--svn"), *from = arg(argc, argv, "--evidence-from");
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL, *pin = NULL;
	struct kd_backend *x = NULL, *n = NULL;
	struct kd_volume *v = NULL, *src = NULL;
	struct kd_launch lx, ln;
	struct kd_token used, meta;
	struct forge_ctx fc = {0};
	uint8_t pub[KD_KEX_PUB_LEN], *man = NULL;
	size_t man_len = 0;
	EVP_PKEY *priv = NULL;
	char *mtxt;
	int slot = -1, r;

	if (argc < 3 || !sx || !sn || !mp || !label || !svn ||
	    (!from && !flag(argc, argv, "--evidence-self")))
		return die(KD_EINVAL, "forge: see the usage at the top of handoff-tool.c");
	if ((r = backend(sx, &x)) || (r = backend(sn, &n)) || (r = kd_launch_get(x, &lx)) ||
	    (r = kd_launch_get(n, &ln)) || (r = kd_volume_open(argv[2], &v)) ||
	    (r = kd_volume_get_key(v, x, &lx, &vk, &used)))
		return die(r, "the host's own launch opens its volume");
	/* All the host learns of N: the public key N's HELLO carries. */
	if ((r = kd_token_for_launch(&ln, label, (uint32_t)atoi(svn), KD_TOKEN_PENDING, &meta)) ||
	    (r = kd_kex_for_token(n, &meta, &priv, pub)))
		return die(r, "N's public key");
	EVP_PKEY_free(priv);
	kd_backend_close(n);
	if ((r = kd_read_file(mp, KD_MANIFEST_MAX_BYTES, &man, &man_len)))
		return die(r, "manifest");
	mtxt = calloc(1, man_len + 1);
	memcpy(mtxt, man, man_len);
	fc.pub = pub;
	fc.x = x;
	fc.manifest = mtxt;
	if (from) {
		if ((r = kd_volume_open(from, &src)) || !(fc.copy_from = pending_of(src, &ln)))
			return die(r ? r : kd_fail(KD_ENOENT, "no genuine pending slot to copy"), from);
	}
	if ((r = kd_pending_fresh_secrets(&pass, &pin)))
		return die(r, "secrets");
	fc.pass = pass;
	fc.pin = pin;
	if ((r = kd_volume_add_slot_sealed(v, vk, pass, pin, &meta, NULL, NULL, forge_seal, &fc,
					   &slot)))
		return die(r, "write the forged slot");
	printf("forged pending slot %d for N\n", slot);
	kd_volume_close(v);
	kd_volume_close(src);
	kd_backend_close(x);
	free(man);
	free(mtxt);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "harvest"))
		return harvest(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "reveal"))
		return reveal(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "forge"))
		return forge(argc, argv);
	fprintf(stderr, "usage: handoff-tool harvest|reveal|forge ... (see the source)\n");
	return 2;
}
