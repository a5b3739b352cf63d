/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: the ATTESTATION_REPORT codec against every real, AMD-signed
 * report in $KEYD_VECTORS/snp (expected values read from each folder's
 * fields.txt at run time), plus truncation, reserved ranges, bit flips,
 * version handling, encode round trips and the TCB layouts.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"

#define MAX_VECTORS 16

struct vector {
	char name[64];
	char dir[800];
	uint8_t bin[KD_REPORT_SIZE];
};

static struct vector vecs[MAX_VECTORS];
static size_t nvecs;

static const char *vectors_root(void)
{
	const char *v = getenv("KEYD_VECTORS");

	return v && *v ? v : KD_TEST_VECTORS;
}

static int cmp_vec(const void *a, const void *b)
{
	return strcmp(((const struct vector *)a)->name, ((const struct vector *)b)->name);
}

/* Every $KEYD_VECTORS/snp/<dir>/report.bin. */
static void load_vectors(void)
{
	char path[512];
	struct dirent *d;
	DIR *dir;

	if (nvecs)
		return;
	snprintf(path, sizeof(path), "%.400s/snp", vectors_root());
	dir = opendir(path);
	ck_assert_msg(dir != NULL, "cannot open %s", path);
	while ((d = readdir(dir)) != NULL) {
		struct vector *v = &vecs[nvecs];
		uint8_t *buf = NULL;
		size_t len = 0;
		char file[800];

		if (d->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%.500s/%.255s/report.bin", path, d->d_name);
		if (kd_read_file(file, 1 << 16, &buf, &len) < 0)
			continue; /* chain-only folders (turin, amd-roots) */
		ck_assert_uint_eq(len, KD_REPORT_SIZE);
		ck_assert_uint_lt(nvecs, MAX_VECTORS);
		snprintf(v->name, sizeof(v->name), "%.63s", d->d_name);
		snprintf(v->dir, sizeof(v->dir), "%.500s/%.255s", path, d->d_name);
		memcpy(v->bin, buf, KD_REPORT_SIZE);
		free(buf);
		nvecs++;
	}
	closedir(dir);
	qsort(vecs, nvecs, sizeof(vecs[0]), cmp_vec);
	/* The README lists six folders with a report. */
	ck_assert_uint_ge(nvecs, 6);
}

static const struct vector *vec(const char *name)
{
	load_vectors();
	for (size_t i = 0; i < nvecs; i++)
		if (!strcmp(vecs[i].name, name))
			return &vecs[i];
	ck_abort_msg("vector %s missing", name);
	return NULL;
}

/* ------------------------------------------------------------ fields.txt */

static void expect_hex(const char *ctx, const char *val, const uint8_t *got, size_t n)
{
	uint8_t want[64];
	size_t wl = 0;

	ck_assert_msg(kd_unhex_var(val, want, sizeof(want), &wl) == 0, "%s: bad hex '%s'", ctx,
		      val);
	ck_assert_msg(wl == n, "%s: listed %zu bytes, field has %zu", ctx, wl, n);
	ck_assert_msg(memcmp(want, got, n) == 0, "%s: value differs", ctx);
}

/*
 * fields.txt prints R and S as big-endian integers (48 bytes for P-384);
 * the report holds them little-endian, zero-extended to 72 bytes.
 */
static void expect_sig(const char *ctx, const char *val, const uint8_t *got)
{
	uint8_t want[72];
	size_t wl = 0;

	ck_assert_msg(kd_unhex_var(val, want, sizeof(want), &wl) == 0, "%s: bad hex", ctx);
	ck_assert_uint_ge(wl, 40);
	for (size_t i = 0; i < wl; i++)
		ck_assert_msg(got[i] == want[wl - 1 - i], "%s: byte %zu differs", ctx, i);
	for (size_t i = wl; i < 72; i++)
		ck_assert_msg(got[i] == 0, "%s: byte %zu beyond the integer not zero", ctx, i);
}

static uint64_t num(const char *ctx, const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	ck_assert_msg(end != s, "%s: not a number '%s'", ctx, s);
	return v;
}

/* Value of "key=N" inside s (N decimal, or "a.b" for abi). */
static long kv(const char *ctx, const char *s, const char *key)
{
	char pat[40];
	const char *p;

	snprintf(pat, sizeof(pat), "%s=", key);
	for (p = strstr(s, pat); p; p = strstr(p + 1, pat))
		if (p == s || p[-1] == ' ' || p[-1] == '(')
			return strtol(p + strlen(pat), NULL, 10);
	ck_abort_msg("%s: no %s in '%s'", ctx, key, s);
	return -1;
}

static void expect_tcb(const char *ctx, const char *val, uint64_t raw, enum kd_product p)
{
	char hex[KD_TCB_HEX_LEN];
	struct kd_tcb t;

	kd_tcb_hex(raw, hex);
	ck_assert_msg(strncmp(val, hex, 16) == 0 && val[16] == ' ', "%s: %s vs %s", ctx, val, hex);
	kd_tcb_decode(raw, p, &t);
	ck_assert_int_eq(kv(ctx, val, "bl"), t.bootloader);
	ck_assert_int_eq(kv(ctx, val, "tee"), t.tee);
	ck_assert_int_eq(kv(ctx, val, "snp"), t.snp);
	ck_assert_int_eq(kv(ctx, val, "ucode"), t.microcode);
	if (strstr(val, "fmc="))
		ck_assert_int_eq(kv(ctx, val, "fmc"), t.fmc);
}

static bool range_zero(const uint8_t *b, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (b[i])
			return false;
	return true;
}

/* Compare one fields.txt line; returns false for an unknown line. */
static bool check_line(const struct vector *v, const struct kd_report *r, const char *off,
		       const char *name, const char *val)
{
	char ctx[160];
	unsigned long o;

	snprintf(ctx, sizeof(ctx), "%.40s %.20s %.60s", v->name, off, name);
	if (!strcmp(off, "0x208..0x2A0")) {
		ck_assert_str_eq(val, "True");
		ck_assert_msg(range_zero(v->bin, 0x208, 0x2A0), "%s", ctx);
		return true;
	}
	if (!strcmp(off, "0x330..0x4A0")) {
		ck_assert_str_eq(val, "True");
		ck_assert_msg(range_zero(v->bin, 0x330, 0x4A0), "%s", ctx);
		return true;
	}
	o = strtoul(off, NULL, 16);
	switch (o) {
	case 0x000:
		ck_assert_uint_eq(num(ctx, val), r->version);
		break;
	case 0x004:
		ck_assert_uint_eq(num(ctx, val), r->guest_svn);
		break;
	case 0x008: {
		const char *abi = strstr(val, "abi=");

		ck_assert_uint_eq(num(ctx, val), r->policy);
		ck_assert_ptr_nonnull(abi);
		ck_assert_int_eq(strtol(abi + 4, NULL, 10), (r->policy >> 8) & 0xff);
		ck_assert_int_eq(strtol(strchr(abi, '.') + 1, NULL, 10), r->policy & 0xff);
		ck_assert_int_eq(kv(ctx, val, "smt"), !!(r->policy & KD_POLICY_SMT));
		ck_assert_int_eq(kv(ctx, val, "rsvd17"), !!(r->policy & KD_POLICY_RSVD1));
		ck_assert_int_eq(kv(ctx, val, "migrate_ma"), !!(r->policy & KD_POLICY_MIGRATE_MA));
		ck_assert_int_eq(kv(ctx, val, "debug"), !!(r->policy & KD_POLICY_DEBUG));
		ck_assert_int_eq(kv(ctx, val, "single_socket"),
				 !!(r->policy & KD_POLICY_SINGLE_SOCKET));
		break;
	}
	case 0x010:
		expect_hex(ctx, val, r->family_id, 16);
		break;
	case 0x020:
		expect_hex(ctx, val, r->image_id, 16);
		break;
	case 0x030:
		ck_assert_uint_eq(num(ctx, val), r->vmpl);
		break;
	case 0x034:
		ck_assert_uint_eq(num(ctx, val), r->signature_algo);
		break;
	case 0x038:
		expect_tcb(ctx, val, r->current_tcb, r->product);
		break;
	case 0x040:
		ck_assert_uint_eq(num(ctx, val), r->platform_info);
		break;
	case 0x048:
		ck_assert_uint_eq(num(ctx, val), r->signer_info);
		ck_assert_int_eq(kv(ctx, val, "author_key_en"),
				 !!(r->signer_info & KD_SIGNER_AUTHOR_KEY_EN));
		ck_assert_int_eq(kv(ctx, val, "mask_chip_key"),
				 !!(r->signer_info & KD_SIGNER_MASK_CHIP_KEY));
		ck_assert_int_eq(kv(ctx, val, "signing_key"), r->signing_key);
		break;
	case 0x050:
		expect_hex(ctx, val, r->report_data, 64);
		break;
	case 0x090:
		expect_hex(ctx, val, r->measurement, 48);
		break;
	case 0x0C0:
		expect_hex(ctx, val, r->host_data, 32);
		break;
	case 0x0E0:
		expect_hex(ctx, val, r->id_key_digest, 48);
		break;
	case 0x110:
		expect_hex(ctx, val, r->author_key_digest, 48);
		break;
	case 0x140:
		expect_hex(ctx, val, r->report_id, 32);
		break;
	case 0x160:
		expect_hex(ctx, val, r->report_id_ma, 32);
		break;
	case 0x180:
		expect_tcb(ctx, val, r->reported_tcb, r->product);
		break;
	case 0x188: {
		unsigned f, m, s;

		ck_assert_int_eq(sscanf(val, "%x/%x/%x", &f, &m, &s), 3);
		ck_assert_uint_eq(f, r->cpuid_fam_id);
		ck_assert_uint_eq(m, r->cpuid_mod_id);
		ck_assert_uint_eq(s, r->cpuid_step);
		break;
	}
	case 0x1A0:
		expect_hex(ctx, val, r->chip_id, 64);
		break;
	case 0x1E0:
		expect_tcb(ctx, val, r->committed_tcb, r->product);
		break;
	case 0x1E8:
	case 0x1EC: {
		unsigned b, mi, ma, b2, mi2, ma2;

		ck_assert_int_eq(sscanf(val, "%u/%u/%u -> %u.%u.%u", &b, &mi, &ma, &ma2, &mi2, &b2),
				 6);
		ck_assert_uint_eq(b, b2);
		ck_assert_uint_eq(mi, mi2);
		ck_assert_uint_eq(ma, ma2);
		ck_assert_uint_eq(b, o == 0x1E8 ? r->current_build : r->committed_build);
		ck_assert_uint_eq(mi, o == 0x1E8 ? r->current_minor : r->committed_minor);
		ck_assert_uint_eq(ma, o == 0x1E8 ? r->current_major : r->committed_major);
		break;
	}
	case 0x1F0:
		expect_tcb(ctx, val, r->launch_tcb, r->product);
		break;
	case 0x1F8:
		ck_assert_uint_eq(num(ctx, val), r->launch_mit_vector);
		break;
	case 0x200:
		ck_assert_uint_eq(num(ctx, val), r->current_mit_vector);
		break;
	case 0x2A0:
		expect_sig(ctx, val, r->sig_r);
		break;
	case 0x2E8:
		expect_sig(ctx, val, r->sig_s);
		break;
	default:
		return false;
	}
	return true;
}

START_TEST(vectors_match_fields_txt)
{
	load_vectors();
	for (size_t i = 0; i < nvecs; i++) {
		const struct vector *v = &vecs[i];
		struct kd_report r;
		char path[900], line[512];
		unsigned checked = 0;
		FILE *f;

		ck_assert_msg(kd_report_parse(v->bin, KD_REPORT_SIZE, &r) == 0, "%s: %s", v->name,
			      kd_err_detail(KD_EMALFORMED));
		snprintf(path, sizeof(path), "%s/fields.txt", v->dir);
		f = fopen(path, "r");
		/* Later vectors carry their source project's own expected values instead
		 * (source_project_expectations); the first six all have a listing. */
		if (!f && access(path, F_OK) < 0 && errno == ENOENT) {
			ck_assert_msg(strncmp(v->name, "virtee-", 7) && strncmp(v->name, "yaxi-", 5) &&
					      strcmp(v->name, "go-sev-guest-milan") &&
					      strncmp(v->name, "trustee-milan", 13),
				      "%s lost its fields.txt", v->name);
			continue;
		}
		ck_assert_msg(f != NULL, "%s missing", path);
		while (fgets(line, sizeof(line), f)) {
			char *p = line, *off, *name, *val, *gap;

			line[strcspn(line, "\n")] = '\0';
			while (*p == ' ')
				p++;
			if (strncmp(p, "0x", 2))
				continue; /* the heading line */
			off = p;
			p += strcspn(p, " ");
			*p++ = '\0';
			name = p;
			gap = strstr(name, "  ");
			ck_assert_msg(gap != NULL, "%s: cannot split '%s'", v->name, line);
			*gap = '\0';
			val = gap + 2;
			while (*val == ' ')
				val++;
			ck_assert_msg(check_line(v, &r, off, name, val),
				      "%s: unknown fields.txt line %s %s", v->name, off, name);
			checked++;
		}
		fclose(f);
		/* 30 lines per report: every field and reserved tail of the layout. */
		ck_assert_msg(checked == 30, "%s: %u fields.txt lines checked", v->name, checked);
	}
}
END_TEST

/* Products and signers known from the README table. */
START_TEST(vectors_products_and_signers)
{
	struct kd_report r;

	ck_assert_int_eq(kd_report_parse(vec("yaxi-genoa-v3")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_GENOA);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VCEK);
	ck_assert_int_eq(kd_report_parse(vec("trustee-milan-vlek")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_MILAN);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VLEK);
	ck_assert_uint_eq(r.vmpl, 1);
	/* v2 with a full 64-byte CHIP_ID: Milan or Genoa, not guessable. */
	ck_assert_int_eq(kd_report_parse(vec("yaxi-genoa-v2-nocert")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_UNKNOWN);
	ck_assert_int_eq(kd_report_parse(vec("go-sev-guest-milan")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert(r.policy & KD_POLICY_DEBUG);
	ck_assert_int_eq(r.product, KD_PRODUCT_UNKNOWN);
}
END_TEST

/*
 * Values asserted by the source projects' own tests, for the vectors that
 * carry no fields.txt:
 *  - LIT-Protocol/sev-snp-utils src/guest/attestation/report.rs
 *    (attestation_report_file_test on resources/test/guest_report.bin): decode only;
 *  - microsoft/TEE-Attestation-Verification tests/common.rs: Milan, Genoa, Turin;
 *  - confidential-containers/trustee deps/verifier/src/az_snp_vtpm/mod.rs:
 *    evidence-genoa.json is a Genoa report inside an Azure HCL report;
 *  - edgelesssys/constellation internal/attestation/aws/snp/testdata/testdata.go:
 *    AKDigest is the REPORT_DATA of the VLEK-signed AWS report.
 */
static void expect_hexstr(const uint8_t *got, size_t n, const char *want)
{
	char h[2 * 72 + 1];

	kd_hex(got, n, h);
	ck_assert_str_eq(h, want);
}

START_TEST(source_project_expectations)
{
	struct kd_report r;
	uint8_t md[48];
	char h[97];

	/* LIT: every field its test asserts. */
	ck_assert_int_eq(kd_report_parse(vec("lit-milan-nocert")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert(EVP_Digest(vec("lit-milan-nocert")->bin, 672, md, NULL, EVP_sha384(), NULL));
	kd_hex(md, 48, h);
	ck_assert_str_eq(h, "8ac02cb042d3909a0e67ecc8a89a4869d6838f0c243a5e4d417757d6c06d10ae15d84d2b728fe80a355792f671afd6b4");
	ck_assert(EVP_Digest(vec("lit-milan-nocert")->bin, 672, md, NULL, EVP_sha256(), NULL));
	kd_hex(md, 32, h);
	ck_assert_str_eq(h, "365daa8187cc7678f057574561b00a60520bc315b957c2079675095603a1861a");
	ck_assert_uint_eq(r.version, 2);
	ck_assert_uint_eq(r.guest_svn, 0);
	ck_assert_uint_eq(r.policy, 0x30000);
	ck_assert_uint_eq(r.vmpl, 0);
	ck_assert_uint_eq(r.signature_algo, 1);
	ck_assert_uint_eq(r.platform_info, 0x1);
	{
		struct kd_tcb cur, rep, com, lau;

		kd_tcb_decode(r.current_tcb, KD_PRODUCT_MILAN, &cur);
		kd_tcb_decode(r.reported_tcb, KD_PRODUCT_MILAN, &rep);
		kd_tcb_decode(r.committed_tcb, KD_PRODUCT_MILAN, &com);
		kd_tcb_decode(r.launch_tcb, KD_PRODUCT_MILAN, &lau);
		ck_assert(cur.bootloader == 2 && cur.tee == 0 && cur.snp == 6 && cur.microcode == 115);
		ck_assert(rep.bootloader == 2 && rep.tee == 0 && rep.snp == 5 && rep.microcode == 115);
		ck_assert_uint_eq(com.raw, rep.raw);
		ck_assert_uint_eq(lau.raw, rep.raw);
	}
	expect_hexstr(r.report_data, 64, "e1c112ff908febc3b98b1693a6cd3564eaf8e5e6ca629d084d9f0eba99247cacdd72e369ff8941397c2807409ff66be64be908da17ad7b8a49a2a26c0e8086aa");
	expect_hexstr(r.measurement, 48, "7659528961bc689a43f5be14ed063fe1c26058e5a4f0bbbfd3944aa15032404c5afb731f7826c9a007f2ad63c813b04c");
	expect_hexstr(r.report_id, 32, "d1c1273910e39b8286661767afa497dd02465cc8e0a7082c04cf576169407e6e");
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(r.report_id_ma[i], 0xff);
	expect_hexstr(r.chip_id, 64, "9e1235cce6f3e507b66a9d3f2199a325cd0be17c6c50fd55c284ceff993dbf6c7e32fa16a76521bf6b78cc9ca482e572bde70e8c9f1bdfcb8267dea8e11ff77e");
	ck_assert(r.current_major == 1 && r.current_minor == 51 && r.current_build == 3);
	ck_assert(r.committed_major == 1 && r.committed_minor == 49 && r.committed_build == 6);
	expect_hexstr(r.sig_r, 72, "ad822d4e2c64aede8fecc4057f0754c1316a64d5c6e9aabcdf0d20889fb42a3bce443b561e820febd19519bb3e091b8d000000000000000000000000000000000000000000000000");
	expect_hexstr(r.sig_s, 72, "02cdeb225f047c25b8a2330bdcab6df7d4f1e773f6474787578e5ed753186b1747888d72b26c6aefa40e6357dca3cb92000000000000000000000000000000000000000000000000");

	/* Microsoft: one report per product, each VCEK-signed. */
	ck_assert_int_eq(kd_report_parse(vec("msft-genoa")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_GENOA);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VCEK);
	ck_assert_int_eq(kd_report_parse(vec("msft-turin")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_TURIN);
	ck_assert_uint_ge(r.version, 3);
	ck_assert_int_eq(kd_report_parse(vec("msft-milan")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VCEK);

	/* trustee: Azure's Genoa report. */
	ck_assert_int_eq(kd_report_parse(vec("trustee-azure-genoa")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_GENOA);

	/* constellation: the AWS report is VLEK-signed, chip ID masked, REPORT_DATA = AKDigest. */
	ck_assert_int_eq(kd_report_parse(vec("constellation-aws-vlek")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VLEK);
	expect_hexstr(r.report_data, 64, "87ab7caf510e1b3520dc3cceb64ee44128e10976fb0d3fc5e274699d8aaf506154af4c1de0a026b49fdf861e9ac75551551b3534d1c61369a3b08f5baed0db2f");
	for (int i = 0; i < 64; i++)
		ck_assert_uint_eq(r.chip_id[i], 0);
	ck_assert_int_eq(kd_report_parse(vec("constellation-vlek-refused")->bin, KD_REPORT_SIZE, &r), 0);
	ck_assert_int_eq(r.signing_key, KD_SIGNING_KEY_VLEK);
	ck_assert_uint_eq(r.version, 2);
}
END_TEST

/* ------------------------------------------------------------ length, version */

START_TEST(truncation_every_length)
{
	const struct vector *v = vec("yaxi-genoa-v3");
	struct kd_report r;

	for (size_t len = 0; len < KD_REPORT_SIZE; len++) {
		memset(&r, 0xa5, sizeof(r));
		ck_assert_int_eq(kd_report_parse(v->bin, len, &r), KD_ETRUNC);
		ck_assert_uint_eq(r.version, 0xa5a5a5a5u); /* output untouched */
	}
}
END_TEST

START_TEST(trailing_byte_refused)
{
	uint8_t big[KD_REPORT_SIZE + 1];
	struct kd_report r;

	memcpy(big, vec("virtee-sev-milan")->bin, KD_REPORT_SIZE);
	big[KD_REPORT_SIZE] = 0;
	ck_assert_int_eq(kd_report_parse(big, sizeof(big), &r), KD_EMALFORMED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EMALFORMED), "1185"));
	ck_assert_int_eq(kd_report_parse(NULL, 0, &r), KD_ETRUNC);
	ck_assert_int_eq(kd_report_parse(big, KD_REPORT_SIZE, NULL), KD_EINVAL);
}
END_TEST

START_TEST(unknown_versions_refused)
{
	static const uint32_t bad[] = {0, 1, 6, 7, 0x100, 0xffffffffu};
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	memcpy(b, vec("yaxi-genoa-v3")->bin, sizeof(b));
	for (size_t i = 0; i < KD_ARRAY_SIZE(bad); i++) {
		kd_put_le32(b, bad[i]);
		ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), KD_EUNSUPP);
	}
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EUNSUPP), "version"));
	/* 4 is the v3 layout. */
	kd_put_le32(b, 4);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_uint_eq(r.version, 4);
	ck_assert_int_eq(r.product, KD_PRODUCT_GENOA);
}
END_TEST

/* ------------------------------------------------------------ reserved */

struct range {
	size_t from, to; /* [from, to) */
};

/* A valid report of version v, from the real v2 / v3 vectors. */
static void make_version(uint32_t v, uint8_t b[KD_REPORT_SIZE])
{
	memcpy(b, vec(v == 2 ? "virtee-sev-milan" : "yaxi-genoa-v3")->bin, KD_REPORT_SIZE);
	kd_put_le32(b, v);
}

static void check_mbz(uint32_t version, const struct range *rs, size_t n)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	make_version(version, b);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t off = rs[i].from; off < rs[i].to; off++) {
			uint8_t save = b[off];

			for (int bit = 0; bit < 8; bit += 7) {
				b[off] = (uint8_t)(1u << bit);
				ck_assert_msg(kd_report_parse(b, sizeof(b), &r) == KD_ERESERVED,
					      "v%u: byte 0x%zx not checked", version, off);
			}
			b[off] = save;
		}
	}
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
}

