/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GHCB certificate table that SNP_GET_EXT_REPORT and the configfs-tsm
 * auxblob return (docs/snp-facts.md §1.5): 24-byte entries {GUID[16] in RFC 4122
 * (big-endian) byte order, u32 offset, u32 length}, ended by an all-zero
 * entry; offsets count from the start of the blob; the certificates are DER.
 */
#ifndef KEYD_CERTTABLE_H
#define KEYD_CERTTABLE_H

#include <stddef.h>
#include <stdint.h>

#define KD_CERTTABLE_ENTRY_SIZE 24u
/* More entries than any host sends (VCEK/VLEK, ASK, ARK, CRL, a few more). */
#define KD_CERTTABLE_MAX 16u

enum kd_cert_kind {
	KD_CERT_VCEK,
	KD_CERT_VLEK,
	KD_CERT_ASK, /* also the ASVK, which shares the GUID */
	KD_CERT_ARK,
	KD_CERT_CRL,
	KD_CERT_OTHER,
};

struct kd_cert_entry {
	enum kd_cert_kind kind;
	uint8_t guid[16];   /* filled by parse; used by build only for KD_CERT_OTHER */
	const uint8_t *der; /* borrowed: points into the parsed blob */
	size_t len;
};

/*
 * A parsed table. The named pointers borrow from the blob (NULL when the
 * table has no such entry); entries[] lists every entry in table order,
 * unknown GUIDs included (kind KD_CERT_OTHER), so they are kept but a
 * verifier can ignore them.
 */
struct kd_certtable {
	const uint8_t *vcek, *vlek, *ask, *ark, *crl;
	size_t vcek_len, vlek_len, ask_len, ark_len, crl_len;
	size_t n;
	struct kd_cert_entry entries[KD_CERTTABLE_MAX];
};

/*
 * Parse a certificate table. An empty blob (len 0) is a valid table with no
 * certificates (configfs-tsm gives an empty auxblob when the host has none).
 * Bytes after the last certificate are allowed (the ioctl buffer is
 * page-sized). Refused:
 *  - KD_ETRUNC: the table runs past the blob before its terminator;
 *  - KD_EMALFORMED: an entry of length 0, an entry whose bytes lie outside
 *    the blob or overlap the table or another entry, a GUID given twice,
 *    more than KD_CERTTABLE_MAX entries;
 *  - KD_ERESERVED: a zero-GUID terminator whose offset/length are not zero.
 * *ret is written only on success.
 */
int kd_certtable_parse(const uint8_t *blob, size_t len, struct kd_certtable *ret);

/*
 * Build a table: n entries, the terminator, then the certificates in the
 * given order, with no padding (callers that need a page multiple pad with
 * zeros). *ret is malloc'ed. KD_EINVAL for a NULL/empty certificate, a kind
 * or GUID given twice, a zero GUID for KD_CERT_OTHER, n > KD_CERTTABLE_MAX.
 */
int kd_certtable_build(const struct kd_cert_entry *in, size_t n, uint8_t **ret, size_t *ret_len);

/* "VCEK", "VLEK", "ASK", "ARK", "CRL" or "other". */
const char *kd_cert_kind_name(enum kd_cert_kind k);
/* The 16 GUID bytes of a known kind; NULL for KD_CERT_OTHER. */
const uint8_t *kd_cert_kind_guid(enum kd_cert_kind k);
/* The kind of a GUID (KD_CERT_OTHER if unknown). */
enum kd_cert_kind kd_cert_kind_from_guid(const uint8_t guid[16]);

#endif
