/* SPDX-License-Identifier: Apache-2.0 */
/* Peer verification (docs/handoff-protocol.md): everything one side checks about the other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/certbundle.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/verify.h"

/* Re-prefix the current detail with the role of the peer that failed. */
static int peer_fail(int err, char peer_role)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", kd_err_detail(err));
	return kd_fail(err, "peer %c rejected: %s", peer_role, msg);
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
	uint8_t rd[64], *bundle = NULL;
	uint32_t old_svn, new_svn;
	int r;

	if (peer->role != (uint8_t)peer_role)
		return kd_fail(KD_EPROTO, "peer claims role %c, expected %c (reflected HELLO?)",
			       peer->role, peer_role);

	/* The manifest first: it is cheap and names the measurements we accept. */
	r = kd_manifest_parse(peer->manifest, peer->manifest_len, &m);
	if (!r)
		r = kd_manifest_verify(m, trust->keys, trust->at, NULL);
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
	memset(&pol, 0, sizeof(pol));
	pol.measurements = (const uint8_t(*)[48])m->measurements;
	pol.n_measurements = m->n_measurements;
	pol.chip_id = own_report->chip_id;
	pol.report_data = rd;
	pol.has_min_tcb = trust->has_tcb_floor;
	pol.min_tcb = trust->tcb_floor;
	pol.allow_debug = false;
	pol.max_vmpl = 0;
	pol.at = trust->at;
	/* An empty table (stock KVM): the host's cached KDS bundle (keyd/certbundle.h). */
	r = kd_certs_from_bundle(&certs, peer->report, peer->report_len, NULL, &bundle, NULL, 0);
	if (!r)
		r = kd_verify_report(peer->report, peer->report_len, &certs, &pol, &rep, NULL);
	free(bundle);
	if (r)
		goto fail;
	/* Belt and braces: these are the checks the handoff cannot live without,
	 * so they do not depend on the verifier's policy defaults. */
	if (memcmp(rep.report_data, rd, 64)) {
		r = kd_fail(KD_EVERIFY, "report_data is not bound to this TLS session");
		goto fail;
	}
	if (!kd_ct_equal(rep.chip_id, own_report->chip_id, 64)) {
		r = kd_fail(KD_EPOLICY, "chip_id differs from this machine's");
		goto fail;
	}
	if (rep.policy & (KD_POLICY_DEBUG | KD_POLICY_MIGRATE_MA)) {
		r = kd_fail(KD_EPOLICY, "debug or migration-agent policy bit is set");
		goto fail;
	}
	if (rep.vmpl != 0) {
		r = kd_fail(KD_EPOLICY, "report VMPL %u is not 0", rep.vmpl);
		goto fail;
	}
	r = kd_manifest_has_measurement(m, rep.measurement);
	if (r)
		goto fail;

	old_svn = my_role == KD_ROLE_OLD ? own_manifest->svn : m->svn;
	new_svn = my_role == KD_ROLE_OLD ? m->svn : own_manifest->svn;
	if (new_svn < old_svn) {
		r = kd_fail(KD_EPOLICY, "SVN downgrade: new version svn %u < old version svn %u",
			    new_svn, old_svn);
		goto fail;
	}
	*ret_report = rep;
	*ret_manifest = m;
	return 0;
fail:
	kd_manifest_free(m);
	return peer_fail(r, peer_role);
}
