/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "backend-opts.h"
#include "cli.h"
#include "keyd/simwire.h"

int backend_opts_handle(int opt, const char *arg, struct kd_backend_opts *o)
{
	enum kd_sim_transport kind;
	const char *path;

	switch (opt) {
	case BACKEND_OPT_BACKEND:
		if (strcmp(arg, "snp") && strcmp(arg, "tsm") && strcmp(arg, "sim")) {
			cli_usage_error("--backend must be snp, tsm or sim");
			return -1;
		}
		o->name = arg;
		return 1;
	case BACKEND_OPT_SIM:
		if (kd_sim_addr_parse(arg, &kind, &path) < 0) {
			cli_usage_error("--sim must be unix:PATH or serial:PATH");
			return -1;
		}
		o->sim_addr = arg;
		return 1;
	default:
		return 0;
	}
}

int backend_opts_parse(int argc, char **argv, const char *flag, bool *flag_set,
		       struct kd_backend_opts *o)
{
	/* Without a flag its entry is the table's terminator. */
	const struct option opts[] = {BACKEND_LONGOPTS, {flag, no_argument, NULL, 'f'}, {0}};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (flag && c == 'f')
			*flag_set = true;
		else if (backend_opts_handle(c, optarg, o) <= 0)
			return EXIT_USAGE;
	}
	return 0;
}
