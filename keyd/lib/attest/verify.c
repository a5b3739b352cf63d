/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP report verification (docs/snp-facts.md §2, §3):
 *
 *   ARK (self-signed, pinned) -> ASK or ASVK -> VCEK or VLEK -> report
 *
 * Every certificate signature must be RSASSA-PSS/SHA-384/MGF1-SHA-384/salt
 * 48; the parameters are inspected, not merely accepted, so a PKCS#1 v1.5
 * or short-salt signature by a (hypothetically) compromised or confused
 * signer is refused. On top of the explicit, individually named checks the
 * chain also goes through X509_verify_cert() for the standard path rules
 * (critical extensions, CA constraints, path length). X509_V_FLAG_X509_STRICT
 * stays off: genuine VCEKs have serial 0 and no AKID, which strict mode
 * rejects; nothing else is relaxed.
 *
 * The chain work is done once per struct kd_verifier; a report then costs
 * one SHA-384, one ECDSA P-384 verification and compares. Validity periods
 * are checked on every report against the caller's time.
 */
#include <assert.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "attest/internal.h"
#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/util.h"
#include "keyd/verify.h"

#define DETAIL_MAX sizeof(((struct kd_check_result *)0)->detail)
#define MAX_INTERMEDIATES 4

/* ---------------------------------------------------------------- checks */

struct checker {
	struct kd_check_result *out; /* NULL: only the first failure is kept */
	size_t *n;
	int first_err;
	char first_detail[DETAIL_MAX];
};

/*
 * Record one check. err 0 = passed. The detail is formatted only when
 * someone will read it, so the cached path stays cheap.
 */
__attribute__((format(printf, 4, 5))) static int ck(struct checker *c, const char *name, int err,
						   const char *fmt, ...)
{
	char buf[DETAIL_MAX];
	va_list ap;

	assert(c && name && fmt);
	if (!c->out && (!err || c->first_err))
		return err;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->out && *c->n < KD_VERIFY_MAX_CHECKS) {
		struct kd_check_result *r = &c->out[(*c->n)++];

		r->name = name;
		r->ok = err == 0;
		memcpy(r->detail, buf, sizeof(r->detail));
	}
	if (err && !c->first_err) {
		c->first_err = err;
		memcpy(c->first_detail, buf, sizeof(buf));
	}
	return err;
}

static int ck_finish(const struct checker *c)
{
	if (!c->first_err)
		return 0;
	return kd_fail(c->first_err, "%s", c->first_detail);
}

/* ---------------------------------------------------------------- helpers */

static void cert_cn(X509 *x, char *out, size_t len)
{
	if (!x || X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)len) < 0)
		snprintf(out, len, "?");
}

static time_t asn1_time_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return (time_t)-1;
	return timegm(&tm);
}

static void fmt_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "%lld", (long long)t);
}

static int sha256_hex(X509 *x, char out[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;

	if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return kd_fail(KD_ECRYPTO, "SHA-256 of a certificate failed");
	kd_hex(md, 32, out);
	return 0;
}

/*
 * RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1: the only
 * signature AMD's KDS issues (docs/snp-facts.md §3.1). Absent parameters mean the
 * RFC 4055 defaults (SHA-1, salt 20) and are refused like any other value.
 */
static int check_pss_params(X509 *x, char *why, size_t whylen)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid, ok = 0;
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgfhash = NULL;
	int64_t salt = -1, trailer = 1;

	X509_get0_signature(NULL, &alg, x);
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	nid = OBJ_obj2nid(obj);
	if (nid != NID_rsassaPss) {
		snprintf(why, whylen, "is signed with %s, not RSASSA-PSS",
			 nid != NID_undef ? OBJ_nid2ln(nid) : "an unknown algorithm");
		return kd_fail(KD_EVERIFY, "certificate %s", why);
	}
	if (ptype == V_ASN1_SEQUENCE) {
		const ASN1_STRING *seq = pval;
		const unsigned char *p = ASN1_STRING_get0_data(seq);

		pss = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(seq));
	}
	if (!pss) {
		snprintf(why, whylen, "has RSASSA-PSS without parameters (SHA-1 defaults)");
		goto out;
	}
	if (!pss->hashAlgorithm || OBJ_obj2nid(pss->hashAlgorithm->algorithm) != NID_sha384) {
		snprintf(why, whylen, "has an RSASSA-PSS hash other than SHA-384");
		goto out;
	}
	if (!pss->maskGenAlgorithm || OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1 ||
	    !pss->maskGenAlgorithm->parameter || pss->maskGenAlgorithm->parameter->type != V_ASN1_SEQUENCE) {
		snprintf(why, whylen, "has an RSASSA-PSS mask generation other than MGF1-SHA-384");
		goto out;
	}
	mgfhash = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), pss->maskGenAlgorithm->parameter);
	if (!mgfhash || OBJ_obj2nid(mgfhash->algorithm) != NID_sha384) {
		snprintf(why, whylen, "has an RSASSA-PSS MGF1 hash other than SHA-384");
		goto out;
	}
	if (!pss->saltLength || ASN1_INTEGER_get_int64(&salt, pss->saltLength) != 1 || salt != 48) {
		snprintf(why, whylen, "has an RSASSA-PSS salt length other than 48");
		goto out;
	}
	if (pss->trailerField && (ASN1_INTEGER_get_int64(&trailer, pss->trailerField) != 1 || trailer != 1)) {
		snprintf(why, whylen, "has an RSASSA-PSS trailer field other than 1");
		goto out;
	}
	ok = 1;
