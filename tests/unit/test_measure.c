/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: SEV-SNP launch digest against sev-snp-measure's own vectors,
 * its step-by-step trace, VMM variants, vCPU signatures, and the OVMF
 * footer/metadata parser on garbled images.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/measure.h"
#include "keyd/util.h"
#include "helpers/vg.h"

#define REAL_OVMF "/usr/share/OVMF/OVMF_CODE_4M.fd"

static char vdir[2048];

static const char *vpath(const char *name)
{
	static char buf[4][4096];
	static int i;
	char *b = buf[i++ & 3];

	ck_assert_uint_lt(strlen(name), 256);
	snprintf(b, sizeof(buf[0]), "%.2047s/measure/%.255s", vdir, name);
	return b;
}

static const char *amdsev(void)
{
	return vpath("ovmf_AmdSev_suffix.bin");
}

static void unhex48(const char *s, uint8_t out[KD_LD_SIZE])
{
	ck_assert_int_eq(kd_unhex(s, out, KD_LD_SIZE), 0);
}

/* A parameter set for the AmdSev fixture with the test_snp_default inputs. */
static struct kd_measure_params base_params(void)
{
	struct kd_measure_params p = {
		.ovmf_path = amdsev(),
		.kernel_path = "/dev/null",
		.initrd_path = "/dev/null",
		.append = "console=ttyS0 loglevel=7",
		.vcpus = 1,
		.vcpu_sig = 0x800f12,
		.guest_features = 0x21,
		.vmm = KD_VMM_QEMU,
	};
	return p;
}

/* ----------------------------------------------------------------- vectors */

START_TEST(vectors_reproduce)
{
	json_object *root = json_object_from_file(vpath("cases.json")), *cases;
	size_t n;

	ck_assert_msg(root, "cannot read cases.json");
	ck_assert(json_object_object_get_ex(root, "cases", &cases));
	n = json_object_array_length(cases);
	ck_assert_uint_ge(n, 3);
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(cases, i), *f;
		struct kd_measure_params p = {.vmm = KD_VMM_QEMU};
		uint8_t want[KD_LD_SIZE], got[KD_LD_SIZE];
		uint64_t v;

		ck_assert(json_object_object_get_ex(c, "mode", &f));
		ck_assert_str_eq(json_object_get_string(f), "SEV_SNP");
		ck_assert(json_object_object_get_ex(c, "ovmf_file", &f));
		p.ovmf_path = vpath(json_object_get_string(f));
		ck_assert(json_object_object_get_ex(c, "vcpus", &f));
		p.vcpus = (unsigned)json_object_get_int(f);
		ck_assert(json_object_object_get_ex(c, "vcpu_sig", &f));
		ck_assert_int_eq(kd_parse_u64(json_object_get_string(f), UINT32_MAX, &v), 0);
		p.vcpu_sig = (uint32_t)v;
		ck_assert(json_object_object_get_ex(c, "guest_features", &f));
		ck_assert_int_eq(kd_parse_u64(json_object_get_string(f), UINT64_MAX, &v), 0);
		p.guest_features = v;
		/* null means not given; "/dev/null" is an empty file */
		if (json_object_object_get_ex(c, "kernel", &f) && f)
			p.kernel_path = json_object_get_string(f);
		if (json_object_object_get_ex(c, "initrd", &f) && f)
			p.initrd_path = json_object_get_string(f);
		if (json_object_object_get_ex(c, "append", &f) && f)
			p.append = json_object_get_string(f);
		ck_assert(json_object_object_get_ex(c, "expected", &f));
		unhex48(json_object_get_string(f), want);

		ck_assert_int_eq(kd_measure(&p, got), 0);
		ck_assert_msg(!memcmp(want, got, KD_LD_SIZE), "case %zu (%s) differs", i,
			      json_object_get_string(json_object_object_get(c, "test")));
	}
	json_object_put(root);
}
END_TEST

/* --------------------------------------------------------------- the trace */