START_TEST(mbz_ranges_v2)
{
	static const struct range rs[] = {
		{0x04C, 0x050}, {0x188, 0x1A0}, {0x1EB, 0x1EC}, {0x1EF, 0x1F0},
		{0x1F8, 0x2A0}, {0x330, 0x4A0},
	};
	check_mbz(2, rs, KD_ARRAY_SIZE(rs));
}
END_TEST

START_TEST(mbz_ranges_v3_v4)
{
	static const struct range rs[] = {
		{0x04C, 0x050}, {0x18B, 0x1A0}, {0x1EB, 0x1EC}, {0x1EF, 0x1F0},
		{0x1F8, 0x2A0}, {0x330, 0x4A0},
	};
	check_mbz(3, rs, KD_ARRAY_SIZE(rs));
	check_mbz(4, rs, KD_ARRAY_SIZE(rs));
}
END_TEST

START_TEST(mbz_ranges_v5)
{
	static const struct range rs[] = {
		{0x04C, 0x050}, {0x18B, 0x1A0}, {0x1EB, 0x1EC}, {0x1EF, 0x1F0},
		{0x208, 0x2A0}, {0x330, 0x4A0},
	};
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	check_mbz(5, rs, KD_ARRAY_SIZE(rs));
	/* ...while v5 reads the mitigation vectors from there. */
	make_version(5, b);
	kd_put_le64(b + 0x1F8, 0x0102030405060708ull);
	kd_put_le64(b + 0x200, 0x1112131415161718ull);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_uint_eq(r.launch_mit_vector, 0x0102030405060708ull);
	ck_assert_uint_eq(r.current_mit_vector, 0x1112131415161718ull);
}
END_TEST

