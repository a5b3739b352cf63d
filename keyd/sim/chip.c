/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Simulated chip state: the chip secret, chip ID, product, TCBs and the
 * ARK -> ASK -> VCEK chain with AMD's profile (docs/snp-facts.md §3.2), in a folder:
 *
 *   chip.json         product, chip_id, current_tcb, committed_tcb
 *   chip-secret       32 random bytes (0600)
 *   ark.pem ark.key   RSA-4096, self-signed, RSASSA-PSS SHA-384 salt 48
 *   ask.pem ask.key   RSA-4096, CA pathlen 0, signed by the ARK
 *   vcek-<TCB>.pem    P-384 key + VCEK certificate for one TCB (0600);
 *                     made on first use, as AMD's KDS issues one per TCB
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/secret.h"
#include "keyd/util.h"
#include "internal.h"

#define CHIP_SECRET_LEN 32
#define CHIP_JSON_MAX 4096
#define ARK_DAYS (25 * 365)
#define VCEK_DAYS (7 * 365)

struct kd_sim_chip {
	char *dir;
	enum kd_product product;
	uint8_t chip_id[64];
	uint64_t current_tcb;
	uint64_t committed_tcb;
	struct kd_secret *secret;
	X509 *ark;
	X509 *ask;
	EVP_PKEY *ask_key;
	/* One cached VCEK: a launch signs with the current TCB's. */
	bool have_vcek;
	uint64_t vcek_tcb;
	EVP_PKEY *vcek_key;
	X509 *vcek;
};

static const struct {
	enum kd_product p;
	const char *name;     /* CN suffix and chip.json */
	const char *vcek_name; /* productName extension */
	uint8_t tcb[8];        /* default TCB, report byte order */
} products[] = {
	{KD_PRODUCT_MILAN, "Milan", "Milan-B0", {0x03, 0, 0, 0, 0, 0, 0x08, 0x73}},
	{KD_PRODUCT_GENOA, "Genoa", "Genoa", {0x07, 0, 0, 0, 0, 0, 0x0e, 0x48}},
	{KD_PRODUCT_TURIN, "Turin", "Turin", {0x01, 0x01, 0x01, 0x01, 0, 0, 0, 0x09}},
};

static int product_index(enum kd_product p)
{
	for (size_t i = 0; i < KD_ARRAY_SIZE(products); i++)
		if (products[i].p == p)
			return (int)i;
	return -1;
}

void kd_sim_tcb_spl(uint64_t tcb, enum kd_product p, struct kd_sim_spl *ret)
{
	uint8_t b[8];

	kd_put_le64(b, tcb);
	memset(ret, 0, sizeof(*ret));
	if (p == KD_PRODUCT_TURIN) {
		ret->fmc = b[0];
		ret->bl = b[1];
		ret->tee = b[2];
		ret->snp = b[3];
	} else {
		ret->bl = b[0];
		ret->tee = b[1];
		ret->snp = b[6];
	}
	ret->ucode = b[7];
}

bool kd_sim_tcb_le(uint64_t a, uint64_t b)
{
	for (int i = 0; i < 8; i++)
		if (((a >> (8 * i)) & 0xff) > ((b >> (8 * i)) & 0xff))
			return false;
	return true;
}

static void tcb_hex(uint64_t tcb, char out[17])
{
	uint8_t b[8];

	kd_put_le64(b, tcb);
	kd_hex(b, 8, out);
}

static int path_of(const struct kd_sim_chip *c, const char *dir, const char *name, char *out)
{
	if (snprintf(out, PATH_MAX, "%s/%s", c ? c->dir : dir, name) >= PATH_MAX)
		return kd_fail(KD_EINVAL, "state path too long");
	return 0;
}

static int ossl_fail(const char *what)
{
	return kd_fail(KD_ECRYPTO, "OpenSSL: %s failed", what);
}

/* ------------------------------------------------------------ certificates */