struct step {
	unsigned type;
	uint64_t gpa;
	uint8_t contents[KD_LD_SIZE];
	uint8_t ld[KD_LD_SIZE];
};

struct rec {
	struct step s[512];
	size_t n;
};

static void record(void *arg, unsigned type, uint64_t gpa, const uint8_t contents[KD_LD_SIZE],
		   const uint8_t ld[KD_LD_SIZE])
{
	struct rec *r = arg;

	ck_assert_uint_lt(r->n, KD_ARRAY_SIZE(r->s));
	r->s[r->n].type = type;
	r->s[r->n].gpa = gpa;
	memcpy(r->s[r->n].contents, contents, KD_LD_SIZE);
	memcpy(r->s[r->n].ld, ld, KD_LD_SIZE);
	r->n++;
}

START_TEST(trace_matches_every_step)
{
	static struct rec r;
	struct kd_measure_params p = base_params();
	uint8_t out[KD_LD_SIZE];
	char line[1024];
	size_t i = 0;
	FILE *f;

	r.n = 0;
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &r), 0);
	f = fopen(vpath("trace_test_snp_default.txt"), "r");
	ck_assert_msg(f, "cannot open the trace");
	while (fgets(line, sizeof(line), f)) {
		unsigned type;
		unsigned long long gpa;
		char ldhex[97];
		uint8_t ld[KD_LD_SIZE];
		const char *arrow = strstr(line, "-> LD=");

		if (strncmp(line, "type=", 5))
			continue;
		ck_assert_int_eq(sscanf(line, "type=%u gpa=%llx", &type, &gpa), 2);
		ck_assert_ptr_nonnull(arrow);
		ck_assert_int_eq(sscanf(arrow, "-> LD=%96s", ldhex), 1);
		unhex48(ldhex, ld);
		ck_assert_uint_lt(i, r.n);
		ck_assert_msg(r.s[i].type == type && r.s[i].gpa == gpa,
			      "step %zu: got type %u gpa 0x%llx, trace has type %u gpa 0x%llx", i,
			      r.s[i].type, (unsigned long long)r.s[i].gpa, type, gpa);
		ck_assert_msg(!memcmp(r.s[i].ld, ld, KD_LD_SIZE), "step %zu: running digest differs",
			      i);
		i++;
	}
	fclose(f);
	ck_assert_uint_eq(i, r.n);
	ck_assert_uint_ge(i, 30);
	ck_assert(!memcmp(out, r.s[r.n - 1].ld, KD_LD_SIZE));
}
END_TEST

/* ------------------------------------------------------ variants and inputs */

START_TEST(ovmf_hash_seed_equals_full)
{
	const char *imgs[] = {amdsev(), vpath("ovmf_OvmfX64_suffix.bin"), REAL_OVMF};

	for (size_t i = 0; i < KD_ARRAY_SIZE(imgs); i++) {
		struct kd_measure_params p = base_params();
		uint8_t seed[KD_LD_SIZE], a[KD_LD_SIZE], b[KD_LD_SIZE];

		if (access(imgs[i], R_OK))
			continue;
		p.ovmf_path = imgs[i];
		if (i > 0)
			p.kernel_path = p.initrd_path = p.append = NULL;
		for (int vmm = KD_VMM_QEMU; vmm <= KD_VMM_GCE; vmm++) {
			p.vmm = vmm;
			p.vcpus = 3;
			p.ovmf_hash = NULL;
			ck_assert_int_eq(kd_measure(&p, a), 0);
			ck_assert_int_eq(kd_measure_ovmf_hash(imgs[i], seed), 0);
			p.ovmf_hash = seed;
			ck_assert_int_eq(kd_measure(&p, b), 0);
			ck_assert(!memcmp(a, b, KD_LD_SIZE));
		}
	}
}
END_TEST

