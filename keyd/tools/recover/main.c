/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-recover: the admin recovery tool (status, k-of-n escrow recovery,
 * re-key, retire, header backup/restore/repair, crypto-erase, finishing an
 * interrupted volume-key rotation). Thin: each command
 * parses its options, calls libkeyd (keyd/recover.h) and prints one result.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/util.h"
#include "keyd/volume.h"
#include "recover.h"

int add_file(const char *opt, const char *path, const char **list, size_t *n)
{
	struct stat st;

	if (*n >= MAX_FILES)
		return cli_usage_error("at most %d files for --%s", MAX_FILES, opt);
	if (stat(path, &st))
		return cli_usage_error("--%s %s: %s", opt, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cli_usage_error("--%s %s: not a regular file", opt, path);
	if (access(path, R_OK))
		return cli_usage_error("--%s %s: %s", opt, path, strerror(errno));
	list[(*n)++] = path;
	return 0;
}

int confirm_volume(const char *uuid, const char *label, bool yes)
{
	char line[256];

	if (yes)
		return 0;
	if (isatty(0))
		fprintf(stderr, "Type the volume UUID or label to confirm: ");
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
	line[strcspn(line, "\r\n")] = 0;
	if (!line[0] || (strcasecmp(line, uuid) && (!label[0] || strcmp(line, label))))
		return kd_fail(KD_EREFUSED, "confirmation does not match the volume UUID or label; "
					    "nothing was changed");
	return 0;
}

int main(int argc, char **argv)
{
	const struct kd_cmd cmds[] = {
		cmd_status,	   cmd_list,	      cmd_dump,		 cmd_escrow_add,
		cmd_export_shares, cmd_decrypt_share, cmd_unlock,	 cmd_rekey,
		cmd_retire,	   cmd_header_backup, cmd_header_restore, cmd_wipe,
		cmd_repair,	   cmd_finish_rotation,
		{0},
	};

	return cli_volume_main("keyd-recover", cmds, argc, argv);
}