out:
	X509_ALGOR_free(mgfhash);
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return ok ? 0 : kd_fail(KD_EVERIFY, "certificate %s", why);
}

/* basicConstraints CA:TRUE and keyUsage keyCertSign (docs/snp-facts.md §3.1). */
static bool is_signing_ca(X509 *x)
{
	uint32_t flags = X509_get_extension_flags(x);

	return (flags & EXFLAG_CA) && (flags & EXFLAG_KUSAGE) && (X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
}

/* Signature of child under parent's key, and the issuer name linking them. */
static bool signed_by(X509 *child, X509 *parent)
{
	EVP_PKEY *pk = X509_get0_pubkey(parent);
	bool ok = pk && X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) == 0 &&
		  X509_verify(child, pk) == 1;

	ERR_clear_error();
	return ok;
}

/* Read every certificate of a PEM bundle, in order. */
static int pem_bundle(const uint8_t *buf, size_t len, X509 **out, size_t max, size_t *ret_n)
{
	BIO *bio;
	size_t n = 0;

	if (len > 256 * 1024)
		return kd_fail(KD_EMALFORMED, "certificate chain is larger than 256 KiB");
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio)
		return kd_fail(KD_ENOMEM, "out of memory (certificate chain)");
	for (;;) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (!x)
			break;
		if (n == max) {
			X509_free(x);
			BIO_free(bio);
			for (size_t i = 0; i < n; i++)
				X509_free(out[i]);
			return kd_fail(KD_EMALFORMED, "certificate chain holds more than %zu certificates", max);
		}
		out[n++] = x;
	}
	BIO_free(bio);
	ERR_clear_error();
	if (n == 0)
		return kd_fail(KD_EMALFORMED, "certificate chain holds no PEM certificate");
	*ret_n = n;
	return 0;
}

/* ---------------------------------------------------------------- verifier */

enum { C_ARK, C_ASK, C_VEK, C_N };
static const char *const role_name[C_N] = {"ARK", "ASK", "VEK"};

struct kd_verifier {
	X509 *cert[C_N];
	time_t not_before[C_N], not_after[C_N];
	bool ask_is_asvk;
	bool custom_root;              /* --ark: not an AMD root */
	enum kd_product root_product;  /* built-in root's product, or UNKNOWN */
	struct kd_vek_info vek;
	bool vek_ok;                   /* extensions parsed */
	EVP_PKEY_CTX *pctx;            /* ECDSA verify context of the VEK key */
	EVP_MD *sha384;
	int chain_err;
	char chain_detail[DETAIL_MAX];
	struct kd_check_result checks[KD_VERIFY_MAX_CHECKS];
	size_t n_checks;
};

void kd_verifier_free(struct kd_verifier *v)
{
	if (!v)
		return;
	for (int i = 0; i < C_N; i++)
		X509_free(v->cert[i]);
	EVP_PKEY_CTX_free(v->pctx);
	EVP_MD_free(v->sha384);
	free(v);
}

const struct kd_vek_info *kd_verifier_vek(const struct kd_verifier *v)
{
	return v->vek_ok ? &v->vek : NULL;
}

static const char *vek_kind(const struct kd_verifier *v)
{
	return v->vek_ok && v->vek.is_vlek ? "VLEK" : "VCEK";
}

static const char *ask_kind(const struct kd_verifier *v)
{
	return v->ask_is_asvk ? "ASVK" : "ASK";
}

/* The certificates the caller offered, sorted by role. */
struct offered {
	X509 *vek;
	X509 *root;                         /* ARK offered in a chain/table: must be trusted */
	X509 *inter[MAX_INTERMEDIATES];     /* ASK/ASVK candidates */
	size_t n_inter;
	X509 *ark_opt;                      /* --ark: replaces the built-in roots */
};

static void offered_free(struct offered *o)
{
	X509_free(o->vek);
	X509_free(o->root);
	X509_free(o->ark_opt);
	for (size_t i = 0; i < o->n_inter; i++)
		X509_free(o->inter[i]);
}

static int add_inter(struct offered *o, X509 *x)
{
	if (o->n_inter == MAX_INTERMEDIATES) {
		X509_free(x);
		return kd_fail(KD_EMALFORMED, "more than %d ASK/ASVK candidates given", MAX_INTERMEDIATES);
	}
	o->inter[o->n_inter++] = x;
	return 0;
}

static int load_one(const uint8_t *buf, size_t len, const char *what, X509 **ret)
{
	X509 *x = kd_x509_load(buf, len);

	if (!x)
		return kd_fail(KD_EMALFORMED, "%s certificate is neither DER nor PEM", what);
	*ret = x;
	return 0;
}

static int load_table(const uint8_t *buf, size_t len, struct offered *o)
{
	struct kd_certtable t;
	X509 *x = NULL;
	int r;

	r = kd_certtable_parse(buf, len, &t);
	if (r < 0)
		return kd_fail(r, "certificate table: %s", kd_err_detail(r));
	if (!o->vek && (t.vcek || t.vlek)) {
		if (t.vcek && t.vlek)
			return kd_fail(KD_EMALFORMED, "certificate table holds both a VCEK and a VLEK");
		if ((r = load_one(t.vcek ? t.vcek : t.vlek, t.vcek ? t.vcek_len : t.vlek_len,
				  "certificate-table VEK", &o->vek)) < 0)
			return r;
	}
	if (t.ask) {
		if ((r = load_one(t.ask, t.ask_len, "certificate-table ASK", &x)) < 0)
			return r;
		if ((r = add_inter(o, x)) < 0)
			return r;
	}
	if (t.ark && !o->root) {
		if ((r = load_one(t.ark, t.ark_len, "certificate-table ARK", &o->root)) < 0)
			return r;
	}
	return 0;
}