START_TEST(ovmf_hash_is_first_trace_step)
{
	static struct rec r;
	struct kd_measure_params p = base_params();
	uint8_t seed[KD_LD_SIZE], out[KD_LD_SIZE];

	r.n = 0;
	ck_assert_int_eq(kd_measure_ovmf_hash(amdsev(), seed), 0);
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &r), 0);
	ck_assert_uint_eq(r.s[0].type, 1);
	ck_assert_uint_eq(r.s[0].gpa, 0xfffff000u);
	ck_assert(!memcmp(seed, r.s[0].ld, KD_LD_SIZE));
}
END_TEST

static void digest(const struct kd_measure_params *p, uint8_t out[KD_LD_SIZE])
{
	int err = kd_measure(p, out);

	ck_assert_msg(err == 0, "kd_measure: %s", kd_err_detail(err));
}

START_TEST(every_input_changes_the_digest)
{
	struct kd_measure_params p = base_params();
	uint8_t d[12][KD_LD_SIZE];
	size_t n = 0;

	digest(&p, d[n++]);
	p.guest_features = 0x1;
	digest(&p, d[n++]);
	p.guest_features = 0x3;
	digest(&p, d[n++]);
	p.vcpus = 2;
	digest(&p, d[n++]);
	p.vcpus = 3;
	digest(&p, d[n++]);
	p.vcpu_sig = 0xa00f11;
	digest(&p, d[n++]);
	p.append = "console=ttyS0";
	digest(&p, d[n++]);
	p.initrd_path = NULL; /* SHA-256("") as well: /dev/null and none agree */
	digest(&p, d[n]);
	ck_assert(!memcmp(d[n], d[n - 1], KD_LD_SIZE));
	p.kernel_path = NULL;
	p.append = NULL;
	digest(&p, d[n++]);
	p.vmm = KD_VMM_EC2;
	digest(&p, d[n++]);
	p.vmm = KD_VMM_GCE;
	digest(&p, d[n++]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			ck_assert_msg(memcmp(d[i], d[j], KD_LD_SIZE), "digests %zu and %zu agree", i, j);
}
END_TEST

/* EC2 and GCE differ only in the vCPU signature being fixed. */
START_TEST(ec2_gce_ignore_vcpu_sig)
{
	for (int vmm = KD_VMM_EC2; vmm <= KD_VMM_GCE; vmm++) {
		struct kd_measure_params p = base_params();
		uint8_t a[KD_LD_SIZE], b[KD_LD_SIZE];

		p.vmm = vmm;
		p.vcpus = 2;
		digest(&p, a);
		p.vcpu_sig = 0xb00f00;
		digest(&p, b);
		ck_assert(!memcmp(a, b, KD_LD_SIZE));
	}
}
END_TEST

static size_t count_type(const struct rec *r, unsigned type)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->s[i].type == type;
	return n;
}

START_TEST(ec2_measures_cpuid_last)
{
	static struct rec q, e;
	struct kd_measure_params p = base_params();
	uint8_t out[KD_LD_SIZE];
	size_t vcpus = 4;

	p.vcpus = (unsigned)vcpus;
	q.n = e.n = 0;
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &q), 0);
	p.vmm = KD_VMM_EC2;
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &e), 0);
	ck_assert_uint_eq(q.n, e.n);
	/* QEMU: CPUID comes in table order, before SVSM_CAA and kernel hashes. */
	ck_assert_uint_ne(q.s[q.n - vcpus - 1].type, 6);
	/* EC2: the one CPUID page (0x80e000) is the last page before the VMSAs. */
	ck_assert_uint_eq(count_type(&e, 6), 1);
	ck_assert_uint_eq(e.s[e.n - vcpus - 1].type, 6);
	ck_assert_uint_eq(e.s[e.n - vcpus - 1].gpa, 0x80e000);
	for (size_t i = e.n - vcpus; i < e.n; i++) {
		ck_assert_uint_eq(e.s[i].type, 2);
		ck_assert_uint_eq(e.s[i].gpa, 0xFFFFFFFFF000ull);
	}
}
END_TEST

