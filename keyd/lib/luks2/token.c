/* SPDX-License-Identifier: Apache-2.0 */
/* The "keyd" LUKS2 token: strict JSON parse and format (token.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/luks2json.h"
#include "keyd/report.h"
#include "keyd/token.h"
#include "keyd/util.h"

static const char *const state_names[] = {"pending", "active", "retired"};

const char *kd_token_state_name(enum kd_token_state s)
{
	return (unsigned)s < KD_ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

int kd_token_state_parse(const char *s, enum kd_token_state *ret)
{
	for (size_t i = 0; i < KD_ARRAY_SIZE(state_names); i++)
		if (!strcmp(s, state_names[i])) {
			*ret = (enum kd_token_state)i;
			return 0;
		}
	return kd_fail(KD_EMALFORMED, "keyd token: unknown state \"%.16s\"", s);
}

int kd_chip_digest(const uint8_t chip_id[64], uint8_t out[KD_CHIP_DIGEST_SIZE])
{
	unsigned n = 0;

	if (!EVP_Digest(chip_id, 64, out, &n, EVP_sha384(), NULL) || n != KD_CHIP_DIGEST_SIZE)
		return kd_fail(KD_ECRYPTO, "SHA-384 of the chip ID failed");
	return 0;
}

/* Every key a token may carry; anything else is refused (strict schema). */
static const char *const token_keys[] = {
	"type", "keyslots", "version", "backend", "root", "fields", "vmpl", "guest_svn", "tcb",
	"measurement", "policy", "chip", "label", "state", "svn", "created", "pin", "wrap",
	"evidence",
};

#define WHERE "keyd token"

/* A typed getter's refusal (luks2json.h) as a token parse error, detail kept. */
static int malformed(int r)
{
	char d[200];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(KD_EMALFORMED, "%s", d);
}

_Static_assert(KD_EVIDENCE_REPORT_SIZE == KD_REPORT_SIZE, "evidence report size");

/* Exactly these members, nothing else (the nested objects are strict too). */
static int only_keys(json_object *o, const char *what, const char *const *keys, size_t n)
{
	const char *other;

	if (!json_object_is_type(o, json_type_object))
		return kd_fail(KD_EMALFORMED, "keyd token: \"%s\" is not an object", what);
	if ((other = kd_lj_unknown_key(o, keys, n)))
		return kd_fail(KD_EMALFORMED, "keyd token: unknown key \"%.32s\" in \"%s\"", other,
			       what);
	return 0;
}

static int get_str(json_object *o, const char *key, size_t max, const char **ret)
{
	json_object *v;
	const char *s;
	int r;

	if ((r = kd_lj_get(o, WHERE, key, json_type_string, &v)))
		return malformed(r);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) > max || strlen(s) != (size_t)json_object_get_string_len(v))
		return kd_fail(KD_EMALFORMED, "keyd token: \"%s\" is too long", key);
	*ret = s;
	return 0;
}

static int get_u32(json_object *o, const char *key, uint32_t max, uint32_t *ret)
{
	int64_t n;
	int r;

	if ((r = kd_lj_int(o, WHERE, key, 0, max, &n)))
		return malformed(r);
	*ret = (uint32_t)n;
	return 0;
}

static int get_hex(json_object *o, const char *key, uint8_t *out, size_t n)
{
	const char *s;
	int r = get_str(o, key, 2 * n + 2, &s);

	if (r)
		return r;
	if (strlen(s) != 2 * n || kd_unhex(s, out, n))
		return kd_fail(KD_EMALFORMED, "keyd token: \"%s\" is not %zu hex bytes", key, n);
	return 0;
}

static bool is_rfc3339_utc(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SSZ, what kd_token_for_launch writes. */
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";

	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	return true;
}

/* Strict base64 of exactly n bytes (canonical: re-encoding gives the same text). */
static int get_b64(json_object *o, const char *key, uint8_t *out, size_t n)
{
	size_t want = 4 * ((n + 2) / 3);
	uint8_t *tmp = NULL;
	char *re = NULL;
	const char *s;
	int r = get_str(o, key, want, &s), got;

	if (r)
		return r;
	if (strlen(s) != want)
		return kd_fail(KD_EMALFORMED, "keyd token: \"%s\" is not %zu bytes of base64", key, n);
	tmp = malloc(want);
	re = malloc(want + 1);
	if (!tmp || !re) {
		r = kd_fail(KD_ENOMEM, "out of memory (keyd token)");
	} else {
		got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)want);
		if (got == (int)(3 * (want / 4)) &&
		    EVP_EncodeBlock((unsigned char *)re, tmp, (int)n) == (int)want && !strcmp(re, s)) {
			memcpy(out, tmp, n);
			r = 0;
		} else {
			r = kd_fail(KD_EMALFORMED, "keyd token: \"%s\" is not canonical base64 of %zu "
						   "bytes", key, n);
		}
	}
	free(tmp);
	free(re);
	return r;
}

