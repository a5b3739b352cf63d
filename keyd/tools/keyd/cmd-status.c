/* SPDX-License-Identifier: Apache-2.0 */
/* keyd status DEVICE: tokens, header health and whether this launch can unlock. */
#include "backend-opts.h"
#include "commands.h"
#include "volume-cli.h"

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

/* One status for keyd and keyd-recover (keyd/recover.h). */
static int run_status(int argc, char **argv)
{
	return cli_status_run(argc, argv, "usage: keyd status DEVICE [--json]");
}

const struct kd_cmd cmd_status = {"status", run_status,
				  "show keyd tokens, header health and whether this launch can unlock",
				  status_usage};
