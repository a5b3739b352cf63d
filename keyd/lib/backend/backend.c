/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backend selection and capability checks.
 *
 * Selection (docs/architecture.md#backends): an explicit name wins. Otherwise snp when
 * /dev/sev-guest exists, else tsm when the configfs-tsm report directory
 * exists. The simulator is never detected from the machine: a guest on real
 * SNP hardware must not be talked into a fake AMD-SP by a stray socket. Only
 * the name "sim" or a set $KEYD_SIM selects it, and $KEYD_SIM counts as an
 * explicit choice made by whoever controls the environment (the test
 * harness, or the VM image's own unit files).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/internal.h"
#include "keyd/error.h"

#define SEV_GUEST_PATH "/dev/sev-guest"
#define TSM_REPORT_PATH "/sys/kernel/config/tsm/report"

int kd_backend_open(const struct kd_backend_opts *opts, struct kd_backend **ret)
{
	const char *name = opts ? opts->name : NULL;
	const char *sim = opts && opts->sim_addr ? opts->sim_addr : getenv("KEYD_SIM");
	const char *sev = opts && opts->sev_guest_path ? opts->sev_guest_path : SEV_GUEST_PATH;
	const char *tsm = opts && opts->tsm_path ? opts->tsm_path : TSM_REPORT_PATH;

	assert(ret);
	if (sim && !*sim)
		sim = NULL;
	if (!name && sim)
		name = "sim";
	if (!name) {
		if (access(sev, F_OK) == 0)
			name = "snp";
		else if (access(tsm, F_OK) == 0)
			name = "tsm";
		else
			return kd_fail(KD_ENOENT, "no trust backend: neither %s nor %s exists "
						  "(use --backend sim --sim unix:PATH for the simulator)",
				       sev, tsm);
	}
	if (!strcmp(name, "snp"))
		return kd_backend_snp_open(sev, ret);
	if (!strcmp(name, "tsm"))
		return kd_backend_tsm_open(tsm, ret);
	if (!strcmp(name, "sim")) {
		if (!sim)
			return kd_fail(KD_EINVAL, "backend sim needs --sim unix:PATH|serial:PATH or $KEYD_SIM");
		return kd_backend_sim_open(sim, ret);
	}
	return kd_fail(KD_EINVAL, "unknown backend '%s' (snp, tsm or sim)", name);
}

void kd_backend_close(struct kd_backend *b)
{
	if (b && b->ops && b->ops->close)
		b->ops->close(b);
}

int kd_backend_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key)
{
	assert(b && b->ops && req && ret_key);
	if (!(b->caps & KD_CAP_DERIVE) || !b->ops->derive)
		return kd_fail(KD_ENOTSUP, "backend %s has no derived keys", b->ops->name);
	return b->ops->derive(b, req, ret_key);
}

int kd_backend_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	assert(b && b->ops && report_data && ret_report && ret_len);
	if (!(b->caps & KD_CAP_REPORT) || !b->ops->report)
		return kd_fail(KD_ENOTSUP, "backend %s has no attestation reports", b->ops->name);
	if (ret_certs && !(b->caps & KD_CAP_CERTS))
		return kd_fail(KD_ENOTSUP, "backend %s has no certificates", b->ops->name);
	return b->ops->report(b, report_data, vmpl, ret_report, ret_len, ret_certs, ret_certs_len);
}
