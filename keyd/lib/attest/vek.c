/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VCEK/VLEK certificate extensions (OID prefix 1.3.6.1.4.1.3704.1,
 * docs/snp-facts.md §3.2). Every value is decoded with OpenSSL's DER decoders and must
 * be consumed exactly: an SPL is a DER INTEGER, so 219 is 02 02 00 db and
 * not "the last byte" (the pitfall in trustee's comment).
 */
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "attest/internal.h"
#include "keyd/error.h"
#include "keyd/util.h"
#include "keyd/verify.h"

#define AMD_OID_PREFIX "1.3.6.1.4.1.3704.1."

X509 *kd_x509_load(const uint8_t *buf, size_t len)
{
	static const char pem_tag[] = "-----BEGIN";
	const unsigned char *p = buf;
	X509 *x;

	if (!buf || len == 0 || len > 64 * 1024)
		return NULL;
	if (len >= sizeof(pem_tag) - 1 && !memcmp(buf, pem_tag, sizeof(pem_tag) - 1)) {
		BIO *bio = BIO_new_mem_buf(buf, (int)len);

		if (!bio)
			return NULL;
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		ERR_clear_error();
		return x;
	}
	x = d2i_X509(NULL, &p, (long)len);
	/* Trailing bytes after the certificate are refused (STYLE §4). */
	if (x && p != buf + len) {
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	return x;
}

/* A whole extnValue that is one DER INTEGER in 0..255. */
static int der_spl(const uint8_t *p, size_t len, const char *name, uint8_t *ret)
{
	const unsigned char *q = p;
	ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &q, (long)len);
	int64_t v = -1;
	int ok = ai && q == p + len && ASN1_INTEGER_get_int64(&v, ai) == 1 && v >= 0 && v <= 255;

	ASN1_INTEGER_free(ai);
	ERR_clear_error();
	if (!ok)
		return kd_fail(KD_EMALFORMED, "VEK %s is not a DER INTEGER in 0..255", name);
	*ret = (uint8_t)v;
	return 0;
}

/* A whole extnValue that is one IA5String without NUL, copied as a C string. */
static int der_ia5(const uint8_t *p, size_t len, const char *name, char *out, size_t outsz)
{
	const unsigned char *q = p;
	ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &q, (long)len);
	int n = s ? ASN1_STRING_length(s) : -1;
	const unsigned char *d = s ? ASN1_STRING_get0_data(s) : NULL;
	int ok = s && q == p + len && n >= 0 && (size_t)n < outsz && !memchr(d, 0, (size_t)n);

	if (ok) {
		memcpy(out, d, (size_t)n);
		out[n] = '\0';
	}
	ASN1_IA5STRING_free(s);
	ERR_clear_error();
	if (!ok)
		return kd_fail(KD_EMALFORMED, "VEK %s is not a DER IA5String", name);
	return 0;
}

/*
 * hwID: KDS puts the CHIP_ID bytes straight into extnValue without an OCTET
 * STRING (go-sev-guest: "KDS doesn't add that"); 64 bytes, 8 on Turin. A
 * wrapped form (04 40 ..., trustee's test cert) is accepted too. The two are
 * told apart by length only, so raw bytes that happen to start 04 40 are
 * still raw.
 */
static int parse_hwid(const uint8_t *p, size_t len, struct kd_vek_info *v)
{
	if (len == 64 || len == 8) {
		memcpy(v->hwid, p, len);
		v->hwid_len = len;
		return 0;
	}
	if ((len == 66 && p[0] == 0x04 && p[1] == 0x40) || (len == 10 && p[0] == 0x04 && p[1] == 0x08)) {
		const unsigned char *q = p;
		ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
		int n = os ? ASN1_STRING_length(os) : -1;
		int ok = os && q == p + len && (n == 64 || n == 8);

		if (ok) {
			memcpy(v->hwid, ASN1_STRING_get0_data(os), (size_t)n);
			v->hwid_len = (size_t)n;
			v->hwid_wrapped = true;
		}
		ASN1_OCTET_STRING_free(os);
		ERR_clear_error();
		if (ok)
			return 0;
	}
	return kd_fail(KD_EMALFORMED, "VEK hwID of %zu bytes is neither 64/8 raw bytes nor an OCTET STRING of them",
		       len);
}

enum {
	SEEN_VERSION = 1u << 0,
	SEEN_PRODUCT = 1u << 1,
	SEEN_BL = 1u << 2,
	SEEN_TEE = 1u << 3,
	SEEN_SNP = 1u << 4,
	SEEN_UCODE = 1u << 5,
	SEEN_FMC = 1u << 6,
	SEEN_HWID = 1u << 7,
	SEEN_CSP = 1u << 8,
	SEEN_SPL4 = 1u << 9, /* .3.4 .. .3.7: reserved SPLs, bits 9..12 */
};

