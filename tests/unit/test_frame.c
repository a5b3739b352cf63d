/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: handoff frames and message payload parsers (truncation, caps, garbage). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/frame.h"
#include "keyd/handoff.h"

START_TEST(frame_roundtrip)
{
	uint8_t *buf = NULL;
	const uint8_t *p;
	size_t n = 0, plen;
	uint16_t t;

	ck_assert_int_eq(kd_frame_encode(KD_MSG_HELLO, "abc", 3, &buf, &n), 0);
	ck_assert_uint_eq(n, 9);
	ck_assert_uint_eq(kd_get_le32(buf), 3);
	ck_assert_uint_eq(buf[4], KD_MSG_HELLO);
	ck_assert_uint_eq(buf[5], 0);
	ck_assert_int_eq(kd_frame_parse(buf, n, &t, &p, &plen), 0);
	ck_assert_uint_eq(t, KD_MSG_HELLO);
	ck_assert_uint_eq(plen, 3);
	ck_assert_mem_eq(p, "abc", 3);
	/* Every truncation is refused. */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(kd_frame_parse(buf, i, &t, &p, &plen), KD_ETRUNC);
	free(buf);
}
END_TEST

START_TEST(frame_trailing_and_types)
{
	uint8_t f[8] = {1, 0, 0, 0, KD_MSG_DONE, 0, 'x', 'y'};
	const uint8_t *p;
	size_t plen;
	uint16_t t = 0;
	uint8_t *buf;
	size_t n;

	ck_assert_int_eq(kd_frame_parse(f, sizeof(f), &t, &p, &plen), KD_EMALFORMED);
	ck_assert_uint_eq(t, 0);
	f[4] = 0;
	ck_assert_int_eq(kd_frame_parse(f, 7, &t, &p, &plen), KD_EPROTO);
	f[4] = KD_MSG__MAX + 1;
	ck_assert_int_eq(kd_frame_parse(f, 7, &t, &p, &plen), KD_EPROTO);
	f[4] = 1;
	f[5] = 1; /* type 0x0101 */
	ck_assert_int_eq(kd_frame_parse(f, 7, &t, &p, &plen), KD_EPROTO);
	ck_assert_int_eq(kd_frame_encode(0, NULL, 0, &buf, &n), KD_EINVAL);
	ck_assert_int_eq(kd_frame_encode(9, NULL, 0, &buf, &n), KD_EINVAL);
}
END_TEST

START_TEST(frame_cap)
{
	uint8_t hdr[6];
	uint16_t t;
	uint32_t n;
	uint8_t *buf = NULL;
	size_t len;
	static uint8_t big[KD_FRAME_PAYLOAD_MAX + 1];

	kd_put_le32(hdr, KD_FRAME_PAYLOAD_MAX);
	kd_put_le16(hdr + 4, KD_MSG_ACCEPT);
	ck_assert_int_eq(kd_frame_parse_header(hdr, 6, &t, &n), 0);
	ck_assert_uint_eq(n, KD_FRAME_PAYLOAD_MAX);
	kd_put_le32(hdr, KD_FRAME_PAYLOAD_MAX + 1);
	ck_assert_int_eq(kd_frame_parse_header(hdr, 6, &t, &n), KD_EPROTO);
	kd_put_le32(hdr, 0xffffffffu);
	ck_assert_int_eq(kd_frame_parse_header(hdr, 6, &t, &n), KD_EPROTO);
	ck_assert_int_eq(kd_frame_encode(KD_MSG_ACCEPT, big, sizeof(big), &buf, &len), KD_EINVAL);
	ck_assert_int_eq(kd_frame_encode(KD_MSG_ACCEPT, big, sizeof(big) - 1, &buf, &len), 0);
	ck_assert_uint_eq(len, KD_FRAME_MAX);
	free(buf);
}
END_TEST

