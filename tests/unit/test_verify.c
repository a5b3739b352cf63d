/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: attestation verification (keyd/lib/attest) on the real,
 * AMD-signed vectors of $KEYD_VECTORS/snp, plus a synthetic PKI (made here
 * with OpenSSL) for the refusals no real certificate can exercise: a VCEK
 * whose SPL differs, PKCS#1 v1.5 or salt-32 signatures, a non-CA ASK, a
 * wrong signing-key field.
 */
#include <check.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyd/certbundle.h"
#include "keyd/certtable.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"
#include "keyd/verify.h"
#include "helpers/vg.h"

/* ---------------------------------------------------------------- vectors */

struct buf {
	uint8_t *p;
	size_t n;
};

static struct buf vec(const char *rel)
{
	const char *root = getenv("KEYD_VECTORS");
	char path[1024];
	struct buf b = {0};

	snprintf(path, sizeof(path), "%s/snp/%s", root && *root ? root : KD_TEST_VECTORS, rel);
	ck_assert_msg(kd_read_file(path, 1 << 20, &b.p, &b.n) == 0, "cannot read %s", path);
	return b;
}

static time_t t_at(const char *s)
{
	time_t t;

	ck_assert_int_eq(kd_parse_rfc3339(s, &t), 0);
	return t;
}

struct vcase {
	const char *dir, *vek, *chain;
	bool allow_debug;
	uint32_t max_vmpl;
	const char *at;
};

static const struct vcase cases[] = {
	{"virtee-sev-milan", "vcek.der", "cert_chain.pem", false, 0, NULL},
	{"go-sev-guest-milan", "vcek.der", "cert_chain.pem", true, 0, NULL},
	{"trustee-milan-vcek", "vcek.der", "milan_ask_ark_asvk.pem", false, 0, NULL},
	{"trustee-milan-vlek", "vlek.der", "milan_ask_ark_asvk.pem", false, 1, "2025-06-01T00:00:00Z"},
	{"yaxi-genoa-v3", "vcek.der", "vcek_ask_ark.pem", false, 0, NULL},
	{"msft-milan", "vcek.pem", "ask.pem", false, 0, NULL},
	{"msft-genoa", "vcek.pem", "ask.pem", false, 0, NULL},
	{"msft-turin", "vcek.pem", "ask.pem", false, 0, NULL},
	{"trustee-azure-genoa", "vcek.pem", "../amd-roots/genoa_chain.pem", false, 0, NULL},
	{"constellation-aws-vlek", "vlek.pem", "cert_chain.pem", false, 0, "2025-06-01T00:00:00Z"},
};

static void case_policy(const struct vcase *c, struct kd_verify_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->allow_debug = c->allow_debug;
	pol->max_vmpl = c->max_vmpl;
	pol->at = c->at ? t_at(c->at) : 0;
}

static char path_buf[256];
static const char *rel(const char *dir, const char *f)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, f);
	return path_buf;
}

/* The named check failed (and the error detail is its detail). */
static void assert_failed(int r, const struct kd_verify_result *res, const char *name, const char *needle)
{
	const char *d = kd_err_detail(r);

	ck_assert_msg(r < 0, "expected failure of %s", name);
	ck_assert_msg(strstr(d, needle), "detail '%s' lacks '%s'", d, needle);
	ck_assert_ptr_null(strchr(d, '\n'));
	if (res) {
		bool found = false;

		for (size_t i = 0; i < res->n; i++)
			if (!strcmp(res->checks[i].name, name) && !res->checks[i].ok &&
			    !strcmp(res->checks[i].detail, d))
				found = true;
		ck_assert_msg(found, "check %s not recorded as the failure '%s'", name, d);
	}
}

START_TEST(every_vector_verifies)
{
	const struct vcase *c = &cases[_i];
	struct buf rep = vec(rel(c->dir, "report.bin"));
	struct buf vek = vec(rel(c->dir, c->vek));
	struct buf chain = vec(rel(c->dir, c->chain));
	struct kd_cert_inputs in = {.vek = vek.p, .vek_len = vek.n};
	struct kd_verify_policy pol;
	struct kd_verify_result res;
	struct kd_report out;

	case_policy(c, &pol);
	/* Built-in roots only. */
	ck_assert_msg(kd_verify_report(rep.p, rep.n, &in, &pol, &out, &res) == 0, "%s: %s", c->dir,
		      kd_err_detail(KD_EVERIFY));
	ck_assert_uint_ge(res.n, 20);
	for (size_t i = 0; i < res.n; i++)
		ck_assert_msg(res.checks[i].ok, "%s: %s", res.checks[i].name, res.checks[i].detail);
	ck_assert_int_ne(out.product, KD_PRODUCT_UNKNOWN);
	/* And with the published chain. */
	in.chain_pem = chain.p;
	in.chain_pem_len = chain.n;
	ck_assert_msg(kd_verify_report(rep.p, rep.n, &in, &pol, NULL, NULL) == 0, "%s chain: %s", c->dir,
		      kd_err_detail(KD_EVERIFY));
	free(rep.p);
	free(vek.p);
	free(chain.p);
}
END_TEST

/* All 672 signed bytes, one at a time, through the cached verifier (a
 * rotating 1-in-KD_VG_STRIDE sample under valgrind: helpers/vg.h). */
START_TEST(every_signed_byte_flip_fails)
{
	const struct vcase *c = &cases[_i];
	struct buf rep = vec(rel(c->dir, "report.bin"));
	struct buf vek = vec(rel(c->dir, c->vek));
	struct kd_cert_inputs in = {.vek = vek.p, .vek_len = vek.n};
	struct kd_verifier *v = NULL;
	struct kd_verify_policy pol;

	case_policy(c, &pol);
	ck_assert_int_eq(kd_verifier_new(&in, &v, NULL), 0);
	ck_assert_int_eq(kd_verifier_verify(v, rep.p, rep.n, &pol, NULL, NULL), 0);
	for (size_t off = kd_vg_first(); off < KD_REPORT_SIGNED_LEN; off += kd_vg_stride()) {
		rep.p[off] ^= 0x01;
		ck_assert_msg(kd_verifier_verify(v, rep.p, rep.n, &pol, NULL, NULL) < 0, "%s: flip at 0x%zx verifies",
			      c->dir, off);
		rep.p[off] ^= 0x01;
	}
	/* R and S, every byte (the zero-extension included). */
	for (size_t off = 0x2A0 + kd_vg_first(); off < 0x330; off += kd_vg_stride()) {
		struct kd_verify_result res;
		int r;

		rep.p[off] ^= 0x80;
		r = kd_verifier_verify(v, rep.p, rep.n, &pol, NULL, &res);
		assert_failed(r, &res, "report-signature", "report signature does not verify under");
		rep.p[off] ^= 0x80;
	}
	ck_assert_int_eq(kd_verifier_verify(v, rep.p, rep.n, &pol, NULL, NULL), 0);
	kd_verifier_free(v);
	free(rep.p);
	free(vek.p);
}
END_TEST

