/* SPDX-License-Identifier: Apache-2.0 */
#include "chip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/report.h"
#include "keyd/util.h"
#include "vg.h"

static int simfw_init(const char *dir, const struct kd_sim_init_opts *opts)
{
	const char *build = getenv("KEYD_BUILD");
	enum kd_product p = opts && opts->product ? opts->product : KD_PRODUCT_MILAN;
	char simfw[4096], tcb[KD_TCB_HEX_LEN], chip_id[129];
	const char *argv[12];
	int n = 0, status;
	pid_t pid;

	if (!build || !*build)
		return -1;
	snprintf(simfw, sizeof(simfw), "%s/keyd-simfw", build);
	if (access(simfw, X_OK) < 0)
		return -1;
	argv[n++] = simfw;
	argv[n++] = "--state";
	argv[n++] = dir;
	argv[n++] = "init";
	argv[n++] = "--product";
	argv[n++] = kd_product_name(p); /* matched case-insensitively */
	if (opts && opts->have_tcb) {
		kd_tcb_hex(opts->tcb, tcb);
		argv[n++] = "--tcb";
		argv[n++] = tcb;
	}
	if (opts && opts->chip_id) {
		kd_hex(opts->chip_id, p == KD_PRODUCT_TURIN ? 8 : 64, chip_id);
		argv[n++] = "--chip-id";
		argv[n++] = chip_id;
	}
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(simfw, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

int kd_test_chip_init(const char *dir, const struct kd_sim_init_opts *opts)
{
	if (kd_under_valgrind() && simfw_init(dir, opts) == 0)
		return 0;
	return kd_sim_chip_init(dir, opts);
}
