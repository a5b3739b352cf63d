/* SPDX-License-Identifier: Apache-2.0 */
/* Private helpers of the handoff module. */
#ifndef KEYD_HANDOFF_INTERNAL_H
#define KEYD_HANDOFF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keyd/error.h"

/*
 * Re-record the current failure detail with a prefix ("disk.img: ...").
 * The detail is copied out first: kd_fail() formats into the very buffer
 * kd_err_detail() returns.
 */
static inline int kd_fail_prefix(int err, const char *prefix)
{
	char d[512];

	snprintf(d, sizeof(d), "%s", kd_err_detail(err));
	return kd_fail(err, "%s: %s", prefix, d);
}

struct kd_verifier;
struct kd_manifest;
struct kd_report;
struct kd_handoff_trust;

/*
 * The parent's own judgement of a peer, in two halves so that the first
 * runs while the verifier child works: the report's signature under own_vek
 * (same chip, same reported TCB, session binding, policy bits, VMPL, TCB
 * floor), then, with the manifest fields the child returned, the manifest's
 * k-of-n signatures, window, floors, SVN rule and the measurement.
 * kd_handoff_recheck_peer runs both.
 */
int kd_handoff_recheck_report(char my_role, const uint8_t *report, size_t report_len,
			      const uint8_t exporter[48], const struct kd_report *own_report,
			      const struct kd_handoff_trust *trust, struct kd_verifier *own_vek,
			      struct kd_report *ret_report);
int kd_handoff_recheck_manifest(char my_role, const struct kd_report *rep,
				const struct kd_manifest *m, const uint8_t exporter[48],
				const struct kd_report *own_report,
				const struct kd_manifest *own_manifest,
				const struct kd_handoff_trust *trust);
int kd_handoff_recheck_peer(char my_role, const uint8_t *report, size_t report_len,
			    const struct kd_manifest *m, const uint8_t exporter[48],
			    const struct kd_report *own_report, const struct kd_manifest *own_manifest,
			    const struct kd_handoff_trust *trust, struct kd_verifier *own_vek,
			    struct kd_report *ret_report);

/*
 * Confine the calling process to what the verifier child needs: memory,
 * reading and writing descriptors it already holds, time, exit. Anything
 * else (socket, open, exec, fork, ptrace, ...) kills it (SIGSYS).
 */
int kd_handoff_confine(void);

#endif