START_TEST(error_names_reserved_range)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	make_version(3, b);
	b[0x400] = 1;
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), KD_ERESERVED);
	ck_assert_str_eq(kd_err_detail(KD_ERESERVED),
			 "report reserved bytes 0x330..0x49f are not zero");
}
END_TEST

START_TEST(v2_cpuid_bytes_are_reserved)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	make_version(2, b);
	b[0x188] = 0x19;
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), KD_ERESERVED);
	make_version(3, b);
	b[0x188] = 0x1a;
	b[0x189] = 0x02;
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_TURIN);
}
END_TEST

START_TEST(policy_and_signer_bits)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;
	uint64_t pol;

	make_version(3, b);
	pol = kd_get_le64(b + 8);
	for (int bit = 26; bit < 64; bit++) {
		kd_put_le64(b + 8, pol | (1ull << bit));
		ck_assert_msg(kd_report_parse(b, sizeof(b), &r) == KD_ERESERVED, "policy bit %d",
			      bit);
	}
	/* Bit 17 must be one (SNP ABI: SNP_LAUNCH_START refuses it clear). */
	kd_put_le64(b + 8, pol & ~KD_POLICY_RSVD1);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), KD_ERESERVED);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ERESERVED), "bit 17"));
	/* Every defined bit 0..25 is accepted. */
	kd_put_le64(b + 8, (1ull << 26) - 1);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_uint_eq(r.policy, (1ull << 26) - 1);
	kd_put_le64(b + 8, pol);

	for (int bit = 5; bit < 32; bit++) {
		kd_put_le32(b + 0x48, 1u << bit);
		ck_assert_msg(kd_report_parse(b, sizeof(b), &r) == KD_ERESERVED, "signer bit %d",
			      bit);
	}
	kd_put_le32(b + 0x48, 0x1f);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.signing_key, 7);
	ck_assert(r.signer_info & KD_SIGNER_MASK_CHIP_KEY);
	ck_assert_str_eq(kd_signing_key_name(r.signing_key), "none");
	ck_assert_str_eq(kd_signing_key_name(3), "reserved");
}
END_TEST

