/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error details are never stale.
 *
 * kd_err_detail(err) returns the last kd_fail() detail when its code equals
 * err. A failure returned as a bare KD_E* code records nothing, so a caller
 * could print the detail of an earlier, unrelated failure that happened to
 * have the same code ("cannot open /a" for a truncated report). The rule
 * that prevents it: every failure leaves through kd_fail(). These tests
 * show it on functions that used to return bare codes, and scan the
 * sources (library, simulator, tools, token plugin) so that no bare failure
 * comes back.
 *
 * The same scan keeps keyd to one error idiom (keyd/cleanup.h): a failure
 * returns at once, resources go by cleanup attribute or at "out:". Chains
 * that run each step only if the last one worked ("if (!r) r = b();",
 * "!(r = a()) && !(r = b())") hide which step failed and where the cleanup
 * happens, so the scan refuses them.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/util.h"

#define STALE "an earlier, unrelated failure"

/* Plant a detail with err's code, as an earlier failure would have. */
static void plant(int err)
{
	ck_assert_int_eq(kd_fail(err, STALE), err);
	ck_assert_str_eq(kd_err_detail(err), STALE);
}

static void assert_fresh(int got, int want)
{
	ck_assert_int_eq(got, want);
	ck_assert_str_ne(kd_err_detail(got), STALE);
	ck_assert_str_ne(kd_err_detail(got), kd_strerror(got));
}

START_TEST(cursor_failures_have_their_own_detail)
{
	static const uint8_t buf[4] = {0, 0, 1, 0};
	struct kd_cursor c;
	uint64_t v;

	kd_cur_init(&c, buf, sizeof(buf));
	plant(KD_ETRUNC);
	assert_fresh(kd_cur_u64(&c, &v), KD_ETRUNC);
	plant(KD_ERESERVED);
	assert_fresh(kd_cur_zero(&c, 4), KD_ERESERVED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ERESERVED), "0x2"));
	plant(KD_EMALFORMED);
	assert_fresh(kd_cur_expect_end(&c), KD_EMALFORMED);
	plant(KD_ETRUNC);
	assert_fresh(kd_cur_seek(&c, 5), KD_ETRUNC);
}
END_TEST

START_TEST(util_failures_have_their_own_detail)
{
	uint8_t out[4];
	size_t n;
	uint64_t v;

	plant(KD_EINVAL);
	assert_fresh(kd_unhex_var(NULL, out, sizeof(out), &n), KD_EINVAL);
	plant(KD_EMALFORMED);
	assert_fresh(kd_unhex("abc", out, sizeof(out)), KD_EMALFORMED);
	plant(KD_EMALFORMED);
	assert_fresh(kd_unhex("zz", out, 1), KD_EMALFORMED);
	plant(KD_EMALFORMED);
	assert_fresh(kd_unhex("0011", out, sizeof(out)), KD_EMALFORMED);
	plant(KD_EMALFORMED);
	assert_fresh(kd_parse_u64("12x", 100, &v), KD_EMALFORMED);
	plant(KD_EMALFORMED);
	assert_fresh(kd_parse_u64("101", 100, &v), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "101"));
}
END_TEST

START_TEST(library_argument_refusals_have_their_own_detail)
{
	struct kd_secret *s = NULL;
	struct kd_report r;

	plant(KD_EINVAL);
	assert_fresh(kd_secret_new(0, &s), KD_EINVAL);
	ck_assert_ptr_null(s);
	plant(KD_EINVAL);
	assert_fresh(kd_report_parse(NULL, 1, &r), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "kd_report_parse"));
}
END_TEST

START_TEST(a_later_failure_replaces_the_detail)
{
	/* Same code twice: the second detail wins, the first is gone. */
	kd_fail(KD_EIO, "cannot read /a");
	kd_fail(KD_EIO, "cannot read /b");
	ck_assert_str_eq(kd_err_detail(KD_EIO), "cannot read /b");
	/* Another code does not show a detail recorded for a different one. */
	ck_assert_str_eq(kd_err_detail(KD_EPROTO), kd_strerror(KD_EPROTO));
	kd_err_clear();
	ck_assert_str_eq(kd_err_detail(KD_EIO), kd_strerror(KD_EIO));
}
END_TEST

/*
 * A broken internal contract stops the process (assert), in the library as
 * built: the build keeps assertions on even when NDEBUG is passed in.
 */
START_TEST(library_asserts_are_on)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct kd_cursor c;
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2);
		kd_cur_init(&c, "x", 1);
		/* No caller may ask for bytes without a place to put them. */
		kd_cur_ptr(&c, NULL, 1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "kd_cur_ptr(NULL) did not abort");
}
END_TEST

/* ------------------------------------------------------------ the scan */

static const char *const scanned[] = {"keyd/lib", "keyd/sim", "keyd/tools", "luks-hooks/plugin"};

static regex_t re_return, re_assign, re_ternary, re_print;
static regex_t re_guard_assign, re_guard_alone, re_assign_r, re_not_assign;
static bool re_ready;

