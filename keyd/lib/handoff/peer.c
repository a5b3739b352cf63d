/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peer verification (docs/handoff-protocol.md): everything one side checks about itself and about
 * the other.
 *
 * The peer is judged twice. The verifier child (privsep.c) parses the
 * peer's certificates, builds the chain to the AMD root and verifies the
 * report and the manifest (kd_handoff_verify_peer). The key-holding parent
 * then trusts none of that verdict: it re-checks the report signature with
 * this chip's own VCEK (the peer is on the same chip at the same reported
 * TCB, so the parent needs no peer certificate) and re-applies every policy
 * check to the report and to the manifest fields the child sent back
 * (kd_handoff_recheck_peer). A child taken over by a parser exploit can
 * therefore make the handoff fail, but not make it accept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/certbundle.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/util.h"
#include "keyd/verify.h"
#include "handoff/internal.h"

/* Re-prefix the current detail with the role of the peer that failed. */
static int peer_fail(int err, char peer_role)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", kd_err_detail(err));
	return kd_fail(err, "peer %c rejected: %s", peer_role, msg);
}

static bool all_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

/*
 * The host hands each side its manifest: the side checks it is a release of
 * its own before it offers or asks for anything.
 */
static int own_manifest_checks(const struct kd_manifest *own, const struct kd_report *own_report,
			       const struct kd_handoff_trust *trust)
{
	int r;

	r = kd_manifest_verify(own, trust->keys, trust->at, NULL);
	if (r)
		return r;
	r = kd_manifest_has_measurement(own, own_report->measurement);
	if (r)
		return r;
	if (own->has_min_peer_svn && own->svn < own->min_peer_svn)
		return kd_fail(KD_EPOLICY, "manifest %s has svn %u below its own revocation floor %u",
			       own->version, own->svn, own->min_peer_svn);
	if (trust->has_peer_svn_floor && own->has_min_peer_svn &&
	    own->min_peer_svn > trust->peer_svn_floor)
		return kd_fail(KD_EPOLICY, "release %s has revocation floor %u, above the floor %u "
					   "this image pins: rebuild the image with its release's floor",
			       own->version, own->min_peer_svn, trust->peer_svn_floor);
	return 0;
}

int kd_handoff_check_self(char my_role, const struct kd_manifest *own,
			  const struct kd_report *own_report, const struct kd_handoff_trust *trust,
			  struct kd_handoff_trust *ret_trust)
{
	struct kd_handoff_trust t = *trust;
	uint64_t floor;
	int r;

	if (my_role != KD_ROLE_OLD && my_role != KD_ROLE_NEW)
		return kd_fail(KD_EINVAL, "handoff role must be O or N");
	if (!trust->keys)
		return kd_fail(KD_EINVAL, "handoff needs pinned release keys");
	r = own_manifest_checks(own, own_report, trust);
	if (r)
		return kd_fail_prefix(r, "own manifest");
	if (own->has_min_peer_svn && (!t.has_peer_svn_floor || own->min_peer_svn > t.peer_svn_floor)) {
		t.has_peer_svn_floor = true;
		t.peer_svn_floor = own->min_peer_svn;
	}
	/* A host that masks the chip ID would make "same chip" mean 0 == 0. */
	if (all_zero(own_report->chip_id, sizeof(own_report->chip_id)))
		return kd_fail(KD_EPOLICY, "this launch reports an all-zero CHIP_ID (MASK_CHIP_ID?): "
					   "the same-chip check cannot hold");
	if (!t.has_tcb_floor && !kd_manifest_tcb_floor(own, own_report->product, &floor)) {
		t.has_tcb_floor = true;
		t.tcb_floor = floor;
	}
	if (!t.has_tcb_floor && !t.no_tcb_floor)
		return kd_fail(KD_EPOLICY, "no TCB floor: manifest %s gives none for %s and none is "
					   "pinned (--tcb-floor); refusing (--no-tcb-floor opts out)",
			       own->version, kd_product_name(own_report->product));
	*ret_trust = t;
	return 0;
}

/* The manifest checks: k-of-n signatures, window, revocation floor, SVN rule. */
static int manifest_checks(char my_role, const struct kd_manifest *m,
			   const struct kd_manifest *own_manifest, const struct kd_handoff_trust *trust)
{
	uint32_t old_svn, new_svn;
	int r;

	r = kd_manifest_verify(m, trust->keys, trust->at, NULL);
	if (r)
		return r;
	/* The floor this side ships, judged without any clock. */
	if (own_manifest->has_min_peer_svn && m->svn < own_manifest->min_peer_svn)
		return kd_fail(KD_EPOLICY, "release %s svn %u is below the revocation floor %u of "
					   "release %s",
			       m->version, m->svn, own_manifest->min_peer_svn, own_manifest->version);
	if (trust->has_peer_svn_floor && m->svn < trust->peer_svn_floor)
		return kd_fail(KD_EPOLICY, "release %s svn %u is below the revocation floor %u this "
					   "image pins", m->version, m->svn, trust->peer_svn_floor);
	old_svn = my_role == KD_ROLE_OLD ? own_manifest->svn : m->svn;
	new_svn = my_role == KD_ROLE_OLD ? m->svn : own_manifest->svn;
	if (new_svn < old_svn)
		return kd_fail(KD_EPOLICY, "SVN downgrade: new version svn %u < old version svn %u",
			       new_svn, old_svn);
	return 0;
}