static int verify_files(const char *report, const char *vekf, const char *chainf, const char *askf,
			const char *arkf, const struct kd_verify_policy *pol, struct kd_verify_result *res)
{
	struct buf rep = vec(report), vek = vec(vekf), chain = {0}, ask = {0}, ark = {0};
	struct kd_cert_inputs in = {.vek = vek.p, .vek_len = vek.n};
	int r;

	if (chainf) {
		chain = vec(chainf);
		in.chain_pem = chain.p;
		in.chain_pem_len = chain.n;
	}
	if (askf) {
		ask = vec(askf);
		in.ask = ask.p;
		in.ask_len = ask.n;
	}
	if (arkf) {
		ark = vec(arkf);
		in.ark = ark.p;
		in.ark_len = ark.n;
	}
	r = kd_verify_report(rep.p, rep.n, &in, pol, NULL, res);
	free(rep.p);
	free(vek.p);
	free(chain.p);
	free(ask.p);
	free(ark.p);
	return r;
}

START_TEST(wrong_chains_fail)
{
	struct kd_verify_policy pol = {0};
	struct kd_verify_result res;
	struct buf swapped, a1, a2;
	int r;

	/* --chain with ARK first. */
	a1 = vec("amd-roots/milan_ark.pem");
	a2 = vec("amd-roots/milan_ask.pem");
	swapped.n = a1.n + a2.n;
	swapped.p = malloc(swapped.n);
	memcpy(swapped.p, a1.p, a1.n);
	memcpy(swapped.p + a1.n, a2.p, a2.n);
	{
		struct buf rep = vec("virtee-sev-milan/report.bin"), vek = vec("virtee-sev-milan/vcek.der");
		struct kd_cert_inputs in = {.vek = vek.p, .vek_len = vek.n, .chain_pem = swapped.p,
					    .chain_pem_len = swapped.n};

		r = kd_verify_report(rep.p, rep.n, &in, &pol, NULL, &res);
		assert_failed(r, NULL, "chain-order", "chain order");
		free(rep.p);
		free(vek.p);
	}
	free(swapped.p);
	free(a1.p);
	free(a2.p);

	/* --ask ARK --ark ASK: the "root" is not self-signed. */
	r = verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", NULL,
			 "amd-roots/milan_ark.pem", "amd-roots/milan_ask.pem", &pol, &res);
	assert_failed(r, &res, "ark-self-signature", "is not validly self-signed");

	/* Genoa chain for a Milan VCEK. */
	r = verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", "amd-roots/genoa_chain.pem",
			 NULL, NULL, &pol, &res);
	assert_failed(r, &res, "vek-signature", "VCEK signature does not verify under ASK (SEV-Genoa)");

	/* Milan chain offered for the Genoa report (with its Genoa VCEK). */
	r = verify_files("yaxi-genoa-v3/report.bin", "yaxi-genoa-v3/vcek.der", "amd-roots/milan_chain.pem", NULL,
			 NULL, &pol, &res);
	assert_failed(r, &res, "vek-signature", "does not verify under ASK (SEV-Milan)");
	/* ... and a Milan VCEK with its genuine Milan chain for it. */
	r = verify_files("yaxi-genoa-v3/report.bin", "virtee-sev-milan/vcek.der", "amd-roots/milan_chain.pem",
			 NULL, NULL, &pol, &res);
	assert_failed(r, &res, "product", "report is from Genoa, VCEK is for Milan");

	/* VCEK of another chip (same product and TCB). */
	r = verify_files("trustee-milan-vcek/report.bin", "virtee-sev-milan/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "report-signature", "report signature does not verify under VCEK");

	/* A VLEK for a VCEK-signed report. */
	pol.at = t_at("2025-06-01T00:00:00Z");
	r = verify_files("virtee-sev-milan/report.bin", "trustee-milan-vlek/vlek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "signing-key", "report is signed by the VCEK, the certificate is a VLEK");

	/* The ASVK in place of the ASK. */
	pol.at = 0;
	r = verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", NULL, "amd-roots/milan_asvk.pem",
			 NULL, &pol, &res);
	assert_failed(r, &res, "vek-signature", "VCEK signature does not verify under ASVK");

	/* trustee's deliberately broken certificates. */
	r = verify_files("trustee-milan-vcek/report.bin", "trustee-milan-vcek/vcek-invalid-legacy.der", NULL, NULL,
			 NULL, &pol, &res);
	assert_failed(r, &res, "vek-signature", "VCEK signature does not verify");
	r = verify_files("trustee-milan-vcek/report.bin", "trustee-milan-vcek/vcek-invalid-new.der", NULL, NULL, NULL,
			 &pol, &res);
	assert_failed(r, &res, "vek-signature", "VCEK signature does not verify");
}
END_TEST

