/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GHCB certificate table (docs/snp-facts.md §1.5). The host fills this table, so every
 * offset and length is untrusted: entries must lie inside the blob, after
 * the table, and not overlap, so that one certificate cannot be read as part
 * of another or of the table itself.
 */
#include <stdlib.h>
#include <string.h>

#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"

/* GUIDs in RFC 4122 byte order, as go-sev-guest and virtee read them. */
static const struct {
	enum kd_cert_kind kind;
	const char *name;
	uint8_t guid[16];
} kinds[] = {
	{KD_CERT_VCEK, "VCEK", /* 63da758d-e664-4564-adc5-f4b93be8accd */
	 {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8,
	  0xac, 0xcd}},
	{KD_CERT_VLEK, "VLEK", /* a8074bc2-a25a-483e-aae6-39c045a0b8a1 */
	 {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0,
	  0xb8, 0xa1}},
	{KD_CERT_ASK, "ASK", /* 4ab7b379-bbac-4fe4-a02f-05aef327c782 */
	 {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27,
	  0xc7, 0x82}},
	{KD_CERT_ARK, "ARK", /* c0b406a4-a803-4952-9743-3fb6014cd0ae */
	 {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c,
	  0xd0, 0xae}},
	{KD_CERT_CRL, "CRL", /* 92f81bc3-5811-4d3d-97ff-d19f88dc67ea (virtee) */
	 {0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc,
	  0x67, 0xea}},
};

static const uint8_t zero_guid[16];

const char *kd_cert_kind_name(enum kd_cert_kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "other";
}

const uint8_t *kd_cert_kind_guid(enum kd_cert_kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].guid;
	return NULL;
}

enum kd_cert_kind kd_cert_kind_from_guid(const uint8_t guid[16])
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!memcmp(kinds[i].guid, guid, 16))
			return kinds[i].kind;
	return KD_CERT_OTHER;
}

struct raw_entry {
	uint8_t guid[16];
	uint32_t off, len;
};

static int read_entry(struct kd_cursor *c, struct raw_entry *e)
{
	int r;

	if ((r = kd_cur_bytes(c, e->guid, 16)) < 0 || (r = kd_cur_u32(c, &e->off)) < 0 ||
	    (r = kd_cur_u32(c, &e->len)) < 0)
		return kd_fail(r, "certificate table is not terminated within its %zu bytes", c->len);
	return 0;
}

