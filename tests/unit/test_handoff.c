/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: the handoff channel (TLS 1.3, exporter, report_data binding)
 * and the peer verification of docs/handoff-protocol.md, with reports signed in-process
 * by the simulated AMD-SP (two launches on one chip, plus a second chip).
 */
#include <check.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/certbundle.h"
#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"
#include "keyd/report.h"
#include "keyd/sim.h"
#include "keyd/util.h"
#include "keyd/verify.h"
#include "handoff/internal.h"
#include "helpers/chip.h"
#include "helpers/vg.h"
#include <fcntl.h>
#include <signal.h>

/* ---------------------------------------------------------------- fixture */

static char dir_a[64], dir_b[64];
static char *priv[3], *pub[3], *stranger;
static struct kd_release_keys *keys; /* 2 of 3 */

#define MEAS_O 0x0a
#define MEAS_N 0x0b

static void rm_rf(const char *d)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		abort();
}

static void setup_all(void)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct kd_sim_init_opts io = {0};
	const char *s;
	char *sp;

	strcpy(dir_a, "/tmp/keyd-test-handoff-A-XXXXXX");
	strcpy(dir_b, "/tmp/keyd-test-handoff-B-XXXXXX");
	if (!mkdtemp(dir_a) || !mkdtemp(dir_b))
		abort();
	io.product = KD_PRODUCT_GENOA;
	if (kd_test_chip_init(dir_a, &io) || kd_test_chip_init(dir_b, &io))
		abort();
	for (int i = 0; i < 3; i++) {
		if (kd_manifest_keygen(&priv[i], &pub[i]))
			abort();
		json_object_array_add(a, json_object_new_string(pub[i]));
	}
	if (kd_manifest_keygen(&stranger, &sp))
		abort();
	free(sp);
	json_object_object_add(o, "threshold", json_object_new_int(2));
	json_object_object_add(o, "keys", a);
	s = json_object_to_json_string(o);
	if (kd_release_keys_parse((const uint8_t *)s, strlen(s), &keys))
		abort();
	json_object_put(o);
}

static void teardown_all(void)
{
	rm_rf(dir_a);
	rm_rf(dir_b);
	for (int i = 0; i < 3; i++) {
		free(priv[i]);
		free(pub[i]);
	}
	free(stranger);
	kd_release_keys_free(keys);
}

struct launch {
	struct kd_sim_fw *fw;
	uint8_t report[KD_REPORT_SIZE];
	uint8_t *certs;
	size_t certs_len;
	char *manifest;
	struct kd_manifest *m;
	struct kd_report parsed;
};

/* A manifest listing `meas`, svn, signed by the given keys. */
/* Set: the next manifests ask for a volume-key rotation ("rotate": true). */
static bool manifest_rotate;

static char *manifest_json(uint8_t meas, uint32_t svn, const char *label, int nsig,
			   const char *extra_signer, struct kd_manifest **ret)
{
	struct kd_manifest *m;
	uint8_t mm[48];
	char *j;

	memset(mm, meas, 48);
	ck_assert_int_eq(kd_manifest_new(&m), 0);
	snprintf(m->version, sizeof(m->version), "%s", label);
	m->svn = svn;
	m->not_before = time(NULL) - 3600;
	m->not_after = time(NULL) + 3600;
	m->rotate = manifest_rotate;
	ck_assert_int_eq(kd_manifest_add_measurement(m, mm), 0);
	for (int i = 0; i < nsig; i++)
		ck_assert_int_eq(kd_manifest_sign(m, (uint8_t *)priv[i], strlen(priv[i])), 0);
	if (extra_signer)
		ck_assert_int_eq(kd_manifest_sign(m, (const uint8_t *)extra_signer,
						  strlen(extra_signer)),
				 0);
	ck_assert_int_eq(kd_manifest_to_json(m, &j), 0);
	*ret = m;
	return j;
}

