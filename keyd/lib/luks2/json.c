/* SPDX-License-Identifier: Apache-2.0 */
/* Typed getters for untrusted LUKS2 JSON (luks2json.h). */
#include <stdio.h>
#include <string.h>

#include "keyd/error.h"
#include "keyd/luks2json.h"

static const char *type_name(json_type t)
{
	switch (t) {
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	case json_type_int:
		return "an integer";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number";
	case json_type_null:
		return "null";
	}
	return "a JSON value";
}

static int member(json_object *o, const char *where, const char *key, json_type type, bool opt,
		  json_object **ret)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object))
		return kd_fail(KD_ETAMPER, "%.64s is not an object", where);
	if (!json_object_object_get_ex(o, key, &v)) {
		if (!opt)
			return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is missing", where, key);
		*ret = NULL;
		return 0;
	}
	/* A JSON null is present, with type null (json-c stores it as NULL). */
	if (!json_object_is_type(v, type))
		return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is not %s", where, key, type_name(type));
	*ret = v;
	return 0;
}

int kd_lj_get(json_object *o, const char *where, const char *key, json_type type,
	      json_object **ret)
{
	return member(o, where, key, type, false, ret);
}

int kd_lj_opt(json_object *o, const char *where, const char *key, json_type type,
	      json_object **ret)
{
	return member(o, where, key, type, true, ret);
}

int kd_lj_obj(json_object *o, const char *where, const char *key, json_object **ret)
{
	return member(o, where, key, json_type_object, false, ret);
}

int kd_lj_arr(json_object *o, const char *where, const char *key, json_object **ret)
{
	return member(o, where, key, json_type_array, false, ret);
}

static bool plain_string(json_object *v)
{
	const char *s = json_object_get_string(v);

	return s && *s && strlen(s) == (size_t)json_object_get_string_len(v);
}

int kd_lj_str(json_object *o, const char *where, const char *key, const char **ret)
{
	json_object *v;
	int r = member(o, where, key, json_type_string, false, &v);

	if (r)
		return r;
	if (!plain_string(v))
		return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is empty or holds a NUL", where, key);
	*ret = json_object_get_string(v);
	return 0;
}

int kd_lj_int(json_object *o, const char *where, const char *key, int64_t min, int64_t max,
	      int64_t *ret)
{
	json_object *v;
	int64_t n;
	int r = member(o, where, key, json_type_int, false, &v);

	if (r)
		return r;
	n = json_object_get_int64(v);
	/* json-c saturates out-of-range integers at INT64_MIN/MAX. */
	if (n < min || n > max || n == INT64_MAX || n == INT64_MIN)
		return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is out of range", where, key);
	*ret = n;
	return 0;
}

int kd_lj_u64(json_object *o, const char *where, const char *key, uint64_t *ret)
{
	const char *s;
	uint64_t n = 0;
	int r = kd_lj_str(o, where, key, &s);

	if (r)
		return r;
	if (strlen(s) > 20 || (s[0] == '0' && s[1]))
		return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is not a decimal number", where, key);
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" is not a decimal number", where,
				       key);
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*ret = n;
	return 0;
}

/* A decimal of one or two digits without a leading zero, into *ret. */
static bool small_decimal(const char *s, unsigned *ret)
{
	unsigned n = 0;

	if (!s || !*s || strlen(s) > 2 || (s[0] == '0' && s[1]))
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (unsigned)(*p - '0');
	}
	*ret = n;
	return true;
}

int kd_lj_id(const char *s, const char *where, const char *what)
{
	unsigned n;

	if (!small_decimal(s, &n))
		return kd_fail(KD_ETAMPER, "%.64s: bad %s id \"%.8s\"", where, what, s ? s : "");
	if (n >= KD_LJ_MAX_ID)
		return kd_fail(KD_ETAMPER, "%.64s: %s id %u out of range", where, what, n);
	return (int)n;
}

int kd_lj_str_array(json_object *o, const char *where, const char *key, json_object **ret)
{
	json_object *a;
	int r = member(o, where, key, json_type_array, true, &a);

	if (r)
		return r;
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_string) ||
		    strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e))
			return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" element %zu is not a string", where,
				       key, i);
	}
	*ret = a;
	return 0;
}

int kd_lj_id_set(json_object *o, const char *where, const char *key, uint32_t *ret)
{
	json_object *a;
	uint32_t m = 0;
	int r;

	if ((r = kd_lj_arr(o, where, key, &a)))
		return r;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		int id;

		if (!json_object_is_type(e, json_type_string))
			return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" element %zu is not a string", where,
				       key, i);
		if ((id = kd_lj_id(json_object_get_string(e), where, key)) < 0)
			return id;
		if (m & (1u << id))
			return kd_fail(KD_ETAMPER, "%.64s: \"%.32s\" names %d twice", where, key, id);
		m |= 1u << id;
	}
	*ret = m;
	return 0;
}

const char *kd_lj_elem_str(json_object *arr, size_t i)
{
	json_object *e = json_object_is_type(arr, json_type_array) &&
				 i < json_object_array_length(arr)
			 ? json_object_array_get_idx(arr, i)
			 : NULL;

	return json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
}

const char *kd_lj_unknown_key(json_object *o, const char *const *keys, size_t n)
{
	if (!json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_foreach(o, key, val) {
		size_t i = 0;

		(void)val;
		while (i < n && strcmp(key, keys[i]))
			i++;
		if (i == n)
			return key;
	}
	return NULL;
}

json_object *kd_lj_peek(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *kd_lj_peek_str(json_object *o, const char *key)
{
	json_object *v = kd_lj_peek(o, key, json_type_string);

	return v && plain_string(v) ? json_object_get_string(v) : NULL;
}

int kd_lj_peek_id(const char *s)
{
	unsigned n;

	return small_decimal(s, &n) && n < KD_LJ_MAX_ID ? (int)n : -1;
}

bool kd_lj_peek_id_set(json_object *o, const char *key, uint32_t *ret)
{
	json_object *a = kd_lj_peek(o, key, json_type_array);
	uint32_t m = 0;

	if (!a)
		return false;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		int id = kd_lj_peek_id(kd_lj_elem_str(a, i));

		if (id < 0 || (m & (1u << id)))
			return false;
		m |= 1u << id;
	}
	*ret = m;
	return true;
}

bool kd_lj_has(json_object *o, const char *key)
{
	return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, NULL);
}

int kd_lj_len(json_object *o)
{
	return json_object_is_type(o, json_type_object) ? json_object_object_length(o) : 0;
}

const char *kd_lj_where(char *buf, size_t len, const char *what, const char *id)
{
	snprintf(buf, len, "%s %.8s", what, id);
	return buf;
}

int kd_lj_parse(const char *json, size_t len, int depth, json_object **ret)
{
	struct json_tokener *tok = json_tokener_new_ex(depth);
	json_object *o;
	bool whole;

	if (!tok)
		return kd_fail(KD_ENOMEM, "out of memory (JSON parser)");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, json, (int)len);
	whole = o && json_tokener_get_error(tok) == json_tokener_success &&
		json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!whole) {
		json_object_put(o);
		return kd_fail(KD_EMALFORMED, "JSON text does not parse (strictly, as a whole)");
	}
	*ret = o;
	return 0;
}

bool kd_lj_add(json_object *o, const char *key, json_object *v)
{
	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return false;
	}
	return true;
}