static X509_NAME *amd_name(const char *cn)
{
	static const char *const keys[] = {"OU", "C", "L", "ST", "O"};
	static const char *const vals[] = {"Engineering", "US", "Santa Clara", "CA",
					   "Advanced Micro Devices"};
	X509_NAME *n = X509_NAME_new();

	if (!n)
		return NULL;
	for (size_t i = 0; i < KD_ARRAY_SIZE(keys); i++)
		if (!X509_NAME_add_entry_by_txt(n, keys[i], MBSTRING_ASC,
						(const unsigned char *)vals[i], -1, -1, 0))
			goto fail;
	if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					-1, 0))
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

/* RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: AMD's ARK/ASK signatures. */
static int pss_sign(X509 *x, EVP_PKEY *key)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok;

	ok = m && EVP_DigestSignInit(m, &pc, EVP_sha384(), NULL, key) > 0 &&
	     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 48) > 0 &&
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha384()) > 0 && X509_sign_ctx(x, m) > 0;
	EVP_MD_CTX_free(m);
	return ok ? 0 : ossl_fail("RSA-PSS certificate signature");
}

static int add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return ossl_fail("certificate extension");
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : ossl_fail("add certificate extension");
}

/* An AMD extension whose extnValue content is `der` as is (docs/snp-facts.md §3.2). */
static int add_raw_ext(X509 *x, const char *oid, const uint8_t *der, int len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	int ok = obj && os && ASN1_OCTET_STRING_set(os, der, len) &&
		 (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) && X509_add_ext(x, e, -1);

	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ok ? 0 : ossl_fail("VCEK extension");
}

static int add_int_ext(X509 *x, const char *oid, long v)
{
	ASN1_INTEGER *i = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	int n = -1, r;

	if (i && ASN1_INTEGER_set(i, v))
		n = i2d_ASN1_INTEGER(i, &der);
	ASN1_INTEGER_free(i);
	if (n <= 0)
		return ossl_fail("DER INTEGER");
	r = add_raw_ext(x, oid, der, n);
	OPENSSL_free(der);
	return r;
}

static int add_ia5_ext(X509 *x, const char *oid, const char *s)
{
	ASN1_IA5STRING *a = ASN1_IA5STRING_new();
	unsigned char *der = NULL;
	int n = -1, r;

	if (a && ASN1_STRING_set(a, s, -1))
		n = i2d_ASN1_IA5STRING(a, &der);
	ASN1_IA5STRING_free(a);
	if (n <= 0)
		return ossl_fail("DER IA5String");
	r = add_raw_ext(x, oid, der, n);
	OPENSSL_free(der);
	return r;
}