static int collect(const struct kd_cert_inputs *in, struct offered *o)
{
	X509 *x = NULL;
	int r;

	if (in->vek && (r = load_one(in->vek, in->vek_len, "VCEK/VLEK", &o->vek)) < 0)
		return r;
	if (in->ark && (r = load_one(in->ark, in->ark_len, "ARK", &o->ark_opt)) < 0)
		return r;
	if (in->ask) {
		if ((r = load_one(in->ask, in->ask_len, "ASK", &x)) < 0)
			return r;
		if ((r = add_inter(o, x)) < 0)
			return r;
	}
	if (in->chain_pem) {
		X509 *c[2 + MAX_INTERMEDIATES];
		size_t n = 0;

		if ((r = pem_bundle(in->chain_pem, in->chain_pem_len, c, KD_ARRAY_SIZE(c), &n)) < 0)
			return r;
		/* A "vcek_ask_ark" bundle starts with the VEK itself: skip that copy. */
		if (n > 1 && o->vek && X509_cmp(c[0], o->vek) == 0) {
			X509_free(c[0]);
			memmove(c, c + 1, --n * sizeof(c[0]));
		}
		/*
		 * KDS order: ASK (or ASVK) first, then ARK; further certificates
		 * (trustee's ASK, ARK, ASVK bundle) are more intermediates. The
		 * order is enforced: a swapped chain is a wrong chain.
		 */
		if (X509_check_issued(c[0], c[0]) == X509_V_OK) {
			char cn[64];

			cert_cn(c[0], cn, sizeof(cn));
			for (size_t i = 0; i < n; i++)
				X509_free(c[i]);
			return kd_fail(KD_EVERIFY,
				       "chain order: first certificate of the chain (%s) is self-signed; expected ASK, then ARK",
				       cn);
		}
		r = add_inter(o, c[0]);
		for (size_t i = 1; i < n; i++) {
			if (r < 0) {
				X509_free(c[i]);
			} else if (i == 1) {
				o->root = c[i];
			} else {
				r = add_inter(o, c[i]);
			}
		}
		if (r < 0)
			return r;
	}
	if (in->cert_table && (r = load_table(in->cert_table, in->cert_table_len, o)) < 0)
		return r;
	if (!o->vek)
		return kd_fail(KD_EINVAL, "no VCEK or VLEK certificate given");
	return 0;
}

/* The built-in roots, loaded and checked against their pins. */
static int builtin_certs(size_t i, X509 **ark, X509 **ask, X509 **asvk)
{
	const struct kd_builtin_root *b = &kd_builtin_roots[i];
	char fp[65];

	*ark = kd_x509_load((const uint8_t *)b->ark_pem, strlen(b->ark_pem));
	*ask = kd_x509_load((const uint8_t *)b->ask_pem, strlen(b->ask_pem));
	*asvk = kd_x509_load((const uint8_t *)b->asvk_pem, strlen(b->asvk_pem));
	if (!*ark || !*ask || !*asvk || sha256_hex(*ark, fp) < 0 || strcmp(fp, b->ark_sha256)) {
		X509_free(*ark);
		X509_free(*ask);
		X509_free(*asvk);
		*ark = *ask = *asvk = NULL;
		return kd_fail(KD_ECRYPTO, "built-in ARK-%s does not match its pinned fingerprint",
			       kd_product_name(b->product));
	}
	return 0;
}

static int x509_der_equal(X509 *a, X509 *b)
{
	return X509_cmp(a, b) == 0;
}

/*
 * Pick the root and the intermediate. Built-in mode: the root is the pinned
 * ARK of the VEK's product, or the pinned ARK equal to the one offered in a
 * chain (a foreign ARK is refused, not trusted). --ark mode: that ARK.
 */