/* Start a launch on chip dir and get its handoff report for role/exporter. */
static void launch(struct launch *l, const char *dir, uint8_t meas, uint64_t policy, char role,
		   const uint8_t exp[48])
{
	struct kd_sim_launch sl;
	struct kd_sim_chip *c;
	uint8_t rsp[KD_SIM_REPORT_RSP_SIZE], rd[64];
	uint32_t st = 1;

	memset(l, 0, sizeof(*l));
	memset(&sl, 0, sizeof(sl));
	memset(sl.measurement, meas, 48);
	sl.policy = policy;
	ck_assert_int_eq(kd_sim_chip_load(dir, &c), 0);
	ck_assert_int_eq(kd_sim_fw_new(c, &sl, &l->fw), 0);
	ck_assert_int_eq(kd_handoff_report_data(role, exp, rd), 0);
	ck_assert_int_eq(kd_sim_report(l->fw, rd, 0, rsp, &st), 0);
	ck_assert_uint_eq(st, 0);
	memcpy(l->report, rsp + 0x20, KD_REPORT_SIZE);
	ck_assert_int_eq(kd_report_parse(l->report, KD_REPORT_SIZE, &l->parsed), 0);
	ck_assert_int_eq(kd_sim_cert_table(l->fw, &l->certs, &l->certs_len), 0);
}

static void launch_free(struct launch *l)
{
	kd_sim_fw_free(l->fw);
	free(l->certs);
	free(l->manifest);
	kd_manifest_free(l->m);
}

static uint8_t *ark_pem(const char *dir, size_t *len)
{
	struct kd_sim_chip *c;
	char *pem;

	ck_assert_int_eq(kd_sim_chip_load(dir, &c), 0);
	ck_assert_int_eq(kd_sim_chip_cert_pem(c, KD_SIM_CERT_ARK, 0, &pem), 0);
	kd_sim_chip_free(c);
	*len = strlen(pem);
	return (uint8_t *)pem;
}

/* Verify `peer` (a launch with its manifest) as `me` would, with exporter exp. */
static int verify_as(char my_role, const struct launch *me, const struct launch *peer,
		     const uint8_t exp[48], const struct kd_handoff_trust *trust)
{
	struct kd_hello h = {(uint8_t)(my_role == 'O' ? 'N' : 'O'), peer->report, KD_REPORT_SIZE,
			     peer->certs, peer->certs_len, (const uint8_t *)peer->manifest,
			     strlen(peer->manifest), NULL, 0};
	struct kd_manifest *pm = NULL;
	struct kd_report rep;
	int r;

	r = kd_handoff_verify_peer(my_role, &h, exp, &me->parsed, me->m, trust, &rep, &pm);
	kd_manifest_free(pm);
	return r;
}

static uint8_t E1[48], E2[48];

static struct kd_handoff_trust trust_for(const char *dir, uint8_t **ark)
{
	struct kd_handoff_trust t = {0};

	*ark = ark_pem(dir, &t.ark_len);
	t.ark = *ark;
	t.keys = keys;
	t.no_tcb_floor = true;
	return t;
}

static void expect_refusal(int r, const char *needle)
{
	ck_assert_int_lt(r, 0);
	if (!strstr(kd_err_detail(r), needle))
		ck_abort_msg("refusal '%s' does not mention '%s'", kd_err_detail(r), needle);
}

/* ---------------------------------------------------------------- tests */

START_TEST(report_data_binding)
{
	uint8_t a[64], b[64], c[64];

	ck_assert_int_eq(kd_handoff_report_data('O', E1, a), 0);
	ck_assert_int_eq(kd_handoff_report_data('N', E1, b), 0);
	ck_assert_int_eq(kd_handoff_report_data('O', E2, c), 0);
	ck_assert_mem_ne(a, b, 64);
	ck_assert_mem_ne(a, c, 64);
	ck_assert_int_eq(kd_handoff_report_data('X', E1, c), KD_EINVAL);
}
END_TEST

START_TEST(mutual_accept)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 3, stranger, &n.m);
	ck_assert_int_eq(verify_as('O', &o, &n, E1, &t), 0);
	ck_assert_int_eq(verify_as('N', &n, &o, E1, &t), 0);
	/* A floor at the chip's TCB passes; one above it does not. */
	t.has_tcb_floor = true;
	t.tcb_floor = n.parsed.reported_tcb;
	ck_assert_int_eq(verify_as('O', &o, &n, E1, &t), 0);
	t.tcb_floor = 0xff00000000000000ull | n.parsed.reported_tcb;
	expect_refusal(verify_as('O', &o, &n, E1, &t), "peer N rejected");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