START_TEST(gce_sec_mem_unmeasured)
{
	static struct rec r;
	struct kd_measure_params p = base_params();
	uint8_t out[KD_LD_SIZE];

	p.vmm = KD_VMM_GCE;
	p.kernel_path = p.initrd_path = p.append = NULL;
	r.n = 0;
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &r), 0);
	/* SEC_MEM 0x9000 + 0x3000 + 0xf000 = 27 pages; ZERO: SVSM_CAA + hashes. */
	ck_assert_uint_eq(count_type(&r, 4), 27);
	ck_assert_uint_eq(count_type(&r, 3), 2);
	ck_assert_uint_eq(count_type(&r, 5), 1);
	ck_assert_uint_eq(count_type(&r, 6), 1);
}
END_TEST

START_TEST(vcpu_type_names)
{
	static const struct {
		const char *name;
		uint32_t sig;
	} t[] = {
		{"EPYC", 0x800f12},          {"EPYC-v1", 0x800f12},      {"EPYC-v2", 0x800f12},
		{"EPYC-IBPB", 0x800f12},     {"EPYC-v3", 0x800f12},      {"EPYC-v4", 0x800f12},
		{"EPYC-Rome", 0x830f10},     {"EPYC-Rome-v1", 0x830f10}, {"EPYC-Rome-v2", 0x830f10},
		{"EPYC-Rome-v3", 0x830f10},  {"EPYC-Milan", 0xa00f11},   {"EPYC-Milan-v1", 0xa00f11},
		{"EPYC-Milan-v2", 0xa00f11}, {"EPYC-Genoa", 0xa10f10},   {"EPYC-Genoa-v1", 0xa10f10},
		{"EPYC-Turin", 0xb00f00},
	};
	uint32_t sig = 0x1234;

	for (size_t i = 0; i < KD_ARRAY_SIZE(t); i++) {
		ck_assert_int_eq(kd_vcpu_sig_from_name(t[i].name, &sig), 0);
		ck_assert_msg(sig == t[i].sig, "%s: 0x%x", t[i].name, sig);
	}
	ck_assert_uint_eq(kd_vcpu_sig(23, 1, 2), 0x800f12);
	ck_assert_uint_eq(kd_vcpu_sig(6, 0x55, 7), 0x50657);
	sig = 0x1234;
	ck_assert_int_eq(kd_vcpu_sig_from_name("EPYC-v5", &sig), KD_ENOENT);
	ck_assert_int_eq(kd_vcpu_sig_from_name("epyc-milan", &sig), KD_ENOENT);
	ck_assert_int_eq(kd_vcpu_sig_from_name("", &sig), KD_ENOENT);
	ck_assert_uint_eq(sig, 0x1234);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ENOENT), "unknown vCPU type"));
}
END_TEST

/* --------------------------------------------------- refusals of bad input */

START_TEST(kernel_needs_kernel_hashes_section)
{
	struct kd_measure_params p = base_params();
	uint8_t out[KD_LD_SIZE];

	p.ovmf_path = vpath("ovmf_OvmfX64_suffix.bin");
	ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "SNP_KERNEL_HASHES"));
	p.kernel_path = p.initrd_path = p.append = NULL;
	ck_assert_int_eq(kd_measure(&p, out), 0);
	if (access(REAL_OVMF, R_OK) == 0) {
		p.ovmf_path = REAL_OVMF;
		ck_assert_int_eq(kd_measure(&p, out), 0);
		p.kernel_path = "/dev/null";
		ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
	}
}
END_TEST

