/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed read access to untrusted LUKS2 JSON metadata.
 *
 * The host writes the header, so any member may have any JSON type: a token
 * "type" that is null, "tokens" that is an array, "keyslots" that is a
 * string. json-c's own getters answer such input with NULL (which strcmp
 * then dereferences) or with an assertion abort. Every reader of header JSON
 * in keyd goes through these getters instead: each checks that the member
 * exists and has the type asked for, and otherwise fails with KD_ETAMPER and
 * a one-line detail naming where and what ("token 7: \"type\" is not a
 * string"). `where` is that prefix ("token 7", "segment 0", "config").
 *
 * Iterating a json object with json_object_object_foreach is only safe on a
 * value these getters returned as an object.
 *
 * Code that asks what shape a header has, rather than whether it may be used
 * (the rotation's phase and progress, read beside the allow-list), uses the
 * kd_lj_peek* look-ups instead: the same type checks, but a mismatch is an
 * answer (NULL, -1, false), not a refusal, and sets no error detail.
 */
#ifndef KEYD_LUKS2JSON_H
#define KEYD_LUKS2JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* LUKS2 object keys (keyslots, tokens, segments, digests) are 0..31 here. */
#define KD_LJ_MAX_ID 32u

/*
 * Member key of o with JSON type `type`. Missing or of another type:
 * KD_ETAMPER. With kd_lj_opt, a missing member is fine (*ret = NULL, 0), a
 * present one of the wrong type (null included) is not.
 */
int kd_lj_get(json_object *o, const char *where, const char *key, json_type type,
	      json_object **ret);
int kd_lj_opt(json_object *o, const char *where, const char *key, json_type type,
	      json_object **ret);

/* Object / array members (kd_lj_get with the type). */
int kd_lj_obj(json_object *o, const char *where, const char *key, json_object **ret);
int kd_lj_arr(json_object *o, const char *where, const char *key, json_object **ret);

/*
 * A non-empty string without an embedded NUL (libcryptsetup's
 * json_contains_string also refuses the empty string).
 */
int kd_lj_str(json_object *o, const char *where, const char *key, const char **ret);

/* A JSON integer in [min, max]. */
int kd_lj_int(json_object *o, const char *where, const char *key, int64_t min, int64_t max,
	      int64_t *ret);

/* A LUKS2 decimal string ("32768"): digits only, no leading zero, <= UINT64_MAX. */
int kd_lj_u64(json_object *o, const char *where, const char *key, uint64_t *ret);

/* A decimal object key or reference 0..31 ("7"). */
int kd_lj_id(const char *s, const char *where, const char *what);

/*
 * An array of strings (optional member key of o): every element must be a
 * string. *ret is the array or NULL when absent (flags of config/segments).
 */
int kd_lj_str_array(json_object *o, const char *where, const char *key, json_object **ret);

/*
 * An array of decimal id strings (member key of o) as a bitmask; duplicates
 * refused. keyslots/segments arrays of tokens and digests.
 */
int kd_lj_id_set(json_object *o, const char *where, const char *key, uint32_t *ret);

/* String value of an element of an array kd_lj_str_array returned. */
const char *kd_lj_elem_str(json_object *arr, size_t i);

/*
 * The first member of object o whose name is not one of keys[0..n-1], or NULL
 * when every member is one of them (or o is not an object). For the strict
 * formats, which refuse a member they do not define; the caller words the
 * refusal.
 */
const char *kd_lj_unknown_key(json_object *o, const char *const *keys, size_t n);

/*
 * Lenient look-ups (see the top): member key of o with JSON type `type`, or
 * NULL when o is not an object or the member is missing or of another type;
 * a string member where kd_lj_str would give one, else NULL; the id 0..31 a
 * string names where kd_lj_id would accept it, else -1; and an id array
 * where kd_lj_id_set would accept it (into *ret, true), else false.
 */
json_object *kd_lj_peek(json_object *o, const char *key, json_type type);
const char *kd_lj_peek_str(json_object *o, const char *key);
int kd_lj_peek_id(const char *s);
bool kd_lj_peek_id_set(json_object *o, const char *key, uint32_t *ret);

/* Whether o is an object with member key (of any type, null included). */
bool kd_lj_has(json_object *o, const char *key);

/* Members of an object, or 0 for anything else (never asserts). */
int kd_lj_len(json_object *o);

/* A "where" prefix for item id of a section ("token 7"), into buf. */
const char *kd_lj_where(char *buf, size_t len, const char *what, const char *id);

/*
 * Parse untrusted JSON text strictly (json-c's strict mode, nesting at most
 * depth, every one of len bytes consumed). KD_ENOMEM, or KD_EMALFORMED
 * (callers replace the detail with what did not parse). *ret on success.
 */
int kd_lj_parse(const char *json, size_t len, int depth, json_object **ret);

/* Add v (owned, may be NULL from a failed allocation) to o under key; false when out of memory. */
bool kd_lj_add(json_object *o, const char *key, json_object *v);

#endif
