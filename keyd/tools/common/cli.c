/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "keyd/error.h"
#include "keyd/root.h"
#include "keyd/secret.h"

const char *cli_prog = "keyd";

int cli_refuse(int err)
{
	fprintf(stderr, "%s: %s\n", cli_prog, kd_err_detail(err));
	return EXIT_REFUSED;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	return EXIT_USAGE;
}

int cli_root_check(void)
{
	char line[256];

	return kd_root_check_boot("/proc/cmdline", NULL, NULL, line, sizeof(line));
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

static void list_commands(FILE *f, const char *prog, const struct kd_cmd *cmds)
{
	fprintf(f, "Usage: %s COMMAND [OPTIONS]\n\nCommands:\n", prog);
	for (const struct kd_cmd *c = cmds; c->name; c++)
		fprintf(f, "  %-22s %s\n", c->name, c->summary);
	fprintf(f, "\nRun '%s COMMAND --help' for the options of one command.\n"
		   "Exit status: 0 success, 1 refused or failed, 2 usage error.\n", prog);
}

/* Match argv against a command name of one or two words. */
static int match(const struct kd_cmd *c, int argc, char **argv)
{
	const char *sp = strchr(c->name, ' ');

	if (!sp)
		return argc >= 1 && !strcmp(argv[0], c->name) ? 1 : 0;
	if (argc < 2 || strncmp(argv[0], c->name, (size_t)(sp - c->name)) ||
	    argv[0][sp - c->name] != '\0' || strcmp(argv[1], sp + 1))
		return 0;
	return 2;
}

int cli_dispatch(const char *prog, const struct kd_cmd *cmds, int argc, char **argv)
{
	cli_prog = prog;
	kd_process_harden();
	if (argc < 2) {
		list_commands(stderr, prog, cmds);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		list_commands(stdout, prog, cmds);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s %s\n", prog, KEYD_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") && argc >= 3) {
		for (const struct kd_cmd *c = cmds; c->name; c++)
			if (match(c, argc - 2, argv + 2)) {
				fputs(c->usage, stdout);
				return 0;
			}
		return cli_usage_error("unknown command '%s'", argv[2]);
	}
	for (const struct kd_cmd *c = cmds; c->name; c++) {
		int words = match(c, argc - 1, argv + 1);

		if (!words)
			continue;
		if (cli_wants_help(argc - words, argv + words)) {
			fputs(c->usage, stdout);
			return 0;
		}
		/* The command sees argv[0] = its (last) name word. */
		return c->run(argc - words, argv + words);
	}
	/* A first word that starts a two-word command: show its group. */
	for (const struct kd_cmd *c = cmds; c->name; c++) {
		const char *sp = strchr(c->name, ' ');

		if (sp && !strncmp(argv[1], c->name, (size_t)(sp - c->name)) &&
		    argv[1][sp - c->name] == '\0') {
			if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
				printf("Usage: %s %s SUBCOMMAND ...\n", prog, argv[1]);
				for (const struct kd_cmd *d = cmds; d->name; d++)
					if (!strncmp(d->name, c->name, (size_t)(sp - c->name) + 1))
						printf("  %-22s %s\n", d->name, d->summary);
				return 0;
			}
			return cli_usage_error("unknown subcommand '%s %s'", argv[1],
					       argc >= 3 ? argv[2] : "");
		}
	}
	return cli_usage_error("unknown command '%s'", argv[1]);
}