static int select_chain(struct kd_verifier *v, struct offered *o, struct checker *c)
{
	X509 *bark[KD_N_BUILTIN_ROOTS] = {0}, *bask[KD_N_BUILTIN_ROOTS] = {0}, *basvk[KD_N_BUILTIN_ROOTS] = {0};
	char fp[65] = "", cn[64];
	int r = 0;
	ssize_t idx = -1;

	if (o->ark_opt) {
		v->custom_root = true;
		if (o->root && !x509_der_equal(o->root, o->ark_opt)) {
			cert_cn(o->root, cn, sizeof(cn));
			r = ck(c, "ark-pinned", KD_EVERIFY, "ARK in the chain (%s) is not the given --ark", cn);
			goto out;
		}
		v->cert[C_ARK] = o->ark_opt;
		o->ark_opt = NULL;
		sha256_hex(v->cert[C_ARK], fp);
		ck(c, "ark-pinned", 0, "caller-supplied ARK, not an AMD root (sha256 %.16s...)", fp);
	} else {
		for (size_t i = 0; i < KD_N_BUILTIN_ROOTS; i++)
			if ((r = builtin_certs(i, &bark[i], &bask[i], &basvk[i])) < 0) {
				ck(c, "ark-pinned", r, "%s", kd_err_detail(r));
				goto out;
			}
		if (o->root) {
			for (size_t i = 0; i < KD_N_BUILTIN_ROOTS; i++)
				if (x509_der_equal(o->root, bark[i]))
					idx = (ssize_t)i;
			if (idx < 0) {
				cert_cn(o->root, cn, sizeof(cn));
				sha256_hex(o->root, fp);
				r = ck(c, "ark-pinned", KD_EVERIFY,
				       "ARK in the chain (%s, sha256 %.16s...) is not a pinned AMD root", cn, fp);
				goto out;
			}
		} else {
			for (size_t i = 0; i < KD_N_BUILTIN_ROOTS; i++)
				if (v->vek_ok && kd_builtin_roots[i].product == v->vek.product)
					idx = (ssize_t)i;
			if (idx < 0) {
				r = ck(c, "ark-pinned", KD_EUNSUPP, "no built-in AMD root for the %s's product",
				       vek_kind(v));
				goto out;
			}
		}
		v->root_product = kd_builtin_roots[idx].product;
		v->cert[C_ARK] = bark[idx];
		bark[idx] = NULL;
		ck(c, "ark-pinned", 0, "ARK-%s, sha256 %.16s...", kd_product_name(v->root_product),
		   kd_builtin_roots[idx].ark_sha256);
		if (o->n_inter == 0) {
			o->inter[o->n_inter++] = bask[idx];
			o->inter[o->n_inter++] = basvk[idx];
			bask[idx] = basvk[idx] = NULL;
		}
	}
	if (o->n_inter == 0) {
		r = ck(c, "ask-signature", KD_EINVAL, "an ASK or ASVK is needed with a caller-supplied ARK");
		goto out;
	}
	/* The intermediate that names the VEK's issuer; else the first, to fail below. */
	idx = 0;
	for (size_t i = 0; i < o->n_inter; i++)
		if (!X509_NAME_cmp(X509_get_subject_name(o->inter[i]), X509_get_issuer_name(v->cert[C_VEK]))) {
			idx = (ssize_t)i;
			break;
		}
	v->cert[C_ASK] = o->inter[idx];
	o->inter[idx] = o->inter[--o->n_inter];
	cert_cn(v->cert[C_ASK], cn, sizeof(cn));
	/* AMD names the VLEK intermediate "SEV-VLEK-<Product>" (docs/snp-facts.md §3). */
	v->ask_is_asvk = strstr(cn, "VLEK") != NULL;
out:
	for (size_t i = 0; i < KD_N_BUILTIN_ROOTS; i++) {
		X509_free(bark[i]);
		X509_free(bask[i]);
		X509_free(basvk[i]);
	}
	return r;
}

static void chain_checks(struct kd_verifier *v, struct checker *c)
{
	char why[160], cn[64], icn[64];
	X509 *ark = v->cert[C_ARK], *ask = v->cert[C_ASK], *vek = v->cert[C_VEK];
	int r;

	cert_cn(ark, cn, sizeof(cn));
	r = check_pss_params(ark, why, sizeof(why));
	ck(c, "ark-signature-algorithm", r, r ? "ARK (%s) %s" : "ARK (%s): RSASSA-PSS SHA-384 salt 48%s", cn,
	   r ? why : "");
	r = X509_check_issued(ark, ark) == X509_V_OK && signed_by(ark, ark) ? 0 : KD_EVERIFY;
	ck(c, "ark-self-signature", r, r ? "ARK (%s) is not validly self-signed" : "ARK (%s) self-signature verifies",
	   cn);
	r = is_signing_ca(ark) ? 0 : KD_EVERIFY;
	ck(c, "ark-ca", r, r ? "ARK (%s) is not a CA with keyCertSign" : "ARK (%s) is a CA with keyCertSign", cn);

	cert_cn(ask, icn, sizeof(icn));
	r = check_pss_params(ask, why, sizeof(why));
	ck(c, "ask-signature-algorithm", r, r ? "%s (%s) %s" : "%s (%s): RSASSA-PSS SHA-384 salt 48%s",
	   ask_kind(v), icn, r ? why : "");
	r = signed_by(ask, ark) ? 0 : KD_EVERIFY;
	ck(c, "ask-signature", r, r ? "%s (%s) signature does not verify under ARK (%s)" : "%s (%s) signed by ARK (%s)",
	   ask_kind(v), icn, cn);
	r = is_signing_ca(ask) ? 0 : KD_EVERIFY;
	ck(c, "ask-ca", r, r ? "%s (%s) is not a CA with keyCertSign" : "%s (%s) is a CA with keyCertSign",
	   ask_kind(v), icn);

	r = check_pss_params(vek, why, sizeof(why));
	ck(c, "vek-signature-algorithm", r, r ? "%s %s" : "%s: RSASSA-PSS SHA-384 salt 48%s", vek_kind(v),
	   r ? why : "");
	r = signed_by(vek, ask) ? 0 : KD_EVERIFY;
	ck(c, "vek-signature", r, r ? "%s signature does not verify under %s (%s)" : "%s signed by %s (%s)",
	   vek_kind(v), ask_kind(v), icn);
	/* VCEK under the ASK, VLEK under the ASVK (docs/snp-facts.md §3.3 check 4). */
	r = v->vek_ok && v->vek.is_vlek != v->ask_is_asvk ? KD_EVERIFY : 0;
	ck(c, "vek-issuer-kind", r, r ? "%s is issued by an %s (%s)" : "%s issued by an %s", vek_kind(v),
	   ask_kind(v), icn);
	if (v->vek_ok && !v->custom_root) {
		r = v->vek.product == v->root_product ? 0 : KD_EVERIFY;
		ck(c, "chain-product", r,
		   r ? "%s is for %s but the chain is ARK-%s" : "%s and chain are %s%s", vek_kind(v),
		   kd_product_name(v->vek.product), r ? kd_product_name(v->root_product) : "");
	}
}