static void compile_patterns(void)
{
	if (re_ready)
		return;
	/* return KD_EIO; */
	ck_assert_int_eq(regcomp(&re_return, "(^|[^A-Za-z0-9_])return[[:space:]]+KD_E[A-Z]+[[:space:]]*;",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* r = KD_EIO;  int r = KD_ECRYPTO;  (a failure, or a default one) */
	ck_assert_int_eq(regcomp(&re_assign, "(^|[^=!<>])=[[:space:]]*KD_E[A-Z]+[[:space:]]*;",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* return ok ? 0 : KD_EVERIFY;  return bad ? KD_EVERIFY : 0; */
	ck_assert_int_eq(regcomp(&re_ternary,
				 "(:[[:space:]]*KD_E[A-Z]+[[:space:]]*;)|(\\?[[:space:]]*KD_E[A-Z]+[[:space:]]*:)",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* cli_refuse(KD_ENOMEM)  kd_err_detail(KD_EINVAL): prints whatever detail that code last had */
	ck_assert_int_eq(regcomp(&re_print, "(cli_refuse|kd_err_detail)\\([[:space:]]*KD_E[A-Z]+[[:space:]]*\\)",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* if (!r) r = b();  if (!r) { r = b(); */
	ck_assert_int_eq(regcomp(&re_guard_assign,
				 "(^|[^A-Za-z0-9_])if[[:space:]]*\\([[:space:]]*![[:space:]]*r[[:space:]]*\\)"
				 "[[:space:]]*\\{?[[:space:]]*r[[:space:]]*=[^=]",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* if (!r)  or  if (!r) {  with the statement on the next line */
	ck_assert_int_eq(regcomp(&re_guard_alone,
				 "(^|[^A-Za-z0-9_])if[[:space:]]*\\([[:space:]]*![[:space:]]*r[[:space:]]*\\)"
				 "[[:space:]]*\\{?[[:space:]]*$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	/* the next line: r = b(); */
	ck_assert_int_eq(regcomp(&re_assign_r, "^[[:space:]]*r[[:space:]]*=[^=]", REG_EXTENDED | REG_NOSUB),
			 0);
	/* !(r = a()) && !(r = b()) */
	ck_assert_int_eq(regcomp(&re_not_assign, "![[:space:]]*\\([[:space:]]*r[[:space:]]*=[^=]",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	re_ready = true;
}

static bool is_comment(const char *line)
{
	const char *p = line + strspn(line, " \t");

	return *p == '*' || !strncmp(p, "/*", 2) || !strncmp(p, "//", 2);
}

/* A source line that returns or stores a failure code without kd_fail(). */
static bool bare_failure(const char *line)
{
	compile_patterns();
	if (is_comment(line))
		return false;
	if (!regexec(&re_return, line, 0, NULL, 0) || !regexec(&re_assign, line, 0, NULL, 0) ||
	    !regexec(&re_print, line, 0, NULL, 0))
		return true;
	return strstr(line, "return") && !strstr(line, "kd_fail(") &&
	       !regexec(&re_ternary, line, 0, NULL, 0);
}

/*
 * A step of an "if (!r)" chain: line assigns r under an "if (!r)" guard
 * (on the line itself, or on prev, the code line before it), or assigns r
 * inside a negation.
 */
static bool chain_step(const char *prev, const char *line)
{
	compile_patterns();
	if (is_comment(line))
		return false;
	if (!regexec(&re_guard_assign, line, 0, NULL, 0) || !regexec(&re_not_assign, line, 0, NULL, 0))
		return true;
	return prev && !is_comment(prev) && !regexec(&re_guard_alone, prev, 0, NULL, 0) &&
	       !regexec(&re_assign_r, line, 0, NULL, 0);
}

START_TEST(scanner_recognises_chains)
{
	ck_assert(chain_step("	r = a();", "	if (!r) r = b();"));
	ck_assert(chain_step("	if (!r)", "		r = b(x, y);"));
	ck_assert(chain_step("	if (!r) {", "		r = b();"));
	ck_assert(chain_step(NULL, "	if (!r && !(r = a()))"));
	ck_assert(chain_step(NULL, "	if (!(r = a()) && !(r = b(c)))"));
	ck_assert(chain_step(NULL, "	if (ok && !( r = a()))"));
	ck_assert(!chain_step("	if (!r)", "		*ret = x;"));
	ck_assert(!chain_step("	if (!r)", "		return NULL;"));
	ck_assert(!chain_step("	if (r)", "		r = kd_fail_prefix(r, dev);"));
	ck_assert(!chain_step("	if (!rep)", "		r = 0;"));
	ck_assert(!chain_step("	if (!r) {", "		res.n++;"));
	ck_assert(!chain_step(NULL, "	if (!r == 0)"));
	ck_assert(!chain_step(NULL, "	return !(r == KD_EIO);"));
	ck_assert(!chain_step(" * then if (!r)", " * r = b(); in a comment"));
	ck_assert(!chain_step("	r = a();", "	if (r)"));
}
END_TEST

START_TEST(scanner_recognises_bare_failures)
{
	ck_assert(bare_failure("\t\treturn KD_EIO;"));
	ck_assert(bare_failure("return KD_ENOMEM ;"));
	ck_assert(bare_failure("\tr = KD_ENOMEM;"));
	ck_assert(bare_failure("\tint len = 0, r = KD_ECRYPTO;"));
	ck_assert(bare_failure("\treturn ok ? 0 : KD_EVERIFY;"));
	ck_assert(bare_failure("\treturn bad ? KD_EVERIFY : 0;"));
	ck_assert(!bare_failure("\treturn kd_fail(KD_EIO, \"cannot read %s\", path);"));
	ck_assert(!bare_failure("\tif (r == KD_ENOENT)"));
	ck_assert(!bare_failure("\tif (r != KD_ENOENT) return r;"));
	ck_assert(!bare_failure("\treturn r == KD_ENOMEM ? -ENOMEM : r == KD_ETAMPER ? -EPERM : -ENOENT;"));
	ck_assert(!bare_failure("\tt.version = KD_ESCROW_VERSION;"));
	ck_assert(!bare_failure(" * Returns 0, or return KD_EIO; on a short read."));
	ck_assert(!bare_failure("\treturn ok ? 0 : kd_fail(KD_EVERIFY, \"report signature\");"));
	ck_assert(bare_failure("\t\treturn cli_refuse(KD_ENOMEM);"));
	ck_assert(bare_failure("\treturn cli_usage_error(\"--fields: %s\", kd_err_detail(KD_EINVAL));"));
	ck_assert(!bare_failure("\treturn cli_usage_error(\"--fields: %s\", kd_err_detail(r));"));
}
END_TEST

static char found[8192], found_chain[3072]; /* Check caps a message near 4 KiB */
static size_t n_found, n_chain;
static const char *src_root;

static void note(char *buf, size_t size, const char *rel, unsigned no, const char *line)
{
	if (strlen(buf) + strlen(rel) + strlen(line) + 16 < size)
		snprintf(buf + strlen(buf), size - strlen(buf), "\n%s:%u: %s", rel, no,
			 line + strspn(line, " \t"));
}

static int scan_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = path + strlen(src_root) + 1;
	size_t len = strlen(path);
	char line[1024], prev[1024] = "";
	unsigned no = 0;
	FILE *f;

	(void)st;
	(void)ftw;
	/* No exceptions: every module reports its failures through kd_fail. */
	if (type != FTW_F || len < 3 || (strcmp(path + len - 2, ".c") && strcmp(path + len - 2, ".h")))
		return 0;
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		no++;
		line[strcspn(line, "\n")] = '\0';
		if (bare_failure(line)) {
			n_found++;
			note(found, sizeof(found), rel, no, line);
		}
		if (chain_step(prev[0] ? prev : NULL, line)) {
			n_chain++;
			note(found_chain, sizeof(found_chain), rel, no, line);
		}
		if (line[strspn(line, " \t")])
			memcpy(prev, line, sizeof(prev));
	}
	fclose(f);
	return 0;
}

static void scan_sources(void)
{
	char dir[4096];
	const char *env = getenv("KEYD_SRC");

	src_root = env && *env ? env : KD_TEST_SRC;
	found[0] = found_chain[0] = '\0';
	n_found = n_chain = 0;
	for (size_t i = 0; i < sizeof(scanned) / sizeof(scanned[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/%s", src_root, scanned[i]);
		ck_assert_msg(nftw(dir, scan_file, 16, FTW_PHYS) == 0, "cannot walk %s", dir);
	}
}

START_TEST(no_if_not_r_chain_in_the_sources)
{
	scan_sources();
	ck_assert_msg(n_chain == 0,
		      "%zu step(s) of an if (!r) chain (return at once instead; cleanup.h):%s",
		      n_chain, found_chain);
}
END_TEST

START_TEST(no_bare_failure_in_the_sources)
{
	scan_sources();
	ck_assert_msg(n_found == 0,
		      "%zu failure(s) returned without kd_fail() (a stale detail could surface):%s",
		      n_found, found);
}
END_TEST

static Suite *errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("errors");

	tcase_add_test(tc, cursor_failures_have_their_own_detail);
	tcase_add_test(tc, util_failures_have_their_own_detail);
	tcase_add_test(tc, library_argument_refusals_have_their_own_detail);
	tcase_add_test(tc, a_later_failure_replaces_the_detail);
	tcase_add_test(tc, library_asserts_are_on);
	tcase_add_test(tc, scanner_recognises_bare_failures);
	tcase_add_test(tc, no_bare_failure_in_the_sources);
	tcase_add_test(tc, scanner_recognises_chains);
	tcase_add_test(tc, no_if_not_r_chain_in_the_sources);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(errors_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
