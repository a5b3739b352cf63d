/* SPDX-License-Identifier: Apache-2.0 */
/* Release manifests: strict JSON parse, canonical form, Ed25519 k-of-n. */
#include <json-c/json.h>
#include <stdbool.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyd/cleanup.h"
#include "keyd/error.h"
#include "keyd/manifest.h"
#include "keyd/util.h"

/* The decimal value of n digits at s, or -1 if one of them is not a digit. */
static int digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * Fixed positions, digits only, every field in range. strptime(3) would also
 * take spaces and short fields ("  40-01-01T..." is the year 40) and roll
 * 30 February over into March; such a time formats back to a different
 * string, so the JSON form of a parsed manifest would not parse again.
 */
int kd_manifest_parse_time(const char *s, time_t *ret)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, dim = 0;
	struct tm tm;
	time_t t;

	if (!s || strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return kd_fail(KD_EMALFORMED, "time '%.40s' is not RFC 3339 YYYY-MM-DDTHH:MM:SSZ",
			       s ? s : "");
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
		return kd_fail(KD_EMALFORMED, "time '%s' is not RFC 3339 YYYY-MM-DDTHH:MM:SSZ", s);
	if (mo >= 1 && mo <= 12)
		dim = mdays[mo - 1] +
		      (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 1 : 0);
	if (d < 1 || d > dim || h > 23 || mi > 59 || sec > 59)
		return kd_fail(KD_EMALFORMED, "time '%s' names no calendar second", s);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31 && h == 23 && mi == 59 &&
				 sec == 59))
		return kd_fail(KD_EMALFORMED, "time '%s' is out of range", s);
	*ret = t;
	return 0;
}

/* Always four year digits, so that kd_manifest_parse_time reads it back. */
void kd_manifest_format_time(time_t t, char out[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		snprintf(out, 32, "(out of range)");
		return;
	}
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int kd_manifest_new(struct kd_manifest **ret)
{
	struct kd_manifest *m = calloc(1, sizeof(*m));

	if (!m)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	*ret = m;
	return 0;
}

void kd_manifest_free(struct kd_manifest *m)
{
	if (!m)
		return;
	free(m->measurements);
	free(m->sigs);
	free(m);
}

int kd_manifest_add_measurement(struct kd_manifest *m, const uint8_t meas[48])
{
	uint8_t(*n)[48];

	if (m->n_measurements >= KD_MANIFEST_MAX_MEAS)
		return kd_fail(KD_EINVAL, "more than %u measurements", KD_MANIFEST_MAX_MEAS);
	for (size_t i = 0; i < m->n_measurements; i++)
		if (!memcmp(m->measurements[i], meas, 48))
			return kd_fail(KD_EMALFORMED, "measurement listed twice");
	n = realloc(m->measurements, (m->n_measurements + 1) * sizeof(*n));
	if (!n)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	memcpy(n[m->n_measurements], meas, 48);
	m->measurements = n;
	m->n_measurements++;
	return 0;
}

static int label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KD_MANIFEST_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- parse */

static int get_string(struct json_object *o, const char *name, const char **ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return kd_fail(KD_EMALFORMED, "manifest: \"%s\" missing or not a string", name);
	*ret = json_object_get_string(v);
	return 0;
}

static int parse_sig(struct json_object *s, struct kd_manifest_sig *out)
{
	const char *key, *sig;
	int r;

	if (!json_object_is_type(s, json_type_object) || json_object_object_length(s) != 2)
		return kd_fail(KD_EMALFORMED, "manifest: a signature must be {\"key\",\"sig\"}");
	r = get_string(s, "key", &key);
	if (r)
		return r;
	r = get_string(s, "sig", &sig);
	if (r)
		return r;
	if (kd_unhex(key, out->key_id, 32) || kd_unhex(sig, out->sig, 64))
		return kd_fail(KD_EMALFORMED, "manifest: signature key id or value is not hex");
	return 0;
}

/* The products a manifest may name a TCB floor for, in canonical order. */
static const struct {
	const char *name;
	enum kd_product p;
} tcb_products[] = {
	{"milan", KD_PRODUCT_MILAN},
	{"genoa", KD_PRODUCT_GENOA},
	{"turin", KD_PRODUCT_TURIN},
};

static int parse_min_tcb(struct json_object *v, struct kd_manifest *m)
{
	if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) == 0)
		return kd_fail(KD_EMALFORMED,
			       "manifest: \"min_tcb\" must be {\"milan\": \"<16 hex>\", ...}");
	json_object_object_foreach(v, k, val)
	{
		size_t i;
		uint64_t raw;

		for (i = 0; i < KD_ARRAY_SIZE(tcb_products); i++)
			if (!strcmp(k, tcb_products[i].name))
				break;
		if (i == KD_ARRAY_SIZE(tcb_products))
			return kd_fail(KD_EMALFORMED, "manifest: min_tcb names unknown product \"%.20s\"",
				       k);
		if (!json_object_is_type(val, json_type_string) ||
		    kd_tcb_parse_hex(json_object_get_string(val), &raw))
			return kd_fail(KD_EMALFORMED, "manifest: min_tcb of %s is not 16 hex digits",
				       k);
		m->has_min_tcb[tcb_products[i].p] = true;
		m->min_tcb[tcb_products[i].p] = raw;
	}
	return 0;
}