/* A valid report from another session (another exporter) is refused. */
START_TEST(replayed_report)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E2);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	expect_refusal(verify_as('O', &o, &n, E2, &t), "report data");
	/* Reflection: O's own report sent back as if from N. */
	{
		struct kd_hello h = {'N', o.report, KD_REPORT_SIZE, o.certs, o.certs_len,
				     (const uint8_t *)o.manifest, strlen(o.manifest), NULL, 0};
		struct kd_manifest *pm = NULL;
		struct kd_report rep;

		expect_refusal(kd_handoff_verify_peer('O', &h, E2, &o.parsed, o.m, &t, &rep, &pm),
			       "report data");
	}
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

START_TEST(measurement_not_in_manifest)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, 0x0c, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	expect_refusal(verify_as('O', &o, &n, E1, &t), "measurement");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

START_TEST(other_chip)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_b, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	/* Chip B's chain does not end in chip A's (pinned) ARK. */
	ck_assert_int_ne(verify_as('O', &o, &n, E1, &t), 0);
	free(ark);
	/* Even when both roots were trusted, chip_id must match. */
	t = trust_for(dir_b, &ark);
	expect_refusal(verify_as('O', &o, &n, E1, &t), "chip");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

/* A report of chip A whose certificate table carries chip B's VCEK. */
START_TEST(other_chips_vcek)
{
	struct launch o, n, x;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	launch(&x, dir_b, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	/* chip B's report with chip A's certs: signature does not verify. */
	free(x.certs);
	x.certs = malloc(n.certs_len);
	memcpy(x.certs, n.certs, n.certs_len);
	x.certs_len = n.certs_len;
	x.manifest = strdup(n.manifest);
	ck_assert_int_ne(verify_as('O', &o, &x, E1, &t), 0);
	launch_free(&o);
	launch_free(&n);
	launch_free(&x);
	free(ark);
}
END_TEST

/*
 * Stock KVM: the peer's certificate table is empty. Its VCEK comes from the
 * bundle the host cached (<chip>-<tcb>.pem in $KEYD_CERT_DIR); a missing or
 * foreign bundle is refused.
 */
static void write_bundle(const char *chipdir, const struct launch *l, const char *cache)
{
	struct kd_certtable ct;
	struct kd_sim_chip *c;
	char *ask, *ark, *chain, name[KD_CERTBUNDLE_NAME_MAX], path[512];
	uint8_t *b = NULL;
	size_t blen;

	ck_assert_int_eq(kd_certtable_parse(l->certs, l->certs_len, &ct), 0);
	ck_assert_ptr_nonnull(ct.vcek);
	ck_assert_int_eq(kd_sim_chip_load(chipdir, &c), 0);
	ck_assert_int_eq(kd_sim_chip_cert_pem(c, KD_SIM_CERT_ASK, 0, &ask), 0);
	ck_assert_int_eq(kd_sim_chip_cert_pem(c, KD_SIM_CERT_ARK, 0, &ark), 0);
	kd_sim_chip_free(c);
	chain = malloc(strlen(ask) + strlen(ark) + 1);
	strcpy(chain, ask);
	strcat(chain, ark);
	ck_assert_int_eq(kd_certbundle_build(ct.vcek, ct.vcek_len, (uint8_t *)chain, strlen(chain), &b,
					     &blen), 0);
	ck_assert_int_eq(kd_certbundle_name(&l->parsed, name), 0);
	snprintf(path, sizeof(path), "%s/%s", cache, name);
	ck_assert_int_eq(kd_write_file(path, b, blen, 0644), 0);
	free(b);
	free(chain);
	free(ask);
	free(ark);
}

START_TEST(empty_table_uses_bundle)
{
	struct launch o, n, x;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);
	char cache[] = "/tmp/keyd-test-handoff-certs-XXXXXX", path[512];
	int r;

	ck_assert_ptr_nonnull(mkdtemp(cache));
	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	launch(&x, dir_b, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	write_bundle(dir_a, &n, cache);
	free(n.certs);
	n.certs = NULL;
	n.certs_len = 0;
	setenv("KEYD_CERT_DIR", cache, 1);
	ck_assert_msg(verify_as('O', &o, &n, E1, &t) == 0, "%s", kd_err_detail(KD_EVERIFY));
	/* The zero page a host without certificates leaves counts as empty too. */
	n.certs = calloc(1, 16384);
	n.certs_len = 16384;
	ck_assert_msg(verify_as('O', &o, &n, E1, &t) == 0, "%s", kd_err_detail(KD_EVERIFY));
	/* The host lies: chip B's VCEK under chip A's name. */
	write_bundle(dir_b, &x, cache);
	{
		char name_a[KD_CERTBUNDLE_NAME_MAX], name_b[KD_CERTBUNDLE_NAME_MAX], pb[512];
		ck_assert_int_eq(kd_certbundle_name(&n.parsed, name_a), 0);
		ck_assert_int_eq(kd_certbundle_name(&x.parsed, name_b), 0);
		snprintf(path, sizeof(path), "%s/%s", cache, name_a);
		snprintf(pb, sizeof(pb), "%s/%s", cache, name_b);
		ck_assert_int_eq(rename(pb, path), 0);
	}
	r = verify_as('O', &o, &n, E1, &t);
	expect_refusal(r, "peer N rejected");
	/* No bundle at all: refused, naming where it was looked for. */
	ck_assert_int_eq(unlink(path), 0);
	r = verify_as('O', &o, &n, E1, &t);
	expect_refusal(r, "no bundle");
	unsetenv("KEYD_CERT_DIR");
	ck_assert_int_eq(rmdir(cache), 0);
	launch_free(&o);
	launch_free(&n);
	launch_free(&x);
	free(ark);
}
END_TEST

START_TEST(debug_policy_either_side)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000 | KD_POLICY_DEBUG, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000 | KD_POLICY_DEBUG, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	expect_refusal(verify_as('O', &o, &n, E1, &t), "peer N rejected");
	/* N verifies O too: a debug O (impersonation by a debuggable image). */
	expect_refusal(verify_as('N', &n, &o, E1, &t), "peer O rejected");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

START_TEST(svn_downgrade)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 5, "1.5", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	expect_refusal(verify_as('O', &o, &n, E1, &t), "SVN downgrade");
	expect_refusal(verify_as('N', &n, &o, E1, &t), "SVN downgrade");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

START_TEST(manifest_signatures)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	/* k-1 pinned + one unknown signer. */
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 1, stranger, &n.m);
	expect_refusal(verify_as('O', &o, &n, E1, &t), "1 valid signature(s)");
	free(n.manifest);
	kd_manifest_free(n.m);
	/* Field edited after signing: svn bumped in the JSON text. */
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	{
		char *p = strstr(n.manifest, "\"svn\":");

		ck_assert_ptr_nonnull(p);
		p = strchr(p, '4');
		ck_assert_ptr_nonnull(p);
		*p = '9';
	}
	expect_refusal(verify_as('O', &o, &n, E1, &t), "valid signature");
	/* O impersonated by an image absent from O's manifest. */
	free(o.manifest);
	kd_manifest_free(o.m);
	o.manifest = manifest_json(0x0e, 3, "1.3", 2, NULL, &o.m);
	expect_refusal(verify_as('N', &n, &o, E1, &t), "peer O rejected");
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

