/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the thin executables: exit codes, one-line refusals,
 * subcommand dispatch and --help.
 *
 * Exit codes (docs/architecture.md): 0 success, 1 refused or failed, 2 usage error.
 */
#ifndef KEYD_CLI_H
#define KEYD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

struct kd_cmd {
	const char *name;      /* "verify-report", "report show" (two words ok) */
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;   /* one line for the command list */
	const char *usage;     /* full --help text */
};

/* Print "prog: <detail of err>" on stderr and return EXIT_REFUSED. */
int cli_refuse(int err);
/* Print "prog: msg" and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True if argv has --help / -h anywhere (before a "--"). */
bool cli_wants_help(int argc, char **argv);

/*
 * Dispatch argv to the command table. Handles "--help", "help CMD", unknown
 * commands (exit 2) and two-word commands ("report show").
 */
int cli_dispatch(const char *prog, const struct kd_cmd *cmds, int argc, char **argv);

/*
 * --root-check of the commands that release a state key: the root this boot
 * switches into must be covered by the measurement (keyd/root.h), read from
 * /proc/cmdline and /dev/mapper/root (and usr). 0 or a KD_E* refusal.
 */
int cli_root_check(void);

/* Program name for messages. */
extern const char *cli_prog;

#endif
