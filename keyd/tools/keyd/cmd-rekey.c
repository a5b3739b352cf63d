/* SPDX-License-Identifier: Apache-2.0 */
/* keyd rekey DEVICE: the rekey command keyd-recover has too (volume-cli.h). */
#include "commands.h"
#include "volume-cli.h"

const struct kd_cmd cmd_rekey = {
	"rekey", cli_rekey_run, "re-key a volume after a firmware update",
	"Usage: keyd rekey DEVICE [BACKEND OPTIONS]\n" CLI_REKEY_HELP,
};
