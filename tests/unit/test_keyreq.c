/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: MSG_KEY_REQ encoding (exact bytes of Linux struct
 * snp_derived_key_req), its validation and decoding, MSG_KEY_RSP parsing and
 * the --fields list syntax.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/secret.h"
#include "keyd/util.h"

static const struct kd_key_req sample = {
	.root_key_select = 0x04, /* VCEK root, KEY_SEL = VLEK */
	.guest_field_select = KD_FIELDS_SEAL,
	.vmpl = 2,
	.guest_svn = 0x11223344,
	.tcb_version = 0x7308000000000003ull,
};

START_TEST(encode_exact_bytes)
{
	static const uint8_t want[KD_KEY_REQ_SIZE] = {
		/* 0x00 root_key_select */ 0x04, 0x00, 0x00, 0x00,
		/* 0x04 rsvd */ 0x00, 0x00, 0x00, 0x00,
		/* 0x08 guest_field_select = 0x29 */ 0x29, 0, 0, 0, 0, 0, 0, 0,
		/* 0x10 vmpl */ 0x02, 0x00, 0x00, 0x00,
		/* 0x14 guest_svn */ 0x44, 0x33, 0x22, 0x11,
		/* 0x18 tcb_version, report byte order */ 0x03, 0, 0, 0, 0, 0, 0x08, 0x73,
	};
	uint8_t out[KD_KEY_REQ_SIZE];

	memset(out, 0xcc, sizeof(out));
	ck_assert_int_eq(kd_key_req_validate(&sample), 0);
	kd_key_req_encode(&sample, out);
	ck_assert_int_eq(memcmp(out, want, sizeof(want)), 0);
	ck_assert_uint_eq(KD_FIELDS_SEAL, 0x29);
}
END_TEST

START_TEST(encode_each_offset)
{
	struct kd_key_req r;
	uint8_t out[KD_KEY_REQ_SIZE];

	memset(&r, 0, sizeof(r));
	kd_key_req_encode(&r, out);
	for (size_t i = 0; i < sizeof(out); i++)
		ck_assert_uint_eq(out[i], 0);
	r.root_key_select = KD_ROOT_KEY_VMRK;
	kd_key_req_encode(&r, out);
	ck_assert_uint_eq(out[0x00], 1);
	r.root_key_select = 0;
	r.guest_field_select = 1ull << 63;
	kd_key_req_encode(&r, out);
	ck_assert_uint_eq(out[0x0f], 0x80);
	r.guest_field_select = 0;
	r.vmpl = 3;
	kd_key_req_encode(&r, out);
	ck_assert_uint_eq(out[0x10], 3);
	r.vmpl = 0;
	r.guest_svn = 0x01000000;
	kd_key_req_encode(&r, out);
	ck_assert_uint_eq(out[0x17], 1);
	r.guest_svn = 0;
	r.tcb_version = 0xff;
	kd_key_req_encode(&r, out);
	ck_assert_uint_eq(out[0x18], 0xff);
	ck_assert_uint_eq(out[0x1f], 0);
	for (size_t i = 0x04; i < 0x08; i++)
		ck_assert_uint_eq(out[i], 0);
}
END_TEST

START_TEST(validate_refusals)
{
	struct kd_key_req r;

	r = sample;
	r.root_key_select = 1u << 3;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "reserved bits 31:3"));
	r.root_key_select = 1u << 31;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	r.root_key_select = 3u << KD_KEY_SEL_SHIFT;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "KEY_SEL 3"));
	for (uint32_t sel = 0; sel < 3; sel++) {
		r.root_key_select = sel << KD_KEY_SEL_SHIFT;
		ck_assert_int_eq(kd_key_req_validate(&r), 0);
		r.root_key_select |= KD_ROOT_KEY_VMRK;
		ck_assert_int_eq(kd_key_req_validate(&r), 0);
	}

	r = sample;
	r.guest_field_select = KD_FIELD_LAUNCH_MIT;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "LAUNCH_MIT_VECTOR"));
	for (int bit = 7; bit < 64; bit++) {
		r.guest_field_select = 1ull << bit;
		ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	}
	r.guest_field_select = KD_FIELD_VALID_MASK;
	ck_assert_int_eq(kd_key_req_validate(&r), 0);
	r.guest_field_select = 0;
	ck_assert_int_eq(kd_key_req_validate(&r), 0);

	r = sample;
	for (uint32_t v = 0; v <= 3; v++) {
		r.vmpl = v;
		ck_assert_int_eq(kd_key_req_validate(&r), 0);
	}
	r.vmpl = 4;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "VMPL 4"));
	r.vmpl = 0xffffffffu;
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_int_eq(kd_key_req_validate(NULL), KD_EINVAL);
}
END_TEST

