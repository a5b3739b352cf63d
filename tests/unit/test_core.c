/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: cursor, secret buffers, errors, hex. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/secret.h"
#include "keyd/util.h"
#include "helpers/san.h"

static const uint8_t le[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};

START_TEST(cursor_reads_little_endian)
{
	struct kd_cursor c;
	uint8_t b;
	uint16_t h;
	uint32_t w;
	uint64_t q;

	kd_cur_init(&c, le, sizeof(le));
	ck_assert_int_eq(kd_cur_u8(&c, &b), 0);
	ck_assert_uint_eq(b, 0x01);
	ck_assert_int_eq(kd_cur_u16(&c, &h), 0);
	ck_assert_uint_eq(h, 0x0302);
	ck_assert_int_eq(kd_cur_u32(&c, &w), 0);
	ck_assert_uint_eq(w, 0x07060504);
	ck_assert_uint_eq(kd_cur_remaining(&c), 2);
	/* Truncation: nothing consumed, output untouched. */
	q = 0xdeadbeef;
	ck_assert_int_eq(kd_cur_u64(&c, &q), KD_ETRUNC);
	ck_assert_uint_eq(q, 0xdeadbeef);
	ck_assert_uint_eq(c.off, 7);
	ck_assert_int_eq(kd_cur_expect_end(&c), KD_EMALFORMED);
	ck_assert_int_eq(kd_cur_u16(&c, &h), 0);
	ck_assert_uint_eq(h, 0x0908);
	ck_assert_int_eq(kd_cur_expect_end(&c), 0);
	ck_assert_int_eq(kd_cur_u8(&c, &b), KD_ETRUNC);
	ck_assert_uint_eq(c.off, 9);
}
END_TEST

START_TEST(cursor_u64_and_bytes)
{
	struct kd_cursor c;
	uint64_t q;
	uint8_t out[4] = {0xaa, 0xaa, 0xaa, 0xaa};
	const uint8_t *p;

	kd_cur_init(&c, le, sizeof(le));
	ck_assert_int_eq(kd_cur_u64(&c, &q), 0);
	ck_assert_uint_eq(q, 0x0807060504030201ull);
	ck_assert_int_eq(kd_cur_bytes(&c, out, 2), KD_ETRUNC);
	ck_assert_uint_eq(out[0], 0xaa);
	ck_assert_uint_eq(c.off, 8);
	ck_assert_int_eq(kd_cur_ptr(&c, &p, 1), 0);
	ck_assert_uint_eq(*p, 0x09);
	ck_assert_int_eq(kd_cur_seek(&c, 10), KD_ETRUNC);
	ck_assert_int_eq(kd_cur_seek(&c, 9), 0);
	ck_assert_int_eq(kd_cur_seek(&c, 0), 0);
	ck_assert_int_eq(kd_cur_skip(&c, 10), KD_ETRUNC);
	ck_assert_uint_eq(c.off, 0);
	ck_assert_int_eq(kd_cur_skip(&c, 9), 0);
}
END_TEST

START_TEST(cursor_zero_checks_mbz)
{
	const uint8_t z[] = {0, 0, 0, 1};
	struct kd_cursor c;

	kd_cur_init(&c, z, sizeof(z));
	ck_assert_int_eq(kd_cur_zero(&c, 4), KD_ERESERVED);
	ck_assert_uint_eq(c.off, 0);
	ck_assert_int_eq(kd_cur_zero(&c, 5), KD_ETRUNC);
	ck_assert_int_eq(kd_cur_zero(&c, 3), 0);
	ck_assert_uint_eq(c.off, 3);
}
END_TEST

START_TEST(cursor_null_buffer)
{
	struct kd_cursor c;
	uint8_t b;

	kd_cur_init(&c, NULL, 100);
	ck_assert_uint_eq(kd_cur_remaining(&c), 0);
	ck_assert_int_eq(kd_cur_u8(&c, &b), KD_ETRUNC);
}
END_TEST

START_TEST(put_get_roundtrip)
{
	uint8_t b[8];

	kd_put_le64(b, 0x1122334455667788ull);
	ck_assert_uint_eq(b[0], 0x88);
	ck_assert_uint_eq(b[7], 0x11);
	ck_assert_uint_eq(kd_get_le64(b), 0x1122334455667788ull);
	kd_put_le32(b, 0xa1b2c3d4);
	ck_assert_uint_eq(kd_get_le32(b), 0xa1b2c3d4);
	kd_put_le16(b, 0xbeef);
	ck_assert_uint_eq(b[0], 0xef);
	ck_assert_uint_eq(b[1], 0xbe);
}
END_TEST

START_TEST(secret_locked_and_wiped)
{
	struct kd_secret *s = NULL, *t;
	const uint8_t k[5] = {1, 2, 3, 4, 5};

	ck_assert_int_eq(kd_secret_dup(k, sizeof(k), &s), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->len, 5);
	ck_assert_int_eq(memcmp(s->data, k, 5), 0);
	ck_assert(kd_secret_is_locked(s));
	/* Ownership moves explicitly. */
	t = kd_secret_take(&s);
	ck_assert_ptr_null(s);
	kd_secret_free(t);
	kd_secret_free(NULL);
	ck_assert_int_eq(kd_secret_new(0, &s), KD_EINVAL);
}
END_TEST

