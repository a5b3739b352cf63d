/* SPDX-License-Identifier: Apache-2.0 */
/* keyd rekey DEVICE: TCB roll-forward after a firmware update (docs/formats.md §2). */
#include <stdio.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/error.h"
#include "keyd/recover.h"
#include "volume-cli.h"

static const char rekey_usage[] =
	"Usage: keyd rekey DEVICE [BACKEND OPTIONS]\n"
	"\n"
	"After a firmware update the committed TCB is above the TCB a keyd token is\n"
	"sealed to. The old key can still be derived (lower TCB values are allowed),\n"
	"so: open the volume through the old slot (allow-list, pin), add a slot and\n"
	"token at the committed TCB, then retire the old slot -- add first, remove\n"
	"after, so an interruption leaves a volume that still opens. After a TCB\n"
	"rollback nothing can be derived, by design.\n" BACKEND_OPTS_HELP
	"\nExit status: 0 re-keyed or nothing to do, 1 refused, 2 usage.\n";

static int run_rekey(int argc, char **argv)
{
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_launch l;
	char tcb[KD_TCB_HEX_LEN];
	bool done = false;
	int r;

	if ((r = backend_opts_parse(argc, argv, NULL, NULL, &bopts)))
		return r;
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd rekey DEVICE");
	/* The same re-key as keyd-recover rekey (keyd/recover.h). */
	if ((r = cli_launch_open(&bopts, &b, &l)) < 0 ||
	    (r = kd_recover_rekey(argv[optind], b, &l, &done)) < 0)
		goto out;
	kd_tcb_hex(l.report.committed_tcb, tcb);
	printf("%s: %s (committed TCB %s)\n", argv[optind],
	       done ? "re-keyed at the committed TCB; old slot retired" : "already sealed at the committed TCB",
	       tcb);
out:
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_rekey = {"rekey", run_rekey, "re-key a volume after a firmware update",
				 rekey_usage};