int kd_certtable_parse(const uint8_t *blob, size_t len, struct kd_certtable *ret)
{
	struct raw_entry raw[KD_CERTTABLE_MAX];
	struct kd_certtable t;
	struct kd_cursor c;
	size_t n = 0, table_end;
	int r;

	if ((!blob && len) || !ret)
		return kd_fail(KD_EINVAL, "kd_certtable_parse: NULL argument");
	memset(&t, 0, sizeof(t));
	if (len == 0) {
		*ret = t;
		return 0;
	}
	kd_cur_init(&c, blob, len);
	for (;;) {
		struct raw_entry e;

		if ((r = read_entry(&c, &e)) < 0)
			return r;
		if (!memcmp(e.guid, zero_guid, 16)) {
			if (e.off || e.len)
				return kd_fail(KD_ERESERVED, "certificate table terminator has "
							     "offset/length set");
			break;
		}
		if (n == KD_CERTTABLE_MAX)
			return kd_fail(KD_EMALFORMED, "certificate table has more than %u entries",
				       KD_CERTTABLE_MAX);
		raw[n++] = e;
	}
	table_end = c.off;

	for (size_t i = 0; i < n; i++) {
		struct kd_cert_entry *out = &t.entries[i];
		const struct raw_entry *e = &raw[i];
		enum kd_cert_kind k = kd_cert_kind_from_guid(e->guid);

		if (e->len == 0)
			return kd_fail(KD_EMALFORMED, "certificate table entry %zu (%s) is empty", i,
				       kd_cert_kind_name(k));
		/* Subtract, never add: offset + length may overflow. */
		if (e->off > len || e->len > len - e->off)
			return kd_fail(KD_EMALFORMED,
				       "certificate table entry %zu (%s) at %u+%u lies outside "
				       "the %zu-byte blob",
				       i, kd_cert_kind_name(k), e->off, e->len, len);
		if (e->off < table_end)
			return kd_fail(KD_EMALFORMED,
				       "certificate table entry %zu (%s) overlaps the table", i,
				       kd_cert_kind_name(k));
		for (size_t j = 0; j < i; j++) {
			if (!memcmp(raw[j].guid, e->guid, 16))
				return kd_fail(KD_EMALFORMED,
					       "certificate table lists %s twice",
					       kd_cert_kind_name(k));
			if (e->off < (size_t)raw[j].off + raw[j].len &&
			    raw[j].off < (size_t)e->off + e->len)
				return kd_fail(KD_EMALFORMED,
					       "certificate table entries %zu and %zu overlap", j, i);
		}
		out->kind = k;
		memcpy(out->guid, e->guid, 16);
		out->der = blob + e->off;
		out->len = e->len;
		switch (k) {
		case KD_CERT_VCEK:
			t.vcek = out->der;
			t.vcek_len = out->len;
			break;
		case KD_CERT_VLEK:
			t.vlek = out->der;
			t.vlek_len = out->len;
			break;
		case KD_CERT_ASK:
			t.ask = out->der;
			t.ask_len = out->len;
			break;
		case KD_CERT_ARK:
			t.ark = out->der;
			t.ark_len = out->len;
			break;
		case KD_CERT_CRL:
			t.crl = out->der;
			t.crl_len = out->len;
			break;
		case KD_CERT_OTHER:
			break;
		}
	}
	t.n = n;
	*ret = t;
	return 0;
}

static const uint8_t *entry_guid(const struct kd_cert_entry *e)
{
	return e->kind == KD_CERT_OTHER ? e->guid : kd_cert_kind_guid(e->kind);
}

int kd_certtable_build(const struct kd_cert_entry *in, size_t n, uint8_t **ret, size_t *ret_len)
{
	size_t total, off;
	uint8_t *b;

	if ((!in && n) || !ret || !ret_len)
		return kd_fail(KD_EINVAL, "kd_certtable_build: NULL argument");
	if (n > KD_CERTTABLE_MAX)
		return kd_fail(KD_EINVAL, "more than %u certificates for one table",
			       KD_CERTTABLE_MAX);
	total = (n + 1) * KD_CERTTABLE_ENTRY_SIZE;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *g = entry_guid(&in[i]);

		if (!g || in[i].kind > KD_CERT_OTHER)
			return kd_fail(KD_EINVAL, "certificate %zu has an invalid kind", i);
		if (!memcmp(g, zero_guid, 16))
			return kd_fail(KD_EINVAL, "certificate %zu has the zero GUID", i);
		if (!in[i].der || !in[i].len)
			return kd_fail(KD_EINVAL, "certificate %zu (%s) is empty", i,
				       kd_cert_kind_name(in[i].kind));
		for (size_t j = 0; j < i; j++)
			if (!memcmp(entry_guid(&in[j]), g, 16))
				return kd_fail(KD_EINVAL, "certificate %s given twice",
					       kd_cert_kind_name(in[i].kind));
		/* Every offset and length must fit the u32 fields. */
		if (in[i].len > UINT32_MAX - total)
			return kd_fail(KD_EINVAL, "certificate table would exceed 4 GiB");
		total += in[i].len;
	}

	b = calloc(1, total);
	if (!b)
		return kd_fail(KD_ENOMEM, "out of memory (certificate table)");
	off = (n + 1) * KD_CERTTABLE_ENTRY_SIZE;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = b + i * KD_CERTTABLE_ENTRY_SIZE;

		memcpy(e, entry_guid(&in[i]), 16);
		kd_put_le32(e + 16, (uint32_t)off);
		kd_put_le32(e + 20, (uint32_t)in[i].len);
		memcpy(b + off, in[i].der, in[i].len);
		off += in[i].len;
	}
	*ret = b;
	*ret_len = total;
	return 0;
}