static X509 *new_cert(long serial, const X509_NAME *issuer, const X509_NAME *subject,
		      EVP_PKEY *pub, long days)
{
	X509 *x = X509_new();

	if (!x)
		return NULL;
	/* Backdated a day so a freshly made chip verifies despite clock skew. */
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_set_issuer_name(x, issuer) || !X509_set_subject_name(x, subject) ||
	    !X509_set_pubkey(x, pub) || !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int make_ca(const char *cn, long serial, X509 *issuer, EVP_PKEY *issuer_key,
		   const char *product, EVP_PKEY **ret_key, X509 **ret_cert)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
	X509_NAME *name = amd_name(cn);
	X509 *x = NULL;
	char crl[128];
	int r;

	if (!key || !name) {
		r = ossl_fail("RSA-4096 key generation");
		goto out;
	}
	x = new_cert(serial, issuer ? X509_get_subject_name(issuer) : name, name, key, ARK_DAYS);
	if (!x) {
		r = ossl_fail("certificate fields");
		goto out;
	}
	snprintf(crl, sizeof(crl), "URI:https://kdsintf.amd.com/vcek/v1/%s/crl", product);
	if (!issuer) {
		if ((r = add_conf_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
		    (r = add_conf_ext(x, x, NID_subject_key_identifier, "hash")) < 0 ||
		    (r = add_conf_ext(x, x, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
		    (r = add_conf_ext(x, x, NID_crl_distribution_points, crl)) < 0)
			goto out;
		r = pss_sign(x, key);
	} else {
		if ((r = add_conf_ext(x, issuer, NID_subject_key_identifier, "hash")) < 0 ||
		    (r = add_conf_ext(x, issuer, NID_authority_key_identifier, "keyid:always")) < 0 ||
		    (r = add_conf_ext(x, issuer, NID_basic_constraints,
				      "critical,CA:TRUE,pathlen:0")) < 0 ||
		    (r = add_conf_ext(x, issuer, NID_key_usage, "critical,keyCertSign")) < 0 ||
		    (r = add_conf_ext(x, issuer, NID_crl_distribution_points, crl)) < 0)
			goto out;
		r = pss_sign(x, issuer_key);
	}
	if (r < 0)
		goto out;
	*ret_key = key;
	*ret_cert = x;
	key = NULL;
	x = NULL;
	r = 0;
out:
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

static int make_vcek(struct kd_sim_chip *c, uint64_t tcb, EVP_PKEY **ret_key, X509 **ret_cert)
{
	int pi = product_index(c->product);
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	X509_NAME *name = amd_name("SEV-VCEK");
	struct kd_sim_spl spl;
	bool turin = c->product == KD_PRODUCT_TURIN;
	X509 *x = NULL;
	int r;

	if (pi < 0 || !key || !name) {
		r = ossl_fail("P-384 key generation");
		goto out;
	}
	x = new_cert(0, X509_get_subject_name(c->ask), name, key, VCEK_DAYS);
	if (!x) {
		r = ossl_fail("certificate fields");
		goto out;
	}
	kd_sim_tcb_spl(tcb, c->product, &spl);
	/* Extension set and order as in AMD's KDS VCEKs (docs/snp-facts.md §3.2). */
	if ((r = add_int_ext(x, "1.3.6.1.4.1.3704.1.1", turin ? 1 : 0)) < 0 ||
	    (r = add_ia5_ext(x, "1.3.6.1.4.1.3704.1.2", products[pi].vcek_name)) < 0)
		goto out;
	{
		/* The SPL extensions, in KDS order; Turin adds fmc and drops 1.3.4. */
		const struct {
			const char *oid;
			long v;
			bool on;
		} spls[] = {
			{"1.3.6.1.4.1.3704.1.3.9", spl.fmc, turin}, {"1.3.6.1.4.1.3704.1.3.1", spl.bl, true},
			{"1.3.6.1.4.1.3704.1.3.2", spl.tee, true},  {"1.3.6.1.4.1.3704.1.3.3", spl.snp, true},
			{"1.3.6.1.4.1.3704.1.3.4", 0, !turin},      {"1.3.6.1.4.1.3704.1.3.5", 0, true},
			{"1.3.6.1.4.1.3704.1.3.6", 0, true},        {"1.3.6.1.4.1.3704.1.3.7", 0, true},
			{"1.3.6.1.4.1.3704.1.3.8", spl.ucode, true},
		};

		for (size_t i = 0; i < KD_ARRAY_SIZE(spls); i++)
			if (spls[i].on && (r = add_int_ext(x, spls[i].oid, spls[i].v)) < 0)
				goto out;
	}
	/* hwID: the raw chip-id bytes, no OCTET STRING tag; 8 bytes on Turin. */
	if ((r = add_raw_ext(x, "1.3.6.1.4.1.3704.1.4", c->chip_id, turin ? 8 : 64)) < 0 ||
	    (r = pss_sign(x, c->ask_key)) < 0)
		goto out;
	*ret_key = key;
	*ret_cert = x;
	key = NULL;
	x = NULL;
out:
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

/* ------------------------------------------------------------ files */

static int write_pem_cert(const char *path, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int r;

	if (!b || !PEM_write_bio_X509(b, x)) {
		BIO_free(b);
		return ossl_fail("PEM encoding");
	}
	n = BIO_get_mem_data(b, &p);
	r = kd_write_file(path, p, (size_t)n, 0644);
	BIO_free(b);
	return r;
}

static int write_pem_key(const char *path, EVP_PKEY *k, X509 *also_cert, bool exclusive)
{
	BIO *b = BIO_new(BIO_s_mem());
	char tmp[PATH_MAX];
	char *p;
	long n;
	int fd, r = 0;

	if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) ||
	    (also_cert && !PEM_write_bio_X509(b, also_cert))) {
		BIO_free(b);
		return ossl_fail("PEM encoding");
	}
	n = BIO_get_mem_data(b, &p);
	if (!exclusive) {
		r = kd_write_file(path, p, (size_t)n, 0600);
		BIO_free(b);
		return r;
	}
	/*
	 * Two serve processes may make the same TCB's VCEK at once: publish
	 * with link(), which fails if the other won, so both end up using one.
	 */
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp)) {
		BIO_free(b);
		return kd_fail(KD_EINVAL, "path is too long: %s", path);
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		BIO_free(b);
		return kd_fail(KD_EIO, "cannot create %s: %s", tmp, strerror(errno));
	}
	if (fchmod(fd, 0600) < 0 || write(fd, p, (size_t)n) != n || fsync(fd) < 0)
		r = kd_fail(KD_EIO, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	BIO_free(b);
	if (!r && link(tmp, path) < 0)
		r = errno == EEXIST ? kd_fail(KD_EEXIST, "%s was published by another process", path)
				    : kd_fail(KD_EIO, "cannot link %s: %s", path, strerror(errno));
	unlink(tmp);
	return r;
}

static int load_pem(const char *path, EVP_PKEY **ret_key, X509 **ret_cert)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	if (!b)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %s", path);
	if (ret_key && !(k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)))
		goto fail;
	if (ret_cert && !(x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		goto fail;
	BIO_free(b);
	if (ret_key)
		*ret_key = k;
	if (ret_cert)
		*ret_cert = x;
	return 0;
fail:
	BIO_free(b);
	EVP_PKEY_free(k);
	return kd_fail(KD_EMALFORMED, "%s does not hold the expected PEM", path);
}

static int save_json(const struct kd_sim_chip *c)
{
	char path[PATH_MAX], hex[129], cur[17], com[17];
	json_object *o = json_object_new_object();
	const char *s;
	int r;

	if (!o)
		return kd_fail(KD_ENOMEM, "out of memory (chip.json)");
	kd_hex(c->chip_id, 64, hex);
	tcb_hex(c->current_tcb, cur);
	tcb_hex(c->committed_tcb, com);
	json_object_object_add(o, "format", json_object_new_int(1));
	json_object_object_add(o, "product", json_object_new_string(products[product_index(c->product)].name));
	json_object_object_add(o, "chip_id", json_object_new_string(hex));
	json_object_object_add(o, "current_tcb", json_object_new_string(cur));
	json_object_object_add(o, "committed_tcb", json_object_new_string(com));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	if ((r = path_of(c, NULL, "chip.json", path)) == 0)
		r = kd_write_file(path, s, strlen(s), 0644);
	json_object_put(o);
	return r;
}

static int json_hex(json_object *o, const char *key, uint8_t *out, size_t len)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    kd_unhex(json_object_get_string(v), out, len) < 0)
		return kd_fail(KD_EMALFORMED, "chip.json: bad or missing %s", key);
	return 0;
}