START_TEST(platform_info_unknown_bits_accepted)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	make_version(3, b);
	/* Real Turin: platform_info = 0x67, bit 6 set. */
	kd_put_le64(b + 0x40, 0x67);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_uint_eq(r.platform_info, 0x67);
	for (int bit = 0; bit < 64; bit++) {
		kd_put_le64(b + 0x40, 1ull << bit);
		ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	}
}
END_TEST

/* ------------------------------------------------------------ encode */

START_TEST(encode_roundtrips_vectors)
{
	load_vectors();
	for (size_t i = 0; i < nvecs; i++) {
		uint8_t out[KD_REPORT_SIZE];
		struct kd_report r;

		ck_assert_int_eq(kd_report_parse(vecs[i].bin, KD_REPORT_SIZE, &r), 0);
		memset(out, 0xee, sizeof(out));
		ck_assert_int_eq(kd_report_encode(&r, out), 0);
		ck_assert_msg(memcmp(out, vecs[i].bin, KD_REPORT_SIZE) == 0, "%s", vecs[i].name);
	}
	for (uint32_t v = 2; v <= 5; v++) {
		uint8_t b[KD_REPORT_SIZE], out[KD_REPORT_SIZE];
		struct kd_report r;

		make_version(v, b);
		if (v == 5)
			kd_put_le64(b + 0x200, 0xabcdull);
		ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
		ck_assert_int_eq(kd_report_encode(&r, out), 0);
		ck_assert_int_eq(memcmp(out, b, sizeof(b)), 0);
	}
}
END_TEST

