/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Failpoints: named points around every header write, where a test build
 * (make FP=1, -DKEYD_FAILPOINTS) kills itself with SIGKILL when
 * $KEYD_FAILPOINT names the point. Production builds compile them away.
 * The same names are the steps of the Promela model (threat-model/model).
 *
 *   enroll.after-format    enroll.after-keyslot    enroll.after-token
 *   handoff.before-keyslot handoff.after-keyslot   handoff.after-token
 *   handoff.after-reclaim
 *   commit.before-activate commit.after-keyslot    commit.after-token
 *   commit.before-kill     commit.after-kill       commit.after-reclaim
 *   commit.after-retire
 *   rekey.after-keyslot    rekey.after-token       rekey.before-retire
 *   rekey.after-retire
 *   retire.before-kill     retire.after-kill
 *   recover.after-keyslot  recover.after-token
 *   escrow.after-keyslot   escrow.after-token      escrow.after-old-token
 *   rotate.after-keyslot   rotate.after-token      rotate.after-old-tokens
 *   rotate.before-init     rotate.after-init       rotate.mid-run
 *   rotate.before-finalize rotate.after-finish     rotate.after-escrow
 *   (rotate.mid-run fires once $KEYD_FAILPOINT_BYTES have been re-encrypted)
 *
 * Two more names are test hooks of the handoff's verifier child (privsep.c),
 * not kill points: handoff.child-escape (open a socket under the seccomp
 * filter) and handoff.child-lies (answer "accepted" without verifying).
 */
#ifndef KEYD_FAILPOINT_H
#define KEYD_FAILPOINT_H

#ifdef KEYD_FAILPOINTS
void kd_failpoint(const char *name);
#else
static inline void kd_failpoint(const char *name)
{
	(void)name;
}
#endif

#endif
