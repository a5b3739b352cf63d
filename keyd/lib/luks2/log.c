/* SPDX-License-Identifier: Apache-2.0 */
/* libcryptsetup's own log lines, kept off the terminal (volume.h). */
#include <stdio.h>
#include <stdlib.h>

#include <libcryptsetup.h>

#include "keyd/volume.h"

static void log_cb(int level, const char *msg, void *usrptr)
{
	(void)usrptr;
	/* keyd reports every failure itself, in one line naming the check;
	 * libcryptsetup's low-level lines ("Block device required") only
	 * confuse that line. Kept for debugging. */
	if (getenv("KEYD_DEBUG"))
		fprintf(stderr, "libcryptsetup[%d]: %s", level, msg);
}

void kd_volume_quiet_libcryptsetup(void)
{
	crypt_set_log_callback(NULL, log_cb, NULL);
}