START_TEST(encode_refuses_invalid)
{
	uint8_t out[KD_REPORT_SIZE], before[KD_REPORT_SIZE];
	struct kd_report r, base;

	ck_assert_int_eq(kd_report_parse(vec("virtee-sev-milan")->bin, KD_REPORT_SIZE, &base), 0);
	memset(out, 0x5a, sizeof(out));
	memcpy(before, out, sizeof(out));

	r = base;
	r.version = 6;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	r = base;
	r.policy |= 1ull << 40;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	r = base;
	r.policy &= ~KD_POLICY_RSVD1;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	r = base;
	r.signer_info = 1u << 5;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	r = base; /* v2 */
	r.cpuid_fam_id = 0x19;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	r = base;
	r.version = 3;
	r.launch_mit_vector = 1;
	ck_assert_int_eq(kd_report_encode(&r, out), KD_EINVAL);
	ck_assert_int_eq(memcmp(out, before, sizeof(out)), 0);
	ck_assert_int_eq(kd_report_encode(NULL, out), KD_EINVAL);

	/* A simulator-style v5 report, built from scratch, parses back. */
	memset(&r, 0, sizeof(r));
	r.version = 5;
	r.policy = KD_POLICY_RSVD1 | KD_POLICY_SMT;
	r.signature_algo = 1;
	r.cpuid_fam_id = 0x19;
	r.cpuid_mod_id = 0x11;
	r.launch_mit_vector = 3;
	r.current_tcb = 0x1748000000000009ull;
	memset(r.measurement, 0x42, sizeof(r.measurement));
	ck_assert_int_eq(kd_report_encode(&r, out), 0);
	ck_assert_int_eq(kd_report_parse(out, sizeof(out), &base), 0);
	ck_assert_int_eq(base.product, KD_PRODUCT_GENOA);
	ck_assert_uint_eq(base.launch_mit_vector, 3);
	ck_assert_int_eq(memcmp(base.measurement, r.measurement, 48), 0);
}
END_TEST