START_TEST(policy_refusals)
{
	struct kd_verify_policy pol = {0};
	struct kd_verify_result res;
	uint8_t m[2][48], chip[64], rd[64];
	int r;

	/* debug without --allow-debug */
	r = verify_files("go-sev-guest-milan/report.bin", "go-sev-guest-milan/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "debug", "debug policy bit is set");

	/* VLEK: VMPL 1 needs max_vmpl 1; expired without --at. */
	pol.at = t_at("2025-06-01T00:00:00Z");
	r = verify_files("trustee-milan-vlek/report.bin", "trustee-milan-vlek/vlek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "vmpl", "VMPL 1 above the allowed 0");
	pol.max_vmpl = 1;
	pol.at = 0;
	r = verify_files("trustee-milan-vlek/report.bin", "trustee-milan-vlek/vlek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "vek-validity", "VLEK expired 2025-12-10");
	pol.at = t_at("2024-12-01T00:00:00+01:00");
	r = verify_files("trustee-milan-vlek/report.bin", "trustee-milan-vlek/vlek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "vek-validity", "VLEK is not valid until 2024-12-10");

	/* min TCB: equal passes, one component above fails. */
	memset(&pol, 0, sizeof(pol));
	pol.has_min_tcb = true;
	ck_assert_int_eq(kd_tcb_parse_hex("0300000000000873", &pol.min_tcb), 0);
	ck_assert_int_eq(verify_files("trustee-milan-vcek/report.bin", "trustee-milan-vcek/vcek.der", NULL, NULL,
				      NULL, &pol, NULL),
			 0);
	ck_assert_int_eq(kd_tcb_parse_hex("0300000000000874", &pol.min_tcb), 0);
	r = verify_files("trustee-milan-vcek/report.bin", "trustee-milan-vcek/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "min-tcb", "is below the minimum");
	/* CURRENT_TCB (ucode 206) does not count: only the reported TCB does. */
	ck_assert_int_eq(kd_tcb_parse_hex("03000000000008ce", &pol.min_tcb), 0);
	r = verify_files("trustee-milan-vcek/report.bin", "trustee-milan-vcek/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "min-tcb", "ucode=115");

	/* measurement: any of the set; none matching fails. */
	memset(&pol, 0, sizeof(pol));
	memset(m, 0x11, sizeof(m));
	ck_assert_int_eq(kd_unhex("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd9"
				  "5b9c480cd81841f",
				  m[1], 48),
			 0);
	pol.measurements = (const uint8_t(*)[48])m;
	pol.n_measurements = 2;
	ck_assert_int_eq(verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", NULL, NULL, NULL,
				      &pol, NULL),
			 0);
	pol.n_measurements = 1;
	r = verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "measurement", "measurement 7a1e5c266c01\xe2\x80\xa6 not in expected set");

	memset(&pol, 0, sizeof(pol));
	memset(chip, 0, sizeof(chip));
	pol.chip_id = chip;
	r = verify_files("virtee-sev-milan/report.bin", "virtee-sev-milan/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "chip-id", "is not the expected one");

	memset(&pol, 0, sizeof(pol));
	memset(rd, 0, sizeof(rd));
	rd[0] = 1, rd[1] = 2, rd[2] = 3, rd[3] = 4, rd[4] = 5;
	pol.report_data = rd;
	pol.allow_debug = true;
	ck_assert_int_eq(verify_files("go-sev-guest-milan/report.bin", "go-sev-guest-milan/vcek.der", NULL, NULL,
				      NULL, &pol, NULL),
			 0);
	rd[4] = 6;
	r = verify_files("go-sev-guest-milan/report.bin", "go-sev-guest-milan/vcek.der", NULL, NULL, NULL, &pol, &res);
	assert_failed(r, &res, "report-data", "report data 010203040500\xe2\x80\xa6 is not the expected one");
}
END_TEST

START_TEST(turin_chain_and_extensions)
{
	struct buf vek = vec("virtee-sev-turin/vcek.der"), chain = vec("virtee-sev-turin/cert_chain.pem");
	struct kd_cert_inputs in = {.vek = vek.p, .vek_len = vek.n};
	struct kd_vek_info info;
	struct kd_verify_result res;
	time_t at = t_at("2025-06-01T00:00:00Z");

	ck_assert_msg(kd_verify_chain(&in, at, &info, &res) == 0, "%s", kd_err_detail(KD_EVERIFY));
	ck_assert_int_eq(info.product, KD_PRODUCT_TURIN);
	ck_assert_str_eq(info.product_name, "Turin");
	ck_assert_int_eq(info.struct_version, 1);
	ck_assert(!info.is_vlek);
	ck_assert_uint_eq(info.hwid_len, 8);
	ck_assert(info.has_fmc_spl);
	in.chain_pem = chain.p;
	in.chain_pem_len = chain.n;
	ck_assert_int_eq(kd_verify_chain(&in, at, NULL, NULL), 0);
	/* A Turin VCEK under the Milan chain. */
	free(chain.p);
	chain = vec("amd-roots/milan_chain.pem");
	in.chain_pem = chain.p;
	in.chain_pem_len = chain.n;
	assert_failed(kd_verify_chain(&in, at, NULL, &res), &res, "vek-signature", "does not verify under ASK (SEV-Milan)");
	free(vek.p);
	free(chain.p);
}
END_TEST

START_TEST(vek_extension_forms)
{
	struct buf b;
	struct kd_vek_info info;

	b = vec("trustee-milan-vcek/vcek-invalid-new.der");
	ck_assert_int_eq(kd_vek_parse(b.p, b.n, &info), 0);
	ck_assert(info.hwid_wrapped);
	ck_assert_uint_eq(info.hwid_len, 64);
	free(b.p);
	b = vec("trustee-milan-vcek/vcek-invalid-legacy.der");
	ck_assert_int_eq(kd_vek_parse(b.p, b.n, &info), 0);
	ck_assert(!info.hwid_wrapped);
	ck_assert_uint_eq(info.hwid_len, 64);
	free(b.p);
	/* ucodeSPL 217 is 02 02 00 d9 in DER: must come out as 217. */
	b = vec("trustee-milan-vlek/vlek.der");
	ck_assert_int_eq(kd_vek_parse(b.p, b.n, &info), 0);
	ck_assert(info.is_vlek);
	ck_assert_uint_eq(info.ucode_spl, 217);
	ck_assert_uint_eq(info.hwid_len, 0);
	ck_assert_str_eq(info.csp_id, "CN=cc-us-east-2.amazonaws.com");
	free(b.p);
	b = vec("go-sev-guest-milan/vcek.pem");
	ck_assert_int_eq(kd_vek_parse(b.p, b.n, &info), 0);
	ck_assert_str_eq(info.product_name, "Milan-B0");
	ck_assert_uint_eq(info.bl_spl, 2);
	ck_assert_uint_eq(info.ucode_spl, 68);
	/* Trailing garbage after a DER certificate. */
	free(b.p);
	b = vec("virtee-sev-milan/vcek.der");
	b.p = realloc(b.p, b.n + 1);
	b.p[b.n] = 0;
	ck_assert_int_eq(kd_vek_parse(b.p, b.n + 1, &info), KD_EMALFORMED);
	for (size_t n = 0; n < b.n; n += 97)
		ck_assert_int_eq(kd_vek_parse(b.p, n, &info), KD_EMALFORMED);
	free(b.p);
}
END_TEST

START_TEST(cert_table_input)
{
	struct buf rep = vec("virtee-sev-milan/report.bin"), vek = vec("virtee-sev-milan/vcek.der");
	struct buf ask = vec("amd-roots/milan_ask.pem"), ark = vec("amd-roots/genoa_ark.pem");
	X509 *askx, *arkx;
	unsigned char *askd = NULL, *arkd = NULL;
	int askn, arkn;
	struct kd_cert_entry e[3];
	uint8_t *table = NULL;
	size_t tlen = 0;
	struct kd_verify_result res;
	BIO *bio;

	bio = BIO_new_mem_buf(ask.p, (int)ask.n);
	askx = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	bio = BIO_new_mem_buf(ark.p, (int)ark.n);
	arkx = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	askn = i2d_X509(askx, &askd);
	arkn = i2d_X509(arkx, &arkd);
	ck_assert(askn > 0 && arkn > 0);

	/* VCEK + ASK: the ARK comes from the built-in roots. */
	e[0] = (struct kd_cert_entry){.kind = KD_CERT_VCEK, .der = vek.p, .len = vek.n};
	e[1] = (struct kd_cert_entry){.kind = KD_CERT_ASK, .der = askd, .len = (size_t)askn};
	ck_assert_int_eq(kd_certtable_build(e, 2, &table, &tlen), 0);
	{
		struct kd_cert_inputs in = {.cert_table = table, .cert_table_len = tlen};

		ck_assert_msg(kd_verify_report(rep.p, rep.n, &in, NULL, NULL, NULL) == 0, "%s",
			      kd_err_detail(KD_EVERIFY));
	}
	free(table);
	/* A table carrying an ARK of the wrong product: refused, not trusted. */
	e[2] = (struct kd_cert_entry){.kind = KD_CERT_ARK, .der = arkd, .len = (size_t)arkn};
	ck_assert_int_eq(kd_certtable_build(e, 3, &table, &tlen), 0);
	{
		struct kd_cert_inputs in = {.cert_table = table, .cert_table_len = tlen};
		int r = kd_verify_report(rep.p, rep.n, &in, NULL, NULL, &res);

		assert_failed(r, &res, "ask-signature", "ASK (SEV-Milan) signature does not verify under ARK (ARK-Genoa)");
	}
	free(table);
	OPENSSL_free(askd);
	OPENSSL_free(arkd);
	X509_free(askx);
	X509_free(arkx);
	free(rep.p);
	free(vek.p);
	free(ask.p);
	free(ark.p);
}
END_TEST

/* ---------------------------------------------------------------- synthetic PKI */

static EVP_PKEY *k_ark, *k_ask, *k_vek;

static void keys(void)
{
	if (k_ark)
		return;
	k_ark = EVP_RSA_gen(2048);
	k_ask = EVP_RSA_gen(2048);
	k_vek = EVP_EC_gen("P-384");
	ck_assert(k_ark && k_ask && k_vek);
}

struct pki_opts {
	int ask_salt;       /* 48; 32 = wrong salt; 0 = PKCS#1 v1.5 */
	bool ask_not_ca;
	uint8_t bl, tee, snp, ucode;
	uint8_t hwid[64];
	bool vlek;
	const char *product;
};

static void add_ext(X509 *x, const char *oid, const unsigned char *der, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	ck_assert(o && os && ASN1_OCTET_STRING_set(os, der, len));
	e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
	ck_assert(e && X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	ASN1_OBJECT_free(o);
	ASN1_OCTET_STRING_free(os);
}

static void add_int_ext(X509 *x, const char *oid, long v)
{
	ASN1_INTEGER *ai = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	int n;

	ck_assert(ai && ASN1_INTEGER_set(ai, v));
	n = i2d_ASN1_INTEGER(ai, &der);
	add_ext(x, oid, der, n);
	OPENSSL_free(der);
	ASN1_INTEGER_free(ai);
}

static void add_ia5_ext(X509 *x, const char *oid, const char *s)
{
	ASN1_IA5STRING *a = ASN1_IA5STRING_new();
	unsigned char *der = NULL;
	int n;

	ck_assert(a && ASN1_STRING_set(a, s, -1));
	n = i2d_ASN1_IA5STRING(a, &der);
	add_ext(x, oid, der, n);
	OPENSSL_free(der);
	ASN1_IA5STRING_free(a);
}

static X509 *mk_cert(const char *cn, EVP_PKEY *pub, const char *issuer_cn, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new(), *in = X509_NAME_new();

	ck_assert(x && n && in);
	X509_set_version(x, 2);
	/* VCEKs have serial 0, like the real ones. */
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(in, "CN", MBSTRING_ASC, (const unsigned char *)issuer_cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, in);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, pub);
	if (ca) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");

		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		e = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_NAME_free(n);
	X509_NAME_free(in);
	return x;
}

static void sign_cert(X509 *x, EVP_PKEY *signer, int salt)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;

	ck_assert_int_eq(EVP_DigestSignInit(m, &pc, EVP_sha384(), NULL, signer), 1);
	if (salt) {
		EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt);
		EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha384());
	}
	ck_assert(X509_sign_ctx(x, m) > 0);
	EVP_MD_CTX_free(m);
}

struct pki {
	unsigned char *ark, *ask, *vek;
	int ark_n, ask_n, vek_n;
};

static void pki_free(struct pki *p)
{
	OPENSSL_free(p->ark);
	OPENSSL_free(p->ask);
	OPENSSL_free(p->vek);
}

static void mk_pki(const struct pki_opts *o, struct pki *out)
{
	X509 *ark, *ask, *vek;
	const char *ask_cn = o->vlek ? "SEV-VLEK-Test" : "SEV-Test";

	keys();
	memset(out, 0, sizeof(*out));
	ark = mk_cert("ARK-Test", k_ark, "ARK-Test", true);
	sign_cert(ark, k_ark, 48);
	ask = mk_cert(ask_cn, k_ask, "ARK-Test", !o->ask_not_ca);
	sign_cert(ask, k_ark, o->ask_salt);
	vek = mk_cert(o->vlek ? "SEV-VLEK" : "SEV-VCEK", k_vek, ask_cn, false);
	add_int_ext(vek, "1.3.6.1.4.1.3704.1.1", 0);
	add_ia5_ext(vek, "1.3.6.1.4.1.3704.1.2", o->product ? o->product : "Milan-B0");
	add_int_ext(vek, "1.3.6.1.4.1.3704.1.3.1", o->bl);
	add_int_ext(vek, "1.3.6.1.4.1.3704.1.3.2", o->tee);
	add_int_ext(vek, "1.3.6.1.4.1.3704.1.3.3", o->snp);
	add_int_ext(vek, "1.3.6.1.4.1.3704.1.3.8", o->ucode);
	if (o->vlek)
		add_ia5_ext(vek, "1.3.6.1.4.1.3704.1.5", "CN=test");
	else
		add_ext(vek, "1.3.6.1.4.1.3704.1.4", o->hwid, 64);
	sign_cert(vek, k_ask, 48);
	out->ark_n = i2d_X509(ark, &out->ark);
	out->ask_n = i2d_X509(ask, &out->ask);
	out->vek_n = i2d_X509(vek, &out->vek);
	ck_assert(out->ark_n > 0 && out->ask_n > 0 && out->vek_n > 0);
	X509_free(ark);
	X509_free(ask);
	X509_free(vek);
}

/* A real Milan report (v2), re-signed by the synthetic VEK key. */
static void sign_report(uint8_t *rep)
{
	unsigned char md[48], der[256];
	size_t dl = sizeof(der);
	const unsigned char *p = der;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k_vek, NULL);
	ECDSA_SIG *s;

	ck_assert(EVP_Digest(rep, KD_REPORT_SIGNED_LEN, md, NULL, EVP_sha384(), NULL));
	ck_assert(c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, der, &dl, md, 48) == 1);
	s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
	ck_assert(s);
	memset(rep + 0x2A0, 0, 144);
	BN_bn2lebinpad(ECDSA_SIG_get0_r(s), rep + 0x2A0, 72);
	BN_bn2lebinpad(ECDSA_SIG_get0_s(s), rep + 0x2E8, 72);
	ECDSA_SIG_free(s);
	EVP_PKEY_CTX_free(c);
}

