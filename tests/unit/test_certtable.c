/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: the GHCB certificate table -- build/parse round trip with the
 * real VCEK and AMD roots, GUID byte order, truncation, entries pointing
 * outside the blob or overlapping, unterminated tables, duplicates, unknown
 * GUIDs and bit flips.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/util.h"

static const uint8_t fake_vcek[] = {0x30, 0x03, 0x02, 0x01, 0x00};
static const uint8_t fake_ask[] = {0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb};
static const uint8_t fake_ark[] = {0x30, 0x02, 0x05, 0x00};

static void build3(uint8_t **b, size_t *len)
{
	const struct kd_cert_entry in[] = {
		{KD_CERT_VCEK, {0}, fake_vcek, sizeof(fake_vcek)},
		{KD_CERT_ASK, {0}, fake_ask, sizeof(fake_ask)},
		{KD_CERT_ARK, {0}, fake_ark, sizeof(fake_ark)},
	};

	ck_assert_int_eq(kd_certtable_build(in, 3, b, len), 0);
}

START_TEST(guid_bytes_rfc4122_order)
{
	/* 63da758d-e664-4564-adc5-f4b93be8accd, big-endian as written. */
	static const uint8_t vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
					 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
	char hex[33];

	ck_assert_int_eq(memcmp(kd_cert_kind_guid(KD_CERT_VCEK), vcek, 16), 0);
	kd_hex(kd_cert_kind_guid(KD_CERT_VLEK), 16, hex);
	ck_assert_str_eq(hex, "a8074bc2a25a483eaae639c045a0b8a1");
	kd_hex(kd_cert_kind_guid(KD_CERT_ASK), 16, hex);
	ck_assert_str_eq(hex, "4ab7b379bbac4fe4a02f05aef327c782");
	kd_hex(kd_cert_kind_guid(KD_CERT_ARK), 16, hex);
	ck_assert_str_eq(hex, "c0b406a4a803495297433fb6014cd0ae");
	kd_hex(kd_cert_kind_guid(KD_CERT_CRL), 16, hex);
	ck_assert_str_eq(hex, "92f81bc358114d3d97ffd19f88dc67ea");
	ck_assert_ptr_null(kd_cert_kind_guid(KD_CERT_OTHER));
	ck_assert_int_eq(kd_cert_kind_from_guid(vcek), KD_CERT_VCEK);
	ck_assert_str_eq(kd_cert_kind_name(KD_CERT_ARK), "ARK");
	ck_assert_str_eq(kd_cert_kind_name(KD_CERT_OTHER), "other");
}
END_TEST

START_TEST(build_layout_exact)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len = 0;

	build3(&b, &len);
	ck_assert_uint_eq(len, 4 * 24 + sizeof(fake_vcek) + sizeof(fake_ask) + sizeof(fake_ark));
	ck_assert_int_eq(memcmp(b, kd_cert_kind_guid(KD_CERT_VCEK), 16), 0);
	ck_assert_uint_eq(kd_get_le32(b + 16), 96);
	ck_assert_uint_eq(kd_get_le32(b + 20), sizeof(fake_vcek));
	ck_assert_int_eq(memcmp(b + 24, kd_cert_kind_guid(KD_CERT_ASK), 16), 0);
	ck_assert_uint_eq(kd_get_le32(b + 24 + 16), 96 + sizeof(fake_vcek));
	for (size_t i = 72; i < 96; i++)
		ck_assert_uint_eq(b[i], 0); /* terminator */
	ck_assert_int_eq(memcmp(b + 96, fake_vcek, sizeof(fake_vcek)), 0);

	ck_assert_int_eq(kd_certtable_parse(b, len, &t), 0);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_ptr_eq(t.vcek, b + 96);
	ck_assert_uint_eq(t.vcek_len, sizeof(fake_vcek));
	ck_assert_int_eq(memcmp(t.ask, fake_ask, sizeof(fake_ask)), 0);
	ck_assert_uint_eq(t.ask_len, sizeof(fake_ask));
	ck_assert_int_eq(memcmp(t.ark, fake_ark, sizeof(fake_ark)), 0);
	ck_assert_ptr_null(t.vlek);
	ck_assert_ptr_null(t.crl);
	ck_assert_int_eq(t.entries[1].kind, KD_CERT_ASK);
	free(b);
}
END_TEST

