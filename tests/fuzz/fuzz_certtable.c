/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GHCB certificate table (kd_certtable_parse) and the VCEK/VLEK extensions of
 * the certificates it carries (kd_vek_parse). The host fills the table.
 * Properties: every entry lies inside the blob, past the table, and no two
 * overlap; the named pointers match the entries; rebuilding the table from
 * the parsed entries and parsing it again gives the same certificates.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static void check_entries(const uint8_t *blob, size_t len, const struct kd_certtable *t)
{
	size_t table_end = (t->n + 1) * KD_CERTTABLE_ENTRY_SIZE;

	FUZZ_ASSERT(t->n <= KD_CERTTABLE_MAX);
	for (size_t i = 0; i < t->n; i++) {
		const struct kd_cert_entry *e = &t->entries[i];
		size_t off = (size_t)(e->der - blob);

		FUZZ_ASSERT(e->len > 0);
		FUZZ_ASSERT(e->der >= blob && off <= len && e->len <= len - off);
		FUZZ_ASSERT(off >= table_end);
		FUZZ_ASSERT(e->kind == kd_cert_kind_from_guid(e->guid));
		for (size_t k = 0; k < i; k++) {
			const struct kd_cert_entry *f = &t->entries[k];

			FUZZ_ASSERT(memcmp(e->guid, f->guid, 16) != 0);
			FUZZ_ASSERT(e->der + e->len <= f->der || f->der + f->len <= e->der);
		}
	}
}

static const uint8_t *named(const struct kd_certtable *t, enum kd_cert_kind k, size_t *len)
{
	switch (k) {
	case KD_CERT_VCEK: *len = t->vcek_len; return t->vcek;
	case KD_CERT_VLEK: *len = t->vlek_len; return t->vlek;
	case KD_CERT_ASK: *len = t->ask_len; return t->ask;
	case KD_CERT_ARK: *len = t->ark_len; return t->ark;
	case KD_CERT_CRL: *len = t->crl_len; return t->crl;
	default: *len = 0; return NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_certtable t, t2;
	uint8_t *re = NULL;
	size_t re_len = 0;

	if (kd_certtable_parse(data, size, &t)) {
		kd_err_clear();
		return 0;
	}
	check_entries(data, size, &t);
	for (enum kd_cert_kind k = KD_CERT_VCEK; k < KD_CERT_OTHER; k++) {
		size_t nl;
		const uint8_t *p = named(&t, k, &nl);
		bool found = false;

		for (size_t i = 0; i < t.n; i++)
			if (t.entries[i].kind == k) {
				FUZZ_ASSERT(p == t.entries[i].der && nl == t.entries[i].len);
				found = true;
			}
		FUZZ_ASSERT(found == (p != NULL));
	}

	if (t.n > 0) {
		FUZZ_ASSERT(kd_certtable_build(t.entries, t.n, &re, &re_len) == 0);
		FUZZ_ASSERT(kd_certtable_parse(re, re_len, &t2) == 0);
		FUZZ_ASSERT(t2.n == t.n);
		for (size_t i = 0; i < t.n; i++) {
			FUZZ_ASSERT(t2.entries[i].kind == t.entries[i].kind);
			FUZZ_ASSERT(memcmp(t2.entries[i].guid, t.entries[i].guid, 16) == 0);
			FUZZ_ASSERT(t2.entries[i].len == t.entries[i].len);
			FUZZ_ASSERT(memcmp(t2.entries[i].der, t.entries[i].der, t.entries[i].len) == 0);
		}
		free(re);
	}

	/* The certificate bytes are as hostile as the table. */
	for (size_t i = 0; i < t.n; i++) {
		struct kd_vek_info v;

		if (t.entries[i].kind == KD_CERT_VCEK || t.entries[i].kind == KD_CERT_VLEK) {
			if (kd_vek_parse(t.entries[i].der, t.entries[i].len, &v) == 0) {
				FUZZ_ASSERT(v.hwid_len == 0 || v.hwid_len == 8 || v.hwid_len == 64);
				FUZZ_ASSERT(v.is_vlek == (v.hwid_len == 0));
			}
		}
	}
	kd_err_clear();
	return 0;
}
