/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands of keyd; each lives in its own cmd-*.c file. */
#ifndef KEYD_COMMANDS_H
#define KEYD_COMMANDS_H

#include "cli.h"

/* Each cmd-*.c defines one or more `const struct kd_cmd cmd_xxx`. */
extern const struct kd_cmd cmd_version;
extern const struct kd_cmd cmd_measure;
extern const struct kd_cmd cmd_derive;
extern const struct kd_cmd cmd_enroll, cmd_unlock, cmd_status, cmd_rekey, cmd_passphrase;
extern const struct kd_cmd cmd_rotate;
extern const struct kd_cmd cmd_verify_report;
extern const struct kd_cmd cmd_root_check, cmd_root_cmdline;
extern const struct kd_cmd cmd_kds_fetch;
extern const struct kd_cmd cmd_selftest;
extern const struct kd_cmd cmd_report_show;
extern const struct kd_cmd cmd_manifest_keygen, cmd_manifest_keys, cmd_manifest_create,
	cmd_manifest_sign, cmd_manifest_verify, cmd_manifest_show, cmd_handoff_serve,
	cmd_handoff_receive, cmd_commit;

#endif
