/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two volume tools, keyd and keyd-recover, share beyond cli.h: their
 * start, opening this launch, and the status command (one report for both,
 * keyd/recover.h). keyd-simfw does not link this.
 */
#ifndef KEYD_VOLUME_CLI_H
#define KEYD_VOLUME_CLI_H

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
 * The status command: DEVICE [--json] [BACKEND OPTIONS]; prints
 * kd_recover_status_device()'s report as text or JSON. usage is the one-line
 * usage error of the calling tool's command. Returns the exit code.
 */
int cli_status_run(int argc, char **argv, const char *usage);

#endif
