/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the boot path's root-of-trust check (keyd/root.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/root.h"

#define H64 "ee9b84c187c1aa06adacdc60c4f11bd1a269999d736bfc495babb7f561f929e5"
#define H64B "2aaf754495c3c640c0f8368015bd6e9265f725c716510104a7b32470b628595d"

START_TEST(cmdline_roothash_and_usrhash)
{
	struct kd_root_expect e;

	ck_assert_int_eq(kd_root_expect_parse("console=ttyS0 roothash=" H64 " quiet", &e), 0);
	ck_assert_str_eq(e.roothash, H64);
	ck_assert_str_eq(e.usrhash, "");
	ck_assert(!e.initramfs_only);
	/* Upper case is accepted and normalised; keyd.* aliases; usrhash. */
	ck_assert_int_eq(kd_root_expect_parse("keyd.roothash=EE9B84C187C1AA06ADACDC60C4F11BD1A269999D"
					      "736BFC495BABB7F561F929E5 usrhash=" H64B, &e), 0);
	ck_assert_str_eq(e.roothash, H64);
	ck_assert_str_eq(e.usrhash, H64B);
	/* The same value twice is fine. */
	ck_assert_int_eq(kd_root_expect_parse("roothash=" H64 " keyd.roothash=" H64, &e), 0);
}
END_TEST

START_TEST(cmdline_initramfs_only)
{
	struct kd_root_expect e;

	ck_assert_int_eq(kd_root_expect_parse("console=ttyS0 keyd.root=initramfs", &e), 0);
	ck_assert(e.initramfs_only);
	ck_assert_str_eq(e.roothash, "");
}
END_TEST

START_TEST(cmdline_refusals)
{
	struct kd_root_expect e = {.roothash = "untouched"};

	/* Two different hashes: which one would the initramfs use? */
	ck_assert_int_eq(kd_root_expect_parse("roothash=" H64 " roothash=" H64B, &e),
			 KD_EMALFORMED);
	ck_assert_str_eq(e.roothash, "untouched");
	ck_assert_int_eq(kd_root_expect_parse("roothash=" H64 " keyd.root=initramfs", &e),
			 KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "one or the other"));
	ck_assert_int_eq(kd_root_expect_parse("roothash=xyz", &e), KD_EMALFORMED);
	ck_assert_int_eq(kd_root_expect_parse("roothash=" H64 "0", &e), KD_EMALFORMED); /* odd */
	ck_assert_int_eq(kd_root_expect_parse("roothash=abcd", &e), KD_EMALFORMED);   /* short */
	ck_assert_int_eq(kd_root_expect_parse("roothash=", &e), KD_EMALFORMED);
	ck_assert_int_eq(kd_root_expect_parse("roothash=" H64 "zz", &e), KD_EMALFORMED);
	ck_assert_int_eq(kd_root_expect_parse("usrhash=" H64, &e), KD_EMALFORMED);
	ck_assert_int_eq(kd_root_expect_parse("keyd.root=disk", &e), KD_EINVAL);
	ck_assert_int_eq(kd_root_expect_parse(NULL, &e), KD_EINVAL);
	ck_assert_str_eq(e.roothash, "untouched");
}
END_TEST

START_TEST(cmdline_quotes_group_like_the_kernel)
{
	struct kd_root_expect e;

	/* Inside quotes, "roothash=" is part of another argument's value. */
	ck_assert_int_eq(kd_root_expect_parse("init=\"/bin/sh roothash=" H64 "\"", &e), 0);
	ck_assert_str_eq(e.roothash, "");
	ck_assert_int_eq(kd_root_expect_parse("a=\"x y\" roothash=" H64, &e), 0);
	ck_assert_str_eq(e.roothash, H64);
	/* Similar names are not the parameter. */
	ck_assert_int_eq(kd_root_expect_parse("xroothash=" H64 " roothashx=" H64, &e), 0);
	ck_assert_str_eq(e.roothash, "");
}
END_TEST

START_TEST(verity_table_fields)
{
	char h[KD_ROOTHASH_HEX_MAX + 1];
	bool weak = true;

	ck_assert_int_eq(kd_verity_params_roothash("1 253:0 253:1 4096 4096 1024 1 sha256 " H64
						   " 690ed0e23b60fcb8", h, &weak), 0);
	ck_assert_str_eq(h, H64);
	ck_assert(!weak);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - 2 panic_on_corruption check_at_most_once",
						   h, &weak), 0);
	ck_assert(!weak);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - 1 ignore_corruption", h, &weak), 0);
	ck_assert(weak);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - 1 ignore_zero_blocks", h, &weak), 0);
	ck_assert(weak);
}
END_TEST

START_TEST(verity_table_refusals)
{
	char h[KD_ROOTHASH_HEX_MAX + 1] = "untouched";
	bool weak = false;

	ck_assert_int_eq(kd_verity_params_roothash("0 7:0 7:1 4096 4096 1024 1 sha256 " H64 " -",
						   h, &weak), KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256", h, &weak),
			 KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 zz -", h,
						   &weak), KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - 2 ignore_corruption", h, &weak), KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - 1 a b", h, &weak), KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash("1 7:0 7:1 4096 4096 1024 1 sha256 " H64
						   " - x", h, &weak), KD_EMALFORMED);
	ck_assert_int_eq(kd_verity_params_roothash(NULL, h, &weak), KD_EMALFORMED);
	ck_assert_str_eq(h, "untouched");
}
END_TEST

START_TEST(check_without_a_root_hash_refuses)
{
	struct kd_root_expect e;
	char line[256] = "";

	ck_assert_int_eq(kd_root_expect_parse("console=ttyS0 quiet", &e), 0);
	ck_assert_int_eq(kd_root_check(&e, NULL, NULL, line, sizeof(line)), KD_EPOLICY);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPOLICY), "no roothash="));
	ck_assert_int_eq(kd_root_expect_parse("keyd.root=initramfs", &e), 0);
	ck_assert_int_eq(kd_root_check(&e, NULL, NULL, line, sizeof(line)), 0);
	ck_assert_ptr_nonnull(strstr(line, "initramfs"));
}
END_TEST

START_TEST(check_boot_reads_the_file)
{
	char path[] = "/tmp/keyd-cmdline.XXXXXX", line[256];
	int fd = mkstemp(path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs("console=ttyS0 keyd.root=initramfs\n", f);
	fclose(f);
	ck_assert_int_eq(kd_root_check_boot(path, NULL, NULL, line, sizeof(line)), 0);
	f = fopen(path, "w");
	fputs("console=ttyS0\n", f);
	fclose(f);
	ck_assert_int_eq(kd_root_check_boot(path, NULL, NULL, line, sizeof(line)), KD_EPOLICY);
	unlink(path);
	ck_assert_int_eq(kd_root_check_boot(path, NULL, NULL, line, sizeof(line)), KD_EIO);
}
END_TEST

static Suite *root_suite(void)
{
	Suite *s = suite_create("root");
	TCase *tc = tcase_create("root");

	tcase_add_test(tc, cmdline_roothash_and_usrhash);
	tcase_add_test(tc, cmdline_initramfs_only);
	tcase_add_test(tc, cmdline_refusals);
	tcase_add_test(tc, cmdline_quotes_group_like_the_kernel);
	tcase_add_test(tc, verity_table_fields);
	tcase_add_test(tc, verity_table_refusals);
	tcase_add_test(tc, check_without_a_root_hash_refuses);
	tcase_add_test(tc, check_boot_reads_the_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(root_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
