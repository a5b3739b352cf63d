/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OVMF footer table and SEV metadata parser (docs/snp-facts.md §4.2 step 2).
 *
 * The image is untrusted input: a release manifest may be computed from a
 * firmware file that came from anywhere, and the fuzzer feeds this directly.
 * Every read goes through kd_cursor; every size is checked by subtraction
 * against what is left before it is used as an offset.
 */
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/measure.h"
#include "measure/internal.h"

#define FOOTER_ENTRY_HDR 18u  /* u16 size + GUID */
/* The table ends 32 bytes before the end of the image (reset vector area). */
#define FOOTER_TAIL 32u
#define METADATA_HDR 16u
#define METADATA_ITEM 12u

const uint8_t kd_guid_ovmf_footer[16] =
	KD_GUID_LE(0x96b582de, 0x1fb2, 0x45f7, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d);
static const uint8_t guid_sev_es_reset[16] =
	KD_GUID_LE(0x00f771de, 0x1a7e, 0x4fcb, 0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e);
static const uint8_t guid_sev_hash_table[16] =
	KD_GUID_LE(0x7255371f, 0x3a3b, 0x4b04, 0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54);
static const uint8_t guid_sev_metadata[16] =
	KD_GUID_LE(0xdc886566, 0x984a, 0x4798, 0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc);

struct footer {
	int have_reset, have_hash, have_meta;
	uint32_t reset_eip, hash_gpa, hash_size, meta_off;
};

static int read_entry_u32(const uint8_t *data, size_t n, size_t idx, const char *what,
			  uint32_t *ret)
{
	struct kd_cursor c;

	kd_cur_init(&c, data, n);
	if (kd_cur_seek(&c, idx * 4) < 0 || kd_cur_u32(&c, ret) < 0)
		return kd_fail(KD_EMALFORMED, "OVMF footer entry %s is too short (%zu bytes)",
			       what, n);
	return 0;
}

static int record_entry(struct footer *f, const uint8_t *guid, const uint8_t *data, size_t n)
{
	/* Later (lower-address) duplicates overwrite earlier ones, as in
	 * sev-snp-measure's dict; unknown GUIDs are other firmware's business. */
	if (!memcmp(guid, guid_sev_es_reset, 16)) {
		f->have_reset = 1;
		return read_entry_u32(data, n, 0, "SEV-ES reset block", &f->reset_eip);
	}
	if (!memcmp(guid, guid_sev_hash_table, 16)) {
		int err = read_entry_u32(data, n, 0, "SEV hash table", &f->hash_gpa);

		if (err < 0)
			return err;
		f->have_hash = 1;
		return read_entry_u32(data, n, 1, "SEV hash table", &f->hash_size);
	}
	if (!memcmp(guid, guid_sev_metadata, 16)) {
		f->have_meta = 1;
		return read_entry_u32(data, n, 0, "SEV metadata", &f->meta_off);
	}
	return 0;
}

static int parse_footer(const uint8_t *buf, size_t len, struct footer *f)
{
	struct kd_cursor c;
	const uint8_t *guid;
	uint16_t full;
	size_t start, end;

	kd_cur_init(&c, buf, len);
	if (len < FOOTER_TAIL + FOOTER_ENTRY_HDR)
		return kd_fail(KD_EMALFORMED, "OVMF image too short for a footer table");
	end = len - FOOTER_TAIL - FOOTER_ENTRY_HDR;
	if (kd_cur_seek(&c, end) < 0 || kd_cur_u16(&c, &full) < 0 ||
	    kd_cur_ptr(&c, &guid, 16) < 0)
		return kd_fail(KD_EMALFORMED, "OVMF footer table truncated");
	if (memcmp(guid, kd_guid_ovmf_footer, 16))
		return kd_fail(KD_EMALFORMED, "OVMF footer table GUID not found");
	if (full < FOOTER_ENTRY_HDR)
		return kd_fail(KD_EMALFORMED, "OVMF footer table size %u is smaller than its header",
			       full);
	if (full - FOOTER_ENTRY_HDR > end)
		return kd_fail(KD_EMALFORMED,
			       "OVMF footer table size %u runs before the start of the image", full);
	start = end - (full - FOOTER_ENTRY_HDR);

	/* Entries are laid out data..., u16 size, GUID and walked backwards
	 * from the footer; each size covers its own header. */
	while (end - start >= FOOTER_ENTRY_HDR) {
		const uint8_t *data;
		uint16_t esize;
		int err;

		if (kd_cur_seek(&c, end - FOOTER_ENTRY_HDR) < 0 || kd_cur_u16(&c, &esize) < 0 ||
		    kd_cur_ptr(&c, &guid, 16) < 0)
			return kd_fail(KD_EMALFORMED, "OVMF footer entry truncated");
		if (esize < FOOTER_ENTRY_HDR || esize > end - start)
			return kd_fail(KD_EMALFORMED,
				       "OVMF footer entry at 0x%zx has bad size %u (table has %zu bytes left)",
				       end - FOOTER_ENTRY_HDR, esize, end - start);
		if (kd_cur_seek(&c, end - esize) < 0 ||
		    kd_cur_ptr(&c, &data, esize - FOOTER_ENTRY_HDR) < 0)
			return kd_fail(KD_EMALFORMED, "OVMF footer entry truncated");
		err = record_entry(f, guid, data, esize - FOOTER_ENTRY_HDR);
		if (err < 0)
			return err;
		end -= esize;
	}
	if (end != start)
		return kd_fail(KD_EMALFORMED, "OVMF footer table has %zu stray bytes", end - start);
	return 0;
}

