/* SPDX-License-Identifier: Apache-2.0 */
/* The "keyd" LUKS2 token: strict JSON parse and format (token.h). */
#include <stdio.h>
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
	"measurement", "policy", "chip", "label", "state", "svn", "created", "pin",
};

#define WHERE "keyd token"

/* A typed getter's refusal (luks2json.h) as a token parse error, detail kept. */
static int malformed(int r)
{
	char d[200];

	snprintf(d, sizeof(d), "%s", kd_err_detail(r));
	return kd_fail(KD_EMALFORMED, "%s", d);
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

static int parse_obj(json_object *o, struct kd_token *t)
{
	const char *s;
	json_object *ks;
	uint32_t m;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kd_fail(KD_EMALFORMED, "keyd token: not a JSON object");
	json_object_object_foreach(o, key, val) {
		bool known = false;

		(void)val;
		for (size_t i = 0; i < KD_ARRAY_SIZE(token_keys); i++)
			known |= !strcmp(key, token_keys[i]);
		if (!known)
			return kd_fail(KD_EMALFORMED, "keyd token: unknown key \"%.32s\"", key);
	}
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
	return get_hex(o, "pin", t->pin, sizeof(t->pin));
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

int kd_token_format(const struct kd_token *t, char **ret)
{
	char hex[2 * KD_CHIP_DIGEST_SIZE + 1], buf[128], *out;
	json_object *o = json_object_new_object(), *ks = json_object_new_array();
	const char *root;
	int r = 0;

	if (!o || !ks) {
		json_object_put(o);
		json_object_put(ks);
		return KD_ENOMEM;
	}
	snprintf(buf, sizeof(buf), "%d", t->keyslot);
	if (json_object_array_add(ks, json_object_new_string(buf))) {
		json_object_put(ks);
		json_object_put(o);
		return KD_ENOMEM;
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
	if (r) {
		json_object_put(o);
		return KD_ENOMEM;
	}
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!out)
		return KD_ENOMEM;
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
	return o;
}