/* Frame I/O over a socketpair: timeouts, peer close mid-frame, ERROR frames. */
START_TEST(frame_io)
{
	int sv[2];
	struct kd_io a, b;
	uint8_t *p = NULL;
	size_t n = 0;
	int64_t t0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	kd_io_fd(&a, &sv[0]);
	kd_io_fd(&b, &sv[1]);
	b.read_timeout_ms = 200;
	ck_assert_int_eq(kd_frame_send(&a, KD_MSG_VOLUMES, "hi", 2), 0);
	ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_VOLUMES, &p, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(p);
	/* Nothing sent: the read times out, within its budget. */
	t0 = kd_now_ms();
	ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_ACCEPT, &p, &n), KD_ETIMEOUT);
	ck_assert_int_lt(kd_now_ms() - t0, 1000);
	/* The whole-exchange deadline cuts the per-read timeout. */
	b.read_timeout_ms = 10000;
	b.deadline_ms = kd_now_ms() + 150;
	t0 = kd_now_ms();
	ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_ACCEPT, &p, &n), KD_ETIMEOUT);
	ck_assert_int_lt(kd_now_ms() - t0, 1000);
	b.deadline_ms = 0;
	b.read_timeout_ms = 500;
	/* Unexpected type. */
	ck_assert_int_eq(kd_frame_send(&a, KD_MSG_DONE, NULL, 0), 0);
	ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_ACCEPT, &p, &n), KD_EPROTO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPROTO), "DONE"));
	/* Peer's ERROR becomes a refusal quoting a sanitised reason. */
	ck_assert_int_eq(kd_frame_send(&a, KD_MSG_ERROR, "bad\nthing", 9), 0);
	ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_ACCEPT, &p, &n), KD_EREFUSED);
	ck_assert_str_eq(kd_err_detail(KD_EREFUSED), "peer refused: bad?thing");
	/* Header announces 100 bytes, peer closes after 3. */
	{
		uint8_t h[9] = {100, 0, 0, 0, KD_MSG_ACCEPT, 0, 1, 2, 3};

		ck_assert_int_eq(write(sv[0], h, sizeof(h)), (ssize_t)sizeof(h));
		close(sv[0]);
		ck_assert_int_eq(kd_frame_recv(&b, KD_MSG_ACCEPT, &p, &n), KD_EPROTO);
		ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EPROTO), "truncated"));
	}
	close(sv[1]);
}
END_TEST

static const char uuid1[] = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
static const char uuid2[] = "11111111-2222-3333-4444-555555555555";