/* "wrap" and "evidence": both or neither, and only on a pending token. */
static int parse_pending(json_object *o, struct kd_token *t)
{
	static const char *const wrap_keys[] = {"epk", "ct"};
	static const char *const ev_keys[] = {"report", "exporter", "key", "sig", "manifest"};
	json_object *w = NULL, *e = NULL, *m;
	const char *txt;
	int r;

	/* Host-written: present members must be objects (null is refused). */
	if ((r = kd_lj_opt(o, WHERE, "wrap", json_type_object, &w)) ||
	    (r = kd_lj_opt(o, WHERE, "evidence", json_type_object, &e)))
		return malformed(r);
	if (!w && !e)
		return 0;
	if (!w || !e)
		return kd_fail(KD_EMALFORMED, "keyd token: \"wrap\" and \"evidence\" come together");
	if (t->state != KD_TOKEN_PENDING)
		return kd_fail(KD_EMALFORMED, "keyd token: wrapped secrets on a %s slot",
			       kd_token_state_name(t->state));
	if ((r = only_keys(w, "wrap", wrap_keys, KD_ARRAY_SIZE(wrap_keys))) ||
	    (r = get_hex(w, "epk", t->wrap_epk, sizeof(t->wrap_epk))) ||
	    (r = get_hex(w, "ct", t->wrap_ct, sizeof(t->wrap_ct))) ||
	    (r = only_keys(e, "evidence", ev_keys, KD_ARRAY_SIZE(ev_keys))) ||
	    (r = get_b64(e, "report", t->ev_report, sizeof(t->ev_report))) ||
	    (r = get_hex(e, "exporter", t->ev_exporter, sizeof(t->ev_exporter))) ||
	    (r = get_hex(e, "key", t->ev_key, sizeof(t->ev_key))) ||
	    (r = get_hex(e, "sig", t->ev_sig, sizeof(t->ev_sig))))
		return r;
	if ((r = kd_lj_obj(e, WHERE " evidence", "manifest", &m)))
		return malformed(r);
	txt = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	if (!txt || strlen(txt) > KD_EVIDENCE_MANIFEST_MAX)
		return kd_fail(KD_EMALFORMED, "keyd token: evidence manifest above %u bytes",
			       KD_EVIDENCE_MANIFEST_MAX);
	strcpy(t->ev_manifest, txt);
	t->has_wrap = true;
	return 0;
}