/* The privilege-separated verifier gives the same verdicts and details. */
START_TEST(isolated_verifier)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);
	struct kd_manifest *pm = NULL;
	struct kd_verifier *v = NULL;
	struct kd_report rep;
	struct kd_hello h;
	int r;

	/* valgrind does not implement seccomp(2), so the confined child fails
	 * closed under it; its checks run in-process in the tests around. */
	if (kd_under_valgrind()) {
		free(ark);
		return;
	}
	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	h = (struct kd_hello){'N', n.report, KD_REPORT_SIZE, n.certs, n.certs_len,
			      (const uint8_t *)n.manifest, strlen(n.manifest), NULL, 0};
	ck_assert_int_eq(kd_handoff_own_verifier(o.certs, o.certs_len, &t, &v), 0);
	ck_assert_int_eq(kd_handoff_verify_peer_isolated('O', &h, v, E1, &o.parsed, o.m, &t, 5000,
							 &rep, &pm),
			 0);
	ck_assert_str_eq(pm->version, "1.4");
	ck_assert_uint_eq(pm->svn, 4);
	ck_assert(!pm->rotate);
	ck_assert_mem_eq(rep.measurement, n.parsed.measurement, 48);
	kd_manifest_free(pm);
	pm = NULL;
	/* A release that asks for rotation: the flag is signed, so the parent's
	 * re-check needs it from the child (it once lost it, and every such
	 * handoff failed "0 valid signature(s)"). */
	free(n.manifest);
	kd_manifest_free(n.m);
	manifest_rotate = true;
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	manifest_rotate = false;
	h.manifest = (const uint8_t *)n.manifest;
	h.manifest_len = strlen(n.manifest);
	ck_assert_int_eq(kd_handoff_verify_peer_isolated('O', &h, v, E1, &o.parsed, o.m, &t, 5000,
							 &rep, &pm),
			 0);
	ck_assert(pm->rotate);
	kd_manifest_free(pm);
	pm = NULL;
	r = kd_handoff_verify_peer_isolated('O', &h, v, E2, &o.parsed, o.m, &t, 5000, &rep, &pm);
	kd_verifier_free(v);
	expect_refusal(r, "peer N rejected: report data");
	ck_assert_ptr_null(pm);
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