int kd_manifest_tcb_floor(const struct kd_manifest *m, enum kd_product p, uint64_t *ret)
{
	if (p <= KD_PRODUCT_UNKNOWN || p > KD_PRODUCT_TURIN || !m->has_min_tcb[p])
		return kd_fail(KD_ENOENT, "the manifest sets no TCB floor for this product");
	*ret = m->min_tcb[p];
	return 0;
}

static int parse_obj(struct json_object *o, struct kd_manifest *m)
{
	static const char *const allowed[] = {"format",	 "version",	 "svn",
					      "measurements", "not_before",  "not_after",
					      "signatures",   "min_peer_svn", "min_tcb",
					      "rotate"};
	struct json_object *v;
	const char *s;
	int64_t svn;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kd_fail(KD_EMALFORMED, "manifest: not a JSON object");
	json_object_object_foreach(o, k, val)
	{
		size_t i;

		(void)val;
		for (i = 0; i < KD_ARRAY_SIZE(allowed); i++)
			if (!strcmp(k, allowed[i]))
				break;
		if (i == KD_ARRAY_SIZE(allowed))
			return kd_fail(KD_EMALFORMED, "manifest: unknown member \"%.40s\"", k);
	}
	if ((r = get_string(o, "format", &s)))
		return r;
	if (strcmp(s, KD_MANIFEST_FORMAT))
		return kd_fail(KD_EUNSUPP, "manifest: format is not %s", KD_MANIFEST_FORMAT);
	if ((r = get_string(o, "version", &s)))
		return r;
	if (!label_ok(s))
		return kd_fail(KD_EMALFORMED, "manifest: version label must be 1..%u printable characters",
			       KD_MANIFEST_LABEL_MAX);
	strcpy(m->version, s);
	if (!json_object_object_get_ex(o, "svn", &v) || !json_object_is_type(v, json_type_int))
		return kd_fail(KD_EMALFORMED, "manifest: \"svn\" missing or not an integer");
	svn = json_object_get_int64(v);
	if (svn < 0 || svn > UINT32_MAX)
		return kd_fail(KD_EMALFORMED, "manifest: svn out of range");
	m->svn = (uint32_t)svn;
	r = get_string(o, "not_before", &s);
	if (r)
		return r;
	r = kd_manifest_parse_time(s, &m->not_before);
	if (r)
		return r;
	r = get_string(o, "not_after", &s);
	if (r)
		return r;
	r = kd_manifest_parse_time(s, &m->not_after);
	if (r)
		return r;
	if (m->not_after < m->not_before)
		return kd_fail(KD_EMALFORMED, "manifest: not_after precedes not_before");

	if (!json_object_object_get_ex(o, "measurements", &v) ||
	    !json_object_is_type(v, json_type_array))
		return kd_fail(KD_EMALFORMED, "manifest: \"measurements\" missing or not a list");
	if (json_object_array_length(v) == 0 || json_object_array_length(v) > KD_MANIFEST_MAX_MEAS)
		return kd_fail(KD_EMALFORMED, "manifest: needs 1..%u measurements",
			       KD_MANIFEST_MAX_MEAS);
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		uint8_t meas[48];

		if (!json_object_is_type(e, json_type_string) ||
		    kd_unhex(json_object_get_string(e), meas, 48))
			return kd_fail(KD_EMALFORMED, "manifest: measurement %zu is not 96 hex digits", i);
		if ((r = kd_manifest_add_measurement(m, meas)))
			return r;
	}

	if (json_object_object_get_ex(o, "min_peer_svn", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return kd_fail(KD_EMALFORMED, "manifest: \"min_peer_svn\" is not an integer");
		svn = json_object_get_int64(v);
		if (svn < 0 || svn > UINT32_MAX)
			return kd_fail(KD_EMALFORMED, "manifest: min_peer_svn out of range");
		m->has_min_peer_svn = true;
		m->min_peer_svn = (uint32_t)svn;
	}
	if (json_object_object_get_ex(o, "min_tcb", &v) && (r = parse_min_tcb(v, m)))
		return r;
	if (json_object_object_get_ex(o, "rotate", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return kd_fail(KD_EMALFORMED, "manifest: \"rotate\" must be true or false");
		m->rotate = json_object_get_boolean(v);
	}

	if (!json_object_object_get_ex(o, "signatures", &v))
		return 0;
	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) > KD_MANIFEST_MAX_SIGS)
		return kd_fail(KD_EMALFORMED, "manifest: \"signatures\" must be a list of at most %u",
			       KD_MANIFEST_MAX_SIGS);
	m->n_sigs = json_object_array_length(v);
	if (m->n_sigs) {
		m->sigs = calloc(m->n_sigs, sizeof(*m->sigs));
		if (!m->sigs)
			return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	}
	for (size_t i = 0; i < m->n_sigs; i++)
		if ((r = parse_sig(json_object_array_get_idx(v, i), &m->sigs[i])))
			return r;
	return 0;
}

