/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets hygiene, shown on the live process (issue 8): no core dumps, secret
 * pages locked (VmLck) and excluded from dumps (smaps "dd"), wiped on fork
 * ("wf") and on free, kd_wipe clears plain buffers.
 * Attacks: a host or local user that reads a core dump or swap of a keyd
 * process; a forked helper that inherits key pages.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/secret.h"

/* ASan turns mlock() into a no-op (its shadow memory cannot be locked), so
 * the lock checks only mean something in a build without it. */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_WORKS 0
#endif
#endif
#ifndef MLOCK_WORKS
#define MLOCK_WORKS 1
#endif

/* A status line of /proc/self/status in kB ("VmLck:      4 kB"); -1 if absent. */
static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kl = strlen(key);
	long v = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

/* The VmFlags of the mapping that contains addr, copied into flags. */
static bool smaps_flags(const void *addr, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;
	uintptr_t a = (uintptr_t)addr;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a >= lo && a < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, len, "%s", line + 8);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool has_flag(const char *flags, const char *fl)
{
	char pat[8];

	snprintf(pat, sizeof(pat), " %s", fl);
	return strstr(flags, pat) != NULL;
}

START_TEST(harden_disables_core_dumps)
{
	struct rlimit rl;

	kd_process_harden();
	ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	ck_assert_uint_eq(rl.rlim_cur, 0);
	ck_assert_uint_eq(rl.rlim_max, 0);
	/* The hard limit is 0 too: an unprivileged process cannot raise it back. */
	rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
	if (geteuid() != 0)
		ck_assert_int_ne(setrlimit(RLIMIT_CORE, &rl), 0);
}
END_TEST

START_TEST(harden_survives_in_children)
{
	pid_t pid;
	int st;

	kd_process_harden();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl;

		/* A forked helper inherits both: no core of a child either. */
		_exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 && getrlimit(RLIMIT_CORE, &rl) == 0 &&
			      rl.rlim_cur == 0
		      ? 0
		      : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(secret_pages_locked_vmlck_grows)
{
	struct kd_secret *s[4] = {NULL};
	long before = status_kb("VmLck"), after;
	long page_kb = sysconf(_SC_PAGESIZE) / 1024;

	ck_assert_int_ge(before, 0);
	if (!MLOCK_WORKS)
		return;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(kd_secret_new(4096 * (size_t)(i + 1), &s[i]), 0);
	after = status_kb("VmLck");
	/* 1 + 2 + 3 + 4 pages of 4 KiB, all locked. */
	ck_assert_int_ge(after - before, 10 * 4);
	ck_assert_int_ge(after - before, 10 * page_kb);
	for (int i = 0; i < 4; i++) {
		ck_assert(kd_secret_is_locked(s[i]));
		kd_secret_free(s[i]);
	}
	ck_assert_int_eq(status_kb("VmLck"), before);
}
END_TEST

START_TEST(secret_mapping_flags_in_smaps)
{
	struct kd_secret *s = NULL;
	char flags[512];

	ck_assert_int_eq(kd_secret_new(48, &s), 0);
	ck_assert_msg(smaps_flags(s->data, flags, sizeof(flags)), "secret mapping not in smaps");
	ck_assert_msg(has_flag(flags, "dd"), "no MADV_DONTDUMP (dd): %s", flags);
	if (MLOCK_WORKS)
		ck_assert_msg(has_flag(flags, "lo"), "not mlocked (lo): %s", flags);
	ck_assert_msg(has_flag(flags, "wf"), "no MADV_WIPEONFORK (wf): %s", flags);
	/* Its own mapping: a plain heap buffer does not carry the flags. */
	{
		char *heap = malloc(64);

		ck_assert(smaps_flags(heap, flags, sizeof(flags)));
		ck_assert(!has_flag(flags, "dd"));
		free(heap);
	}
	kd_secret_free(s);
}
END_TEST

START_TEST(secret_zero_in_forked_child)
{
	struct kd_secret *s = NULL;
	pid_t pid;
	int st;

	ck_assert_int_eq(kd_secret_new(64, &s), 0);
	memset(s->data, 0xa5, s->len);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (size_t i = 0; i < s->map_len; i++)
			if (s->data[i])
				_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child saw the parent's key bytes");
	/* The parent keeps its copy. */
	ck_assert_uint_eq(s->data[0], 0xa5);
	kd_secret_free(s);
}
END_TEST

static size_t observed_nonzero, observed_len;
static int observed_calls;

static void observe(const uint8_t *data, size_t map_len)
{
	observed_calls++;
	observed_len = map_len;
	observed_nonzero = 0;
	for (size_t i = 0; i < map_len; i++)
		observed_nonzero += data[i] != 0;
}

START_TEST(secret_free_wipes_before_unmap)
{
	struct kd_secret *s = NULL;

	ck_assert_int_eq(kd_secret_new(5000, &s), 0);
	memset(s->data, 0x5c, s->len);
	kd_secret_free_observer = observe;
	observed_calls = 0;
	kd_secret_free(s);
	kd_secret_free_observer = NULL;
	ck_assert_int_eq(observed_calls, 1);
	ck_assert_uint_eq(observed_len, 8192);
	ck_assert_uint_eq(observed_nonzero, 0);

	/* The cleanup attribute takes the same path. */
	kd_secret_free_observer = observe;
	observed_calls = 0;
	{
		_kd_secret_ struct kd_secret *t = NULL;

		ck_assert_int_eq(kd_secret_dup("0123456789abcdef", 16, &t), 0);
	}
	kd_secret_free_observer = NULL;
	ck_assert_int_eq(observed_calls, 1);
	ck_assert_uint_eq(observed_nonzero, 0);
}
END_TEST

/* Read through a volatile pointer so the check cannot be optimised away. */
static size_t count_nonzero(const volatile uint8_t *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += p[i] != 0;
	return c;
}

START_TEST(wipe_clears_buffers)
{
	uint8_t stack[97];
	uint8_t *heap = malloc(4099);

	ck_assert_ptr_nonnull(heap);
	memset(stack, 0xff, sizeof(stack));
	memset(heap, 0x33, 4099);
	kd_wipe(stack, sizeof(stack));
	kd_wipe(heap, 4099);
	ck_assert_uint_eq(count_nonzero(stack, sizeof(stack)), 0);
	ck_assert_uint_eq(count_nonzero(heap, 4099), 0);
	/* Partial wipes stop exactly at the end. */
	memset(heap, 0x33, 16);
	kd_wipe(heap + 4, 8);
	ck_assert_uint_eq(count_nonzero(heap, 16), 8);
	ck_assert_uint_eq(heap[3], 0x33);
	ck_assert_uint_eq(heap[12], 0x33);
	kd_wipe(NULL, 10);
	kd_wipe(heap, 0);
	free(heap);
}
END_TEST

static Suite *hygiene_suite(void)
{
	Suite *s = suite_create("hygiene");
	TCase *tc = tcase_create("hygiene");

	tcase_add_test(tc, harden_disables_core_dumps);
	tcase_add_test(tc, harden_survives_in_children);
	tcase_add_test(tc, secret_pages_locked_vmlck_grows);
	tcase_add_test(tc, secret_mapping_flags_in_smaps);
	tcase_add_test(tc, secret_zero_in_forked_child);
	tcase_add_test(tc, secret_free_wipes_before_unmap);
	tcase_add_test(tc, wipe_clears_buffers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hygiene_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