/*
 * The checks the handoff cannot live without, on a report whose signature
 * has been verified, so they do not depend on the verifier's policy defaults.
 */
static int report_checks(const struct kd_report *rep, const uint8_t rd[64],
			 const struct kd_manifest *m, const struct kd_report *own_report,
			 const struct kd_handoff_trust *trust)
{
	if (memcmp(rep->report_data, rd, 64))
		return kd_fail(KD_EVERIFY, "report_data is not bound to this TLS session");
	if (all_zero(own_report->chip_id, 64) || all_zero(rep->chip_id, 64))
		return kd_fail(KD_EPOLICY, "all-zero CHIP_ID (MASK_CHIP_ID?): the same-chip check "
					   "cannot hold");
	if (!kd_ct_equal(rep->chip_id, own_report->chip_id, 64))
		return kd_fail(KD_EPOLICY, "chip_id differs from this machine's");
	if (rep->policy & (KD_POLICY_DEBUG | KD_POLICY_MIGRATE_MA))
		return kd_fail(KD_EPOLICY, "debug or migration-agent policy bit is set");
	if (rep->vmpl != 0)
		return kd_fail(KD_EPOLICY, "report VMPL %u is not 0", rep->vmpl);
	if (!trust->has_tcb_floor && !trust->no_tcb_floor)
		return kd_fail(KD_EPOLICY, "no TCB floor to judge the peer by");
	if (trust->has_tcb_floor && !kd_tcb_ge(rep->reported_tcb, trust->tcb_floor, own_report->product)) {
		char have[KD_TCB_HEX_LEN], want[KD_TCB_HEX_LEN];

		kd_tcb_hex(rep->reported_tcb, have);
		kd_tcb_hex(trust->tcb_floor, want);
		return kd_fail(KD_EPOLICY, "reported TCB %s is below the floor %s", have, want);
	}
	return kd_manifest_has_measurement(m, rep->measurement);
}

static void fill_policy(struct kd_verify_policy *pol, const struct kd_manifest *m,
			const struct kd_report *own_report, const uint8_t rd[64],
			const struct kd_handoff_trust *trust)
{
	memset(pol, 0, sizeof(*pol));
	pol->measurements = (const uint8_t(*)[48])m->measurements;
	pol->n_measurements = m->n_measurements;
	pol->chip_id = own_report->chip_id;
	pol->report_data = rd;
	pol->has_min_tcb = trust->has_tcb_floor;
	pol->min_tcb = trust->tcb_floor;
	pol->allow_debug = false;
	pol->max_vmpl = 0;
	pol->at = trust->at;
}

/*
 * The peer's report under its certificate table, or for an empty table
 * (stock KVM) the host's cached KDS bundle (keyd/certbundle.h).
 */
static int verify_peer_report(const struct kd_hello *peer, struct kd_cert_inputs *certs,
			      const struct kd_verify_policy *pol, struct kd_report *ret)
{
	_kd_free_ uint8_t *bundle = NULL;
	int r;

	r = kd_certs_from_bundle(certs, peer->report, peer->report_len, NULL, &bundle, NULL, 0);
	if (r)
		return r;
	return kd_verify_report(peer->report, peer->report_len, certs, pol, ret, NULL);
}

int kd_handoff_verify_peer(char my_role, const struct kd_hello *peer,
			   const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			   const struct kd_report *own_report, const struct kd_manifest *own_manifest,
			   const struct kd_handoff_trust *trust, struct kd_report *ret_report,
			   struct kd_manifest **ret_manifest)
{
	char peer_role = my_role == KD_ROLE_OLD ? KD_ROLE_NEW : KD_ROLE_OLD;
	struct kd_manifest *m = NULL;
	struct kd_verify_policy pol;
	struct kd_cert_inputs certs;
	struct kd_report rep;
	uint8_t rd[64];
	int r;

	if (peer->role != (uint8_t)peer_role)
		return kd_fail(KD_EPROTO, "peer claims role %c, expected %c (reflected HELLO?)",
			       peer->role, peer_role);