START_TEST(decode_roundtrip_and_refusals)
{
	uint8_t buf[KD_KEY_REQ_SIZE + 1];
	struct kd_key_req r;

	kd_key_req_encode(&sample, buf);
	ck_assert_int_eq(kd_key_req_decode(buf, KD_KEY_REQ_SIZE, &r), 0);
	ck_assert_uint_eq(r.root_key_select, sample.root_key_select);
	ck_assert_uint_eq(r.guest_field_select, sample.guest_field_select);
	ck_assert_uint_eq(r.vmpl, sample.vmpl);
	ck_assert_uint_eq(r.guest_svn, sample.guest_svn);
	ck_assert_uint_eq(r.tcb_version, sample.tcb_version);

	for (size_t len = 0; len < KD_KEY_REQ_SIZE; len++) {
		memset(&r, 0x5a, sizeof(r));
		ck_assert_int_eq(kd_key_req_decode(buf, len, &r), KD_ETRUNC);
		ck_assert_uint_eq(r.vmpl, 0x5a5a5a5au);
	}
	buf[KD_KEY_REQ_SIZE] = 0;
	ck_assert_int_eq(kd_key_req_decode(buf, KD_KEY_REQ_SIZE + 1, &r), KD_EMALFORMED);
	for (size_t i = 4; i < 8; i++) {
		buf[i] = 0x80;
		ck_assert_int_eq(kd_key_req_decode(buf, KD_KEY_REQ_SIZE, &r), KD_ERESERVED);
		buf[i] = 0;
	}
	/* Decode is structural only: validate() judges the values. */
	buf[0] = 0xff;
	ck_assert_int_eq(kd_key_req_decode(buf, KD_KEY_REQ_SIZE, &r), 0);
	ck_assert_int_eq(kd_key_req_validate(&r), KD_EINVAL);
	ck_assert_int_eq(kd_key_req_decode(NULL, 0, &r), KD_ETRUNC);
}
END_TEST

START_TEST(rsp_parse_success)
{
	uint8_t key[KD_DERIVED_KEY_SIZE], rsp[KD_KEY_RSP_SIZE];
	_kd_secret_ struct kd_secret *s = NULL;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0xa0 + i);
	kd_key_rsp_encode(KD_FW_SUCCESS, key, rsp);
	for (size_t i = 0; i < 0x20; i++)
		ck_assert_uint_eq(rsp[i], 0);
	ck_assert_int_eq(memcmp(rsp + 0x20, key, sizeof(key)), 0);
	ck_assert_int_eq(kd_key_rsp_parse(rsp, sizeof(rsp), &s), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->len, KD_DERIVED_KEY_SIZE);
	ck_assert(kd_ct_equal(s->data, key, sizeof(key)));
}
END_TEST

START_TEST(rsp_parse_refusals)
{
	uint8_t key[KD_DERIVED_KEY_SIZE], rsp[KD_KEY_RSP_SIZE + 1];
	struct kd_secret *s = NULL;

	memset(key, 0x77, sizeof(key));
	kd_key_rsp_encode(KD_FW_INVALID_PARAMS, NULL, rsp);
	ck_assert_uint_eq(rsp[0], 0x16);
	for (size_t i = 1; i < KD_KEY_RSP_SIZE; i++)
		ck_assert_uint_eq(rsp[i], 0);
	ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE, &s), KD_EFIRMWARE);
	ck_assert_str_eq(kd_err_detail(KD_EFIRMWARE),
			 "firmware refused key request: status 0x16 (INVALID_PARAMS)");
	ck_assert_ptr_null(s);

	kd_key_rsp_encode(KD_FW_INVALID_KEY, key, rsp);
	ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE, &s), KD_EFIRMWARE);
	ck_assert_str_eq(kd_err_detail(KD_EFIRMWARE),
			 "firmware refused key request: status 0x27 (INVALID_KEY)");
	kd_key_rsp_encode(0x100, key, rsp);
	ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE, &s), KD_EFIRMWARE);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EFIRMWARE), "unknown"));
	ck_assert_ptr_null(s);

	kd_key_rsp_encode(KD_FW_SUCCESS, key, rsp);
	for (size_t i = 4; i < 0x20; i++) {
		rsp[i] = 1;
		ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE, &s), KD_ERESERVED);
		ck_assert_ptr_null(s);
		rsp[i] = 0;
	}
	for (size_t len = 0; len < KD_KEY_RSP_SIZE; len++)
		ck_assert_int_eq(kd_key_rsp_parse(rsp, len, &s), KD_ETRUNC);
	rsp[KD_KEY_RSP_SIZE] = 0;
	ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE + 1, &s), KD_EMALFORMED);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(kd_key_rsp_parse(rsp, KD_KEY_RSP_SIZE, NULL), KD_EINVAL);
	ck_assert_str_eq(kd_fw_status_name(0), "SUCCESS");
}
END_TEST

