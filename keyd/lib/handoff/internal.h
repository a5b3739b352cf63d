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
 * This chip's own VCEK, from this side's certificate table: the chain to the
 * pinned root is verified and so is this side's own report under it.
 */
int kd_handoff_own_verifier(const uint8_t *own_report, size_t own_report_len,
			    const uint8_t *own_certs, size_t own_certs_len,
			    const struct kd_handoff_trust *trust, struct kd_verifier **ret);

/*
 * The parent's own judgement of a peer the verifier child accepted: the
 * report signature under own_vek (same chip, same reported TCB), and every
 * policy check on the report and on the manifest m.
 */
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