/* Standard path validation on top of the named checks; time is checked per report. */
static void x509_path_check(struct kd_verifier *v, struct checker *c)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int e = 0;

	if (!store || !ctx || !untrusted || !X509_STORE_add_cert(store, v->cert[C_ARK]) ||
	    !sk_X509_push(untrusted, v->cert[C_ASK]) ||
	    !X509_STORE_CTX_init(ctx, store, v->cert[C_VEK], untrusted)) {
		ck(c, "x509-path", KD_ENOMEM, "out of memory");
		goto out;
	}
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CHECK_SS_SIGNATURE | X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(ctx) == 1) {
		ck(c, "x509-path", 0, "ARK -> ASK -> VEK path validates");
	} else {
		e = X509_STORE_CTX_get_error(ctx);
		ck(c, "x509-path", KD_EVERIFY, "X.509 path validation: %s", X509_verify_cert_error_string(e));
	}
out:
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
}

static int prepare_key(struct kd_verifier *v, struct checker *c)
{
	EVP_PKEY *pk = X509_get0_pubkey(v->cert[C_VEK]);
	char group[32] = "";
	size_t glen = 0;

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen) != 1 ||
	    strcmp(group, "secp384r1")) {
		ERR_clear_error();
		return ck(c, "vek-key", KD_EVERIFY, "%s key is not ECDSA P-384", vek_kind(v));
	}
	v->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	v->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	if (!v->pctx || !v->sha384 || EVP_PKEY_verify_init(v->pctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(v->pctx, v->sha384) != 1) {
		ERR_clear_error();
		return ck(c, "vek-key", KD_ECRYPTO, "cannot set up ECDSA verification");
	}
	return ck(c, "vek-key", 0, "%s key is ECDSA P-384", vek_kind(v));
}

/*
 * Build a verifier; chain failures are recorded in v (chain_err) so a full
 * report can still list every check. Fails only when there is no chain to
 * talk about (inputs unreadable, no VEK).
 */
static int verifier_build(const struct kd_cert_inputs *in, struct kd_verifier **ret)
{
	struct offered o = {0};
	struct kd_verifier *v;
	struct checker c;
	int r;

	if (!in)
		return kd_fail(KD_EINVAL, "no certificates given");
	v = calloc(1, sizeof(*v));
	if (!v)
		return kd_fail(KD_ENOMEM, "out of memory (verifier)");
	c = (struct checker){.out = v->checks, .n = &v->n_checks};
	r = collect(in, &o);
	if (r < 0) {
		offered_free(&o);
		kd_verifier_free(v);
		return r;
	}
	v->cert[C_VEK] = o.vek;
	o.vek = NULL;
	r = kd_vek_parse_x509(v->cert[C_VEK], &v->vek);
	v->vek_ok = r == 0;
	if (r < 0)
		ck(&c, "vek-extensions", r, "%s", kd_err_detail(r));
	else if (v->vek.is_vlek)
		ck(&c, "vek-extensions", 0, "VLEK %s, cspID %s", v->vek.product_name, v->vek.csp_id);
	else
		ck(&c, "vek-extensions", 0, "VCEK %s, %zu-byte hwID%s", v->vek.product_name, v->vek.hwid_len,
		   v->vek.hwid_wrapped ? " (OCTET STRING)" : "");
	r = select_chain(v, &o, &c);
	offered_free(&o);
	if (r < 0 && (!v->cert[C_ARK] || !v->cert[C_ASK])) {
		kd_verifier_free(v);
		return ck_finish(&c);
	}
	chain_checks(v, &c);
	x509_path_check(v, &c);
	prepare_key(v, &c);
	for (int i = 0; i < C_N; i++) {
		v->not_before[i] = asn1_time_to_time(X509_get0_notBefore(v->cert[i]));
		v->not_after[i] = asn1_time_to_time(X509_get0_notAfter(v->cert[i]));
	}
	v->chain_err = c.first_err;
	memcpy(v->chain_detail, c.first_detail, sizeof(v->chain_detail));
	*ret = v;
	return 0;
}

static void copy_checks(const struct kd_verifier *v, struct kd_verify_result *res)
{
	if (!res)
		return;
	memcpy(res->checks, v->checks, v->n_checks * sizeof(v->checks[0]));
	res->n = v->n_checks;
}

/* A verifier for certs, its chain checks the first ones of res (emptied first). */
static int verifier_start(const struct kd_cert_inputs *certs, struct kd_verifier **ret,
			  struct kd_verify_result *res)
{
	struct kd_verifier *v = NULL;
	int r;

	if (res)
		res->n = 0;
	r = verifier_build(certs, &v);
	if (r < 0)
		return r;
	copy_checks(v, res);
	*ret = v;
	return 0;
}

int kd_verifier_new(const struct kd_cert_inputs *certs, struct kd_verifier **ret, struct kd_verify_result *res)
{
	struct kd_verifier *v = NULL;
	int r;

	if ((r = verifier_start(certs, &v, res)) < 0)
		return r;
	if (v->chain_err) {
		r = kd_fail(v->chain_err, "%s", v->chain_detail);
		kd_verifier_free(v);
		return r;
	}
	*ret = v;
	return 0;
}