/* The real VCEK and Milan roots: what a host would hand to the guest. */
START_TEST(roundtrip_real_certs)
{
	const char *root = getenv("KEYD_VECTORS");
	char path[600];
	uint8_t *vcek = NULL, *ark = NULL, *b = NULL, *b2 = NULL;
	size_t vcek_len, ark_len, len, len2;
	struct kd_certtable t;
	static const uint8_t other_guid[16] = {0x11, 0x22, 0x33, 0x44, 0, 0, 0x40, 0,
					       0x80, 0, 0, 0, 0, 0, 0, 0x01};

	if (!root || !*root)
		root = KD_TEST_VECTORS;
	snprintf(path, sizeof(path), "%.500s/snp/virtee-sev-milan/vcek.der", root);
	ck_assert_int_eq(kd_read_file(path, 1 << 16, &vcek, &vcek_len), 0);
	snprintf(path, sizeof(path), "%.500s/snp/amd-roots/milan_ark.pem", root);
	ck_assert_int_eq(kd_read_file(path, 1 << 16, &ark, &ark_len), 0);
	{
		struct kd_cert_entry in[] = {
			{KD_CERT_ARK, {0}, ark, ark_len},
			{KD_CERT_OTHER, {0}, fake_ask, sizeof(fake_ask)},
			{KD_CERT_VCEK, {0}, vcek, vcek_len},
			{KD_CERT_CRL, {0}, fake_ark, sizeof(fake_ark)},
		};

		memcpy(in[1].guid, other_guid, 16);
		ck_assert_int_eq(kd_certtable_build(in, 4, &b, &len), 0);
		ck_assert_int_eq(kd_certtable_parse(b, len, &t), 0);
		ck_assert_uint_eq(t.n, 4);
		ck_assert_uint_eq(t.vcek_len, vcek_len);
		ck_assert_int_eq(memcmp(t.vcek, vcek, vcek_len), 0);
		ck_assert_int_eq(memcmp(t.ark, ark, ark_len), 0);
		ck_assert_uint_eq(t.crl_len, sizeof(fake_ark));
		/* The unknown GUID is kept, with its bytes. */
		ck_assert_int_eq(t.entries[1].kind, KD_CERT_OTHER);
		ck_assert_int_eq(memcmp(t.entries[1].guid, other_guid, 16), 0);
		ck_assert_int_eq(memcmp(t.entries[1].der, fake_ask, sizeof(fake_ask)), 0);
		ck_assert_ptr_null(t.ask);
		/* Rebuilding from the parsed entries gives the same bytes. */
		ck_assert_int_eq(kd_certtable_build(t.entries, t.n, &b2, &len2), 0);
		ck_assert_uint_eq(len2, len);
		ck_assert_int_eq(memcmp(b, b2, len), 0);
	}
	free(vcek);
	free(ark);
	free(b);
	free(b2);
}
END_TEST

