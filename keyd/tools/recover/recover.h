/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover: command table and the helpers its commands share. */
#ifndef KEYD_RECOVER_H
#define KEYD_RECOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "backend-opts.h"
#include "cli.h"
#include "keyd/escrow.h"
#include "keyd/volume.h"

#define MAX_FILES 8

extern const struct kd_cmd cmd_status, cmd_escrow_add, cmd_export_shares, cmd_decrypt_share,
	cmd_unlock, cmd_rekey, cmd_retire, cmd_header_backup, cmd_header_restore, cmd_wipe,
	cmd_repair;

/*
 * An option that takes one or more files (--shares A B C, --admin X Y):
 * stores optarg, then the following arguments that are existing files.
 * Returns EXIT_USAGE-style -1 after a usage error.
 */
int collect_files(const char *opt, const char *first, int argc, char **argv, const char **out,
		  size_t *n);

/* Decrypt operator-encrypted share files with the operator key and cert. */
int read_shares(const char *const files[], size_t n, const char *key_path, const char *cert_path,
		struct kd_secret *out[]);

void free_shares(struct kd_secret *s[], size_t n);

/* Open the backend and get this launch. */
int get_launch(const struct kd_backend_opts *o, struct kd_backend **b, struct kd_launch *l);

#endif
