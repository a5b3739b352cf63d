/* SPDX-License-Identifier: Apache-2.0 */
#include "keyd/failpoint.h"

#ifdef KEYD_FAILPOINTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kd_failpoint(const char *name)
{
	const char *want = getenv("KEYD_FAILPOINT");

	if (want && !strcmp(want, name)) {
		/* Simulate power loss: no cleanup, no flush beyond what was synced. */
		raise(SIGKILL);
		_exit(137);
	}
}
#else
/* Keep the translation unit non-empty under -Wpedantic. */
typedef int kd_failpoint_unused;
#endif