static void validity_checks(const struct kd_verifier *v, time_t at, struct checker *c)
{
	static const char *const names[C_N] = {"ark-validity", "ask-validity", "vek-validity"};
	time_t now = at ? at : time(NULL);

	for (int i = 0; i < C_N; i++) {
		const char *role = i == C_VEK ? vek_kind(v) : i == C_ASK ? ask_kind(v) : role_name[i];
		char a[32], b[32], t[32];
		bool valid = v->not_before[i] != (time_t)-1 && v->not_after[i] != (time_t)-1 &&
			     now >= v->not_before[i] && now <= v->not_after[i];
		int r = valid ? 0 : KD_EVERIFY; /* a verdict for ck(), which records its detail */

		if (!c->out && !r)
			continue;
		fmt_time(v->not_before[i], a, sizeof(a));
		fmt_time(v->not_after[i], b, sizeof(b));
		fmt_time(now, t, sizeof(t));
		if (r && now > v->not_after[i])
			ck(c, names[i], r, "%s expired %s (checked at %s)", role, b, t);
		else if (r)
			ck(c, names[i], r, "%s is not valid until %s (checked at %s)", role, a, t);
		else
			ck(c, names[i], 0, "%s valid %s .. %s", role, a, b);
	}
}

static int report_signature(struct kd_verifier *v, const uint8_t *report)
{
	unsigned char md[EVP_MAX_MD_SIZE], der[160], *p = der;
	unsigned mdlen = 0;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_lebin2bn(report + 0x2A0, 72, NULL);
	BIGNUM *s = BN_lebin2bn(report + 0x2E8, 72, NULL);
	int derlen, ok = 0;

	if (!sig || !r || !s || !v->pctx || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	/* R and S are zero-extended little-endian (docs/snp-facts.md §2.2); DER for EVP. */
	derlen = i2d_ECDSA_SIG(sig, NULL);
	if (derlen <= 0 || (size_t)derlen > sizeof(der) || i2d_ECDSA_SIG(sig, &p) != derlen)
		goto out;
	if (EVP_Digest(report, KD_REPORT_SIGNED_LEN, md, &mdlen, v->sha384, NULL) != 1)
		goto out;
	ok = EVP_PKEY_verify(v->pctx, der, (size_t)derlen, md, mdlen) == 1;
out:
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return ok ? 0 : kd_fail(KD_EVERIFY, "report signature does not verify under the %s", vek_kind(v));
}

static void hex_prefix(const uint8_t *b, size_t len, char *out)
{
	char full[2 * 64 + 1];

	kd_hex(b, len, full);
	/* Enough to recognise; the full value is in --json and report show. */
	snprintf(out, 16, "%.12s\xe2\x80\xa6", full);
}

static bool all_zero(const uint8_t *b, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= b[i];
	return acc == 0;
}

static void tcb_checks(const struct kd_verifier *v, const struct kd_report *rep, enum kd_product p,
		       struct checker *c)
{
	struct kd_tcb t;
	const struct kd_vek_info *e = &v->vek;
	const char *kind = vek_kind(v);

	kd_tcb_decode(rep->reported_tcb, p, &t);
	/* The VEK is derived for REPORTED_TCB, not CURRENT_TCB (docs/snp-facts.md §3.3 check 1). */
	if (e->bl_spl != t.bootloader)
		ck(c, "vek-tcb", KD_EVERIFY, "%s blSPL %u != reported TCB bootloader %u", kind, e->bl_spl, t.bootloader);
	else if (e->tee_spl != t.tee)
		ck(c, "vek-tcb", KD_EVERIFY, "%s teeSPL %u != reported TCB tee %u", kind, e->tee_spl, t.tee);
	else if (e->snp_spl != t.snp)
		ck(c, "vek-tcb", KD_EVERIFY, "%s snpSPL %u != reported TCB snp %u", kind, e->snp_spl, t.snp);
	else if (e->ucode_spl != t.microcode)
		ck(c, "vek-tcb", KD_EVERIFY, "%s ucodeSPL %u != reported TCB microcode %u", kind, e->ucode_spl,
		   t.microcode);
	else if (p == KD_PRODUCT_TURIN && e->fmc_spl != t.fmc)
		ck(c, "vek-tcb", KD_EVERIFY, "%s fmcSPL %u != reported TCB fmc %u", kind, e->fmc_spl, t.fmc);
	else if (c->out) {
		char tcb[KD_TCB_STR_MAX];

		kd_tcb_format(rep->reported_tcb, p, tcb, sizeof(tcb));
		ck(c, "vek-tcb", 0, "%s SPLs equal reported TCB %s", kind, tcb);
	}
}

static void policy_checks(const struct kd_report *rep, enum kd_product p, const struct kd_verify_policy *pol,
			  struct checker *c)
{
	char h[16];
	int r;

	r = (rep->policy & KD_POLICY_DEBUG) && !pol->allow_debug ? KD_EPOLICY : 0;
	ck(c, "debug", r, r ? "debug policy bit is set" : (rep->policy & KD_POLICY_DEBUG) ? "debug allowed" : "debug off");
	/* A migration agent can export the guest's memory: as dangerous as debug. */
	r = (rep->policy & KD_POLICY_MIGRATE_MA) && !pol->allow_debug ? KD_EPOLICY : 0;
	ck(c, "migration-agent", r,
	   r ? "migration agent policy bit is set" : (rep->policy & KD_POLICY_MIGRATE_MA) ? "migration agent allowed"
											    : "no migration agent");
	r = rep->vmpl > pol->max_vmpl ? KD_EPOLICY : 0;
	ck(c, "vmpl", r, r ? "VMPL %u above the allowed %u" : "VMPL %u <= %u", rep->vmpl, pol->max_vmpl);

	if (pol->measurements) {
		bool found = false;

		for (size_t i = 0; i < pol->n_measurements && !found; i++)
			found = !memcmp(pol->measurements[i], rep->measurement, 48);
		if (found || c->out || !c->first_err)
			hex_prefix(rep->measurement, 48, h);
		ck(c, "measurement", found ? 0 : KD_EPOLICY,
		   found ? "measurement %s in expected set" : "measurement %s not in expected set", h);
	}
	if (pol->chip_id && all_zero(rep->chip_id, 64)) {
		/* A masked CHIP_ID names no chip: it can match no expectation. */
		ck(c, "chip-id", KD_EPOLICY, "chip ID is masked (all zero); cannot be the expected one");
	} else if (pol->chip_id) {
		r = memcmp(pol->chip_id, rep->chip_id, 64) ? KD_EPOLICY : 0;
		if (r || c->out)
			hex_prefix(rep->chip_id, 64, h);
		ck(c, "chip-id", r, r ? "chip ID %s is not the expected one" : "chip ID %s as expected", h);
	}
	if (pol->report_data) {
		r = memcmp(pol->report_data, rep->report_data, 64) ? KD_EPOLICY : 0;
		if (r || c->out)
			hex_prefix(rep->report_data, 64, h);
		ck(c, "report-data", r, r ? "report data %s is not the expected one" : "report data %s as expected",
		   h);
	}
	if (pol->has_min_tcb) {
		char have[KD_TCB_STR_MAX] = "", want[KD_TCB_STR_MAX] = "";

		/* The floor applies to the TCB the signing key is derived for. */
		r = kd_tcb_ge(rep->reported_tcb, pol->min_tcb, p) ? 0 : KD_EPOLICY;
		if (r || c->out) {
			kd_tcb_format(rep->reported_tcb, p, have, sizeof(have));
			kd_tcb_format(pol->min_tcb, p, want, sizeof(want));
		}
		ck(c, "min-tcb", r, r ? "reported TCB %s is below the minimum %s" : "reported TCB %s >= %s", have,
		   want);
	}
}

/*
 * MASK_CHIP_KEY=1 or SIGNING_KEY=7: the firmware did not sign (the
 * signature field is zero). Nothing could prove such a report, whatever
 * certificates come with it.
 */
static int signed_check(const struct kd_report *rep, struct checker *c)
{
	if ((rep->signer_info & KD_SIGNER_MASK_CHIP_KEY) || rep->signing_key == KD_SIGNING_KEY_NONE)
		return ck(c, "signed", KD_EVERIFY, "unsigned report (%s)",
			  (rep->signer_info & KD_SIGNER_MASK_CHIP_KEY) ? "MASK_CHIP_KEY is set"
								       : "SIGNING_KEY is none");
	return ck(c, "signed", 0, "signed by the %s", kd_signing_key_name(rep->signing_key));
}

static int verify_one(struct kd_verifier *v, const uint8_t *report, size_t len,
		      const struct kd_verify_policy *pol, struct kd_report *ret_report,
		      struct kd_verify_result *res)
{
	static const struct kd_verify_policy defaults = {0};
	struct checker c = {.out = res ? res->checks : NULL, .n = res ? &res->n : NULL};
	struct kd_report rep;
	enum kd_product rp, p;
	int r;

	if (!pol)
		pol = &defaults;
	copy_checks(v, res);
	if (v->chain_err) {
		c.first_err = v->chain_err;
		memcpy(c.first_detail, v->chain_detail, sizeof(c.first_detail));
	}
	validity_checks(v, pol->at, &c);

	r = kd_report_parse(report, len, &rep);
	if (r < 0) {
		ck(&c, "report-format", r, "report: %s", kd_err_detail(r));
		return ck_finish(&c);
	}
	ck(&c, "report-format", 0, "version %u", rep.version);

	/* Product: CPUID (v3+) must agree with the VEK's productName. */
	rp = kd_report_product(&rep);
	p = v->vek_ok ? v->vek.product : rp;
	if (v->vek_ok && rp != KD_PRODUCT_UNKNOWN && rp != p)
		ck(&c, "product", KD_EVERIFY, "report is from %s, %s is for %s", kd_product_name(rp), vek_kind(v),
		   kd_product_name(p));
	else if (v->vek_ok && p == KD_PRODUCT_TURIN && rep.version < 3)
		/* Turin firmware writes v3+; without CPUID the TCB layout is a guess. */
		ck(&c, "product", KD_EVERIFY, "Turin %s with a version %u report (no CPUID)", vek_kind(v), rep.version);
	else
		ck(&c, "product", 0, "%s%s", kd_product_name(p), rp == KD_PRODUCT_UNKNOWN ? " (from the VEK)" : "");

	if (signed_check(&rep, &c) < 0)
		return ck_finish(&c);
	r = (rep.signing_key == KD_SIGNING_KEY_VCEK && v->vek_ok && !v->vek.is_vlek) ||
			    (rep.signing_key == KD_SIGNING_KEY_VLEK && v->vek_ok && v->vek.is_vlek)
		    ? 0
		    : KD_EVERIFY;
	ck(&c, "signing-key", r, r ? "report is signed by the %s, the certificate is a %s" : "report names the %s%s",
	   kd_signing_key_name(rep.signing_key), r ? vek_kind(v) : "");
	r = rep.signature_algo == 1 ? 0 : KD_EVERIFY;
	ck(&c, "signature-algorithm", r, "report signature algorithm %u%s", rep.signature_algo,
	   r ? " is not ECDSA P-384/SHA-384" : " (ECDSA P-384/SHA-384)");
	r = report_signature(v, report);
	ck(&c, "report-signature", r, r ? "report signature does not verify under %s" : "report signature verifies under %s",
	   vek_kind(v));

	if (v->vek_ok) {
		tcb_checks(v, &rep, p, &c);
		if (v->vek.is_vlek) {
			ck(&c, "vek-chip-id", 0, "VLEK: no hwID to compare");
		} else if (all_zero(rep.chip_id, 64)) {
			/*
			 * MASK_CHIP_ID (a host setting) zeroes CHIP_ID in a report the
			 * VCEK still signs; the chain and signature prove an AMD chip,
			 * only not which one.
			 */
			ck(&c, "vek-chip-id", 0, "CHIP_ID masked (all zero); hwID not compared");
		} else {
			r = memcmp(v->vek.hwid, rep.chip_id, v->vek.hwid_len) ? KD_EVERIFY : 0;
			ck(&c, "vek-chip-id", r, r ? "VCEK hwID is not the report's CHIP_ID" : "VCEK hwID equals CHIP_ID%s",
			   v->vek.hwid_len == 8 ? "[0:8]" : "");
		}
	}
	policy_checks(&rep, p, pol, &c);

	r = ck_finish(&c);
	if (r == 0 && ret_report) {
		*ret_report = rep;
		ret_report->product = p;
	}
	return r;
}

int kd_verifier_verify(struct kd_verifier *v, const uint8_t *report, size_t len,
		       const struct kd_verify_policy *pol, struct kd_report *ret_report,
		       struct kd_verify_result *res)
{
	if (!v || !report)
		return kd_fail(KD_EINVAL, "no verifier or report");
	return verify_one(v, report, len, pol, ret_report, res);
}

int kd_verify_report(const uint8_t *report, size_t len, const struct kd_cert_inputs *certs,
		     const struct kd_verify_policy *pol, struct kd_report *ret_report,
		     struct kd_verify_result *res)
{
	struct kd_verifier *v = NULL;
	int r;

	if (res)
		res->n = 0;
	if (!report)
		return kd_fail(KD_EINVAL, "no report");
	/* An unsigned report is refused as such, even with no certificate at all. */
	{
		struct checker c = {.out = res ? res->checks : NULL, .n = res ? &res->n : NULL};
		struct kd_report rep;

		if (kd_report_parse(report, len, &rep) == 0 && signed_check(&rep, &c) < 0)
			return ck_finish(&c);
		if (res)
			res->n = 0;
	}
	r = verifier_build(certs, &v);
	if (r < 0)
		return r;
	r = verify_one(v, report, len, pol, ret_report, res);
	kd_verifier_free(v);
	return r;
}

int kd_verify_chain(const struct kd_cert_inputs *certs, time_t at, struct kd_vek_info *ret_vek,
		    struct kd_verify_result *res)
{
	struct kd_verifier *v = NULL;
	struct checker c = {.out = res ? res->checks : NULL, .n = res ? &res->n : NULL};
	int r;

	if ((r = verifier_start(certs, &v, res)) < 0)
		return r;
	if (v->chain_err) {
		c.first_err = v->chain_err;
		memcpy(c.first_detail, v->chain_detail, sizeof(c.first_detail));
	}
	validity_checks(v, at, &c);
	r = ck_finish(&c);
	if (r == 0 && ret_vek)
		*ret_vek = v->vek;
	kd_verifier_free(v);
	return r;
}

/* ---------------------------------------------------------------- time */

static int two_digits(const char *s)
{
	return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) ? (s[0] - '0') * 10 + (s[1] - '0') : -1;
}

int kd_parse_rfc3339(const char *s, time_t *ret)
{
	struct tm tm;
	const char *p;
	long off = 0;
	time_t t;

	if (!s)
		return kd_fail(KD_EINVAL, "no time given");
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p || strlen(s) < 19 || s[4] != '-' || s[10] != 'T')
		return kd_fail(KD_EMALFORMED, "time '%s' is not RFC 3339 (2025-01-31T12:00:00Z)", s);
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return kd_fail(KD_EMALFORMED, "time '%s' has an empty fraction", s);
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && two_digits(p + 1) >= 0 && p[3] == ':' && two_digits(p + 4) >= 0 &&
		   p[6] == '\0' && two_digits(p + 1) < 24 && two_digits(p + 4) < 60) {
		off = (two_digits(p + 1) * 60L + two_digits(p + 4)) * 60L;
		if (*p == '-')
			off = -off;
	} else {
		return kd_fail(KD_EMALFORMED, "time '%s' needs a zone: Z or +hh:mm", s);
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return kd_fail(KD_EMALFORMED, "time '%s' is out of range", s);
	*ret = t - off;
	return 0;
}