/* reported TCB 0300000000000873 (bl 3, tee 0, snp 8, ucode 115), chip from the report */
static void synth(struct pki_opts *o, uint8_t rep[KD_REPORT_SIZE], uint32_t signing_key)
{
	struct buf b = vec("virtee-sev-milan/report.bin");

	ck_assert_uint_eq(b.n, KD_REPORT_SIZE);
	memcpy(rep, b.p, KD_REPORT_SIZE);
	free(b.p);
	rep[0x48] = (uint8_t)(signing_key << KD_SIGNER_KEY_SHIFT);
	memcpy(o->hwid, rep + 0x1A0, 64);
	o->bl = rep[0x180];
	o->tee = rep[0x181];
	o->snp = rep[0x186];
	o->ucode = rep[0x187];
	if (!o->ask_salt)
		o->ask_salt = 48;
	keys();
	sign_report(rep);
}

static int synth_verify(const struct pki_opts *o, const uint8_t *rep, bool with_ark, struct kd_verify_result *res)
{
	struct pki p;
	struct kd_cert_inputs in;
	int r;

	mk_pki(o, &p);
	in = (struct kd_cert_inputs){.vek = p.vek, .vek_len = (size_t)p.vek_n, .ask = p.ask,
				     .ask_len = (size_t)p.ask_n};
	if (with_ark) {
		in.ark = p.ark;
		in.ark_len = (size_t)p.ark_n;
	}
	r = kd_verify_report(rep, KD_REPORT_SIZE, &in, NULL, NULL, res);
	pki_free(&p);
	return r;
}