/*
 * Flip every bit of every real report: the parser either refuses with a
 * defined code or accepts, and what it accepts encodes back to exactly the
 * flipped bytes (no field is lost or mis-placed).
 */
START_TEST(bit_flips_parse_or_refuse)
{
	const struct vector *v = &vecs[_i];
	uint8_t b[KD_REPORT_SIZE], out[KD_REPORT_SIZE];
	unsigned ok = 0, refused = 0;

	load_vectors();
	if ((size_t)_i >= nvecs)
		return;
	memcpy(b, v->bin, sizeof(b));
	for (size_t off = 0; off < KD_REPORT_SIZE; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct kd_report r;
			int e;

			b[off] ^= (uint8_t)(1u << bit);
			e = kd_report_parse(b, sizeof(b), &r);
			if (e == 0) {
				ok++;
				ck_assert_int_eq(kd_report_encode(&r, out), 0);
				ck_assert_msg(memcmp(out, b, sizeof(b)) == 0, "%s off 0x%zx bit %d",
					      v->name, off, bit);
			} else {
				refused++;
				ck_assert_msg(e == KD_ERESERVED || e == KD_EUNSUPP,
					      "%s off 0x%zx: %d", v->name, off, e);
			}
			b[off] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_uint_gt(ok, 4000);
	ck_assert_uint_gt(refused, 4000);
}
END_TEST

/* ------------------------------------------------------------ TCB, products */

START_TEST(tcb_layouts)
{
	/* Real values: Genoa 0x...1748 bl=9 snp=23 ucode=72. */
	struct kd_tcb t;
	uint64_t raw;

	ck_assert_int_eq(kd_tcb_parse_hex("0900000000001748", &raw), 0);
	kd_tcb_decode(raw, KD_PRODUCT_GENOA, &t);
	ck_assert_uint_eq(t.bootloader, 9);
	ck_assert_uint_eq(t.tee, 0);
	ck_assert_uint_eq(t.snp, 23);
	ck_assert_uint_eq(t.microcode, 72);
	ck_assert_uint_eq(t.fmc, 0);
	ck_assert_uint_eq(kd_tcb_encode(&t, KD_PRODUCT_GENOA), raw);

	/* Turin: fmc, bl, tee, snp in bytes 0..3, ucode in byte 7. */
	kd_tcb_decode(0x4800000001030201ull, KD_PRODUCT_TURIN, &t);
	ck_assert_uint_eq(t.fmc, 1);
	ck_assert_uint_eq(t.bootloader, 2);
	ck_assert_uint_eq(t.tee, 3);
	ck_assert_uint_eq(t.snp, 1);
	ck_assert_uint_eq(t.microcode, 0x48);

	for (enum kd_product p = KD_PRODUCT_UNKNOWN; p <= KD_PRODUCT_TURIN; p++) {
		struct kd_tcb in = {0, 11, 22, 33, 44, 55}, out;
		uint64_t enc = kd_tcb_encode(&in, p);

		kd_tcb_decode(enc, p, &out);
		ck_assert_uint_eq(out.raw, enc);
		ck_assert_uint_eq(out.bootloader, 22);
		ck_assert_uint_eq(out.tee, 33);
		ck_assert_uint_eq(out.snp, 44);
		ck_assert_uint_eq(out.microcode, 55);
		ck_assert_uint_eq(out.fmc, p == KD_PRODUCT_TURIN ? 11 : 0);
	}
	/* Reserved bytes are dropped by decode+encode. */
	kd_tcb_decode(0x0700ffffffff0009ull, KD_PRODUCT_MILAN, &t);
	ck_assert_uint_eq(kd_tcb_encode(&t, KD_PRODUCT_MILAN), 0x0700000000000009ull);
}
END_TEST

START_TEST(tcb_ge_semantics)
{
	struct kd_tcb a = {0, 1, 3, 0, 8, 115}, b;
	uint64_t ra, rb;

	for (enum kd_product p = KD_PRODUCT_UNKNOWN; p <= KD_PRODUCT_TURIN; p++) {
		ra = kd_tcb_encode(&a, p);
		ck_assert(kd_tcb_ge(ra, ra, p));
		ck_assert(kd_tcb_ge(ra, 0, p));
		/* One component lower is enough to fail, whatever the others. */
		b = a;
		b.microcode = 116;
		b.bootloader = 0;
		rb = kd_tcb_encode(&b, p);
		ck_assert(!kd_tcb_ge(ra, rb, p));
		ck_assert(!kd_tcb_ge(rb, ra, p));
		b = a;
		b.snp = 9;
		rb = kd_tcb_encode(&b, p);
		ck_assert(kd_tcb_ge(rb, ra, p));
		ck_assert(!kd_tcb_ge(ra, rb, p));
		b = a;
		b.tee = 4;
		ck_assert(!kd_tcb_ge(ra, kd_tcb_encode(&b, p), p));
	}
	a.fmc = 2;
	ra = kd_tcb_encode(&a, KD_PRODUCT_TURIN);
	b = a;
	b.fmc = 3;
	ck_assert(!kd_tcb_ge(ra, kd_tcb_encode(&b, KD_PRODUCT_TURIN), KD_PRODUCT_TURIN));
	/* Known products ignore reserved bytes; UNKNOWN compares all eight. */
	ck_assert(kd_tcb_ge(0x0000000000000003ull, 0x0000ff0000000003ull, KD_PRODUCT_MILAN));
	ck_assert(!kd_tcb_ge(0x0000000000000003ull, 0x0000ff0000000003ull, KD_PRODUCT_UNKNOWN));
	/* The trustee VLEK report: current ucode 220 >= reported 217. */
	ck_assert(kd_tcb_ge(0xdc18000000000004ull, 0xd918000000000004ull, KD_PRODUCT_MILAN));
	ck_assert(!kd_tcb_ge(0xd918000000000004ull, 0xdc18000000000004ull, KD_PRODUCT_MILAN));
}
END_TEST

START_TEST(tcb_hex_and_format)
{
	char hex[KD_TCB_HEX_LEN], s[KD_TCB_STR_MAX];
	uint64_t raw;

	kd_tcb_hex(0x7308000000000003ull, hex);
	ck_assert_str_eq(hex, "0300000000000873");
	ck_assert_int_eq(kd_tcb_parse_hex("0x0300000000000873", &raw), 0);
	ck_assert_uint_eq(raw, 0x7308000000000003ull);
	ck_assert_int_eq(kd_tcb_parse_hex("03000000000008", &raw), KD_EMALFORMED);
	ck_assert_int_eq(kd_tcb_parse_hex("030000000000087g", &raw), KD_EMALFORMED);
	ck_assert_int_eq(kd_tcb_parse_hex("030000000000087300", &raw), KD_EMALFORMED);
	kd_tcb_format(raw, KD_PRODUCT_MILAN, s, sizeof(s));
	ck_assert_str_eq(s, "bl=3 tee=0 snp=8 ucode=115");
	kd_tcb_format(0x4800000001030201ull, KD_PRODUCT_TURIN, s, sizeof(s));
	ck_assert_str_eq(s, "fmc=1 bl=2 tee=3 snp=1 ucode=72");
}
END_TEST

START_TEST(products)
{
	enum kd_product p;

	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0x01), KD_PRODUCT_MILAN);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0x0f), KD_PRODUCT_MILAN);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0x11), KD_PRODUCT_GENOA);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0xa0), KD_PRODUCT_GENOA);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0xaf), KD_PRODUCT_GENOA);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0x20), KD_PRODUCT_UNKNOWN);
	ck_assert_int_eq(kd_product_from_cpuid(0x19, 0xb0), KD_PRODUCT_UNKNOWN);
	ck_assert_int_eq(kd_product_from_cpuid(0x1a, 0x02), KD_PRODUCT_TURIN);
	ck_assert_int_eq(kd_product_from_cpuid(0x1a, 0x11), KD_PRODUCT_TURIN);
	ck_assert_int_eq(kd_product_from_cpuid(0x1a, 0x12), KD_PRODUCT_UNKNOWN);
	ck_assert_int_eq(kd_product_from_cpuid(0x17, 0x01), KD_PRODUCT_UNKNOWN);
	ck_assert_int_eq(kd_product_from_cpuid(0, 0), KD_PRODUCT_UNKNOWN);

	ck_assert_str_eq(kd_product_name(KD_PRODUCT_MILAN), "Milan");
	ck_assert_str_eq(kd_product_name(KD_PRODUCT_GENOA), "Genoa");
	ck_assert_str_eq(kd_product_name(KD_PRODUCT_TURIN), "Turin");
	ck_assert_str_eq(kd_product_name(KD_PRODUCT_UNKNOWN), "unknown");
	ck_assert_int_eq(kd_product_from_name("milan", &p), 0);
	ck_assert_int_eq(p, KD_PRODUCT_MILAN);
	ck_assert_int_eq(kd_product_from_name("Milan-B0", &p), 0);
	ck_assert_int_eq(p, KD_PRODUCT_MILAN);
	ck_assert_int_eq(kd_product_from_name("TURIN", &p), 0);
	ck_assert_int_eq(p, KD_PRODUCT_TURIN);
	ck_assert_int_eq(kd_product_from_name("Milano", &p), KD_EINVAL);
	ck_assert_int_eq(kd_product_from_name("Milan-", &p), KD_EINVAL);
	ck_assert_int_eq(kd_product_from_name("unknown", &p), KD_EINVAL);
	ck_assert_int_eq(kd_product_from_name("", &p), KD_EINVAL);
}
END_TEST