static int check_section(const struct kd_ovmf_section *s, unsigned i)
{
	switch (s->type) {
	case KD_OVMF_SEC_MEM:
	case KD_OVMF_SVSM_CAA:
	case KD_OVMF_KERNEL_HASHES:
		/* Measured page by page over their size (zero or unmeasured pages). */
		if (s->size % KD_PAGE_SIZE)
			return kd_fail(KD_EMALFORMED,
				       "SEV metadata section %u size 0x%x is not a multiple of 4 KiB",
				       i, s->size);
		break;
	case KD_OVMF_SECRETS:
	case KD_OVMF_CPUID:
		break;
	default:
		return kd_fail(KD_EMALFORMED, "SEV metadata section %u has unknown type 0x%x", i,
			       s->type);
	}
	/* The PAGE_INFO GPA is 64-bit, but a section wrapping past 4 GiB is nonsense. */
	if ((uint64_t)s->gpa + s->size > UINT64_C(0x100000000))
		return kd_fail(KD_EMALFORMED, "SEV metadata section %u wraps past 4 GiB", i);
	return 0;
}

static int parse_metadata(const uint8_t *buf, size_t len, uint32_t off, struct kd_ovmf_info *info)
{
	struct kd_cursor c;
	const uint8_t *sig;
	uint32_t size, version, num;
	size_t start;

	/* The footer gives the header's distance from the end of the image. */
	if (off > len || off < METADATA_HDR)
		return kd_fail(KD_EMALFORMED,
			       "SEV metadata offset 0x%x points outside the OVMF image (%zu bytes)",
			       off, len);
	start = len - off;
	kd_cur_init(&c, buf, len);
	if (kd_cur_seek(&c, start) < 0 || kd_cur_ptr(&c, &sig, 4) < 0 ||
	    kd_cur_u32(&c, &size) < 0 || kd_cur_u32(&c, &version) < 0 ||
	    kd_cur_u32(&c, &num) < 0)
		return kd_fail(KD_EMALFORMED, "SEV metadata header truncated");
	if (memcmp(sig, "ASEV", 4))
		return kd_fail(KD_EMALFORMED, "SEV metadata signature is not \"ASEV\"");
	if (version != 1)
		return kd_fail(KD_EUNSUPP, "SEV metadata version %u is not 1", version);
	if (size < METADATA_HDR || size > off)
		return kd_fail(KD_EMALFORMED,
			       "SEV metadata size 0x%x does not fit in the OVMF image", size);
	if (num > (size - METADATA_HDR) / METADATA_ITEM)
		return kd_fail(KD_EMALFORMED,
			       "SEV metadata item count %u does not fit its size 0x%x", num, size);
	if (num > KD_OVMF_MAX_SECTIONS)
		return kd_fail(KD_EUNSUPP, "SEV metadata has %u sections, more than %u", num,
			       KD_OVMF_MAX_SECTIONS);
	for (uint32_t i = 0; i < num; i++) {
		struct kd_ovmf_section *s = &info->sections[i];
		int err;

		if (kd_cur_u32(&c, &s->gpa) < 0 || kd_cur_u32(&c, &s->size) < 0 ||
		    kd_cur_u32(&c, &s->type) < 0)
			return kd_fail(KD_EMALFORMED, "SEV metadata section %u truncated", i);
		err = check_section(s, i);
		if (err < 0)
			return err;
	}
	info->n_sections = num;
	return 0;
}

int kd_ovmf_parse(const uint8_t *buf, size_t len, struct kd_ovmf_info *ret)
{
	struct kd_ovmf_info info;
	struct footer f;
	int err;

	memset(&info, 0, sizeof(info));
	memset(&f, 0, sizeof(f));
	/* The image is mapped to end at 4 GiB and measured in whole pages. */
	if (len == 0 || len % KD_PAGE_SIZE || len > KD_OVMF_MAX_SIZE)
		return kd_fail(KD_EMALFORMED,
			       "OVMF image size %zu is not a multiple of 4 KiB up to %u MiB "
			       "(truncated file?)",
			       len, KD_OVMF_MAX_SIZE >> 20);
	info.gpa = UINT64_C(0x100000000) - len;
	err = parse_footer(buf, len, &f);
	if (err < 0)
		return err;
	if (!f.have_reset)
		return kd_fail(KD_EMALFORMED, "OVMF footer table has no SEV-ES reset block");
	/* Pre-2023 OVMF (Debian 12's edk2 2022.11) has no SEV metadata: then
	 * only the image pages and VMSAs are measured, as sev-snp-measure does. */
	if (f.have_meta) {
		err = parse_metadata(buf, len, f.meta_off, &info);
		if (err < 0)
			return err;
	}
	info.reset_eip = f.reset_eip;
	info.has_hash_table = f.have_hash;
	info.hash_table_gpa = f.hash_gpa;
	info.hash_table_size = f.hash_size;
	*ret = info;
	return 0;
}