/* TLS: both ends export the same E; another session gives another E. */
static uint16_t listen_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &sl);
	return ntohs(sa.sin_port);
}

START_TEST(tls_exporter_agrees)
{
	uint8_t e_srv[2][48], e_cli[48];
	int lfd, pfd[2];
	char addr[64];
	pid_t pid;

	ck_assert_int_eq(kd_tls_listen("127.0.0.1:0", &lfd), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", listen_port(lfd));
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (int i = 0; i < 2; i++) {
			struct kd_tls *t;

			if (kd_tls_accept(lfd, kd_vg_ms(5000), &t) || kd_tls_exporter(t, e_srv[i]))
				_exit(1);
			/* Frames flow over the channel. */
			{
				struct kd_io io;

				kd_tls_io(t, &io);
				if (kd_frame_send(&io, KD_MSG_HELLO, e_srv[i], 48))
					_exit(2);
			}
			kd_tls_close(t);
		}
		if (write(pfd[1], e_srv, sizeof(e_srv)) != sizeof(e_srv))
			_exit(3);
		_exit(0);
	}
	close(lfd);
	for (int i = 0; i < 2; i++) {
		struct kd_tls *t;
		struct kd_io io;
		uint8_t *p = NULL;
		size_t n = 0;

		ck_assert_int_eq(kd_tls_connect(addr, kd_vg_ms(5000), &t), 0);
		ck_assert_int_eq(kd_tls_exporter(t, e_cli), 0);
		kd_tls_io(t, &io);
		ck_assert_int_eq(kd_frame_recv(&io, KD_MSG_HELLO, &p, &n), 0);
		ck_assert_uint_eq(n, 48);
		ck_assert_mem_eq(p, e_cli, 48);
		free(p);
		kd_tls_close(t);
		if (i == 0)
			memcpy(E1, e_cli, 48);
	}
	ck_assert_mem_ne(E1, e_cli, 48);
	{
		int st;

		ck_assert_int_eq(read(pfd[0], e_srv, sizeof(e_srv)), (ssize_t)sizeof(e_srv));
		waitpid(pid, &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ck_assert_mem_eq(e_srv[1], e_cli, 48);
	ck_assert_mem_eq(e_srv[0], E1, 48);
}
END_TEST

/* A peer that connects and says nothing: the handshake times out. */
START_TEST(tls_silent_peer_times_out)
{
	int lfd, fd;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct kd_tls *t = NULL;
	int64_t t0;

	ck_assert_int_eq(kd_tls_listen("127.0.0.1:0", &lfd), 0);
	sa.sin_port = htons(listen_port(lfd));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	t0 = kd_now_ms();
	ck_assert_int_eq(kd_tls_accept(lfd, 300, &t), KD_ETIMEOUT);
	ck_assert_int_lt(kd_now_ms() - t0, 2000);
	/* Garbage instead of a ClientHello. */
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	ck_assert_int_eq(kd_tls_accept(lfd, 2000, &t), KD_EPROTO);
	close(fd);
	close(lfd);
}
END_TEST

/* The verifier child's seccomp filter: a socket, an open or an exec kills it. */
static int confined_child(int what)
{
	int st = 0, fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *const argv[] = {(char *)"/bin/true", NULL};

		close(fds[0]);
		if (kd_handoff_confine())
			_exit(3);
		/* Allowed: memory, writing a descriptor we hold, time. */
		free(malloc(1 << 20));
		if (write(fds[1], "k", 1) != 1)
			_exit(4);
		if (what == 1)
			(void)socket(AF_INET, SOCK_STREAM, 0);
		if (what == 2)
			(void)open("/etc/passwd", O_RDONLY);
		if (what == 3)
			execv(argv[0], argv);
		if (what == 4)
			(void)fork();
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(fds[0]);
	return st;
}

START_TEST(seccomp_confines_child)
{
	int st;

	if (kd_under_valgrind())
		return; /* valgrind does not implement seccomp(2) */
	st = confined_child(0);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ck_abort_msg("confined child status 0x%x, want exit 0", st);
	for (int what = 1; what <= 4; what++) {
		st = confined_child(what);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
			ck_abort_msg("escape %d: child status 0x%x, want SIGSYS", what, st);
	}
}
END_TEST

/* The parent judges the peer itself, with this chip's own VCEK. */
START_TEST(parent_recheck)
{
	struct launch o, n, x;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);
	struct kd_verifier *v = NULL;
	struct kd_manifest *one = NULL;
	struct kd_report rep;
	char *j;

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	launch(&x, dir_b, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	ck_assert_int_eq(kd_handoff_own_verifier(o.certs, o.certs_len, &t, &v), 0);
	ck_assert_int_eq(kd_handoff_recheck_peer('O', n.report, KD_REPORT_SIZE, n.m, E1, &o.parsed,
						 o.m, &t, v, &rep),
			 0);
	ck_assert_mem_eq(rep.measurement, n.parsed.measurement, 48);
	/* Another session, another chip, a manifest short of k: each refused. */
	expect_refusal(kd_handoff_recheck_peer('O', n.report, KD_REPORT_SIZE, n.m, E2, &o.parsed,
					       o.m, &t, v, &rep),
		       "parent re-check: peer N rejected");
	expect_refusal(kd_handoff_recheck_peer('O', x.report, KD_REPORT_SIZE, n.m, E1, &o.parsed,
					       o.m, &t, v, &rep),
		       "parent re-check");
	j = manifest_json(MEAS_N, 4, "1.4", 1, NULL, &one);
	expect_refusal(kd_handoff_recheck_peer('O', n.report, KD_REPORT_SIZE, one, E1, &o.parsed,
					       o.m, &t, v, &rep),
		       "1 valid signature");
	/* The peer's measurement must be in the manifest the parent holds. */
	expect_refusal(kd_handoff_recheck_peer('O', n.report, KD_REPORT_SIZE, o.m, E1, &o.parsed,
					       o.m, &t, v, &rep),
		       "measurement");
	kd_verifier_free(v);
	/* Another chip's certificates do not chain to our pinned root. */
	expect_refusal(kd_handoff_own_verifier(x.certs, x.certs_len, &t, &v), "own VCEK");
	free(j);
	kd_manifest_free(one);
	launch_free(&o);
	launch_free(&n);
	launch_free(&x);
	free(ark);
}
END_TEST

/* Each side judges its own release before it listens or connects. */
START_TEST(check_self)
{
	struct launch o;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark), eff;
	struct kd_manifest *unsigned_m = NULL, *other = NULL;
	struct kd_report zero;
	char *j1, *j2;

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	ck_assert_int_eq(kd_handoff_check_self('O', o.m, &o.parsed, &t, &eff), 0);
	j1 = manifest_json(MEAS_O, 0, "0.0", 0, NULL, &unsigned_m);
	expect_refusal(kd_handoff_check_self('O', unsigned_m, &o.parsed, &t, &eff),
		       "own manifest: manifest 0.0: 0 valid signature");
	j2 = manifest_json(MEAS_N, 3, "1.3", 2, NULL, &other);
	expect_refusal(kd_handoff_check_self('O', other, &o.parsed, &t, &eff),
		       "own manifest: measurement");
	/* No floor pinned, none in the manifest, no opt-out: refused. */
	t.no_tcb_floor = false;
	expect_refusal(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff), "no TCB floor");
	/* The manifest's floor for this product is taken (signed: re-sign). */
	o.m->has_min_tcb[o.parsed.product] = true;
	o.m->min_tcb[o.parsed.product] = o.parsed.reported_tcb;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kd_manifest_sign(o.m, (uint8_t *)priv[i], strlen(priv[i])), 0);
	ck_assert_int_eq(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff), 0);
	ck_assert(eff.has_tcb_floor);
	ck_assert_uint_eq(eff.tcb_floor, o.parsed.reported_tcb);
	/* The revocation floor the image pins, and the manifest's: the higher
	 * applies; a manifest floor above the pinned one refuses itself (the
	 * boot would judge pending slots by the lower, pinned one). */
	t.has_peer_svn_floor = true;
	t.peer_svn_floor = 2;
	ck_assert_int_eq(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff), 0);
	ck_assert(eff.has_peer_svn_floor);
	ck_assert_uint_eq(eff.peer_svn_floor, 2);
	o.m->has_min_peer_svn = true;
	o.m->min_peer_svn = 3;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kd_manifest_sign(o.m, (uint8_t *)priv[i], strlen(priv[i])), 0);
	expect_refusal(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff),
		       "revocation floor 3, above the floor 2 this image pins");
	t.peer_svn_floor = 3;
	ck_assert_int_eq(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff), 0);
	ck_assert_uint_eq(eff.peer_svn_floor, 3);
	t.has_peer_svn_floor = false;
	ck_assert_int_eq(kd_handoff_check_self('N', o.m, &o.parsed, &t, &eff), 0);
	ck_assert(eff.has_peer_svn_floor);
	ck_assert_uint_eq(eff.peer_svn_floor, 3);
	/* A masked (all-zero) CHIP_ID is refused. */
	zero = o.parsed;
	memset(zero.chip_id, 0, sizeof(zero.chip_id));
	expect_refusal(kd_handoff_check_self('O', o.m, &zero, &t, &eff), "all-zero CHIP_ID");
	/* A release whose svn is below its own revocation floor. */
	o.m->has_min_peer_svn = true;
	o.m->min_peer_svn = 9;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(kd_manifest_sign(o.m, (uint8_t *)priv[i], strlen(priv[i])), 0);
	expect_refusal(kd_handoff_check_self('O', o.m, &o.parsed, &t, &eff), "revocation floor");
	free(j1);
	free(j2);
	kd_manifest_free(unsigned_m);
	kd_manifest_free(other);
	launch_free(&o);
	free(ark);
}
END_TEST