int kd_manifest_parse(const uint8_t *buf, size_t len, struct kd_manifest **ret)
{
	struct json_tokener *tok;
	_kd_json_ struct json_object *o = NULL;
	_kd_manifest_ struct kd_manifest *m = NULL;
	int r;

	if (len == 0 || len > KD_MANIFEST_MAX_BYTES)
		return kd_fail(KD_EMALFORMED, "manifest: size %zu outside 1..%u bytes", len,
			       KD_MANIFEST_MAX_BYTES);
	if (memchr(buf, '\0', len))
		return kd_fail(KD_EMALFORMED, "manifest: NUL byte in JSON");
	tok = json_tokener_new_ex(16);
	if (!tok)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, (const char *)buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    (size_t)json_tokener_get_parse_end(tok) != len) {
		/* Allow only trailing whitespace after the object. */
		size_t end = (size_t)json_tokener_get_parse_end(tok);

		while (o && end < len && (buf[end] == ' ' || buf[end] == '\n' ||
					  buf[end] == '\t' || buf[end] == '\r'))
			end++;
		if (!o || end != len) {
			json_tokener_free(tok);
			return kd_fail(KD_EMALFORMED, "manifest: not valid JSON");
		}
	}
	json_tokener_free(tok);
	r = kd_manifest_new(&m);
	if (r)
		return r;
	r = parse_obj(o, m);
	if (r)
		return r;
	*ret = KD_TAKE_PTR(m);
	return 0;
}

