/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover: command table and the helpers its commands share. */
#ifndef KEYD_RECOVER_TOOL_H
#define KEYD_RECOVER_TOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "backend-opts.h"
#include "cli.h"
#include "keyd/escrow.h"
#include "keyd/recover.h"
#include "keyd/volume.h"
#include "volume-cli.h"

#define MAX_FILES 8

extern const struct kd_cmd cmd_status, cmd_list, cmd_dump, cmd_escrow_add, cmd_export_shares,
	cmd_decrypt_share, cmd_unlock, cmd_rekey, cmd_retire, cmd_header_backup,
	cmd_header_restore, cmd_wipe, cmd_repair, cmd_finish_rotation;

/*
 * One file per option (--share FILE, --admin CERT; repeat the option for
 * more): nothing after it is taken as a file by guessing. The file must
 * exist and be readable; otherwise a usage error naming it. Returns 0 or
 * EXIT_USAGE.
 */
int add_file(const char *opt, const char *path, const char **list, size_t *n);

/*
 * Typed confirmation of a destructive command on stdin (after the caller
 * has said what it destroys): the volume's UUID or LUKS2 label; yes skips
 * it. Returns 0 or a refusal (KD_EREFUSED, nothing was changed).
 */
int confirm_volume(const char *uuid, const char *label, bool yes);

#endif