START_TEST(bad_params_refused)
{
	struct kd_measure_params p = base_params();
	uint8_t out[KD_LD_SIZE];

	p.vcpus = 0;
	ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
	p.vcpus = KD_MEASURE_MAX_VCPUS + 1;
	ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "vCPU count 4097"));
	p.vcpus = KD_MEASURE_MAX_VCPUS;
	ck_assert_int_eq(kd_measure(&p, out), 0);
	p = base_params();
	p.kernel_path = NULL;
	ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EINVAL), "without a kernel"));
	p = base_params();
	p.kernel_path = "/nonexistent/vmlinuz";
	ck_assert_int_eq(kd_measure(&p, out), KD_ENOENT);
	p = base_params();
	p.ovmf_path = "/nonexistent/OVMF.fd";
	ck_assert_int_eq(kd_measure(&p, out), KD_ENOENT);
	p.ovmf_path = NULL;
	ck_assert_int_eq(kd_measure(&p, out), KD_EINVAL);
}
END_TEST

static uint8_t *load_fixture(size_t *len)
{
	uint8_t *buf = NULL;

	ck_assert_int_eq(kd_read_file(amdsev(), 1 << 20, &buf, len), 0);
	ck_assert_uint_eq(*len, 4096);
	return buf;
}

static size_t find_guid_data(const uint8_t *buf, size_t len, const uint8_t guid[16])
{
	for (size_t i = 0; i + 16 <= len; i++)
		if (!memcmp(buf + i, guid, 16))
			return i - 2; /* the entry's u16 size; its data ends here */
	ck_abort_msg("GUID not in fixture");
	return 0;
}

static const uint8_t meta_guid[16] = {0x66, 0x65, 0x88, 0xdc, 0x4a, 0x98, 0x98, 0x47,
				      0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc};
