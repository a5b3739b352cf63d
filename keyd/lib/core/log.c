/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/log.h"

static const char *log_ident = "keyd";
static enum kd_log_level log_max = KD_LOG_INFO;
static int kmsg_fd = -1;
static int log_quiet;

void kd_log_init(const char *ident)
{
	if (ident)
		log_ident = ident;
}

void kd_log_set_level(enum kd_log_level max)
{
	log_max = max;
}

void kd_log_quiet(int quiet)
{
	log_quiet = quiet;
}

int kd_log_to_kmsg(int enable)
{
	if (!enable) {
		if (kmsg_fd >= 0)
			close(kmsg_fd);
		kmsg_fd = -1;
		return 0;
	}
	if (kmsg_fd >= 0)
		return 0;
	kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
	return kmsg_fd < 0 ? KD_EIO : 0;
}

void kd_log(enum kd_log_level lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (!log_quiet || lvl <= KD_LOG_ERR)
		fprintf(stderr, "%s: %s\n", log_ident, line);
	if (kmsg_fd >= 0)
		dprintf(kmsg_fd, "<%d>%s: %s\n", (int)lvl, log_ident, line);
}