START_TEST(synthetic_chain)
{
	uint8_t rep[KD_REPORT_SIZE];
	struct pki_opts o = {0};
	struct kd_verify_result res;
	int r;

	synth(&o, rep, KD_SIGNING_KEY_VCEK);
	ck_assert_msg(synth_verify(&o, rep, true, &res) == 0, "%s", kd_err_detail(KD_EVERIFY));

	/* Not an AMD root: refused without --ark. */
	r = synth_verify(&o, rep, false, &res);
	assert_failed(r, &res, "ask-signature", "ASK (SEV-Test) signature does not verify under ARK (ARK-Milan)");

	/* VCEK whose SPL differs from the reported TCB. */
	o.bl = 2;
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "vek-tcb", "VCEK blSPL 2 != reported TCB bootloader 3");
	o.bl = 3;
	o.ucode = 206; /* the CURRENT_TCB value: still wrong */
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "vek-tcb", "VCEK ucodeSPL 206 != reported TCB microcode 115");
	o.ucode = 115;

	/* hwID of another chip. */
	o.hwid[5] ^= 1;
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "vek-chip-id", "VCEK hwID is not the report's CHIP_ID");
	o.hwid[5] ^= 1;

	/* productName of another product. */
	o.product = "Genoa";
	r = synth_verify(&o, rep, true, &res);
	ck_assert_int_eq(r, 0); /* v2 report: no CPUID, the VEK names the product */
	o.product = "Venice";
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "vek-extensions", "productName 'Venice'");
	o.product = NULL;

	/* ASK signed with PKCS#1 v1.5, or PSS salt 32. */
	o.ask_salt = 0;
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "ask-signature-algorithm", "not RSASSA-PSS");
	o.ask_salt = 32;
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "ask-signature-algorithm", "salt length other than 48");
	o.ask_salt = 48;

	/* ASK that is no CA. */
	o.ask_not_ca = true;
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "ask-ca", "is not a CA with keyCertSign");
	o.ask_not_ca = false;

	/* Unknown PLATFORM_INFO bits are accepted: real Turin sets bit 6. */
	rep[0x40] |= 0x40;
	sign_report(rep);
	ck_assert_msg(synth_verify(&o, rep, true, &res) == 0, "%s", kd_err_detail(KD_EVERIFY));
	/* MASK_CHIP_ID (host setting): a zeroed CHIP_ID in a VCEK-signed report verifies... */
	memset(rep + 0x1A0, 0, 64);
	sign_report(rep);
	ck_assert_msg(synth_verify(&o, rep, true, &res) == 0, "%s", kd_err_detail(KD_EVERIFY));
	/* ... but matches no --expect-chip-id, not even an all-zero one. */
	{
		struct pki p;
		struct kd_cert_inputs in;
		struct kd_verify_policy pol = {0};
		uint8_t want[64] = {0};

		mk_pki(&o, &p);
		in = (struct kd_cert_inputs){.vek = p.vek, .vek_len = (size_t)p.vek_n, .ask = p.ask,
					     .ask_len = (size_t)p.ask_n, .ark = p.ark,
					     .ark_len = (size_t)p.ark_n};
		pol.chip_id = want;
		r = kd_verify_report(rep, KD_REPORT_SIZE, &in, &pol, NULL, &res);
		assert_failed(r, &res, "chip-id", "chip ID is masked");
		memcpy(want, o.hwid, 64);
		r = kd_verify_report(rep, KD_REPORT_SIZE, &in, &pol, NULL, &res);
		assert_failed(r, &res, "chip-id", "chip ID is masked");
		pki_free(&p);
	}
	/* A non-zero CHIP_ID must still match the hwID. */
	rep[0x1A0 + 20] = 1; /* CHIP_ID[8:] non-zero: not the v2 Turin heuristic */
	sign_report(rep);
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "vek-chip-id", "VCEK hwID is not the report's CHIP_ID");
	/* MASK_CHIP_KEY: the firmware did not sign; refused whatever the signature says. */
	memset(rep + 0x1A0, 0, 64);
	rep[0x48] |= KD_SIGNER_MASK_CHIP_KEY;
	sign_report(rep);
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "signed", "unsigned report (MASK_CHIP_KEY is set)");
	memset(rep + 0x2A0, 0, 144);
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "signed", "unsigned report");
	/* ... also with no certificate at all (nothing could prove it anyway). */
	{
		struct kd_cert_inputs none = {0};

		r = kd_verify_report(rep, KD_REPORT_SIZE, &none, NULL, NULL, &res);
		assert_failed(r, &res, "signed", "unsigned report (MASK_CHIP_KEY is set)");
	}

	/* A VCEK certificate for a report that names the VLEK. */
	synth(&o, rep, KD_SIGNING_KEY_VLEK);
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "signing-key", "report is signed by the VLEK, the certificate is a VCEK");
	/* ... and a VLEK under an ASVK for it verifies. */
	o.vlek = true;
	r = synth_verify(&o, rep, true, &res);
	ck_assert_msg(r == 0, "%s", kd_err_detail(r));
	o.vlek = false;
	/* SIGNING_KEY "none". */
	synth(&o, rep, KD_SIGNING_KEY_NONE);
	r = synth_verify(&o, rep, true, &res);
	assert_failed(r, &res, "signed", "unsigned report (SIGNING_KEY is none)");
}
END_TEST