/* The revocation floor each side ships holds whatever the clock says. */
START_TEST(revocation_floor)
{
	struct launch o, n;
	uint8_t *ark;
	struct kd_handoff_trust t = trust_for(dir_a, &ark);

	launch(&o, dir_a, MEAS_O, 0x30000, 'O', E1);
	launch(&n, dir_a, MEAS_N, 0x30000, 'N', E1);
	o.manifest = manifest_json(MEAS_O, 3, "1.3", 2, NULL, &o.m);
	n.manifest = manifest_json(MEAS_N, 4, "1.4", 2, NULL, &n.m);
	/* Inside both windows, and in the past: the floor still holds. */
	t.at = o.m->not_before + 1;
	ck_assert_int_eq(verify_as('N', &n, &o, E1, &t), 0);
	n.m->has_min_peer_svn = true;
	n.m->min_peer_svn = 4;
	expect_refusal(verify_as('N', &n, &o, E1, &t), "below the revocation floor 4");
	o.m->has_min_peer_svn = true;
	o.m->min_peer_svn = 5;
	expect_refusal(verify_as('O', &o, &n, E1, &t), "below the revocation floor 5");
	/* The floor the image pins judges the peer as well. */
	n.m->has_min_peer_svn = false;
	t.has_peer_svn_floor = true;
	t.peer_svn_floor = 4;
	expect_refusal(verify_as('N', &n, &o, E1, &t), "below the revocation floor 4 this image pins");
	t.peer_svn_floor = 3;
	ck_assert_int_eq(verify_as('N', &n, &o, E1, &t), 0);
	launch_free(&o);
	launch_free(&n);
	free(ark);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("handoff");
	TCase *tc = tcase_create("handoff");
	SRunner *sr;
	int failed;

	memset(E1, 0x11, sizeof(E1));
	memset(E2, 0x22, sizeof(E2));
	setup_all();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, report_data_binding);
	tcase_add_test(tc, mutual_accept);
	tcase_add_test(tc, replayed_report);
	tcase_add_test(tc, measurement_not_in_manifest);
	tcase_add_test(tc, other_chip);
	tcase_add_test(tc, other_chips_vcek);
	tcase_add_test(tc, empty_table_uses_bundle);
	tcase_add_test(tc, debug_policy_either_side);
	tcase_add_test(tc, svn_downgrade);
	tcase_add_test(tc, manifest_signatures);
	tcase_add_test(tc, isolated_verifier);
	tcase_add_test(tc, tls_exporter_agrees);
	tcase_add_test(tc, tls_silent_peer_times_out);
	tcase_add_test(tc, seccomp_confines_child);
	tcase_add_test(tc, parent_recheck);
	tcase_add_test(tc, check_self);
	tcase_add_test(tc, revocation_floor);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown_all();
	return failed ? 1 : 0;
}
