/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd: sealed encrypted storage and key derivation for SEV-SNP guests.
 * This file only dispatches; every command is a thin wrapper over libkeyd.
 */
#include <stdio.h>

#include "commands.h"
#include "volume-cli.h"

static int run_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("keyd %s\n", KEYD_VERSION);
	return 0;
}

const struct kd_cmd cmd_version = {
	"version", run_version, "print the version", "Usage: keyd version\n",
};

int main(int argc, char **argv)
{
	const struct kd_cmd cmds[] = {
		/* report and measurement tools, then the volume life cycle */
		cmd_version,
		cmd_report_show,
		cmd_verify_report,
		cmd_kds_fetch,
		cmd_selftest,
		cmd_measure,
		cmd_derive,
		cmd_root_check, cmd_root_cmdline,
		cmd_enroll, cmd_unlock, cmd_status, cmd_rekey, cmd_passphrase, cmd_rotate,
		cmd_handoff_serve, cmd_handoff_receive, cmd_commit, cmd_manifest_create,
		cmd_manifest_sign, cmd_manifest_verify, cmd_manifest_show, cmd_manifest_keygen,
		cmd_manifest_keys,
		{0},
	};

	return cli_volume_main("keyd", cmds, argc, argv);
}