static int one_ext(const char *sub, const uint8_t *p, size_t len, struct kd_vek_info *v, unsigned *seen)
{
	static const struct {
		const char *sub;
		const char *name;
	} spls[] = {
		{"3.1", "blSPL"}, {"3.2", "teeSPL"}, {"3.3", "snpSPL"}, {"3.4", "spl4"}, {"3.5", "spl5"},
		{"3.6", "spl6"}, {"3.7", "spl7"}, {"3.8", "ucodeSPL"}, {"3.9", "fmcSPL"},
	};
	unsigned bit;
	int r;

	if (!strcmp(sub, "1")) {
		uint8_t sv;

		bit = SEEN_VERSION;
		if ((r = der_spl(p, len, "structVersion", &sv)) < 0)
			return r;
		v->struct_version = sv;
	} else if (!strcmp(sub, "2")) {
		bit = SEEN_PRODUCT;
		if ((r = der_ia5(p, len, "productName", v->product_name, sizeof(v->product_name))) < 0)
			return r;
	} else if (!strcmp(sub, "4")) {
		bit = SEEN_HWID;
		if ((r = parse_hwid(p, len, v)) < 0)
			return r;
	} else if (!strcmp(sub, "5")) {
		bit = SEEN_CSP;
		if ((r = der_ia5(p, len, "cspID", v->csp_id, sizeof(v->csp_id))) < 0)
			return r;
	} else {
		size_t i;
		uint8_t val;

		for (i = 0; i < KD_ARRAY_SIZE(spls); i++)
			if (!strcmp(sub, spls[i].sub))
				break;
		/* Unknown AMD extensions are non-critical additions: ignored. */
		if (i == KD_ARRAY_SIZE(spls))
			return 0;
		if ((r = der_spl(p, len, spls[i].name, &val)) < 0)
			return r;
		switch (i) {
		case 0: bit = SEEN_BL; v->bl_spl = val; break;
		case 1: bit = SEEN_TEE; v->tee_spl = val; break;
		case 2: bit = SEEN_SNP; v->snp_spl = val; break;
		case 7: bit = SEEN_UCODE; v->ucode_spl = val; break;
		case 8: bit = SEEN_FMC; v->fmc_spl = val; v->has_fmc_spl = true; break;
		default: bit = SEEN_SPL4 << (i - 3); break;
		}
	}
	/* A second copy of an extension could disagree with the first. */
	if (*seen & bit)
		return kd_fail(KD_EMALFORMED, "VEK extension %s%s appears twice", AMD_OID_PREFIX, sub);
	*seen |= bit;
	return 0;
}

int kd_vek_parse_x509(X509 *x, struct kd_vek_info *ret)
{
	struct kd_vek_info v;
	unsigned seen = 0;
	char prod[sizeof(v.product_name)];
	char *dash;
	int r;

	memset(&v, 0, sizeof(v));
	v.struct_version = -1;
	for (int i = 0; i < X509_get_ext_count(x); i++) {
		X509_EXTENSION *ext = X509_get_ext(x, i);
		ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
		char oid[80];
		int n = OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1);

		if (n <= 0 || (size_t)n >= sizeof(oid) || strncmp(oid, AMD_OID_PREFIX, strlen(AMD_OID_PREFIX)))
			continue;
		r = one_ext(oid + strlen(AMD_OID_PREFIX), ASN1_STRING_get0_data(os),
			    (size_t)ASN1_STRING_length(os), &v, &seen);
		if (r < 0)
			return r;
	}
	if (!(seen & SEEN_PRODUCT))
		return kd_fail(KD_EMALFORMED, "VEK has no productName extension");
	snprintf(prod, sizeof(prod), "%s", v.product_name);
	/* "Milan-B0": the product line is the part before the stepping. */
	if ((dash = strchr(prod, '-')))
		*dash = '\0';
	if (kd_product_from_name(prod, &v.product) < 0 || v.product == KD_PRODUCT_UNKNOWN)
		return kd_fail(KD_EUNSUPP, "VEK productName '%s' is not Milan, Genoa or Turin", v.product_name);
	if ((seen & (SEEN_BL | SEEN_TEE | SEEN_SNP | SEEN_UCODE)) != (SEEN_BL | SEEN_TEE | SEEN_SNP | SEEN_UCODE))
		return kd_fail(KD_EMALFORMED, "VEK lacks one of blSPL, teeSPL, snpSPL, ucodeSPL");
	/* Turin's TCB has an FMC component; KDS certifies it as fmcSPL. */
	if (v.product == KD_PRODUCT_TURIN && !(seen & SEEN_FMC))
		return kd_fail(KD_EMALFORMED, "Turin VEK lacks fmcSPL");
	if (v.product != KD_PRODUCT_TURIN && (seen & SEEN_FMC))
		return kd_fail(KD_EMALFORMED, "%s VEK carries fmcSPL, which only Turin has",
			       kd_product_name(v.product));
	if ((seen & SEEN_HWID) && (seen & SEEN_CSP))
		return kd_fail(KD_EMALFORMED, "VEK has both hwID (VCEK) and cspID (VLEK)");
	if (!(seen & (SEEN_HWID | SEEN_CSP)))
		return kd_fail(KD_EMALFORMED, "VEK has neither hwID (VCEK) nor cspID (VLEK)");
	v.is_vlek = (seen & SEEN_CSP) != 0;
	if (!v.is_vlek && v.hwid_len != (v.product == KD_PRODUCT_TURIN ? 8u : 64u))
		return kd_fail(KD_EMALFORMED, "%s VCEK hwID has %zu bytes", kd_product_name(v.product),
			       v.hwid_len);
	*ret = v;
	return 0;
}

int kd_vek_parse(const uint8_t *cert, size_t len, struct kd_vek_info *ret)
{
	X509 *x = kd_x509_load(cert, len);
	int r;

	if (!x)
		return kd_fail(KD_EMALFORMED, "VEK certificate is neither DER nor PEM");
	r = kd_vek_parse_x509(x, ret);
	X509_free(x);
	return r;
}