/* What the source projects' own tests expect of the vectors they published. */
START_TEST(source_project_expectations)
{
	struct buf mrep = vec("msft-milan/report.bin"), mvcek = vec("msft-milan/vcek.pem");
	struct buf gask = vec("msft-genoa/ask.pem");
	struct buf arep = vec("constellation-aws-vlek/report.bin"), avlek = vec("constellation-aws-vlek/vlek.pem");
	struct buf achain = vec("constellation-aws-vlek/cert_chain.pem");
	struct buf vrep = vec("constellation-vlek-refused/report.bin");
	struct buf vvlek = vec("constellation-vlek-refused/vlek.pem");
	struct buf vchain = vec("constellation-vlek-refused/vlek_cert_chain.pem");
	struct buf hcl = vec("trustee-azure-genoa/hcl-report.bin");
	struct kd_cert_inputs in = {.vek = mvcek.p, .vek_len = mvcek.n, .ask = gask.p, .ask_len = gask.n};
	struct kd_verify_policy pol = {0};
	struct kd_verify_result res;
	struct kd_report out;
	uint8_t rd[64], md[32];
	uint32_t var_len;
	int r;

	/* microsoft tests/common.rs "milan_genoa_ask": a Milan VCEK under the Genoa ASK. */
	r = kd_verify_report(mrep.p, mrep.n, &in, NULL, NULL, &res);
	ck_assert_int_lt(r, 0);
	/* ... and "tampered_attestation": byte 100 flipped. */
	in.ask = NULL;
	in.ask_len = 0;
	mrep.p[100] ^= 0xff;
	r = kd_verify_report(mrep.p, mrep.n, &in, NULL, NULL, &res);
	assert_failed(r, &res, "report-signature", "report signature does not verify under VCEK");

	/* constellation validator_test.go: REPORT_DATA is AKDigest ("success")... */
	in = (struct kd_cert_inputs){.vek = avlek.p, .vek_len = avlek.n, .chain_pem = achain.p,
				     .chain_pem_len = achain.n};
	ck_assert_int_eq(kd_unhex("87ab7caf510e1b3520dc3cceb64ee44128e10976fb0d3fc5e274699d8aaf5061"
				  "54af4c1de0a026b49fdf861e9ac75551551b3534d1c61369a3b08f5baed0db2f",
				  rd, 64), 0);
	pol.report_data = rd;
	pol.at = t_at("2025-06-01T00:00:00Z");
	ck_assert_msg(kd_verify_report(arep.p, arep.n, &in, &pol, &out, NULL) == 0, "%s",
		      kd_err_detail(KD_EVERIFY));
	/* ... only at a time the VLEK was valid ... */
	pol.at = 0;
	r = kd_verify_report(arep.p, arep.n, &in, &pol, NULL, &res);
	assert_failed(r, &res, "vek-validity", "VLEK expired 2025-12-10");
	/* ... "invalid report signature" (Signature[0]++). */
	pol.at = t_at("2025-06-01T00:00:00Z");
	arep.p[0x2A0]++;
	r = kd_verify_report(arep.p, arep.n, &in, &pol, NULL, &res);
	assert_failed(r, &res, "report-signature", "report signature does not verify under VLEK");

	/* constellation snp/testdata AttestationReportVLEK: never a valid signature. */
	in = (struct kd_cert_inputs){.vek = vvlek.p, .vek_len = vvlek.n, .chain_pem = vchain.p,
				     .chain_pem_len = vchain.n};
	memset(&pol, 0, sizeof(pol));
	pol.at = t_at("2024-01-01T00:00:00Z");
	r = kd_verify_report(vrep.p, vrep.n, &in, &pol, NULL, &res);
	assert_failed(r, &res, "report-signature", "report signature does not verify under VLEK");
	pol.at = 0;
	ck_assert_int_lt(kd_verify_report(vrep.p, vrep.n, &in, &pol, NULL, NULL), 0);

	/* trustee az_snp_vtpm verify_report_data: REPORT_DATA[0:32] = SHA-256(HCL variable data). */
	ck_assert_uint_eq(hcl.n, 2600);
	var_len = kd_get_le32(hcl.p + 32 + KD_REPORT_SIZE + 16);
	ck_assert_uint_le(32 + KD_REPORT_SIZE + 20 + var_len, hcl.n);
	ck_assert(EVP_Digest(hcl.p + 32 + KD_REPORT_SIZE + 20, var_len, md, NULL, EVP_sha256(), NULL));
	ck_assert_mem_eq(hcl.p + 32 + 0x50, md, 32);

	free(mrep.p);
	free(mvcek.p);
	free(gask.p);
	free(arep.p);
	free(avlek.p);
	free(achain.p);
	free(vrep.p);
	free(vvlek.p);
	free(vchain.p);
	free(hcl.p);
}
END_TEST