static int load_json(struct kd_sim_chip *c)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL, tcb[8];
	size_t len;
	json_object *o, *v;
	int r;

	if ((r = path_of(c, NULL, "chip.json", path)) < 0)
		return r;
	r = kd_read_file(path, CHIP_JSON_MAX, &buf, &len);
	if (r < 0)
		return r == KD_ENOENT ? kd_fail(KD_ENOENT, "no simulated chip in %s (run init)", c->dir)
				      : r;
	o = json_tokener_parse((const char *)buf);
	free(buf);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return kd_fail(KD_EMALFORMED, "chip.json is not a JSON object");
	}
	c->product = KD_PRODUCT_UNKNOWN;
	if (json_object_object_get_ex(o, "product", &v) && json_object_is_type(v, json_type_string))
		for (size_t i = 0; i < KD_ARRAY_SIZE(products); i++)
			if (!strcmp(json_object_get_string(v), products[i].name))
				c->product = products[i].p;
	if (c->product == KD_PRODUCT_UNKNOWN) {
		r = kd_fail(KD_EMALFORMED, "chip.json: bad or missing product");
		goto out;
	}
	if ((r = json_hex(o, "chip_id", c->chip_id, 64)) < 0)
		goto out;
	if ((r = json_hex(o, "current_tcb", tcb, 8)) < 0)
		goto out;
	c->current_tcb = kd_get_le64(tcb);
	if ((r = json_hex(o, "committed_tcb", tcb, 8)) < 0)
		goto out;
	c->committed_tcb = kd_get_le64(tcb);
	r = 0;