START_TEST(empty_and_padding)
{
	struct kd_certtable t;
	uint8_t page[4096];
	uint8_t *b = NULL;
	size_t len;

	memset(&t, 0xff, sizeof(t));
	ck_assert_int_eq(kd_certtable_parse(NULL, 0, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_ptr_null(t.vcek);
	/* An only-terminator table (host has no certs but sent a page). */
	memset(page, 0, sizeof(page));
	ck_assert_int_eq(kd_certtable_parse(page, sizeof(page), &t), 0);
	ck_assert_uint_eq(t.n, 0);
	/* Page padding after the certificates is allowed. */
	build3(&b, &len);
	memcpy(page, b, len);
	ck_assert_int_eq(kd_certtable_parse(page, sizeof(page), &t), 0);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_ptr_eq(t.vcek, page + 96);
	free(b);
	ck_assert_int_eq(kd_certtable_build(NULL, 0, &b, &len), 0);
	ck_assert_uint_eq(len, 24);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	free(b);
}
END_TEST

START_TEST(truncation_every_length)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len;

	build3(&b, &len);
	for (size_t l = 1; l < len; l++) {
		int r = kd_certtable_parse(b, l, &t);

		/* Inside the table: unterminated; after it: a cert runs out. */
		if (l < 96)
			ck_assert_msg(r == KD_ETRUNC, "len %zu: %d", l, r);
		else
			ck_assert_msg(r == KD_EMALFORMED, "len %zu: %d", l, r);
	}
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), 0);
	free(b);
}
END_TEST

START_TEST(unterminated)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len;

	build3(&b, &len);
	/* Turn the terminator into a fourth entry: now nothing ends the table. */
	memcpy(b + 72, kd_cert_kind_guid(KD_CERT_CRL), 16);
	kd_put_le32(b + 72 + 16, (uint32_t)(len - 1));
	kd_put_le32(b + 72 + 20, 1);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_ETRUNC);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ETRUNC), "not terminated"));
	free(b);
}
END_TEST

START_TEST(terminator_must_be_zero)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len;

	build3(&b, &len);
	for (size_t i = 72 + 16; i < 96; i++) {
		b[i] = 1;
		ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_ERESERVED);
		b[i] = 0;
	}
	free(b);
}
END_TEST

START_TEST(entry_outside_blob)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len;

	build3(&b, &len);
	/* One past the end. */
	kd_put_le32(b + 16, (uint32_t)(len - sizeof(fake_vcek) + 1));
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "outside"));
	/* Offset + length overflowing 32 bits. */
	kd_put_le32(b + 16, 0xfffffff0u);
	kd_put_le32(b + 20, 0x20);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	kd_put_le32(b + 16, 96);
	kd_put_le32(b + 20, 0xffffffffu);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	/* Zero length. */
	kd_put_le32(b + 20, 0);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "empty"));
	/* Pointing into the table itself. */
	kd_put_le32(b + 16, 0);
	kd_put_le32(b + 20, 5);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "overlaps the table"));
	kd_put_le32(b + 16, 95);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	free(b);
}
END_TEST

START_TEST(overlap_and_duplicates)
{
	struct kd_certtable t;
	uint8_t *b = NULL;
	size_t len;

	build3(&b, &len);
	/* ASK starting inside the VCEK. */
	kd_put_le32(b + 24 + 16, 96 + 2);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "overlap"));
	/* Exactly the same bytes twice. */
	kd_put_le32(b + 24 + 16, 96);
	kd_put_le32(b + 24 + 20, sizeof(fake_vcek));
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	free(b);

	build3(&b, &len);
	/* A second VCEK entry (GUID duplicate), its bytes disjoint. */
	memcpy(b + 24, kd_cert_kind_guid(KD_CERT_VCEK), 16);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "VCEK twice"));
	free(b);
}
END_TEST