static int parse_obj(json_object *o, struct kd_token *t)
{
	const char *s;
	const char *other;
	json_object *ks;
	uint32_t m;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kd_fail(KD_EMALFORMED, "keyd token: not a JSON object");
	if ((other = kd_lj_unknown_key(o, token_keys, KD_ARRAY_SIZE(token_keys))))
		return kd_fail(KD_EMALFORMED, "keyd token: unknown key \"%.32s\"", other);
	if ((r = get_str(o, "type", 16, &s)))
		return r;
	if (strcmp(s, KD_TOKEN_TYPE))
		return kd_fail(KD_EMALFORMED, "keyd token: type is not \"keyd\"");
	if ((r = get_u32(o, "version", 1000, &t->version)))
		return r;
	if (t->version != KD_TOKEN_VERSION)
		return kd_fail(KD_EUNSUPP, "keyd token: version %u is not supported", t->version);

	/* Exactly one keyslot, as a decimal string (LUKS2 convention). */
	if ((r = kd_lj_arr(o, WHERE, "keyslots", &ks)) || json_object_array_length(ks) != 1)
		return kd_fail(KD_ETAMPER, "keyd token: must reference exactly one keyslot");
	if ((r = kd_lj_id_set(o, WHERE, "keyslots", &m)))
		return malformed(r);
	t->keyslot = __builtin_ctz(m);

	if ((r = get_str(o, "backend", sizeof(t->backend) - 1, &s)))
		return r;
	for (const char *p = s; *p; p++)
		if (!(*p >= 'a' && *p <= 'z'))
			return kd_fail(KD_EMALFORMED, "keyd token: bad backend name");
	strcpy(t->backend, s);
	if ((r = get_str(o, "root", 8, &s)))
		return r;
	if (kd_root_parse(s, &t->root_key_select) < 0)
		return kd_fail(KD_EMALFORMED, "keyd token: unknown root key \"%.8s\"", s);
	if ((r = get_str(o, "fields", 96, &s)))
		return r;
	if (kd_fields_parse(s, &t->fields))
		return kd_fail(KD_EMALFORMED, "keyd token: bad field list");
	if ((r = get_u32(o, "vmpl", 3, &t->vmpl)) || (r = get_u32(o, "guest_svn", UINT32_MAX, &t->guest_svn)) ||
	    (r = get_u32(o, "svn", UINT32_MAX, &t->svn)))
		return r;
	if ((r = get_str(o, "tcb", 18, &s)))
		return r;
	if (kd_tcb_parse_hex(s, &t->tcb))
		return kd_fail(KD_EMALFORMED, "keyd token: bad tcb");
	if ((r = get_hex(o, "measurement", t->measurement, sizeof(t->measurement))))
		return r;
	if ((r = get_str(o, "policy", 18, &s)))
		return r;
	if (strncmp(s, "0x", 2) || kd_parse_u64(s, UINT64_MAX, &t->policy))
		return kd_fail(KD_EMALFORMED, "keyd token: bad policy");
	if ((r = get_str(o, "chip", 2 * KD_CHIP_DIGEST_SIZE, &s)))
		return r;
	t->has_chip = strcmp(s, "none") != 0;
	if (t->has_chip && (strlen(s) != 2 * KD_CHIP_DIGEST_SIZE || kd_unhex(s, t->chip, sizeof(t->chip))))
		return kd_fail(KD_EMALFORMED, "keyd token: bad chip digest");
	if ((r = get_str(o, "label", KD_TOKEN_LABEL_MAX, &s)))
		return r;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return kd_fail(KD_EMALFORMED, "keyd token: label is not printable ASCII");
	strcpy(t->label, s);
	if ((r = get_str(o, "state", 16, &s)) || (r = kd_token_state_parse(s, &t->state)))
		return r;
	if ((r = get_str(o, "created", sizeof(t->created) - 1, &s)))
		return r;
	if (!is_rfc3339_utc(s))
		return kd_fail(KD_EMALFORMED, "keyd token: created is not RFC 3339 UTC");
	strcpy(t->created, s);
	if ((r = get_hex(o, "pin", t->pin, sizeof(t->pin))))
		return r;
	return parse_pending(o, t);
}

int kd_token_parse(const char *json, size_t len, struct kd_token *ret)
{
	json_object *o;
	struct kd_token t;
	int r;

	if (!json || len == 0 || len > KD_TOKEN_JSON_MAX || memchr(json, 0, len))
		return kd_fail(KD_EMALFORMED, "keyd token: empty, too long or embedded NUL");
	if ((r = kd_lj_parse(json, len, 8, &o)))
		return r == KD_EMALFORMED ? kd_fail(r, "keyd token: not valid JSON") : r;
	memset(&t, 0, sizeof(t));
	r = parse_obj(o, &t);
	json_object_put(o);
	if (r)
		return r;
	t.token_id = -1;
	*ret = t;
	return 0;
}

static int add(json_object *o, const char *key, json_object *v)
{
	return kd_lj_add(o, key, v) ? 0 : kd_fail(KD_ENOMEM, "out of memory (keyd token)");
}

static int format_pending(json_object *o, const struct kd_token *t)
{
	char hex[2 * KD_WRAP_CT_LEN + 1], b64[4 * ((KD_EVIDENCE_REPORT_SIZE + 2) / 3) + 1];
	json_object *w = json_object_new_object(), *e = json_object_new_object(), *m = NULL;
	int r = 0;

	if (t->state != KD_TOKEN_PENDING) {
		json_object_put(w);
		json_object_put(e);
		return kd_fail(KD_EINVAL, "wrapped secrets belong on a pending slot only");
	}
	if (t->ev_manifest[0])
		m = json_tokener_parse(t->ev_manifest);
	if (!w || !e || !m || !json_object_is_type(m, json_type_object)) {
		json_object_put(w);
		json_object_put(e);
		json_object_put(m);
		return kd_fail(KD_EINVAL, "pending token: evidence manifest is not a JSON object");
	}
	kd_hex(t->wrap_epk, sizeof(t->wrap_epk), hex);
	r |= add(w, "epk", json_object_new_string(hex));
	kd_hex(t->wrap_ct, sizeof(t->wrap_ct), hex);
	r |= add(w, "ct", json_object_new_string(hex));
	EVP_EncodeBlock((unsigned char *)b64, t->ev_report, (int)sizeof(t->ev_report));
	r |= add(e, "report", json_object_new_string(b64));
	kd_hex(t->ev_exporter, sizeof(t->ev_exporter), hex);
	r |= add(e, "exporter", json_object_new_string(hex));
	kd_hex(t->ev_key, sizeof(t->ev_key), hex);
	r |= add(e, "key", json_object_new_string(hex));
	kd_hex(t->ev_sig, sizeof(t->ev_sig), hex);
	r |= add(e, "sig", json_object_new_string(hex));
	r |= add(e, "manifest", m);
	r |= add(o, "wrap", w);
	r |= add(o, "evidence", e);
	return r ? kd_fail(KD_ENOMEM, "out of memory (keyd token)") : 0;
}