out:
	json_object_put(o);
	return r;
}

static int load_secret(struct kd_sim_chip *c)
{
	char path[PATH_MAX];
	struct kd_secret *s;
	uint8_t extra;
	ssize_t n;
	int fd, r;

	if ((r = path_of(c, NULL, "chip-secret", path)) < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %s: %s", path, strerror(errno));
	if ((r = kd_secret_new(CHIP_SECRET_LEN, &s)) < 0) {
		close(fd);
		return r;
	}
	n = read(fd, s->data, CHIP_SECRET_LEN);
	if (n != CHIP_SECRET_LEN || read(fd, &extra, 1) != 0) {
		close(fd);
		kd_secret_free(s);
		return kd_fail(KD_EMALFORMED, "%s is not exactly %d bytes", path, CHIP_SECRET_LEN);
	}
	close(fd);
	c->secret = s;
	return 0;
}

/* ------------------------------------------------------------ public */

void kd_sim_chip_free(struct kd_sim_chip *c)
{
	if (!c)
		return;
	kd_secret_free(c->secret);
	X509_free(c->ark);
	X509_free(c->ask);
	EVP_PKEY_free(c->ask_key);
	EVP_PKEY_free(c->vcek_key);
	X509_free(c->vcek);
	free(c->dir);
	free(c);
}

int kd_sim_chip_init(const char *dir, const struct kd_sim_init_opts *opts)
{
	struct kd_sim_chip c = {0};
	_kd_secret_ struct kd_secret *secret = NULL;
	EVP_PKEY *ark_key = NULL;
	char path[PATH_MAX], cn[32];
	int pi, fd, r;

	c.product = opts && opts->product ? opts->product : KD_PRODUCT_MILAN;
	pi = product_index(c.product);
	if (pi < 0)
		return kd_fail(KD_EINVAL, "unknown product");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kd_fail(KD_EIO, "cannot create %s: %s", dir, strerror(errno));
	if ((r = path_of(NULL, dir, "chip.json", path)) < 0)
		return r;
	if (access(path, F_OK) == 0)
		return kd_fail(KD_EEXIST, "%s already holds a simulated chip", dir);

	if (opts && opts->chip_id) {
		memcpy(c.chip_id, opts->chip_id, 64);
	} else if (RAND_bytes(c.chip_id, c.product == KD_PRODUCT_TURIN ? 8 : 64) != 1) {
		return ossl_fail("RAND_bytes");
	}
	/* Turin chip IDs are 8 bytes; the report carries them zero-extended. */
	if (c.product == KD_PRODUCT_TURIN)
		for (int i = 8; i < 64; i++)
			if (c.chip_id[i])
				return kd_fail(KD_EINVAL, "a Turin chip id has only 8 non-zero bytes");
	c.current_tcb = opts && opts->have_tcb ? opts->tcb : kd_get_le64(products[pi].tcb);
	c.committed_tcb = c.current_tcb;

	if ((r = kd_secret_new(CHIP_SECRET_LEN, &secret)) < 0)
		return r;
	if (RAND_priv_bytes(secret->data, CHIP_SECRET_LEN) != 1)
		return ossl_fail("RAND_priv_bytes");
	if ((r = path_of(NULL, dir, "chip-secret", path)) < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot create %s: %s", path, strerror(errno));
	if (write(fd, secret->data, CHIP_SECRET_LEN) != CHIP_SECRET_LEN || fsync(fd) < 0) {
		close(fd);
		return kd_fail(KD_EIO, "cannot write %s: %s", path, strerror(errno));
	}
	close(fd);

	if (!(c.dir = strdup(dir)))
		return kd_fail(KD_ENOMEM, "out of memory (chip directory)");
	snprintf(cn, sizeof(cn), "ARK-%s", products[pi].name);
	r = make_ca(cn, 0x10000, NULL, NULL, products[pi].name, &ark_key, &c.ark);
	if (r < 0)
		goto out;
	snprintf(cn, sizeof(cn), "SEV-%s", products[pi].name);
	r = make_ca(cn, 0x10001, c.ark, ark_key, products[pi].name, &c.ask_key, &c.ask);
	if (r < 0)
		goto out;
	if ((r = path_of(&c, NULL, "ark.key", path)) < 0 ||
	    (r = write_pem_key(path, ark_key, NULL, false)) < 0 ||
	    (r = path_of(&c, NULL, "ark.pem", path)) < 0 || (r = write_pem_cert(path, c.ark)) < 0 ||
	    (r = path_of(&c, NULL, "ask.key", path)) < 0 ||
	    (r = write_pem_key(path, c.ask_key, NULL, false)) < 0 ||
	    (r = path_of(&c, NULL, "ask.pem", path)) < 0 || (r = write_pem_cert(path, c.ask)) < 0)
		goto out;
	/* chip.json last: its presence means "a complete chip". */
	r = save_json(&c);
out:
	EVP_PKEY_free(ark_key);
	X509_free(c.ark);
	X509_free(c.ask);
	EVP_PKEY_free(c.ask_key);
	free(c.dir);
	return r;
}

int kd_sim_chip_load(const char *dir, struct kd_sim_chip **ret)
{
	struct kd_sim_chip *c = calloc(1, sizeof(*c));
	char path[PATH_MAX];
	int r;

	if (!c || !(c->dir = strdup(dir))) {
		free(c);
		return kd_fail(KD_ENOMEM, "out of memory (chip)");
	}
	if ((r = load_json(c)) < 0 || (r = load_secret(c)) < 0)
		goto fail;
	if ((r = path_of(c, NULL, "ark.pem", path)) < 0 || (r = load_pem(path, NULL, &c->ark)) < 0)
		goto fail;
	if ((r = path_of(c, NULL, "ask.pem", path)) < 0 || (r = load_pem(path, NULL, &c->ask)) < 0)
		goto fail;
	if ((r = path_of(c, NULL, "ask.key", path)) < 0 ||
	    (r = load_pem(path, &c->ask_key, NULL)) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	kd_sim_chip_free(c);
	return r;
}

int kd_sim_chip_reload(struct kd_sim_chip *c)
{
	struct kd_sim_chip t = {.dir = c->dir};
	int r = load_json(&t);

	if (r < 0)
		return r;
	if (t.product != c->product || memcmp(t.chip_id, c->chip_id, 64))
		return kd_fail(KD_EMALFORMED, "chip.json changed product or chip id under a launch");
	c->current_tcb = t.current_tcb;
	c->committed_tcb = t.committed_tcb;
	return 0;
}

enum kd_product kd_sim_chip_product(const struct kd_sim_chip *c)
{
	return c->product;
}

const uint8_t *kd_sim_chip_id(const struct kd_sim_chip *c)
{
	return c->chip_id;
}

uint64_t kd_sim_chip_current_tcb(const struct kd_sim_chip *c)
{
	return c->current_tcb;
}

uint64_t kd_sim_chip_committed_tcb(const struct kd_sim_chip *c)
{
	return c->committed_tcb;
}

const struct kd_secret *kd_sim_chip_secret(const struct kd_sim_chip *c)
{
	return c->secret;
}

int kd_sim_chip_set_tcb(struct kd_sim_chip *c, uint64_t current, uint64_t committed)
{
	uint64_t oc = c->current_tcb, om = c->committed_tcb;
	int r;

	/* The firmware only commits a TCB it runs (SNP_COMMIT). */
	if (!kd_sim_tcb_le(committed, current))
		return kd_fail(KD_EINVAL, "committed TCB exceeds the current TCB in some component");
	c->current_tcb = current;
	c->committed_tcb = committed;
	r = save_json(c);
	if (r < 0) {
		c->current_tcb = oc;
		c->committed_tcb = om;
	}
	return r;
}

int kd_sim_chip_vcek(struct kd_sim_chip *c, uint64_t tcb, EVP_PKEY **ret_key, X509 **ret_cert)
{
	char path[PATH_MAX], name[64], hex[17];
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int r;

	if (c->have_vcek && c->vcek_tcb == tcb)
		goto done;
	tcb_hex(tcb, hex);
	snprintf(name, sizeof(name), "vcek-%s.pem", hex);
	if ((r = path_of(c, NULL, name, path)) < 0)
		return r;
	r = load_pem(path, &k, &x);
	if (r == KD_ENOENT) {
		if ((r = make_vcek(c, tcb, &k, &x)) < 0)
			return r;
		r = write_pem_key(path, k, x, true);
		if (r == KD_EEXIST) {
			EVP_PKEY_free(k);
			X509_free(x);
			k = NULL;
			x = NULL;
			r = load_pem(path, &k, &x);
		}
	}
	if (r < 0) {
		EVP_PKEY_free(k);
		X509_free(x);
		return r;
	}
	EVP_PKEY_free(c->vcek_key);
	X509_free(c->vcek);
	c->vcek_key = k;
	c->vcek = x;
	c->vcek_tcb = tcb;
	c->have_vcek = true;
done:
	kd_err_clear();
	*ret_key = c->vcek_key;
	*ret_cert = c->vcek;
	return 0;
}

static int cert_of(struct kd_sim_chip *c, enum kd_sim_cert which, uint64_t tcb, X509 **ret)
{
	EVP_PKEY *k;

	switch (which) {
	case KD_SIM_CERT_ARK:
		*ret = c->ark;
		return 0;
	case KD_SIM_CERT_ASK:
		*ret = c->ask;
		return 0;
	case KD_SIM_CERT_VCEK:
		return kd_sim_chip_vcek(c, tcb, &k, ret);
	}
	return kd_fail(KD_EINVAL, "no simulated certificate of kind %d", (int)which);
}

int kd_sim_chip_cert_der(struct kd_sim_chip *c, enum kd_sim_cert which, uint64_t tcb,
			 uint8_t **ret, size_t *ret_len)
{
	unsigned char *der = NULL;
	uint8_t *out;
	X509 *x;
	int n, r = cert_of(c, which, tcb, &x);

	if (r < 0)
		return r;
	n = i2d_X509(x, &der);
	if (n <= 0)
		return ossl_fail("DER encoding");
	out = malloc((size_t)n);
	if (!out) {
		OPENSSL_free(der);
		return kd_fail(KD_ENOMEM, "out of memory (certificate)");
	}
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*ret = out;
	*ret_len = (size_t)n;
	return 0;
}

int kd_sim_chip_cert_pem(struct kd_sim_chip *c, enum kd_sim_cert which, uint64_t tcb, char **ret)
{
	BIO *b;
	X509 *x;
	char *p, *out;
	long n;
	int r = cert_of(c, which, tcb, &x);

	if (r < 0)
		return r;
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509(b, x)) {
		BIO_free(b);
		return ossl_fail("PEM encoding");
	}
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	if (!out) {
		BIO_free(b);
		return kd_fail(KD_ENOMEM, "out of memory (certificate)");
	}
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	*ret = out;
	return 0;
}
