/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging. Library code does not log failures (it returns them with a
 * kd_fail() detail); executables log once where they handle them. At boot the
 * logger also writes to /dev/kmsg so the lines reach the console and journal.
 * Never pass key material to these functions.
 */
#ifndef KEYD_LOG_H
#define KEYD_LOG_H

enum kd_log_level { KD_LOG_ERR = 3, KD_LOG_WARN = 4, KD_LOG_INFO = 6, KD_LOG_DEBUG = 7 };

/* Program name used as the line prefix ("keyd: ..."). */
void kd_log_init(const char *ident);
void kd_log_set_level(enum kd_log_level max);
/* Also write each line to /dev/kmsg (boot path). Returns 0 or KD_EIO. */
int kd_log_to_kmsg(int enable);
/* Silence stderr output (e.g. --json modes keep stderr for errors only). */
void kd_log_quiet(int quiet);

void kd_log(enum kd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kd_err(...) kd_log(KD_LOG_ERR, __VA_ARGS__)
#define kd_warn(...) kd_log(KD_LOG_WARN, __VA_ARGS__)
#define kd_info(...) kd_log(KD_LOG_INFO, __VA_ARGS__)
#define kd_debug(...) kd_log(KD_LOG_DEBUG, __VA_ARGS__)

#endif
