/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two volume tools, keyd and keyd-recover, share beyond cli.h: their
 * start, opening this launch, and the status and rekey commands, which both
 * tools have (one implementation each, keyd/recover.h; each tool gives its
 * own "Usage:" line before the help text here). keyd-simfw does not link this.
 */
#ifndef KEYD_VOLUME_CLI_H
#define KEYD_VOLUME_CLI_H

#include "backend-opts.h"
#include "cli.h"
#include "keyd/backend.h"
#include "keyd/volume.h"

/*
 * main() of a volume tool: libcryptsetup's own log off, pending handoff slots
 * opened through their evidence check (keyd/pending.h), then cli_dispatch().
 */
int cli_volume_main(const char *prog, const struct kd_cmd *cmds, int argc, char **argv);

/*
 * Open the trust backend o selects and get this launch. 0 or a KD_E* error;
 * *b is the caller's to kd_backend_close() either way.
 */
int cli_launch_open(const struct kd_backend_opts *o, struct kd_backend **b, struct kd_launch *l);

/*
 * status DEVICE [--json] [BACKEND OPTIONS]: kd_recover_status_device()'s
 * report as text or JSON. Returns the exit code.
 */
int cli_status_run(int argc, char **argv);

#define CLI_STATUS_HELP                                                                \
	"\n"                                                                           \
	"Everything about a volume in one screen: the health of both LUKS2 header\n"   \
	"copies (agree, or which one needs repair) and the allow-list verdict,\n"      \
	"every keyslot with what describes it (keyd token and state, escrow, or\n"     \
	"nothing), every keyd token with the measurement, chip (this chip or\n"        \
	"another), TCB, SVN, label and time it is sealed to, pending handoffs, the\n"  \
	"escrow (threshold, commitment, admin certificate fingerprints), whether\n"    \
	"the current launch can unlock the volume -- and if not, why, in words and\n" \
	"as a reason code; without a reachable backend the launch part says\n"        \
	"\"unknown\" -- and a verdict in words: what can open the volume now and\n"   \
	"what to do next. keyd status and keyd-recover status are the same report.\n" \
	"Reads only; writes nothing.\n"                                                \
	"\n"                                                                           \
	"  --json                 machine-readable output (schema: keyd-recover(8))\n" \
	BACKEND_OPTS_HELP                                                              \
	"\nExit status: 0 shown (whatever the verdict), 1 not a readable LUKS2\n"     \
	"volume, 2 usage.\n"

/*
 * rekey DEVICE [BACKEND OPTIONS]: TCB roll-forward of this launch's slot
 * (kd_recover_rekey). Returns the exit code.
 */
int cli_rekey_run(int argc, char **argv);

#define CLI_REKEY_HELP                                                                  \
	"\n"                                                                            \
	"TCB roll-forward after a firmware update, which leaves the committed TCB\n"    \
	"above the TCB this launch's keyd slot is sealed to. The old key can still\n"   \
	"be derived (lower TCB values are allowed), so: open the volume through the\n"  \
	"old slot (allow-list, pin), add a slot and token sealed at the committed\n"    \
	"TCB, then retire the old slot -- add first, remove after, so an\n"             \
	"interruption leaves a volume that still opens. After a TCB rollback\n"        \
	"nothing can be derived, by design. For a launch that has no slot at all\n"    \
	"(new chip, lost binding) use keyd-recover unlock --share instead.\n"           \
	BACKEND_OPTS_HELP                                                               \
	"\nExit status: 0 re-keyed or nothing to do, 1 refused, 2 usage.\n"

#endif
