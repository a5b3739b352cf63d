/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The --backend / --sim options, shared by every command that talks to a
 * trust backend. Use in a getopt_long table:
 *
 *   static const struct option opts[] = { ..., BACKEND_LONGOPTS, {0} };
 *   ...
 *   default:
 *       if ((r = backend_opts_handle(c, optarg, &bopts)) < 0) return EXIT_USAGE;
 *       if (r == 0) return EXIT_USAGE;    (not one of ours)
 *
 * and append BACKEND_OPTS_HELP to the --help text. A command whose only
 * options are these (and at most one flag of its own) calls
 * backend_opts_parse() instead of writing that loop. $KEYD_SIM set in the
 * environment counts as an explicit choice of the simulator, exactly like
 * --backend sim --sim ADDR (see keyd/lib/backend/backend.c).
 */
#ifndef KEYD_BACKEND_OPTS_H
#define KEYD_BACKEND_OPTS_H

#include <getopt.h>
#include <stdbool.h>

#include "keyd/backend.h"

enum { BACKEND_OPT_BACKEND = 0x1100, BACKEND_OPT_SIM };

#define BACKEND_LONGOPTS                                                  \
	{"backend", required_argument, NULL, BACKEND_OPT_BACKEND},        \
	{"sim", required_argument, NULL, BACKEND_OPT_SIM}

#define BACKEND_OPTS_HELP                                                                  \
	"  --backend snp|tsm|sim  trust backend; default: snp if /dev/sev-guest exists,\n"  \
	"                         else tsm (configfs-tsm). sim is never detected.\n"        \
	"  --sim unix:PATH|serial:PATH\n"                                                   \
	"                         where keyd-simfw listens (default: $KEYD_SIM; a set\n"      \
	"                         $KEYD_SIM selects the simulator)\n"

/*
 * 1 if opt was --backend/--sim and is stored in o, 0 if opt is not ours,
 * EXIT_USAGE-style negative (-1) after printing a usage error.
 */
int backend_opts_handle(int opt, const char *arg, struct kd_backend_opts *o);

/*
 * The whole option loop of a command that takes the backend options and at
 * most one flag of its own: --FLAG without an argument (flag NULL: none),
 * which sets *flag_set. Parses argv from argv[1] (optind is reset). Returns 0
 * with optind at the first operand, or EXIT_USAGE after getopt or
 * backend_opts_handle() printed the usage error.
 */
int backend_opts_parse(int argc, char **argv, const char *flag, bool *flag_set,
		       struct kd_backend_opts *o);

#endif