int kd_manifest_to_json(const struct kd_manifest *m, char **ret)
{
	struct json_object *o = json_object_new_object(), *a, *sigs, *mt = NULL;
	char t[32], hex[129];
	char *s;

	if (!o)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	json_object_object_add(o, "format", json_object_new_string(KD_MANIFEST_FORMAT));
	json_object_object_add(o, "version", json_object_new_string(m->version));
	json_object_object_add(o, "svn", json_object_new_int64(m->svn));
	a = json_object_new_array();
	for (size_t i = 0; i < m->n_measurements; i++) {
		kd_hex(m->measurements[i], 48, hex);
		json_object_array_add(a, json_object_new_string(hex));
	}
	json_object_object_add(o, "measurements", a);
	kd_manifest_format_time(m->not_before, t);
	json_object_object_add(o, "not_before", json_object_new_string(t));
	kd_manifest_format_time(m->not_after, t);
	json_object_object_add(o, "not_after", json_object_new_string(t));
	if (m->has_min_peer_svn)
		json_object_object_add(o, "min_peer_svn", json_object_new_int64(m->min_peer_svn));
	for (size_t i = 0; i < KD_ARRAY_SIZE(tcb_products); i++) {
		char th[KD_TCB_HEX_LEN];

		if (!m->has_min_tcb[tcb_products[i].p])
			continue;
		if (!mt) {
			mt = json_object_new_object();
			json_object_object_add(o, "min_tcb", mt);
		}
		kd_tcb_hex(m->min_tcb[tcb_products[i].p], th);
		json_object_object_add(mt, tcb_products[i].name, json_object_new_string(th));
	}
	if (m->rotate)
		json_object_object_add(o, "rotate", json_object_new_boolean(1));
	sigs = json_object_new_array();
	for (size_t i = 0; i < m->n_sigs; i++) {
		struct json_object *e = json_object_new_object();

		kd_hex(m->sigs[i].key_id, 32, hex);
		json_object_object_add(e, "key", json_object_new_string(hex));
		kd_hex(m->sigs[i].sig, 64, hex);
		json_object_object_add(e, "sig", json_object_new_string(hex));
		json_object_array_add(sigs, e);
	}
	json_object_object_add(o, "signatures", sigs);
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (!s)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	*ret = s;
	return 0;
}

/* ---------------------------------------------------------------- canonical */

int kd_manifest_canonical(const struct kd_manifest *m, uint8_t **ret, size_t *ret_len)
{
	size_t cap = 512 + KD_MANIFEST_LABEL_MAX + m->n_measurements * 98;
	char *buf, hex[97];
	int n;
	size_t off;

	if (!label_ok(m->version) || m->n_measurements == 0)
		return kd_fail(KD_EINVAL, "manifest needs a version label and a measurement");
	buf = malloc(cap);
	if (!buf)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	n = snprintf(buf, cap,
		     KD_MANIFEST_FORMAT "\nversion:%zu:%s\nsvn:%u\nnot_before:%lld\nnot_after:%lld\n"
				       "measurements:%zu\n",
		     strlen(m->version), m->version, m->svn, (long long)m->not_before,
		     (long long)m->not_after, m->n_measurements);
	off = (size_t)n;
	for (size_t i = 0; i < m->n_measurements; i++) {
		kd_hex(m->measurements[i], 48, hex);
		memcpy(buf + off, hex, 96);
		buf[off + 96] = '\n';
		off += 97;
	}
	/* Optional fields are signed only when present: older manifests keep
	 * their canonical bytes and signatures. */
	if (m->has_min_peer_svn)
		off += (size_t)snprintf(buf + off, cap - off, "min_peer_svn:%u\n", m->min_peer_svn);
	for (size_t i = 0; i < KD_ARRAY_SIZE(tcb_products); i++) {
		char th[KD_TCB_HEX_LEN];

		if (!m->has_min_tcb[tcb_products[i].p])
			continue;
		kd_tcb_hex(m->min_tcb[tcb_products[i].p], th);
		off += (size_t)snprintf(buf + off, cap - off, "min_tcb:%s:%s\n", tcb_products[i].name,
					th);
	}
	if (m->rotate)
		off += (size_t)snprintf(buf + off, cap - off, "rotate:1\n");
	*ret = (uint8_t *)buf;
	*ret_len = off;
	return 0;
}

/* ---------------------------------------------------------------- keys */

static int key_id(EVP_PKEY *pk, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	if (n <= 0)
		return kd_fail(KD_ECRYPTO, "cannot encode public key");
	SHA256(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

int kd_manifest_sign(struct kd_manifest *m, const uint8_t *key_pem, size_t key_len)
{
	BIO *bio = BIO_new_mem_buf(key_pem, (int)key_len);
	_kd_pkey_ EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	_kd_md_ctx_ EVP_MD_CTX *md = NULL;
	_kd_free_ uint8_t *tbs = NULL;
	uint8_t id[32], sig[64];
	size_t tbs_len = 0, sig_len = sizeof(sig), slot;
	int r;

	BIO_free(bio);
	if (!pk)
		return kd_fail(KD_EINVAL, "signing key is not a PEM private key");
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
		return kd_fail(KD_EINVAL, "signing key is not Ed25519");
	r = key_id(pk, id);
	if (r)
		return r;
	r = kd_manifest_canonical(m, &tbs, &tbs_len);
	if (r)
		return r;
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, tbs, tbs_len) != 1 || sig_len != 64)
		return kd_fail(KD_ECRYPTO, "Ed25519 signing failed");
	/* One signature per key: re-signing replaces, so counts stay honest. */
	for (slot = 0; slot < m->n_sigs; slot++)
		if (!memcmp(m->sigs[slot].key_id, id, 32))
			break;
	if (slot == m->n_sigs) {
		struct kd_manifest_sig *n;

		if (m->n_sigs >= KD_MANIFEST_MAX_SIGS)
			return kd_fail(KD_EINVAL, "manifest already has %u signatures",
				       KD_MANIFEST_MAX_SIGS);
		n = realloc(m->sigs, (m->n_sigs + 1) * sizeof(*n));
		if (!n)
			return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
		m->sigs = n;
		m->n_sigs++;
	}
	memcpy(m->sigs[slot].key_id, id, 32);
	memcpy(m->sigs[slot].sig, sig, 64);
	return 0;
}