static const uint8_t reset_guid[16] = {0xde, 0x71, 0xf7, 0x00, 0x7e, 0x1a, 0xcb, 0x4f,
				       0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Apply one defect to a fresh copy; expect err and a detail containing msg. */
static void expect_parse(int defect, int want, const char *msg)
{
	struct kd_ovmf_info info;
	size_t len;
	_kd_free_ uint8_t *b = load_fixture(&len);
	size_t meta = find_guid_data(b, len, meta_guid);
	size_t hdr = len - kd_get_le32(b + meta - 4);
	size_t len2 = len;
	int err;

	switch (defect) {
	case 0: len2 = 100; break;                                  /* truncated */
	case 1: b[len - 40] ^= 0x01; break;                         /* footer GUID */
	case 2: put32(b + meta - 4, 0x2000); break;                 /* offset outside */
	case 3: put32(b + meta - 4, 8); break;                      /* header cut by end */
	case 4: put32(b + hdr + 12, 0xffffffffu); break;            /* item count huge */
	case 5: b[hdr] = 'X'; break;                                /* signature */
	case 6: put32(b + hdr + 8, 2); break;                       /* version */
	case 7: put32(b + hdr + 16 + 8, 7); break;                  /* section type */
	case 8: put32(b + hdr + 16 + 4, 0x1234); break;             /* section size */
	case 9: kd_put_le16(b + len - 50, 0xffff); break;           /* footer size */
	case 10: kd_put_le16(b + find_guid_data(b, len, reset_guid), 0x7fff); break;
	case 11: put32(b + hdr + 4, 0x100000); break;               /* metadata size */
	case 12: memset(b + find_guid_data(b, len, reset_guid) + 2, 0, 16); break;
	case 13: kd_put_le16(b + len - 50, 0x88 - 1); break;        /* stray bytes */
	}
	err = kd_ovmf_parse(b, len2, &info);
	ck_assert_msg(err == want, "defect %d: got %d (%s)", defect, err, kd_err_detail(err));
	ck_assert_msg(strstr(kd_err_detail(err), msg), "defect %d: detail \"%s\" lacks \"%s\"",
		      defect, kd_err_detail(err), msg);
	ck_assert_ptr_null(strchr(kd_err_detail(err), '\n'));
}

START_TEST(garbled_ovmf_refused)
{
	expect_parse(0, KD_EMALFORMED, "not a multiple of 4 KiB");
	expect_parse(1, KD_EMALFORMED, "footer table GUID not found");
	expect_parse(2, KD_EMALFORMED, "points outside the OVMF image");
	expect_parse(3, KD_EMALFORMED, "points outside the OVMF image");
	expect_parse(4, KD_EMALFORMED, "item count 4294967295 does not fit");
	expect_parse(5, KD_EMALFORMED, "signature is not \"ASEV\"");
	expect_parse(6, KD_EUNSUPP, "version 2 is not 1");
	expect_parse(7, KD_EMALFORMED, "unknown type 0x7");
	expect_parse(8, KD_EMALFORMED, "not a multiple of 4 KiB");
	expect_parse(9, KD_EMALFORMED, "runs before the start of the image");
	expect_parse(10, KD_EMALFORMED, "has bad size");
	expect_parse(11, KD_EMALFORMED, "does not fit in the OVMF image");
	expect_parse(12, KD_EMALFORMED, "no SEV-ES reset block");
	expect_parse(13, KD_EMALFORMED, "bad size");
}
END_TEST

START_TEST(parse_fixture_fields)
{
	struct kd_ovmf_info info;
	size_t len;
	_kd_free_ uint8_t *b = load_fixture(&len);
	static const struct kd_ovmf_section want[] = {
		{0x800000, 0x9000, 1}, {0x80a000, 0x3000, 1}, {0x80d000, 0x1000, 2},
		{0x80e000, 0x1000, 3}, {0x80f000, 0x1000, 4}, {0x810000, 0x1000, 0x10},
		{0x811000, 0xf000, 1},
	};

	ck_assert_int_eq(kd_ovmf_parse(b, len, &info), 0);
	ck_assert_uint_eq(info.gpa, 0xfffff000u);
	ck_assert_uint_eq(info.reset_eip, 0x80b004);
	ck_assert_int_eq(info.has_hash_table, 1);
	ck_assert_uint_eq(info.hash_table_gpa, 0x810c00);
	ck_assert_uint_eq(info.hash_table_size, 0x400);
	ck_assert_uint_eq(info.n_sections, KD_ARRAY_SIZE(want));
	for (size_t i = 0; i < KD_ARRAY_SIZE(want); i++) {
		ck_assert_uint_eq(info.sections[i].gpa, want[i].gpa);
		ck_assert_uint_eq(info.sections[i].size, want[i].size);
		ck_assert_uint_eq(info.sections[i].type, want[i].type);
	}
}
END_TEST

/* Every single-bit flip in the image must parse or fail cleanly (ASan run;
 * every bit of a rotating 1-in-KD_VG_STRIDE sample of bytes under valgrind,
 * where each phase still yields >= 8 refusals and >= 840 accepts). */
START_TEST(bit_flips_never_crash)
{
	struct kd_ovmf_info info;
	size_t len, ok = 0, bad = 0;
	_kd_free_ uint8_t *b = load_fixture(&len);

	for (size_t i = kd_vg_first(); i < len; i += kd_vg_stride())
		for (int bit = 0; bit < 8; bit++) {
			int err;

			b[i] ^= (uint8_t)(1u << bit);
			err = kd_ovmf_parse(b, len, &info);
			b[i] ^= (uint8_t)(1u << bit);
			if (err == 0) {
				ok++;
				ck_assert_uint_le(info.n_sections, KD_OVMF_MAX_SECTIONS);
			} else {
				bad++;
				ck_assert(err == KD_EMALFORMED || err == KD_EUNSUPP);
			}
		}
	ck_assert_uint_gt(bad, 100 / kd_vg_stride());
	ck_assert_uint_gt(ok, 100 / kd_vg_stride());
}
END_TEST

/* ------------------------------------------------- real-size kernel/initrd */

static char *make_file(size_t size, uint8_t seed, uint8_t **ret_buf)
{
	char *path = strdup("/tmp/keyd-measure-XXXXXX");
	uint8_t *buf = malloc(size);
	int fd;

	ck_assert_ptr_nonnull(path);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 131 + seed + (i >> 12));
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
	close(fd);
	*ret_buf = buf;
	return path;
}