	/* The manifest first: it is cheap and names the measurements we accept. */
	r = kd_manifest_parse(peer->manifest, peer->manifest_len, &m);
	if (r)
		goto fail;
	r = manifest_checks(my_role, m, own_manifest, trust);
	if (r)
		goto fail;
	r = kd_handoff_report_data(peer_role, exporter, rd);
	if (r)
		goto fail;
	memset(&certs, 0, sizeof(certs));
	certs.cert_table = peer->certs;
	certs.cert_table_len = peer->certs_len;
	certs.ark = trust->ark;
	certs.ark_len = trust->ark_len;
	fill_policy(&pol, m, own_report, rd, trust);
	r = verify_peer_report(peer, &certs, &pol, &rep);
	if (r)
		goto fail;
	r = report_checks(&rep, rd, m, own_report, trust);
	if (r)
		goto fail;
	*ret_report = rep;
	*ret_manifest = m;
	return 0;
fail:
	kd_manifest_free(m);
	return peer_fail(r, peer_role);
}

int kd_handoff_own_verifier(const uint8_t *own_certs, size_t own_certs_len,
			    const struct kd_handoff_trust *trust, struct kd_verifier **ret)
{
	struct kd_cert_inputs certs;
	struct kd_verifier *v = NULL;
	int r;

	memset(&certs, 0, sizeof(certs));
	certs.cert_table = own_certs;
	certs.cert_table_len = own_certs_len;
	certs.ark = trust->ark;
	certs.ark_len = trust->ark_len;
	/*
	 * Our own chain to the pinned root. The VCEK's hwID and SPLs are then
	 * checked against each peer report, whose chip_id and reported TCB must
	 * be our own: so it is this chip's VCEK at this TCB, whatever the host
	 * put in our certificate table.
	 */
	r = kd_verifier_new(&certs, &v, NULL);
	if (r)
		return kd_fail_prefix(r, "own VCEK");
	*ret = v;
	return 0;
}

/* The peer's report, parsed and verified under this chip's own VCEK. */
static int recheck_report(char peer_role, const uint8_t *report, size_t report_len,
			  const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			  const struct kd_report *own_report, const struct kd_handoff_trust *trust,
			  struct kd_verifier *own_vek, struct kd_report *rep)
{
	struct kd_verify_policy pol;
	uint8_t rd[64];
	int r;

	r = kd_report_parse(report, report_len, rep);
	if (r)
		return r;
	if (rep->reported_tcb != own_report->reported_tcb)
		return kd_fail(KD_EPOLICY, "reported TCB differs from this chip's own: not the same "
					   "platform");
	r = kd_handoff_report_data(peer_role, exporter, rd);
	if (r)
		return r;
	memset(&pol, 0, sizeof(pol));
	pol.chip_id = own_report->chip_id;
	pol.report_data = rd;
	pol.has_min_tcb = trust->has_tcb_floor;
	pol.min_tcb = trust->tcb_floor;
	pol.allow_debug = false;
	pol.max_vmpl = 0;
	pol.at = trust->at;
	return kd_verifier_verify(own_vek, report, report_len, &pol, rep, NULL);
}

int kd_handoff_recheck_report(char my_role, const uint8_t *report, size_t report_len,
			      const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			      const struct kd_report *own_report,
			      const struct kd_handoff_trust *trust, struct kd_verifier *own_vek,
			      struct kd_report *ret_report)
{
	char peer_role = my_role == KD_ROLE_OLD ? KD_ROLE_NEW : KD_ROLE_OLD;
	struct kd_report rep;
	int r;

	r = recheck_report(peer_role, report, report_len, exporter, own_report, trust, own_vek,
			   &rep);
	if (r)
		return kd_fail_prefix(peer_fail(r, peer_role), "parent re-check");
	*ret_report = rep;
	return 0;
}

int kd_handoff_recheck_manifest(char my_role, const struct kd_report *rep,
				const struct kd_manifest *m,
				const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
				const struct kd_report *own_report,
				const struct kd_manifest *own_manifest,
				const struct kd_handoff_trust *trust)
{
	char peer_role = my_role == KD_ROLE_OLD ? KD_ROLE_NEW : KD_ROLE_OLD;
	uint8_t rd[64];
	int r;

	r = manifest_checks(my_role, m, own_manifest, trust);
	if (r)
		goto fail;
	r = kd_handoff_report_data(peer_role, exporter, rd);
	if (r)
		goto fail;
	r = report_checks(rep, rd, m, own_report, trust);
	if (r)
		goto fail;
	return 0;
fail:
	return kd_fail_prefix(peer_fail(r, peer_role), "parent re-check");
}

int kd_handoff_recheck_peer(char my_role, const uint8_t *report, size_t report_len,
			    const struct kd_manifest *m,
			    const uint8_t exporter[KD_HANDOFF_EXPORTER_LEN],
			    const struct kd_report *own_report, const struct kd_manifest *own_manifest,
			    const struct kd_handoff_trust *trust, struct kd_verifier *own_vek,
			    struct kd_report *ret_report)
{
	struct kd_report rep;
	int r;

	r = kd_handoff_recheck_report(my_role, report, report_len, exporter, own_report, trust,
				      own_vek, &rep);
	if (r)
		return r;
	r = kd_handoff_recheck_manifest(my_role, &rep, m, exporter, own_report, own_manifest,
					trust);
	if (r)
		return r;
	*ret_report = rep;
	return 0;
}