/* KDS URL paths and cache names, from real reports. */
START_TEST(kds_paths_and_bundle_names)
{
	struct buf m = vec("virtee-sev-milan/report.bin"), t = vec("msft-turin/report.bin");
	struct buf v = vec("trustee-milan-vlek/report.bin");
	char path[KD_KDS_PATH_MAX], name[KD_CERTBUNDLE_NAME_MAX];
	struct kd_report r;

	ck_assert_int_eq(kd_report_parse(m.p, m.n, &r), 0);
	/* v2: no CPUID, the product must be given. */
	ck_assert_int_eq(kd_kds_vcek_path(&r, kd_report_product(&r), path), KD_EUNSUPP);
	ck_assert_int_eq(kd_kds_vcek_path(&r, KD_PRODUCT_MILAN, path), 0);
	ck_assert_str_eq(path, "/vcek/v1/Milan/d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc"
			       "15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6"
			       "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115");
	ck_assert_int_eq(kd_certbundle_name(&r, name), 0);
	ck_assert_str_eq(name, "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db75703"
			       "9029f0efacfd08e244324884738c72b082e2f87a44d541eb6-0300000000000873.pem");
	ck_assert_int_eq(kd_kds_chain_path(KD_PRODUCT_GENOA, false, path), 0);
	ck_assert_str_eq(path, "/vcek/v1/Genoa/cert_chain");
	ck_assert_int_eq(kd_kds_chain_path(KD_PRODUCT_MILAN, true, path), 0);
	ck_assert_str_eq(path, "/vlek/v1/Milan/cert_chain");
	/* A masked CHIP_ID names no chip. */
	memset(r.chip_id, 0, 64);
	ck_assert_int_eq(kd_kds_vcek_path(&r, KD_PRODUCT_MILAN, path), KD_EUNSUPP);
	ck_assert_int_eq(kd_certbundle_name(&r, name), KD_EUNSUPP);

	/* Turin: 8-byte hwID and fmcSPL, product from CPUID. */
	ck_assert_int_eq(kd_report_parse(t.p, t.n, &r), 0);
	ck_assert_int_eq(kd_kds_vcek_path(&r, kd_report_product(&r), path), 0);
	ck_assert_str_eq(path, "/vcek/v1/Turin/59790fb1c39f35c1?blSPL=1&teeSPL=1&snpSPL=4&ucodeSPL=81&fmcSPL=1");

	/* VLEK: one bundle per TCB, no chip in the name. */
	ck_assert_int_eq(kd_report_parse(v.p, v.n, &r), 0);
	ck_assert_int_eq(kd_certbundle_name(&r, name), 0);
	ck_assert_str_eq(name, "vlek-04000000000018d9.pem");
	free(m.p);
	free(t.p);
	free(v.p);
}
END_TEST

/* The bundle is used only when no VCEK/VLEK is given, and never for a table that has one. */
START_TEST(bundle_only_when_table_lacks_vek)
{
	struct buf rep = vec("virtee-sev-milan/report.bin"), vek = vec("virtee-sev-milan/vcek.der");
	struct buf chain = vec("virtee-sev-milan/cert_chain.pem");
	char dir[] = "/tmp/keyd-test-bundle-XXXXXX", path[512], src[600];
	struct kd_cert_inputs in = {0};
	uint8_t *b = NULL, *table = NULL, zero[4096] = {0};
	size_t blen, tlen;
	struct kd_report r;
	char name[KD_CERTBUNDLE_NAME_MAX];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	unsetenv("KEYD_CERT_BUNDLE");
	ck_assert_int_eq(kd_report_parse(rep.p, rep.n, &r), 0);
	ck_assert_int_eq(kd_certbundle_name(&r, name), 0);
	/* No bundle: refused, naming the path. */
	ck_assert_int_eq(kd_certs_from_bundle(&in, rep.p, rep.n, dir, &b, src, sizeof(src)), KD_ENOENT);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ENOENT), name));
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_ENOENT), "keyd kds fetch"));
	/* With one: in points at it, and it verifies. */
	ck_assert_int_eq(kd_certbundle_build(vek.p, vek.n, chain.p, chain.n, &b, &blen), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(kd_write_file(path, b, blen, 0644), 0);
	free(b);
	b = NULL;
	in.cert_table = zero; /* the zero page of a host without certificates */
	in.cert_table_len = sizeof(zero);
	ck_assert_int_eq(kd_certs_from_bundle(&in, rep.p, rep.n, dir, &b, src, sizeof(src)), 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(src, path);
	ck_assert_ptr_eq(in.vek, b);
	ck_assert_int_eq(kd_verify_report(rep.p, rep.n, &in, NULL, NULL, NULL), 0);
	free(b);
	/* A table that holds a VCEK wins: the bundle is not read. */
	ck_assert_int_eq(kd_certtable_build(&(struct kd_cert_entry){.kind = KD_CERT_VCEK, .der = vek.p,
								 .len = vek.n}, 1, &table, &tlen), 0);
	memset(&in, 0, sizeof(in));
	in.cert_table = table;
	in.cert_table_len = tlen;
	ck_assert_int_eq(kd_certs_from_bundle(&in, rep.p, rep.n, dir, &b, src, sizeof(src)), 0);
	ck_assert_ptr_null(b);
	ck_assert_str_eq(src, "certificate table");
	/* A malformed table is not "empty": the verifier reports it. */
	ck_assert(!kd_certtable_lacks_vek((const uint8_t *)"\x01\x02", 2));
	ck_assert(kd_certtable_lacks_vek(NULL, 0));
	/* A file that is not PEM is refused. */
	ck_assert_int_eq(kd_write_file(path, "garbage", 7, 0644), 0);
	memset(&in, 0, sizeof(in));
	ck_assert_int_eq(kd_certs_from_bundle(&in, rep.p, rep.n, dir, &b, src, sizeof(src)), KD_EMALFORMED);
	/* $KEYD_CERT_BUNDLE names the file itself (a masked CHIP_ID names no chip). */
	setenv("KEYD_CERT_BUNDLE", path, 1);
	ck_assert_int_eq(kd_certs_from_bundle(&in, rep.p, rep.n, "/nonexistent", &b, src, sizeof(src)),
			 KD_EMALFORMED);
	unsetenv("KEYD_CERT_BUNDLE");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	free(table);
	free(rep.p);
	free(vek.p);
	free(chain.p);
}
END_TEST

/*
 * The KDS client against canned responses from a loopback listener: only a
 * complete "200" response with a body within the limit is accepted.
 */
static int http_canned(const char *resp, size_t resp_len, size_t max, uint8_t **out, size_t *out_len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM, 0), st, r;
	char base[64];
	pid_t pid;

	ck_assert_int_ge(ls, 0);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(ls, 1), 0);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char req[2048];
		int c = accept(ls, NULL, NULL);

		if (c >= 0 && read(c, req, sizeof(req)) > 0 && write(c, resp, resp_len) >= 0)
			shutdown(c, SHUT_WR);
		_exit(0);
	}
	close(ls);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	r = kd_http_get(base, "/vcek/v1/Milan/cert_chain", max, 10, out, out_len);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return r;
}