void kd_release_keys_free(struct kd_release_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->pkeys[i]);
	free(k);
}

/*
 * An Ed25519 SubjectPublicKeyInfo has one DER encoding (RFC 8410 §4: no
 * parameters): this 12-byte prefix and the 32-byte key. Matching it and
 * making the key from its raw bytes avoids OpenSSL's generic decoder, whose
 * set-up costs milliseconds of every handoff's and every pending unlock's
 * start, and accepts nothing the decoder would not.
 */
static const uint8_t ed25519_spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
						0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static int add_release_key(struct kd_release_keys *k, const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	EVP_PKEY *pk = NULL;
	uint8_t id[32];
	int ok = bio && PEM_read_bio(bio, &name, &header, &der, &len) == 1 &&
		 !strcmp(name, PEM_STRING_PUBLIC) && !header[0];

	BIO_free(bio);
	if (ok && len == 44 && !memcmp(der, ed25519_spki_prefix, sizeof(ed25519_spki_prefix)))
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der + 12, 32);
	if (pk)
		SHA256(der, 44, id);
	else if (ok) {
		/* Only to name the refusal: a public key, of another kind? */
		const unsigned char *p = der;
		EVP_PKEY *other = d2i_PUBKEY(NULL, &p, len);

		ok = other != NULL;
		EVP_PKEY_free(other);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	ERR_clear_error();
	if (!pk)
		return ok ? kd_fail(KD_EINVAL, "release keys: key %zu is not Ed25519", k->n)
			  : kd_fail(KD_EMALFORMED, "release keys: key %zu is not a PEM public key", k->n);
	for (size_t i = 0; i < k->n; i++)
		if (!memcmp(k->ids[i], id, 32)) {
			EVP_PKEY_free(pk);
			/* A key listed twice would let one signer count twice toward k. */
			return kd_fail(KD_EINVAL, "release keys: key %zu is listed twice", k->n);
		}
	k->pkeys[k->n] = pk;
	memcpy(k->ids[k->n], id, 32);
	k->n++;
	return 0;
}

int kd_release_keys_parse(const uint8_t *buf, size_t len, struct kd_release_keys **ret)
{
	struct json_tokener *tok;
	struct json_object *o = NULL, *t, *keys;
	struct kd_release_keys *k;
	int64_t thr;
	int r = 0;

	if (len == 0 || len > 65536 || memchr(buf, '\0', len))
		return kd_fail(KD_EMALFORMED, "release keys: bad size or NUL byte");
	tok = json_tokener_new();
	if (!tok)
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	o = json_tokener_parse_ex(tok, (const char *)buf, (int)len);
	json_tokener_free(tok);
	k = calloc(1, sizeof(*k));
	if (!k) {
		json_object_put(o);
		return kd_fail(KD_ENOMEM, "out of memory (release manifest)");
	}
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "threshold", &t) || !json_object_is_type(t, json_type_int) ||
	    !json_object_object_get_ex(o, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array) || json_object_object_length(o) != 2) {
		r = kd_fail(KD_EMALFORMED,
			    "release keys: expected {\"threshold\": k, \"keys\": [PEM, ...]}");
		goto out;
	}
	if (json_object_array_length(keys) > KD_RELEASE_KEYS_MAX) {
		r = kd_fail(KD_EINVAL, "release keys: more than %u keys", KD_RELEASE_KEYS_MAX);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		struct json_object *e = json_object_array_get_idx(keys, i);

		if (!json_object_is_type(e, json_type_string)) {
			r = kd_fail(KD_EMALFORMED, "release keys: key %zu is not a string", i);
			goto out;
		}
		r = add_release_key(k, json_object_get_string(e));
		if (r)
			goto out;
	}
	thr = json_object_get_int64(t);
	if (thr < 1 || (uint64_t)thr > k->n) {
		r = kd_fail(KD_EINVAL, "release keys: threshold %lld outside 1..%zu", (long long)thr,
			    k->n);
		goto out;
	}
	k->threshold = (unsigned)thr;