/* One meaning of "vcek" for derive and tokens: KEY_SEL 1, never 0 (which picks a VLEK). */
START_TEST(root_names)
{
	uint32_t sel = 99;

	ck_assert_int_eq(kd_root_parse("vcek", &sel), 0);
	ck_assert_uint_eq(sel, KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT);
	ck_assert_uint_eq(sel, 0x2);
	ck_assert_int_eq(kd_root_parse("vlek", &sel), 0);
	ck_assert_uint_eq(sel, 0x4);
	ck_assert_int_eq(kd_root_parse("vmrk", &sel), 0);
	ck_assert_uint_eq(sel, KD_ROOT_KEY_VMRK);
	sel = 99;
	ck_assert_int_eq(kd_root_parse("VCEK", &sel), KD_EINVAL);
	ck_assert_int_eq(kd_root_parse("", &sel), KD_EINVAL);
	ck_assert_int_eq(kd_root_parse(NULL, &sel), KD_EINVAL);
	ck_assert_uint_eq(sel, 99);
	ck_assert_str_eq(kd_root_name(0x2), "vcek");
	ck_assert_str_eq(kd_root_name(0x4), "vlek");
	ck_assert_str_eq(kd_root_name(KD_ROOT_KEY_VMRK), "vmrk");
	ck_assert_ptr_null(kd_root_name(0)); /* KEY_SEL 0 has no name: never sent */
}
END_TEST

START_TEST(fields_parse_and_format)
{
	char buf[128];
	uint64_t f;

	ck_assert_int_eq(kd_fields_parse("policy,measurement,tcb", &f), 0);
	ck_assert_uint_eq(f, KD_FIELDS_SEAL);
	ck_assert_int_eq(kd_fields_parse("tcb,measurement,policy", &f), 0);
	ck_assert_uint_eq(f, KD_FIELDS_SEAL);
	ck_assert_int_eq(kd_fields_parse("image-id", &f), 0);
	ck_assert_uint_eq(f, KD_FIELD_IMAGE_ID);
	ck_assert_int_eq(kd_fields_parse("policy,image-id,family-id,measurement,guest-svn,tcb", &f),
			 0);
	ck_assert_uint_eq(f, KD_FIELD_VALID_MASK);
	kd_fields_format(f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "policy,image-id,family-id,measurement,guest-svn,tcb");
	ck_assert_int_eq(kd_fields_parse("none", &f), 0);
	ck_assert_uint_eq(f, 0);
	kd_fields_format(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "none");
	kd_fields_format(KD_FIELDS_SEAL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "policy,measurement,tcb");
	kd_fields_format(KD_FIELD_LAUNCH_MIT | (1ull << 40), buf, sizeof(buf));
	ck_assert_str_eq(buf, "launch-mit,bit40");
	kd_fields_format(KD_FIELDS_SEAL, buf, 8);
	ck_assert_str_eq(buf, "policy");

	/* Every single name round-trips through format. */
	for (int bit = 0; bit < 6; bit++) {
		kd_fields_format(1ull << bit, buf, sizeof(buf));
		ck_assert_int_eq(kd_fields_parse(buf, &f), 0);
		ck_assert_uint_eq(f, 1ull << bit);
	}

	f = 0x1234;
	ck_assert_int_eq(kd_fields_parse("", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("policy,", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse(",policy", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("policy,,tcb", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("Policy", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("policy ,tcb", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("launch-mit", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("policyx", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("polic", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("none,tcb", &f), KD_EINVAL);
	ck_assert_int_eq(kd_fields_parse("measurement,policy,measurement", &f), KD_EINVAL);
	ck_assert_str_eq(kd_err_detail(KD_EINVAL), "key field 'measurement' is given twice");
	ck_assert_int_eq(kd_fields_parse("bogus", &f), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "'bogus'"));
	ck_assert_uint_eq(f, 0x1234);
	ck_assert_int_eq(kd_fields_parse(NULL, &f), KD_EINVAL);
}
END_TEST

static Suite *keyreq_suite(void)
{
	Suite *s = suite_create("keyreq");
	TCase *tc = tcase_create("keyreq");

	tcase_add_test(tc, encode_exact_bytes);
	tcase_add_test(tc, encode_each_offset);
	tcase_add_test(tc, validate_refusals);
	tcase_add_test(tc, decode_roundtrip_and_refusals);
	tcase_add_test(tc, rsp_parse_success);
	tcase_add_test(tc, rsp_parse_refusals);
	tcase_add_test(tc, fields_parse_and_format);
	tcase_add_test(tc, root_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(keyreq_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