START_TEST(kds_http_responses)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nBODY";
	uint8_t *b = NULL;
	size_t n = 0;

	ck_assert_int_eq(http_canned(ok, sizeof(ok) - 1, 64, &b, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_mem_eq(b, "BODY", 4);
	free(b);
	/* Every truncation of the header is refused; so is an empty body. */
	for (size_t cut = 0; cut < sizeof(ok) - 1 - 4; cut += 7) {
		b = NULL;
		ck_assert_int_eq(http_canned(ok, cut, 64, &b, &n), KD_EIO);
		ck_assert_ptr_null(b);
	}
	ck_assert_int_eq(http_canned(ok, sizeof(ok) - 1 - 4, 64, &b, &n), KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EIO), "empty response"));
	/* Not 200, a garbled status, more than the limit. */
	ck_assert_int_eq(http_canned("HTTP/1.1 404 Not Found\r\n\r\nx", 27, 64, &b, &n), KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EIO), "HTTP status 404"));
	ck_assert_int_eq(http_canned("HTTP/1.1 2x0 OK\r\n\r\nx", 20, 64, &b, &n), KD_EIO);
	ck_assert_int_eq(http_canned("SSH-2.0-OpenSSH\r\n\r\nx", 20, 64, &b, &n), KD_EIO);
	ck_assert_int_eq(http_canned(ok, sizeof(ok) - 1, 3, &b, &n), KD_EIO);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(KD_EIO), "larger than 3 bytes"));
	/* Only http:// and https://. */
	ck_assert_int_eq(kd_http_get("ftp://127.0.0.1", "/x", 64, 1, &b, &n), KD_EINVAL);
}
END_TEST

START_TEST(rfc3339)
{
	time_t t;

	ck_assert_int_eq(kd_parse_rfc3339("2025-12-10T22:14:21Z", &t), 0);
	ck_assert_int_eq(t, 1765404861);
	ck_assert_int_eq(kd_parse_rfc3339("2025-12-10T23:14:21.5+01:00", &t), 0);
	ck_assert_int_eq(t, 1765404861);
	ck_assert_int_eq(kd_parse_rfc3339("2025-12-10T22:14:21", &t), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_rfc3339("2025-12-10 22:14:21Z", &t), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_rfc3339("2025-12-10T22:14:21Zx", &t), KD_EMALFORMED);
	ck_assert_int_eq(kd_parse_rfc3339("yesterday", &t), KD_EMALFORMED);
}
END_TEST

START_TEST(inputs_refused)
{
	struct buf rep = vec("virtee-sev-milan/report.bin"), vek = vec("virtee-sev-milan/vcek.der");
	struct kd_cert_inputs in = {0};
	struct kd_verifier *v = NULL;
	int r;

	ck_assert_int_eq(kd_verify_report(rep.p, rep.n, &in, NULL, NULL, NULL), KD_EINVAL);
	in.vek = vek.p;
	in.vek_len = vek.n - 1;
	ck_assert_int_eq(kd_verify_report(rep.p, rep.n, &in, NULL, NULL, NULL), KD_EMALFORMED);
	in.vek_len = vek.n;
	r = kd_verify_report(rep.p, rep.n - 1, &in, NULL, NULL, NULL);
	ck_assert_int_lt(r, 0);
	ck_assert_ptr_nonnull(strstr(kd_err_detail(r), "report"));
	/* The verifier keeps no pointer into the caller's buffers. */
	ck_assert_int_eq(kd_verifier_new(&in, &v, NULL), 0);
	memset(vek.p, 0, vek.n);
	ck_assert_int_eq(kd_verifier_verify(v, rep.p, rep.n, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(kd_verifier_vek(v)->hwid_len, 64);
	kd_verifier_free(v);
	free(rep.p);
	free(vek.p);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, every_vector_verifies, 0, (int)KD_ARRAY_SIZE(cases));
	tcase_add_loop_test(tc, every_signed_byte_flip_fails, 0, (int)KD_ARRAY_SIZE(cases));
	tcase_add_test(tc, wrong_chains_fail);
	tcase_add_test(tc, policy_refusals);
	tcase_add_test(tc, turin_chain_and_extensions);
	tcase_add_test(tc, vek_extension_forms);
	tcase_add_test(tc, cert_table_input);
	tcase_add_test(tc, synthetic_chain);
	tcase_add_test(tc, source_project_expectations);
	tcase_add_test(tc, kds_paths_and_bundle_names);
	tcase_add_test(tc, bundle_only_when_table_lacks_vek);
	tcase_add_test(tc, kds_http_responses);
	tcase_add_test(tc, rfc3339);
	tcase_add_test(tc, inputs_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