START_TEST(too_many_entries)
{
	struct kd_cert_entry in[KD_CERTTABLE_MAX + 1];
	struct kd_certtable t;
	uint8_t *b = NULL, *big;
	size_t len;

	memset(in, 0, sizeof(in));
	for (size_t i = 0; i < KD_CERTTABLE_MAX + 1; i++) {
		in[i].kind = KD_CERT_OTHER;
		in[i].guid[0] = (uint8_t)(i + 1);
		in[i].der = fake_ark;
		in[i].len = sizeof(fake_ark);
	}
	ck_assert_int_eq(kd_certtable_build(in, KD_CERTTABLE_MAX + 1, &b, &len), KD_EINVAL);
	ck_assert_int_eq(kd_certtable_build(in, KD_CERTTABLE_MAX, &b, &len), 0);
	ck_assert_int_eq(kd_certtable_parse(b, len, &t), 0);
	ck_assert_uint_eq(t.n, KD_CERTTABLE_MAX);
	/* Hand-made table with one more entry. */
	big = calloc(1, len + 24 + 4);
	ck_assert_ptr_nonnull(big);
	memcpy(big, b, KD_CERTTABLE_MAX * 24);
	memset(big + KD_CERTTABLE_MAX * 24, 0x99, 16);
	kd_put_le32(big + KD_CERTTABLE_MAX * 24 + 16, (uint32_t)(len + 24));
	kd_put_le32(big + KD_CERTTABLE_MAX * 24 + 20, 4);
	ck_assert_int_eq(kd_certtable_parse(big, len + 24 + 4, &t), KD_EMALFORMED);
	free(big);
	free(b);
}
END_TEST

START_TEST(build_refusals)
{
	struct kd_cert_entry in[2] = {
		{KD_CERT_VCEK, {0}, fake_vcek, sizeof(fake_vcek)},
		{KD_CERT_VCEK, {0}, fake_ask, sizeof(fake_ask)},
	};
	uint8_t *b = (uint8_t *)0x1;
	size_t len = 7;

	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "twice"));
	in[1].kind = KD_CERT_OTHER; /* zero GUID */
	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	/* An OTHER entry with a known GUID duplicates that kind. */
	memcpy(in[1].guid, kd_cert_kind_guid(KD_CERT_VCEK), 16);
	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	in[1].kind = KD_CERT_ASK;
	in[1].len = 0;
	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	in[1].len = sizeof(fake_ask);
	in[1].der = NULL;
	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	in[1].der = fake_ask;
	in[1].kind = (enum kd_cert_kind)42;
	ck_assert_int_eq(kd_certtable_build(in, 2, &b, &len), KD_EINVAL);
	ck_assert_ptr_eq(b, (uint8_t *)0x1);
	ck_assert_uint_eq(len, 7);
}
END_TEST

/* Every single-bit change is refused or parses to in-bounds entries. */
START_TEST(bit_flips)
{
	uint8_t *b = NULL;
	size_t len;
	unsigned ok = 0, bad = 0;

	build3(&b, &len);
	for (size_t off = 0; off < len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct kd_certtable t;
			int r;

			b[off] ^= (uint8_t)(1u << bit);
			r = kd_certtable_parse(b, len, &t);
			if (r == 0) {
				ok++;
				for (size_t i = 0; i < t.n; i++) {
					ck_assert(t.entries[i].der >= b + 96);
					ck_assert(t.entries[i].der + t.entries[i].len <= b + len);
				}
			} else {
				bad++;
				ck_assert(r == KD_ETRUNC || r == KD_EMALFORMED || r == KD_ERESERVED);
			}
			b[off] ^= (uint8_t)(1u << bit);
		}
	}
	/* Flips in GUIDs and cert bytes parse; offsets/lengths mostly do not. */
	ck_assert_uint_gt(ok, 100);
	ck_assert_uint_gt(bad, 100);
	free(b);
}
END_TEST

static Suite *certtable_suite(void)
{
	Suite *s = suite_create("certtable");
	TCase *tc = tcase_create("certtable");

	tcase_add_test(tc, guid_bytes_rfc4122_order);
	tcase_add_test(tc, build_layout_exact);
	tcase_add_test(tc, roundtrip_real_certs);
	tcase_add_test(tc, empty_and_padding);
	tcase_add_test(tc, truncation_every_length);
	tcase_add_test(tc, unterminated);
	tcase_add_test(tc, terminator_must_be_zero);
	tcase_add_test(tc, entry_outside_blob);
	tcase_add_test(tc, overlap_and_duplicates);
	tcase_add_test(tc, too_many_entries);
	tcase_add_test(tc, build_refusals);
	tcase_add_test(tc, bit_flips);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(certtable_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