START_TEST(v2_product_heuristic)
{
	uint8_t b[KD_REPORT_SIZE];
	struct kd_report r;

	make_version(2, b);
	/* Turin-like: only CHIP_ID[0:8]. */
	memset(b + 0x1A8, 0, 56);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_TURIN);
	/* Masked CHIP_ID: no guess. */
	memset(b + 0x1A0, 0, 64);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_UNKNOWN);
	/* One byte in [8:64] makes it legacy again. */
	b[0x1A0] = 1;
	b[0x1DF] = 1;
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_UNKNOWN);
	/* A v3 report ignores CHIP_ID and uses CPUID. */
	make_version(3, b);
	memset(b + 0x1A8, 0, 56);
	ck_assert_int_eq(kd_report_parse(b, sizeof(b), &r), 0);
	ck_assert_int_eq(r.product, KD_PRODUCT_GENOA);
	ck_assert_int_eq(kd_report_product(&r), KD_PRODUCT_GENOA);
}
END_TEST

/* ------------------------------------------------------------ JSON */

static struct json_object *jget(struct json_object *o, const char *path)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		struct json_object *n;

		ck_assert_msg(json_object_object_get_ex(o, k, &n), "no %s in JSON", path);
		o = n;
	}
	return o;
}

START_TEST(json_has_every_field)
{
	struct json_object *j;
	struct kd_report r;

	ck_assert_int_eq(kd_report_parse(vec("trustee-milan-vlek")->bin, KD_REPORT_SIZE, &r), 0);
	j = kd_report_to_json(&r);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_object_get_int(jget(j, "version")), 3);
	ck_assert_int_eq(json_object_get_int(jget(j, "vmpl")), 1);
	ck_assert_str_eq(json_object_get_string(jget(j, "product")), "Milan");
	ck_assert_str_eq(json_object_get_string(jget(j, "product_source")), "cpuid");
	ck_assert_str_eq(json_object_get_string(jget(j, "policy.raw")), "0x30000");
	ck_assert(json_object_get_boolean(jget(j, "policy.smt")));
	ck_assert(!json_object_get_boolean(jget(j, "policy.debug")));
	ck_assert(json_object_get_boolean(jget(j, "platform_info.alias_check_complete")));
	ck_assert_str_eq(json_object_get_string(jget(j, "signer_info.signing_key_name")), "VLEK");
	ck_assert_str_eq(json_object_get_string(jget(j, "reported_tcb.raw")), "04000000000018d9");
	ck_assert_int_eq(json_object_get_int(jget(j, "reported_tcb.microcode")), 217);
	ck_assert_int_eq(json_object_get_int(jget(j, "current_tcb.microcode")), 220);
	ck_assert_int_eq(json_object_get_int(jget(j, "committed_tcb.snp")), 24);
	ck_assert_int_eq(json_object_get_int(jget(j, "cpuid.family")), 0x19);
	ck_assert_str_eq(json_object_get_string(jget(j, "current_firmware.version")), "1.55.29");
	ck_assert_str_eq(json_object_get_string(jget(j, "measurement")),
			 "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4"
			 "e8c9af857f5ceeb5a493df2a570d7bf0");
	ck_assert_uint_eq(strlen(json_object_get_string(jget(j, "signature.r"))), 144);
	ck_assert_uint_eq(strlen(json_object_get_string(jget(j, "chip_id"))), 128);
	ck_assert(!json_object_object_get_ex(j, "launch_mit_vector", NULL));
	json_object_put(j);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, vectors_match_fields_txt);
	tcase_add_test(tc, vectors_products_and_signers);
	tcase_add_test(tc, source_project_expectations);
	tcase_add_test(tc, truncation_every_length);
	tcase_add_test(tc, trailing_byte_refused);
	tcase_add_test(tc, unknown_versions_refused);
	tcase_add_test(tc, mbz_ranges_v2);
	tcase_add_test(tc, mbz_ranges_v3_v4);
	tcase_add_test(tc, mbz_ranges_v5);
	tcase_add_test(tc, error_names_reserved_range);
	tcase_add_test(tc, v2_cpuid_bytes_are_reserved);
	tcase_add_test(tc, policy_and_signer_bits);
	tcase_add_test(tc, platform_info_unknown_bits_accepted);
	tcase_add_test(tc, encode_roundtrips_vectors);
	tcase_add_test(tc, encode_refuses_invalid);
	tcase_add_loop_test(tc, bit_flips_parse_or_refuse, 0, MAX_VECTORS);
	tcase_add_test(tc, tcb_layouts);
	tcase_add_test(tc, tcb_ge_semantics);
	tcase_add_test(tc, tcb_hex_and_format);
	tcase_add_test(tc, products);
	tcase_add_test(tc, v2_product_heuristic);
	tcase_add_test(tc, json_has_every_field);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
