/* SPDX-License-Identifier: Apache-2.0 */
/* keyd status DEVICE: the status command keyd-recover has too (volume-cli.h). */
#include "commands.h"
#include "volume-cli.h"

const struct kd_cmd cmd_status = {
	"status", cli_status_run,
	"show keyd tokens, header health and whether this launch can unlock",
	"Usage: keyd status DEVICE [--json] [BACKEND OPTIONS]\n" CLI_STATUS_HELP,
};