START_TEST(large_kernel_initrd_hashed_exactly)
{
	static struct rec r;
	const size_t ksz = 7u << 20, isz = (30u << 20) + 123;
	struct kd_measure_params p = base_params();
	uint8_t *kbuf, *ibuf, page[4096], want[KD_LD_SIZE], out[KD_LD_SIZE], ht[176];
	char *kpath = make_file(ksz, 1, &kbuf), *ipath = make_file(isz, 2, &ibuf);
	char line[1024];
	struct timespec t0, t1;
	double secs;
	size_t k = SIZE_MAX;
	unsigned int n;
	const char *tag = "# hashes table (padded, 176 bytes): ";
	FILE *f;

	/* The hashes table template from sev-snp-measure's trace of case 1
	 * (empty kernel/initrd): swap in the hashes of the big files. */
	f = fopen(vpath("trace_test_snp_default.txt"), "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, tag, strlen(tag))) {
			line[strcspn(line, "\n")] = 0;
			ck_assert_int_eq(kd_unhex(line + strlen(tag), ht, sizeof(ht)), 0);
		}
	fclose(f);
	/* entries {GUID, u16, sha256}: cmdline at 18, initrd at 68, kernel at 118 */
	ck_assert_int_eq(EVP_Digest(ibuf, isz, ht + 68 + 18, &n, EVP_sha256(), NULL), 1);
	ck_assert_int_eq(EVP_Digest(kbuf, ksz, ht + 118 + 18, &n, EVP_sha256(), NULL), 1);
	memset(page, 0, sizeof(page));
	memcpy(page + 0xc00, ht, sizeof(ht));
	ck_assert_int_eq(EVP_Digest(page, sizeof(page), want, &n, EVP_sha384(), NULL), 1);

	p.kernel_path = kpath;
	p.initrd_path = ipath;
	r.n = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(kd_measure_traced(&p, out, record, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* A speed bound means nothing under valgrind (tests/run-valgrind.sh). */
	if (!getenv("KEYD_UNDER_VALGRIND"))
		ck_assert_msg(secs < 5.0, "37 MB took %.2f s", secs);
	for (size_t i = 0; i < r.n; i++)
		if (r.s[i].gpa == 0x810000)
			k = i;
	ck_assert_uint_ne(k, SIZE_MAX);
	ck_assert_uint_eq(r.s[k].type, 1);
	ck_assert_msg(!memcmp(r.s[k].contents, want, KD_LD_SIZE),
		      "kernel-hashes page differs from the independently built one");
	unlink(kpath);
	unlink(ipath);
	free(kpath);
	free(ipath);
	free(kbuf);
	free(ibuf);
}
END_TEST

static Suite *measure_suite(void)
{
	Suite *s = suite_create("measure");
	TCase *tc = tcase_create("measure");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, vectors_reproduce);
	tcase_add_test(tc, trace_matches_every_step);
	tcase_add_test(tc, ovmf_hash_seed_equals_full);
	tcase_add_test(tc, ovmf_hash_is_first_trace_step);
	tcase_add_test(tc, every_input_changes_the_digest);
	tcase_add_test(tc, ec2_gce_ignore_vcpu_sig);
	tcase_add_test(tc, ec2_measures_cpuid_last);
	tcase_add_test(tc, gce_sec_mem_unmeasured);
	tcase_add_test(tc, vcpu_type_names);
	tcase_add_test(tc, kernel_needs_kernel_hashes_section);
	tcase_add_test(tc, bad_params_refused);
	tcase_add_test(tc, garbled_ovmf_refused);
	tcase_add_test(tc, parse_fixture_fields);
	tcase_add_test(tc, bit_flips_never_crash);
	tcase_add_test(tc, large_kernel_initrd_hashed_exactly);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *v = getenv("KEYD_VECTORS");
	SRunner *sr;
	int failed;

	snprintf(vdir, sizeof(vdir), "%s", v && *v ? v : KD_TEST_VECTORS);
	sr = srunner_create(measure_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