START_TEST(secret_dontdump_in_smaps)
{
	struct kd_secret *s = NULL;
	char line[512];
	FILE *f;
	int in_map = 0, found_dd = 0, found_lock = 0;
	unsigned long lo, hi, a;

	ck_assert_int_eq(kd_secret_new(32, &s), 0);
	a = (unsigned long)(uintptr_t)s->data;
	f = fopen("/proc/self/smaps", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		/* The VMA that contains the secret: it need not start at it (the
		 * kernel merges neighbours with equal flags, e.g. under valgrind). */
		if (line[0] != ' ' && sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in_map = a >= lo && a < hi;
		if (in_map && !strncmp(line, "VmFlags:", 8)) {
			found_dd = strstr(line, " dd") != NULL;
			found_lock = strstr(line, " lo") != NULL;
		}
	}
	fclose(f);
	kd_secret_free(s);
	ck_assert_msg(found_dd, "secret mapping lacks MADV_DONTDUMP (dd)");
	if (KD_MLOCK_WORKS)
		ck_assert_msg(found_lock, "secret mapping is not mlocked (lo)");
}
END_TEST

START_TEST(process_harden_disables_dumps)
{
	struct rlimit rl;

	kd_process_harden();
	ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	ck_assert_uint_eq(rl.rlim_cur, 0);
}
END_TEST

START_TEST(ct_equal)
{
	ck_assert(kd_ct_equal("abcd", "abcd", 4));
	ck_assert(!kd_ct_equal("abcd", "abce", 4));
}
END_TEST

START_TEST(error_detail_is_one_line)
{
	int r = kd_fail(KD_EPOLICY, "debug\npolicy %d", 1);

	ck_assert_int_eq(r, KD_EPOLICY);
	ck_assert_str_eq(kd_err_detail(KD_EPOLICY), "debug policy 1");
	/* Another code gets the generic message, not a stale detail. */
	ck_assert_str_eq(kd_err_detail(KD_EIO), "I/O error");
	kd_err_clear();
	ck_assert_str_eq(kd_err_detail(KD_EPOLICY), "refused by policy");
	ck_assert_str_eq(kd_strerror(5), "unknown error");
	ck_assert_str_eq(kd_strerror(KD__EMAX), "unknown error");
	for (int e = 0; e > KD__EMAX; e--)
		ck_assert_ptr_nonnull(kd_strerror(e));
}
END_TEST

START_TEST(hex_roundtrip_and_refusals)
{
	uint8_t b[4];
	char s[9];
	size_t n;
	uint64_t v;

	ck_assert_int_eq(kd_unhex("0xA1b2c3D4", b, 4), 0);
	kd_hex(b, 4, s);
	ck_assert_str_eq(s, "a1b2c3d4");
	ck_assert_int_eq(kd_unhex("a1b2c3", b, 4), KD_EMALFORMED);
	ck_assert_int_eq(kd_unhex("a1b2c3d4e5", b, 4), KD_EMALFORMED);
	ck_assert_int_eq(kd_unhex("a1b2c3g4", b, 4), KD_EMALFORMED);
	ck_assert_int_eq(kd_unhex("a1b", b, 4), KD_EMALFORMED);
	ck_assert_int_eq(kd_unhex_var("abcd", b, 4, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(kd_parse_u64("0x10", 100, &v), 0);
	ck_assert_uint_eq(v, 16);
	ck_assert_int_eq(kd_parse_u64("101", 100, &v), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_u64("-1", 100, &v), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_u64("1x", 100, &v), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_u64("", 100, &v), KD_EMALFORMED);
}
END_TEST

START_TEST(file_write_read)
{
	char path[] = "/tmp/keyd-core-XXXXXX";
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(kd_write_file(path, "hello", 5, 0600), 0);
	ck_assert_int_eq(kd_read_file(path, 100, &buf, &len), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	free(buf);
	buf = NULL;
	ck_assert_int_eq(kd_read_file(path, 4, &buf, &len), KD_EMALFORMED);
	ck_assert_ptr_null(buf);
	unlink(path);
	ck_assert_int_eq(kd_read_file(path, 4, &buf, &len), KD_ENOENT);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, cursor_reads_little_endian);
	tcase_add_test(tc, cursor_u64_and_bytes);
	tcase_add_test(tc, cursor_zero_checks_mbz);
	tcase_add_test(tc, cursor_null_buffer);
	tcase_add_test(tc, put_get_roundtrip);
	tcase_add_test(tc, secret_locked_and_wiped);
	tcase_add_test(tc, secret_dontdump_in_smaps);
	tcase_add_test(tc, process_harden_disables_dumps);
	tcase_add_test(tc, ct_equal);
	tcase_add_test(tc, error_detail_is_one_line);
	tcase_add_test(tc, hex_roundtrip_and_refusals);
	tcase_add_test(tc, file_write_read);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(core_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
