/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands of keyd; each lives in its own cmd-*.c file. */
#ifndef KEYD_COMMANDS_H
#define KEYD_COMMANDS_H

#include "cli.h"

/* Each cmd-*.c defines one or more `const struct kd_cmd cmd_xxx`. */
extern const struct kd_cmd cmd_version;
extern const struct kd_cmd cmd_measure;
extern const struct kd_cmd cmd_derive;
extern const struct kd_cmd cmd_verify_report;
extern const struct kd_cmd cmd_report_show;

#endif