out:
	json_object_put(o);
	if (r) {
		kd_release_keys_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

int kd_release_keys_load(const char *path, struct kd_release_keys **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = kd_read_file(path ? path : KD_RELEASE_KEYS_DEFAULT, 65536, &buf, &len);

	if (r)
		return kd_fail(r, "cannot read release keys %s", path ? path : KD_RELEASE_KEYS_DEFAULT);
	r = kd_release_keys_parse(buf, len, ret);
	free(buf);
	return r;
}

int kd_manifest_verify(const struct kd_manifest *m, const struct kd_release_keys *keys, time_t at,
		       unsigned *ret_valid)
{
	bool counted[KD_RELEASE_KEYS_MAX] = {false};
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	unsigned valid = 0;
	char t[32];
	int r;

	r = kd_manifest_canonical(m, &tbs, &tbs_len);
	if (r)
		return r;
	for (size_t i = 0; i < m->n_sigs; i++) {
		for (size_t j = 0; j < keys->n; j++) {
			EVP_MD_CTX *md;
			int ok;

			/* Unknown signers are ignored; a pinned signer counts once. */
			if (counted[j] || memcmp(m->sigs[i].key_id, keys->ids[j], 32))
				continue;
			md = EVP_MD_CTX_new();
			ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, keys->pkeys[j]) == 1 &&
			     EVP_DigestVerify(md, m->sigs[i].sig, 64, tbs, tbs_len) == 1;
			EVP_MD_CTX_free(md);
			if (ok) {
				counted[j] = true;
				valid++;
			}
		}
	}
	free(tbs);
	if (ret_valid)
		*ret_valid = valid;
	if (valid < keys->threshold)
		return kd_fail(KD_EVERIFY,
			       "manifest %s: %u valid signature(s) by pinned release keys, %u required",
			       m->version, valid, keys->threshold);
	if (!at)
		at = time(NULL);
	if (at < m->not_before) {
		kd_manifest_format_time(m->not_before, t);
		return kd_fail(KD_EPOLICY, "manifest %s is not valid before %s", m->version, t);
	}
	if (at > m->not_after) {
		kd_manifest_format_time(m->not_after, t);
		return kd_fail(KD_EPOLICY, "manifest %s expired at %s", m->version, t);
	}
	return 0;
}

int kd_manifest_has_measurement(const struct kd_manifest *m, const uint8_t meas[48])
{
	char hex[97];

	for (size_t i = 0; i < m->n_measurements; i++)
		if (!memcmp(m->measurements[i], meas, 48))
			return 0;
	kd_hex(meas, 48, hex);
	return kd_fail(KD_EPOLICY, "measurement %.16s... not in manifest for version %s", hex,
		       m->version);
}

static char *bio_string(BIO *b)
{
	char *p, *s;
	long n = BIO_get_mem_data(b, &p);

	s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

int kd_manifest_keygen(char **ret_priv_pem, char **ret_pub_pem)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *b1 = BIO_new(BIO_s_secmem()), *b2 = BIO_new(BIO_s_mem());
	char *priv = NULL, *pub = NULL;
	int r = 0;

	if (!pk || !b1 || !b2 || PEM_write_bio_PrivateKey(b1, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(b2, pk) != 1 || !(priv = bio_string(b1)) ||
	    !(pub = bio_string(b2)))
		r = kd_fail(KD_ECRYPTO, "Ed25519 key generation failed");
	EVP_PKEY_free(pk);
	BIO_free(b1);
	BIO_free(b2);
	if (r) {
		free(priv);
		free(pub);
		return r;
	}
	*ret_priv_pem = priv;
	*ret_pub_pem = pub;
	return 0;
}