int kd_token_format(const struct kd_token *t, char **ret)
{
	char hex[2 * KD_CHIP_DIGEST_SIZE + 1], buf[128], *out;
	json_object *o = json_object_new_object(), *ks = json_object_new_array();
	const char *root;
	int r = 0;

	if (!o || !ks) {
		json_object_put(o);
		json_object_put(ks);
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	}
	snprintf(buf, sizeof(buf), "%d", t->keyslot);
	if (json_object_array_add(ks, json_object_new_string(buf))) {
		json_object_put(ks);
		json_object_put(o);
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	}
	r |= add(o, "type", json_object_new_string(KD_TOKEN_TYPE));
	r |= add(o, "keyslots", ks);
	r |= add(o, "version", json_object_new_int((int)t->version));
	r |= add(o, "backend", json_object_new_string(t->backend));
	root = t->root_key_select == KD_ROOT_KEY_VMRK                         ? "vmrk"
	       : t->root_key_select == KD_KEY_SEL_VLEK << KD_KEY_SEL_SHIFT ? "vlek"
									   : "vcek";
	r |= add(o, "root", json_object_new_string(root));
	kd_fields_format(t->fields, buf, sizeof(buf));
	r |= add(o, "fields", json_object_new_string(buf));
	r |= add(o, "vmpl", json_object_new_int64(t->vmpl));
	r |= add(o, "guest_svn", json_object_new_int64(t->guest_svn));
	kd_tcb_hex(t->tcb, buf);
	r |= add(o, "tcb", json_object_new_string(buf));
	kd_hex(t->measurement, sizeof(t->measurement), hex);
	r |= add(o, "measurement", json_object_new_string(hex));
	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)t->policy);
	r |= add(o, "policy", json_object_new_string(buf));
	if (t->has_chip)
		kd_hex(t->chip, sizeof(t->chip), hex);
	r |= add(o, "chip", json_object_new_string(t->has_chip ? hex : "none"));
	r |= add(o, "label", json_object_new_string(t->label));
	r |= add(o, "state", json_object_new_string(kd_token_state_name(t->state)));
	r |= add(o, "svn", json_object_new_int64(t->svn));
	r |= add(o, "created", json_object_new_string(t->created));
	kd_hex(t->pin, sizeof(t->pin), hex);
	r |= add(o, "pin", json_object_new_string(hex));
	if (!r && t->has_wrap)
		r = format_pending(o, t);
	if (r) {
		json_object_put(o);
		/* add() and format_pending() recorded their own detail. */
		return r < 0 ? r : kd_fail(KD_ENOMEM, "out of memory (keyd token)");
	}
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!out)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	*ret = out;
	return 0;
}

json_object *kd_token_status_json(const struct kd_token *t)
{
	json_object *o = json_object_new_object();
	char m[2 * KD_MEASUREMENT_SIZE + 1], tcb[KD_TCB_HEX_LEN];

	kd_hex(t->measurement, sizeof(t->measurement), m);
	kd_tcb_hex(t->tcb, tcb);
	json_object_object_add(o, "token", json_object_new_int(t->token_id));
	json_object_object_add(o, "keyslot", json_object_new_int(t->keyslot));
	json_object_object_add(o, "state", json_object_new_string(kd_token_state_name(t->state)));
	json_object_object_add(o, "label", json_object_new_string(t->label));
	json_object_object_add(o, "svn", json_object_new_int64(t->svn));
	json_object_object_add(o, "measurement", json_object_new_string(m));
	json_object_object_add(o, "tcb", json_object_new_string(tcb));
	json_object_object_add(o, "policy", json_object_new_int64((int64_t)t->policy));
	json_object_object_add(o, "backend", json_object_new_string(t->backend));
	json_object_object_add(o, "created", json_object_new_string(t->created));
	json_object_object_add(o, "wrapped", json_object_new_boolean(t->has_wrap));
	return o;
}