START_TEST(volumes_roundtrip_and_garbage)
{
	char u[2][KD_UUID_LEN + 1], out[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	uint8_t *buf;
	size_t n, cnt = 99;

	strcpy(u[0], uuid1);
	strcpy(u[1], uuid2);
	ck_assert_int_eq(kd_volumes_encode((const char(*)[KD_UUID_LEN + 1])u, 2, &buf, &n), 0);
	ck_assert_uint_eq(n, 2 + 72);
	ck_assert_int_eq(kd_volumes_parse(buf, n, out, &cnt), 0);
	ck_assert_uint_eq(cnt, 2);
	ck_assert_str_eq(out[1], uuid2);
	for (size_t i = 0; i < n; i++) {
		cnt = 99;
		ck_assert_int_ne(kd_volumes_parse(buf, i, out, &cnt), 0);
		ck_assert_uint_eq(cnt, 99);
	}
	buf[5] = 'G'; /* not hex */
	ck_assert_int_eq(kd_volumes_parse(buf, n, out, &cnt), KD_EMALFORMED);
	buf[5] = 'A'; /* uppercase is not canonical */
	ck_assert_int_eq(kd_volumes_parse(buf, n, out, &cnt), KD_EMALFORMED);
	free(buf);
	strcpy(u[1], uuid1);
	ck_assert_int_eq(kd_volumes_encode((const char(*)[KD_UUID_LEN + 1])u, 2, &buf, &n), 0);
	ck_assert_int_eq(kd_volumes_parse(buf, n, out, &cnt), KD_EMALFORMED); /* duplicate */
	free(buf);
	{
		uint8_t z[2] = {0, 0}, many[2] = {KD_HANDOFF_MAX_VOLUMES + 1, 0};

		ck_assert_int_eq(kd_volumes_parse(z, 2, out, &cnt), KD_EMALFORMED);
		ck_assert_int_eq(kd_volumes_parse(many, 2, out, &cnt), KD_EMALFORMED);
	}
}
END_TEST

START_TEST(accept_roundtrip_and_mismatch)
{
	char u[1][KD_UUID_LEN + 1], other[1][KD_UUID_LEN + 1];
	uint8_t *buf;
	size_t n;

	strcpy(u[0], uuid1);
	strcpy(other[0], uuid2);
	ck_assert_int_eq(kd_accept_encode((const char(*)[KD_UUID_LEN + 1])u, 1, &buf, &n), 0);
	/* Nothing but the count and the UUID: ACCEPT carries no secret. */
	ck_assert_uint_eq(n, 2 + 36);
	ck_assert_int_eq(kd_accept_parse(buf, n, (const char(*)[KD_UUID_LEN + 1])u, 1), 0);
	ck_assert_int_eq(kd_accept_parse(buf, n, (const char(*)[KD_UUID_LEN + 1])other, 1),
			 KD_EPROTO);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_ne(kd_accept_parse(buf, i, (const char(*)[KD_UUID_LEN + 1])u, 1), 0);
	free(buf);
}
END_TEST

START_TEST(hello_strict)
{
	uint8_t report[KD_REPORT_SIZE] = {0}, *buf;
	uint8_t kex[KD_KEX_PUB_LEN];
	struct kd_hello h = {KD_ROLE_NEW, report, sizeof(report), (const uint8_t *)"", 0,
			     (const uint8_t *)"{}", 2, kex, sizeof(kex)},
			out;
	size_t n;

	memset(kex, 0x5a, sizeof(kex));
	ck_assert_int_eq(kd_hello_encode(&h, &buf, &n), 0);
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), 0);
	ck_assert_uint_eq(out.role, 'N');
	ck_assert_uint_eq(out.report_len, KD_REPORT_SIZE);
	ck_assert_uint_eq(out.manifest_len, 2);
	ck_assert_uint_eq(out.kex_len, KD_KEX_PUB_LEN);
	ck_assert_mem_eq(out.kex, kex, sizeof(kex));
	/* O's HELLO carries a 32-byte key too (its evidence signing key). */
	buf[0] = 'O';
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), 0);
	buf[0] = 'N';
	for (size_t i = 0; i < n; i++)
		ck_assert_int_ne(kd_hello_parse(buf, i, &out), 0);
	buf[1] = 1;
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), KD_ERESERVED);
	buf[1] = 0;
	buf[0] = 'X';
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), KD_EMALFORMED);
	free(buf);
	h.kex_len = 0;
	ck_assert_int_eq(kd_hello_encode(&h, &buf, &n), 0);
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), KD_EMALFORMED);
	free(buf);
	h.kex_len = sizeof(kex);
	h.report_len = 100;
	ck_assert_int_eq(kd_hello_encode(&h, &buf, &n), 0);
	ck_assert_int_eq(kd_hello_parse(buf, n, &out), KD_EMALFORMED);
	free(buf);
	/* Random garbage never parses as a HELLO. */
	srand(7);
	for (int it = 0; it < 2000; it++) {
		uint8_t g[64];
		size_t gl = (size_t)(rand() % 64);

		for (size_t i = 0; i < gl; i++)
			g[i] = (uint8_t)rand();
		ck_assert_int_ne(kd_hello_parse(g, gl, &out), 0);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, frame_roundtrip);
	tcase_add_test(tc, frame_trailing_and_types);
	tcase_add_test(tc, frame_cap);
	tcase_add_test(tc, frame_io);
	tcase_add_test(tc, volumes_roundtrip_and_garbage);
	tcase_add_test(tc, accept_roundtrip_and_mismatch);
	tcase_add_test(tc, hello_strict);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
