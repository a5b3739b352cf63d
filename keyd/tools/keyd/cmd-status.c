/* SPDX-License-Identifier: Apache-2.0 */
/* keyd status DEVICE: tokens, header health and whether this launch can unlock. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/error.h"
#include "keyd/recover.h"
#include "keyd/volume.h"

static const char status_usage[] =
	"Usage: keyd status DEVICE [--json] [BACKEND OPTIONS]\n"
	"\n"
	"Show every keyd token (keyslot, state, label, SVN, measurement, TCB,\n"
	"created), the health of both LUKS2 header copies (agree, or which one\n"
	"needs repair), the allow-list verdict, and whether the current launch can\n"
	"unlock the volume -- and if not, why, in words and as a reason code. The\n"
	"same report as keyd-recover status (every keyslot, the escrow, what to\n"
	"do next). Without a reachable backend the launch part says \"unknown\".\n"
	"Reads only; writes nothing.\n" BACKEND_OPTS_HELP
	"\nExit status: 0 shown (whatever the verdict), 1 not a readable LUKS2\n"
	"volume, 2 usage.\n";

static int run_status(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, BACKEND_LONGOPTS, {0}};
	struct kd_backend_opts bopts = {0};
	json_object *o = NULL;
	bool json = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (backend_opts_handle(c, optarg, &bopts) <= 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd status DEVICE [--json]");
	/* One status for keyd and keyd-recover (keyd/recover.h). */
	if ((r = kd_recover_status_device(argv[optind], &bopts, &o)) < 0)
		return cli_refuse(r);
	if (json)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	else
		kd_recover_status_print(o, stdout);
	json_object_put(o);
	return 0;
}

const struct kd_cmd cmd_status = {"status", run_status,
				  "show keyd tokens, header health and whether this launch can unlock",
				  status_usage};
