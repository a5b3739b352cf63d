/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volume-key rotation (rotate.h): the allow-list's view of a header in
 * reencryption, the rotation itself through libcryptsetup's LUKS2
 * reencryption API, its status, and activation while it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>
#include <libdevmapper.h>
#include <linux/fs.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyd/error.h"
#include "keyd/failpoint.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "keyd/volume.h"

#define SEG_CIPHER KD_VOLUME_CIPHER "-" KD_VOLUME_CIPHER_MODE
#define SEG_SECTOR KD_VOLUME_SECTOR_SIZE
#define MAX_IDS ((int)KD_LJ_MAX_ID)

/* ---------------------------------------------------------------- json helpers */

/*
 * The rotation reads the header's shape with the lenient look-ups of the
 * typed layer (luks2json.h): a missing or mistyped member is an answer here;
 * kd_rotate_header_view() turns the answers into refusals.
 *
 * An object member for json_object_object_foreach, which dereferences a NULL
 * object: a missing or mistyped member of host-written JSON iterates as {}.
 */
static json_object *jobj(json_object *o, const char *key)
{
	static json_object *empty;
	json_object *v = kd_lj_peek(o, key, json_type_object);

	if (v)
		return v;
	if (!empty)
		empty = json_object_new_object();
	return empty;
}

static bool streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* A segment's flags array holds flag (absent flags array: no). */
static bool has_flag(json_object *seg, const char *flag)
{
	json_object *f = kd_lj_peek(seg, "flags", json_type_array);

	for (size_t i = 0; f && i < json_object_array_length(f); i++)
		if (streq(kd_lj_elem_str(f, i), flag))
			return true;
	return false;
}

static json_object *mask_array(uint32_t m)
{
	json_object *a = json_object_new_array();
	char id[4];

	for (int i = 0; i < MAX_IDS; i++)
		if (m & (1u << i)) {
			snprintf(id, sizeof(id), "%d", i);
			json_object_array_add(a, json_object_new_string(id));
		}
	return a;
}

static bool all_data_new(json_object *meta);

static int view_fail(const char *what)
{
	return kd_fail(KD_ETAMPER, "LUKS2 header in rotation: %s; refused", what);
}

/* ---------------------------------------------------------------- phase and view */

static bool has_requirements(json_object *meta)
{
	json_object *req = kd_lj_peek(kd_lj_peek(meta, "config", json_type_object), "requirements",
				json_type_object);
	json_object *mand = kd_lj_peek(req, "mandatory", json_type_array);

	return req && (json_object_object_length(req) != 1 || !mand ||
		       json_object_array_length(mand) != 0);
}

enum kd_rotate_phase kd_rotate_phase_of(json_object *meta)
{
	json_object *digests = jobj(meta, "digests");

	if (has_requirements(meta))
		return KD_ROTATE_RUNNING;
	if (digests && json_object_object_length(digests) == 2)
		return KD_ROTATE_PREPARED;
	return KD_ROTATE_NONE;
}

const char *kd_rotate_phase_name(enum kd_rotate_phase p)
{
	return p == KD_ROTATE_PREPARED ? "prepared" : p == KD_ROTATE_RUNNING ? "running" : "none";
}

/* Every segment keyd's cipher and sector size, flags only those reencryption sets. */
static int check_segment(json_object *seg)
{
	json_object *f = NULL;

	if (!json_object_is_type(seg, json_type_object) ||
	    !streq(kd_lj_peek_str(seg, "type"), "crypt"))
		return view_fail("a segment is not of type crypt");
	if (!streq(kd_lj_peek_str(seg, "encryption"), SEG_CIPHER))
		return view_fail("a segment cipher is not " SEG_CIPHER " (cipher_null header attack?)");
	if (!kd_lj_peek(seg, "sector_size", json_type_int) ||
	    json_object_get_int64(kd_lj_peek(seg, "sector_size", json_type_int)) != SEG_SECTOR)
		return view_fail("a segment sector size is not 4096");
	if (kd_lj_has(seg, "integrity"))
		return view_fail("a segment carries integrity, which reencryption does not support");
	if (json_object_object_get_ex(seg, "flags", &f)) {
		if (!json_object_is_type(f, json_type_array))
			return view_fail("segment flags are not a list");
		for (size_t i = 0; i < json_object_array_length(f); i++) {
			const char *s = kd_lj_elem_str(f, i);

			if (!streq(s, "backup-previous") && !streq(s, "backup-final") &&
			    !streq(s, "in-reencryption"))
				return view_fail("a segment carries a flag keyd never sets "
						 "(datashift or decryption?)");
		}
	}
	return 0;
}

/* The old and the final segment describe the same area and cipher. */
static bool same_layout(json_object *a, json_object *b)
{
	static const char *const keys[] = {"offset", "size", "iv_tweak", "encryption"};

	for (size_t i = 0; i < KD_ARRAY_SIZE(keys); i++)
		if (!streq(kd_lj_peek_str(a, keys[i]), kd_lj_peek_str(b, keys[i])))
			return false;
	return json_object_get_int64(kd_lj_peek(a, "sector_size", json_type_int)) ==
	       json_object_get_int64(kd_lj_peek(b, "sector_size", json_type_int));
}

static int check_reencrypt_keyslot(json_object *ks, json_object *config)
{
	json_object *area = kd_lj_peek(ks, "area", json_type_object);
	uint64_t json_size = 0, ks_size = 0, off = 0, len = 0, hdr;

	if (!streq(kd_lj_peek_str(ks, "mode"), "reencrypt") ||
	    !streq(kd_lj_peek_str(ks, "direction"), "forward"))
		return view_fail("the reencrypt keyslot is not a forward re-encryption");
	if (!area || (!streq(kd_lj_peek_str(area, "type"), "journal") &&
		      !streq(kd_lj_peek_str(area, "type"), "checksum")))
		return view_fail("resilience is neither journal nor checksum");
	if (kd_luks2_u64(config, "json_size", &json_size) ||
	    kd_luks2_u64(config, "keyslots_size", &ks_size) || kd_luks2_u64(area, "offset", &off) ||
	    kd_luks2_u64(area, "size", &len))
		return view_fail("the reencrypt keyslot area is not readable");
	hdr = json_size + KD_LUKS2_BIN_SIZE;
	if (json_size > KD_LUKS2_HDR_MAX || ks_size > (1ull << 30) || off < 2 * hdr || !len ||
	    len > ks_size || off - 2 * hdr > ks_size - len)
		return view_fail("the reencrypt keyslot area lies outside the keyslots area");
	return 0;
}

int kd_rotate_header_view(json_object *meta, json_object **ret_view)
{
	enum kd_rotate_phase phase = kd_rotate_phase_of(meta);
	json_object *keyslots, *segments, *digests, *config, *tokens, *req, *mand;
	json_object *view = NULL, *vks, *vsegs, *vdigs, *vcfg, *dig0 = NULL, *final = NULL,
		    *prev = NULL;
	int id_final = -1, id_prev = -1, reenc_slot = -1, r;
	uint32_t luks2_slots = 0, covered = 0;
	const char *mreq;
	bool done = false;

	if (phase == KD_ROTATE_NONE || !json_object_is_type(meta, json_type_object)) {
		*ret_view = NULL;
		return 0;
	}
	keyslots = kd_lj_peek(meta, "keyslots", json_type_object);
	segments = kd_lj_peek(meta, "segments", json_type_object);
	digests = kd_lj_peek(meta, "digests", json_type_object);
	config = kd_lj_peek(meta, "config", json_type_object);
	tokens = kd_lj_peek(meta, "tokens", json_type_object);
	if (!keyslots || !segments || !digests || !config || !tokens)
		return view_fail("a mandatory section is missing");

	/* Keyslots: luks2 ones go to the view; at most the one reencrypt slot. */
	json_object_object_foreach(keyslots, kid, ks) {
		int id = kd_lj_peek_id(kid);

		if (id < 0)
			return view_fail("bad keyslot id");
		if (streq(kd_lj_peek_str(ks, "type"), "reencrypt")) {
			if (phase != KD_ROTATE_RUNNING || reenc_slot >= 0)
				return view_fail("unexpected reencrypt keyslot");
			if ((r = check_reencrypt_keyslot(ks, config)))
				return r;
			reenc_slot = id;
		} else {
			luks2_slots |= 1u << id;
		}
	}
	if (phase == KD_ROTATE_RUNNING) {
		req = kd_lj_peek(config, "requirements", json_type_object);
		mand = kd_lj_peek(req, "mandatory", json_type_array);
		mreq = mand && json_object_array_length(mand) == 1
			       ? kd_lj_elem_str(mand, 0)
			       : NULL;
		if (!req || json_object_object_length(req) != 1 || !mreq ||
		    strncmp(mreq, "online-reencrypt", 16))
			return view_fail("requirements other than online reencryption");
		/* libcryptsetup finishes with several header writes (old keyslots
		 * one by one, then the metadata): once every data segment is under
		 * the new key, parts of the old state may already be gone. */
		done = all_data_new(meta);
		if (reenc_slot < 0 && !done)
			return view_fail("no reencrypt keyslot");
		json_object_object_foreach(segments, sid, seg) {
			if (kd_lj_peek_id(sid) < 0)
				return view_fail("bad segment id");
			if ((r = check_segment(seg)))
				return r;
			if (has_flag(seg, "backup-final")) {
				if (final)
					return view_fail("two final segments");
				final = seg;
				id_final = kd_lj_peek_id(sid);
			}
			if (has_flag(seg, "backup-previous")) {
				if (prev)
					return view_fail("two previous segments");
				prev = seg;
				id_prev = kd_lj_peek_id(sid);
			}
		}
		if (!final || (!prev && !done) || final == prev || (prev && !same_layout(final, prev)))
			return view_fail("the old and the final segment differ in more than the key");
		if (json_object_object_length(digests) > 3 ||
		    (json_object_object_length(digests) != 3 && !done))
			return view_fail("not exactly the old-key, new-key and reencrypt digests");
	} else {
		if (!(final = kd_lj_peek(segments, "0", json_type_object)) ||
		    json_object_object_length(segments) != 1)
			return view_fail("a prepared rotation has exactly segment 0");
		id_final = 0;
	}
	/* Digests: every luks2 keyslot under the old or the new key, the
	 * reencrypt keyslot under its own; the view keeps one digest. */
	json_object_object_foreach(digests, did, dig) {
		uint32_t dks = 0, segs = 0;

		if (kd_lj_peek_id(did) < 0 || !streq(kd_lj_peek_str(dig, "type"), "pbkdf2") ||
		    !kd_lj_peek_id_set(dig, "keyslots", &dks) ||
		    !kd_lj_peek_id_set(dig, "segments", &segs))
			return view_fail("a digest is malformed");
		if (reenc_slot >= 0 && dks == 1u << reenc_slot && !segs)
			continue;
		if (dks & ~luks2_slots)
			return view_fail("a digest names a keyslot that is not a luks2 keyslot");
		/* Only the old key's digest loses its keyslots, while finishing. */
		if (!dks && !(done && id_prev >= 0 && (segs & (1u << id_prev))))
			return view_fail("a digest has no keyslot");
		if (phase == KD_ROTATE_RUNNING
			    ? !(segs & (1u << id_final)) && !(segs & (1u << id_prev))
			    : segs && segs != 1u)
			return view_fail("a digest is bound to neither the old nor the final segment");
		if (phase == KD_ROTATE_RUNNING ? (segs & (1u << id_final)) != 0 : segs == 1u) {
			if (dig0)
				return view_fail("two digests for the final segment");
			dig0 = dig;
		}
		if (covered & dks)
			return view_fail("a keyslot is under two digests");
		covered |= dks;
	}
	if (!dig0 || covered != luks2_slots)
		return view_fail("the keyslots are not all under the old or the new key");

	/* The header as it will be after the rotation. */
	view = json_object_new_object();
	vks = json_object_new_object();
	vsegs = json_object_new_object();
	vdigs = json_object_new_object();
	vcfg = NULL;
	if (!view || !vks || !vsegs || !vdigs) {
		json_object_put(view);
		json_object_put(vks);
		json_object_put(vsegs);
		json_object_put(vdigs);
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	}
	json_object_object_foreach(keyslots, kid2, ks2) {
		json_object *c = NULL;

		if (!streq(kd_lj_peek_str(ks2, "type"), "reencrypt") &&
		    !json_object_deep_copy(ks2, &c, NULL))
			json_object_object_add(vks, kid2, c);
	}
	{
		json_object *seg0 = NULL, *d = NULL, *segs0 = json_object_new_array();

		json_object_deep_copy(final, &seg0, NULL);
		if (seg0)
			json_object_object_del(seg0, "flags");
		json_object_object_add(vsegs, "0", seg0);
		json_object_deep_copy(dig0, &d, NULL);
		if (d) {
			json_object_object_add(d, "keyslots", mask_array(luks2_slots));
			json_object_array_add(segs0, json_object_new_string("0"));
			json_object_object_add(d, "segments", segs0);
		} else {
			json_object_put(segs0);
		}
		json_object_object_add(vdigs, "0", d);
	}
	json_object_deep_copy(config, &vcfg, NULL);
	if (vcfg)
		json_object_object_del(vcfg, "requirements");
	json_object_object_add(view, "keyslots", vks);
	json_object_object_add(view, "tokens", json_object_get(tokens));
	json_object_object_add(view, "segments", vsegs);
	json_object_object_add(view, "digests", vdigs);
	json_object_object_add(view, "config", vcfg);
	*ret_view = view;
	return 0;
}

/* ---------------------------------------------------------------- status */

/* Data bytes behind the segments: device size minus the data offset. */
static uint64_t data_size(const char *path, json_object *final)
{
	struct stat st;
	uint64_t off = 0, dev = 0, sz;
	int fd;

	if (!final || kd_luks2_u64(final, "offset", &off))
		return 0;
	if (!streq(kd_lj_peek_str(final, "size"), "dynamic") && !kd_luks2_u64(final, "size", &sz))
		return sz;
	if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (!fstat(fd, &st)) {
		if (S_ISREG(st.st_mode))
			dev = (uint64_t)st.st_size;
		else if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &dev))
			dev = 0;
	}
	close(fd);
	return dev > off ? dev - off : 0;
}

/* Escrow plan tokens of meta (their ids into ids, up to max); the last one's k and n. */
static size_t plan_tokens(json_object *meta, int *ids, size_t max, unsigned *ret_k,
			  size_t *ret_n)
{
	size_t n = 0;

	json_object_object_foreach(jobj(meta, "tokens"), tid, tok) {
		json_object *c = kd_lj_peek(tok, "certs", json_type_array),
			    *k = kd_lj_peek(tok, "threshold", json_type_int);

		if (!streq(kd_lj_peek_str(tok, "type"), KD_ROTATE_PLAN_TOKEN_TYPE) ||
		    kd_lj_peek_id(tid) < 0)
			continue;
		if (n < max)
			ids[n] = kd_lj_peek_id(tid);
		n++;
		if (ret_k)
			*ret_k = k ? (unsigned)json_object_get_int(k) : 0;
		if (ret_n)
			*ret_n = c ? json_object_array_length(c) : 0;
	}
	return n;
}

int kd_rotate_status_of(json_object *meta, const char *path, struct kd_rotate_status *ret)
{
	struct kd_rotate_status s;
	json_object *segs = jobj(meta, "segments"), *final = NULL;
	json_object *digests = jobj(meta, "digests");
	uint32_t new_segs = 0;
	int id_final = -1;

	memset(&s, 0, sizeof(s));
	s.phase = kd_rotate_phase_of(meta);
	{
		int ids[4];

		s.escrow_pending = plan_tokens(meta, ids, KD_ARRAY_SIZE(ids), &s.plan_k,
					       &s.plan_n) != 0;
	}
	if (s.escrow_pending)
		snprintf(s.plan_advice, sizeof(s.plan_advice),
			 "escrow re-split pending: a %u-of-%zu escrow for the new volume key %s; "
			 "`keyd rotate %.60s` (or keyd-recover finish-rotation) from the launch that "
			 "began the rotation does it, or give new admin certificates (keyd rotate "
			 "--escrow CERT ... --threshold K)",
			 s.plan_k, s.plan_n,
			 s.phase == KD_ROTATE_NONE
				 ? "was not written (the rotation was interrupted after the data)"
				 : "follows when the rotation finishes",
			 path ? path : "DEVICE");
	if (s.phase == KD_ROTATE_NONE) {
		*ret = s;
		return 0;
	}
	json_object_object_foreach(jobj(meta, "keyslots"), kid, ks) {
		(void)kid;
		if (streq(kd_lj_peek_str(ks, "type"), "reencrypt"))
			snprintf(s.resilience, sizeof(s.resilience), "%s",
				 kd_lj_peek_str(kd_lj_peek(ks, "area", json_type_object), "type")
					 ?: "?");
	}
	json_object_object_foreach(segs, sid, seg) {
		if (has_flag(seg, "backup-final") || (s.phase == KD_ROTATE_PREPARED && !strcmp(sid, "0"))) {
			final = seg;
			id_final = kd_lj_peek_id(sid);
		}
		s.interrupted |= has_flag(seg, "in-reencryption");
	}
	s.size = data_size(path, final);
	if (s.phase == KD_ROTATE_RUNNING) {
		/* Forward direction: the data segments under the new key's digest
		 * are the re-encrypted prefix. */
		json_object_object_foreach(digests, did, dig) {
			uint32_t m = 0;

			(void)did;
			if (kd_lj_peek_id_set(dig, "segments", &m) && id_final >= 0 &&
			    (m & (1u << id_final)))
				new_segs = m & ~(1u << id_final);
		}
		json_object_object_foreach(segs, sid2, seg2) {
			uint64_t sz = 0;
			int id = kd_lj_peek_id(sid2);

			if (id < 0 || !(new_segs & (1u << id)) || has_flag(seg2, "in-reencryption"))
				continue;
			if (streq(kd_lj_peek_str(seg2, "size"), "dynamic"))
				s.done = s.size;
			else if (!kd_luks2_u64(seg2, "size", &sz))
				s.done += sz;
		}
		if (s.size && s.done > s.size)
			s.done = s.size;
		snprintf(s.advice, sizeof(s.advice),
			 "%s; it still unlocks, and the boot scripts finish it after the next "
			 "unlock. Run `keyd rotate %.60s` (or keyd-recover finish-rotation) to "
			 "finish it now",
			 s.interrupted ? "interrupted in the middle of a hotzone (recovered on the next "
					 "open or resume)"
				       : "re-encryption under a new volume key in progress",
			 path ? path : "DEVICE");
	} else {
		snprintf(s.advice, sizeof(s.advice),
			 "a new volume key was added but no data moved yet; it unlocks with the old "
			 "key. Run `keyd rotate %.60s` to go on", path ? path : "DEVICE");
	}
	*ret = s;
	return 0;
}

int kd_rotate_status(struct kd_volume *v, struct kd_rotate_status *ret)
{
	struct kd_header_health h;
	json_object *meta = NULL;
	int r;

	if ((r = kd_header_read_file(kd_volume_path(v), &h, &meta)))
		return r;
	r = kd_rotate_status_of(meta, kd_volume_path(v), ret);
	json_object_put(meta);
	return r;
}

json_object *kd_rotate_status_json(const struct kd_rotate_status *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "phase", json_object_new_string(kd_rotate_phase_name(s->phase)));
	if (s->phase != KD_ROTATE_NONE) {
		json_object_object_add(o, "resilience", json_object_new_string(s->resilience));
		json_object_object_add(o, "interrupted", json_object_new_boolean(s->interrupted));
		json_object_object_add(o, "bytes_done", json_object_new_int64((int64_t)s->done));
		json_object_object_add(o, "bytes_total", json_object_new_int64((int64_t)s->size));
		json_object_object_add(o, "advice", json_object_new_string(s->advice));
	}
	if (s->escrow_pending) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "threshold", json_object_new_int((int)s->plan_k));
		json_object_object_add(p, "admins", json_object_new_int64((int64_t)s->plan_n));
		json_object_object_add(p, "advice", json_object_new_string(s->plan_advice));
		json_object_object_add(o, "escrow_resplit_pending", p);
	}
	return o;
}

/* ---------------------------------------------------------------- libcryptsetup */

/*
 * crypt_load, after keyd's own read of the header passed the allow-list,
 * and proof that libcryptsetup holds that very metadata (the host could
 * swap the header in between).
 */
/*
 * A writable handle on path through the one checked-header path
 * (kd_volume_checked_cd, KD_CD_WRITE): allow-listed (a header in rotation as
 * the header it leads to), both copies agreeing, and what libcryptsetup
 * loaded equal to what passed.
 */
static int checked_cd(const char *path, struct crypt_device **ret_cd, json_object **ret_meta)
{
	struct kd_volume *v = NULL;
	struct kd_checked_cd c;
	int r;

	if ((r = kd_volume_open(path, &v)))
		return r;
	r = kd_volume_checked_cd(v, KD_CD_WRITE, &c);
	kd_volume_close(v);
	if (r)
		return r;
	/* KD_CD_WRITE works on the device itself: no private copy to keep. */
	*ret_cd = c.cd;
	*ret_meta = c.meta;
	return 0;
}

/* Keyslots of the digest with no segment (prepared) or bound to the final segment. */
static uint32_t new_key_slots(json_object *meta)
{
	enum kd_rotate_phase ph = kd_rotate_phase_of(meta);
	json_object *segs = jobj(meta, "segments");
	int id_final = -1;
	uint32_t out = 0;

	json_object_object_foreach(segs, sid, seg) {
		if (has_flag(seg, "backup-final"))
			id_final = kd_lj_peek_id(sid);
	}
	json_object_object_foreach(jobj(meta, "digests"), did, dig) {
		uint32_t ks = 0, sg = 0;

		(void)did;
		if (!kd_lj_peek_id_set(dig, "keyslots", &ks) ||
		    !kd_lj_peek_id_set(dig, "segments", &sg))
			continue;
		if (ph == KD_ROTATE_PREPARED ? !sg
					     : id_final >= 0 && (sg & (1u << id_final)))
			out |= ks;
	}
	return out;
}

static bool same_launch(const struct kd_token *a, const struct kd_token *b)
{
	return !memcmp(a->measurement, b->measurement, sizeof(a->measurement)) &&
	       a->policy == b->policy && a->has_chip == b->has_chip &&
	       !memcmp(a->chip, b->chip, sizeof(a->chip)) && a->tcb == b->tcb &&
	       a->root_key_select == b->root_key_select && a->fields == b->fields &&
	       a->vmpl == b->vmpl && a->guest_svn == b->guest_svn;
}

/* Tokens (any type) of meta, with their keyslot masks. */
struct tok_ref {
	int id;
	uint32_t slots;
	bool keyd, escrow, plan;
};

static size_t list_tokens(json_object *meta, struct tok_ref *out, size_t max)
{
	size_t n = 0;

	json_object_object_foreach(jobj(meta, "tokens"), tid, tok) {
		uint32_t m = 0;
		const char *type = kd_lj_peek_str(tok, "type");

		if (n >= max || kd_lj_peek_id(tid) < 0)
			continue;
		kd_lj_peek_id_set(tok, "keyslots", &m);
		out[n].id = kd_lj_peek_id(tid);
		out[n].slots = m;
		out[n].keyd = streq(type, KD_TOKEN_TYPE);
		out[n].escrow = streq(type, KD_ESCROW_TOKEN_TYPE);
		out[n].plan = streq(type, KD_ROTATE_PLAN_TOKEN_TYPE);
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- online */

/*
 * The active mapping of the volume with this LUKS2 UUID, if any (dm UUID
 * "CRYPT-LUKS2-<uuid without dashes>-<name>"). Without device-mapper nothing
 * can be active, and the rotation is offline.
 */
static int find_active(const char *uuid, char *name, size_t name_len)
{
	struct dm_task *dmt;
	struct dm_names *names;
	char want[80];
	size_t k = 0;
	unsigned next = 0;
	int found = 0;

	name[0] = 0;
	if (access("/sys/module/dm_mod", F_OK) || access("/dev/mapper/control", R_OK | W_OK))
		return 0;
	k = (size_t)snprintf(want, sizeof(want), "CRYPT-LUKS2-");
	for (const char *p = uuid; *p && k + 1 < sizeof(want); p++)
		if (*p != '-')
			want[k++] = *p;
	want[k] = 0;
	if (!(dmt = dm_task_create(DM_DEVICE_LIST)))
		return 0;
	if (!dm_task_run(dmt) || !(names = dm_task_get_names(dmt)) || !names->dev) {
		dm_task_destroy(dmt);
		return 0;
	}
	do {
		struct dm_task *info;
		const char *du;

		names = (struct dm_names *)((char *)names + next);
		if ((info = dm_task_create(DM_DEVICE_INFO))) {
			if (dm_task_set_name(info, names->name) && dm_task_run(info) &&
			    (du = dm_task_get_uuid(info)) && !strncasecmp(du, want, k) &&
			    du[k] == '-' && !found) {
				snprintf(name, name_len, "%s", names->name);
				found = 1;
			}
			dm_task_destroy(info);
		}
		next = names->next;
	} while (next);
	dm_task_destroy(dmt);
	return found;
}

/* ---------------------------------------------------------------- finalize */

/*
 * After the last hotzone libcryptsetup commits the segment map (all data
 * under the new key) and only then, in a second header write, drops the
 * reencryption metadata. Killed in between, libcryptsetup 2.6 resumes such a
 * header from offset 0 and re-encrypts data that is already under the new
 * key with it again, destroying it (cryptsetup reencrypt --resume-only does
 * the same). keyd therefore recognises this state and finishes it itself.
 */
static bool all_data_new(json_object *meta)
{
	json_object *segs = jobj(meta, "segments");
	uint32_t new_segs = 0, data_segs = 0;
	int id_final = -1;

	if (kd_rotate_phase_of(meta) != KD_ROTATE_RUNNING)
		return false;
	json_object_object_foreach(segs, sid, seg) {
		int id = kd_lj_peek_id(sid);

		if (id < 0 || has_flag(seg, "in-reencryption"))
			return false;
		if (has_flag(seg, "backup-final"))
			id_final = id;
		else if (!has_flag(seg, "backup-previous"))
			data_segs |= 1u << id;
	}
	json_object_object_foreach(jobj(meta, "digests"), did, dig) {
		uint32_t m = 0;

		(void)did;
		if (kd_lj_peek_id_set(dig, "segments", &m) && id_final >= 0 &&
		    (m & (1u << id_final)))
			new_segs = m;
	}
	return data_segs && !(data_segs & ~new_segs);
}

/* The final metadata: new-key keyslots, digest and tokens, segment 0 = final. */
static json_object *final_meta(json_object *meta, uint32_t fresh)
{
	json_object *out = json_object_new_object(), *ks = json_object_new_object(),
		    *segs = json_object_new_object(), *digs = json_object_new_object(),
		    *toks = json_object_new_object(), *cfg = NULL;

	json_object_object_foreach(jobj(meta, "keyslots"), kid, k) {
		json_object *c = NULL;

		if (kd_lj_peek_id(kid) >= 0 && (fresh & (1u << kd_lj_peek_id(kid))) &&
		    !json_object_deep_copy(k, &c, NULL))
			json_object_object_add(ks, kid, c);
	}
	json_object_object_foreach(jobj(meta, "segments"), sid, seg) {
		json_object *c = NULL;

		(void)sid;
		if (has_flag(seg, "backup-final") && !json_object_deep_copy(seg, &c, NULL)) {
			json_object_object_del(c, "flags");
			json_object_object_add(segs, "0", c);
		}
	}
	json_object_object_foreach(jobj(meta, "digests"), did, dig) {
		uint32_t m = 0;
		json_object *c = NULL, *a;

		if (kd_lj_peek_id_set(dig, "keyslots", &m) && m && !(m & ~fresh) &&
		    !json_object_deep_copy(dig, &c, NULL)) {
			a = json_object_new_array();
			json_object_array_add(a, json_object_new_string("0"));
			json_object_object_add(c, "segments", a);
			json_object_object_add(digs, did, c);
		}
	}
	json_object_object_foreach(jobj(meta, "tokens"), tid, tok) {
		uint32_t m = 0;
		json_object *c = NULL;

		if (kd_lj_peek_id_set(tok, "keyslots", &m) &&
		    ((m && !(m & ~fresh)) ||
		     (!m && streq(kd_lj_peek_str(tok, "type"), KD_ROTATE_PLAN_TOKEN_TYPE))) &&
		    !json_object_deep_copy(tok, &c, NULL))
			json_object_object_add(toks, tid, c);
	}
	json_object_deep_copy(kd_lj_peek(meta, "config", json_type_object), &cfg, NULL);
	if (cfg)
		json_object_object_del(cfg, "requirements");
	json_object_object_add(out, "keyslots", ks);
	json_object_object_add(out, "tokens", toks);
	json_object_object_add(out, "segments", segs);
	json_object_object_add(out, "digests", digs);
	json_object_object_add(out, "config", cfg);
	return out;
}

/* Rewrite one binary header copy at off with json and seqid; SHA-256 checksum. */
static int write_copy(int fd, uint64_t off, uint64_t hdr_size, uint64_t seqid, const char *json)
{
	static const uint8_t zero64[64];
	uint8_t *buf = malloc(hdr_size), digest[32];
	unsigned dlen = 0;
	EVP_MD_CTX *md;
	int ok;

	if (!buf)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	if (pread(fd, buf, hdr_size, (off_t)off) != (ssize_t)hdr_size ||
	    strlen(json) >= hdr_size - KD_LUKS2_BIN_SIZE) {
		free(buf);
		return kd_fail(KD_EIO, "cannot read the LUKS2 header copy at %llu",
			       (unsigned long long)off);
	}
	for (int i = 0; i < 8; i++)
		buf[16 + i] = (uint8_t)(seqid >> (56 - 8 * i));
	memset(buf + KD_LUKS2_BIN_SIZE, 0, hdr_size - KD_LUKS2_BIN_SIZE);
	memcpy(buf + KD_LUKS2_BIN_SIZE, json, strlen(json));
	memset(buf + 448, 0, 64);
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, buf, 448) &&
	     EVP_DigestUpdate(md, zero64, 64) && EVP_DigestUpdate(md, buf + 512, hdr_size - 512) &&
	     EVP_DigestFinal_ex(md, digest, &dlen) && dlen == 32;
	EVP_MD_CTX_free(md);
	if (ok)
		memcpy(buf + 448, digest, 32);
	ok = ok && pwrite(fd, buf, hdr_size, (off_t)off) == (ssize_t)hdr_size && !fdatasync(fd);
	free(buf);
	return ok ? 0 : kd_fail(KD_EIO, "cannot write the LUKS2 header copy at %llu: %s",
				(unsigned long long)off, strerror(errno));
}

static int finalize_by_hand(const char *path)
{
	struct kd_header_health h;
	json_object *meta = NULL, *fin = NULL;
	uint64_t hdr_size, seqid;
	uint32_t fresh;
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return kd_fail(KD_EIO, "cannot open %.200s: %s", path, strerror(errno));
	/* libcryptsetup's own lock on image files; block devices are only
	 * ever rotated by this one process (keyd rotate). */
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && flock(fd, LOCK_EX)) {
		close(fd);
		return kd_fail(KD_EIO, "cannot lock %.200s", path);
	}
	if ((r = kd_header_read(fd, &h, &meta)))
		goto out;
	if (h.allow_err) {
		r = kd_fail(h.allow_err, "header refused: %s", h.allow_detail);
		goto out;
	}
	if (!all_data_new(meta)) {
		r = 0; /* someone else finished it */
		goto out;
	}
	fresh = new_key_slots(meta);
	fin = final_meta(meta, fresh);
	/* The result must pass the allow-list like any header keyd writes. */
	hdr_size = h.used ? h.secondary.hdr_size : h.primary.hdr_size;
	if ((r = kd_header_allow(fin, hdr_size)))
		goto out;
	seqid = (h.primary.seqid > h.secondary.seqid ? h.primary.seqid : h.secondary.seqid) + 1;
	{
		const char *json = json_object_to_json_string_ext(fin, JSON_C_TO_STRING_PLAIN);

		if ((r = write_copy(fd, 0, hdr_size, seqid, json)) ||
		    (r = write_copy(fd, hdr_size, hdr_size, seqid, json)))
			goto out;
	}
	/* The old keyslots (the old key, under this launch's passphrase) and the
	 * journal are no longer referenced: wipe them as libcryptsetup would. */
	json_object_object_foreach(jobj(meta, "keyslots"), kid, ks) {
		json_object *area = kd_lj_peek(ks, "area", json_type_object);
		uint64_t off = 0, len = 0;
		static const uint8_t z[4096];

		if (kd_lj_peek_id(kid) < 0 || (fresh & (1u << kd_lj_peek_id(kid))) ||
		    kd_luks2_u64(area, "offset", &off) || kd_luks2_u64(area, "size", &len))
			continue;
		for (uint64_t o = 0; o < len; o += sizeof(z)) {
			size_t n = len - o < sizeof(z) ? (size_t)(len - o) : sizeof(z);

			if (pwrite(fd, z, n, (off_t)(off + o)) != (ssize_t)n) {
				r = kd_fail(KD_EIO, "cannot wipe old keyslot %s", kid);
				goto out;
			}
		}
	}
	r = fdatasync(fd) ? kd_fail(KD_EIO, "fdatasync: %s", strerror(errno)) : 0;
out:
	json_object_put(fin);
	json_object_put(meta);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- run */

struct run_ctx {
	const struct kd_rotate_opts *o;
	struct timespec t0;
	struct kd_rotate_progress p;
	bool started;
	uint64_t fp_bytes;
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static int on_progress(uint64_t size, uint64_t offset, void *usr)
{
	struct run_ctx *c = usr;
	double want;

	if (!c->started) {
		/* libcryptsetup reports once before the first hotzone. */
		c->started = true;
		c->p.start = offset;
	}
	c->p.size = size;
	c->p.done = offset;
	c->p.elapsed = since(&c->t0);
	c->p.rate = c->p.elapsed > 0 ? (double)(offset - c->p.start) / c->p.elapsed : 0;
	if (offset < size && offset >= c->fp_bytes && offset > c->p.start)
		kd_failpoint("rotate.mid-run");
	if (offset == size)
		kd_failpoint("rotate.before-finalize");
	/* --max-rate: sleep until this many bytes are due. */
	if (c->o->max_rate && offset > c->p.start) {
		want = (double)(offset - c->p.start) / (double)c->o->max_rate;
		if (want > c->p.elapsed) {
			double d = want - c->p.elapsed;
			struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
			c->p.elapsed = since(&c->t0);
			c->p.rate = (double)(offset - c->p.start) / c->p.elapsed;
		}
	}
	return c->o->progress ? c->o->progress(&c->p, c->o->usr) : 0;
}

/*
 * Every token of the old key goes before the re-encryption starts:
 * libcryptsetup refuses token writes while it runs, and kills the old
 * keyslots when it finishes, which would leave tokens naming no keyslot.
 * Idempotent, so a resume redoes it.
 */
static int drop_old_tokens(struct crypt_device *cd, json_object *meta, size_t *ret_dropped)
{
	struct tok_ref refs[MAX_IDS];
	uint32_t fresh = new_key_slots(meta);
	size_t n = list_tokens(meta, refs, MAX_IDS), dropped = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		/* The escrow plan names no keyslot and outlives the rotation. */
		if (refs[i].plan || (refs[i].slots && !(refs[i].slots & ~fresh)))
			continue;
		if ((r = crypt_token_json_set(cd, refs[i].id, NULL)) < 0)
			return kd_fail(KD_ELUKS, "cannot remove token %d of the old key: %s", refs[i].id,
				       strerror(-r));
		dropped++;
	}
	kd_failpoint("rotate.after-old-tokens");
	*ret_dropped = dropped;
	return 0;
}

/* Remove every escrow plan token of meta but keep (-1: none). */
static int remove_plans(struct crypt_device *cd, json_object *meta, int keep)
{
	int ids[MAX_IDS], r;
	size_t n = plan_tokens(meta, ids, KD_ARRAY_SIZE(ids), NULL, NULL);

	for (size_t i = 0; i < n && i < KD_ARRAY_SIZE(ids); i++)
		if (ids[i] != keep && (r = crypt_token_json_set(cd, ids[i], NULL)) < 0)
			return kd_fail(KD_ELUKS, "cannot remove the escrow plan token %d: %s", ids[i],
				       strerror(-r));
	return 0;
}

/*
 * The one plan token of meta, verified under pin_key for this launch's
 * new-key keyslot and pin (o->plan_open); its certificates into certs.
 */
static int open_plan(json_object *meta, const struct kd_rotate_opts *o,
		     const struct kd_secret *pin_key, const char *uuid, int slot, const uint8_t *pin,
		     unsigned *ret_k, X509 **certs, size_t *ret_n)
{
	int ids[MAX_IDS];
	size_t n_plans = plan_tokens(meta, ids, KD_ARRAY_SIZE(ids), NULL, NULL);
	json_object *pt = NULL;
	char id[12];

	if (n_plans != 1)
		return kd_fail(KD_ETAMPER, "%zu escrow plan tokens, keyd writes one", n_plans);
	snprintf(id, sizeof(id), "%d", ids[0]);
	pt = kd_lj_peek(kd_lj_peek(meta, "tokens", json_type_object), id, json_type_object);
	if (!pt)
		return kd_fail(KD_ETAMPER, "escrow plan token %s is not an object", id);
	return o->plan_open(json_object_to_json_string_ext(pt, JSON_C_TO_STRING_PLAIN), pin_key,
			    uuid, slot, pin, ret_k, certs, ret_n, o->escrow_usr);
}

/*
 * Step 3b, before any old token goes: the escrow plan, so that whatever
 * finishes the rotation re-splits the escrow (rotate.h). Without
 * certificates an escrow must either be dropped or already have a plan
 * (an earlier run of this rotation wrote it).
 */
static int write_plan(struct crypt_device *cd, json_object *meta, const struct kd_rotate_opts *o,
		      unsigned k, const struct kd_secret *pin_key, int slot, const uint8_t *pin)
{
	struct tok_ref refs[MAX_IDS];
	size_t n = list_tokens(meta, refs, MAX_IDS);
	bool escrow = false, plan = false;
	char *json = NULL;
	int r, id;

	for (size_t i = 0; i < n; i++) {
		escrow |= refs[i].escrow;
		plan |= refs[i].plan;
	}
	if (o->drop_escrow)
		return remove_plans(cd, meta, -1);
	if (!o->n_escrow_certs) {
		X509 *pcerts[KD_ROTATE_PLAN_MAX] = {0};
		size_t n_certs = 0;
		unsigned pk = 0;

		if (escrow && !plan)
			return kd_fail(KD_EREFUSED, "the volume has an escrow whose shares would stop "
						    "working and no escrow plan says who gets new "
						    "ones; give the admins' certificates (--escrow "
						    "CERT ...) or --drop-escrow");
		if (!escrow)
			return 0;
		/* The old escrow goes next: only for a plan this launch made. */
		r = open_plan(meta, o, pin_key, crypt_get_uuid(cd), slot, pin, &pk, pcerts, &n_certs);
		for (size_t i = 0; i < KD_ARRAY_SIZE(pcerts); i++)
			X509_free(pcerts[i]);
		if (r)
			return kd_fail(KD_EREFUSED, "the volume has an escrow and the rotation's escrow "
						    "plan does not verify (%s); give the admins' "
						    "certificates (--escrow CERT ... --threshold K) or "
						    "--drop-escrow",
				       kd_err_detail(r));
		return 0;
	}
	if ((r = o->plan_make(pin_key, crypt_get_uuid(cd), slot, pin, k, o->escrow_certs,
			      o->n_escrow_certs, &json, o->escrow_usr)))
		goto out;
	/* An earlier plan is overwritten in place, in one header write: a kill
	 * never leaves an escrowless header with no plan. Extra plans (only
	 * the host makes them) go after. */
	if (!plan_tokens(meta, &id, 1, NULL, NULL))
		id = CRYPT_ANY_TOKEN;
	if ((id = crypt_token_json_set(cd, id, json)) < 0) {
		r = kd_fail(KD_ELUKS, "cannot write the rotation's escrow plan: %s (is the LUKS2 "
				      "metadata area too small for the certificates?)",
			    strerror(-id));
		goto out;
	}
	kd_failpoint("rotate.after-plan");
	r = remove_plans(cd, meta, id);
out:
	free(json);
	return r;
}

/*
 * Step 7: the escrow for the new key, to the certificates given or to the
 * plan's; then the plan goes. v is freshly opened on the finished header.
 */
static int finish_escrow(const char *path, struct kd_volume *v, struct kd_backend *b,
			 const struct kd_launch *l, const struct kd_rotate_opts *o, unsigned esc_k,
			 const struct kd_secret *pin_key, struct kd_rotate_result *res)
{
	_kd_secret_ struct kd_secret *vk = NULL;
	struct crypt_device *cd = NULL;
	struct kd_header_health h;
	json_object *meta = NULL;
	X509 *pcerts[KD_ROTATE_PLAN_MAX] = {0};
	X509 *const *certs = o->escrow_certs;
	size_t n_certs = o->n_escrow_certs, n_plans;
	struct kd_token tok;
	int ids[MAX_IDS], r;
	unsigned k = esc_k;

	kd_failpoint("rotate.before-escrow");
	if ((r = kd_header_read_file(path, &h, &meta)))
		return r;
	n_plans = plan_tokens(meta, ids, KD_ARRAY_SIZE(ids), NULL, NULL);
	if (o->drop_escrow || (!n_certs && !n_plans)) {
		r = 0;
		goto drop;
	}
	if ((r = kd_volume_get_key(v, b, l, &vk, &tok)))
		goto out;
	if (!n_certs) {
		if ((r = open_plan(meta, o, pin_key, kd_volume_uuid(v), tok.keyslot, tok.pin, &k,
				   pcerts, &n_certs))) {
			char why[200];

			snprintf(why, sizeof(why), "%s", kd_err_detail(r));
			r = kd_fail(r, "escrow re-split pending: %s; the volume is under the new key "
				       "and opens, but has no escrow: re-split it from a launch that "
				       "can unlock (keyd rotate DEVICE --escrow CERT ... --threshold "
				       "K, or keyd-recover escrow add)",
				    why);
			goto out;
		}
		certs = pcerts;
		res->escrow_from_plan = true;
	}
	if ((r = o->escrow_add(v, vk, k, certs, n_certs, o->escrow_usr)))
		goto out;
	res->escrow_resplit = true;
	kd_failpoint("rotate.after-escrow");
drop:
	if (!n_plans)
		goto out;
	json_object_put(meta);
	meta = NULL;
	if ((r = checked_cd(path, &cd, &meta)) || (r = remove_plans(cd, meta, -1)))
		goto out;
	kd_failpoint("rotate.after-plan-done");
out:
	for (size_t i = 0; i < KD_ARRAY_SIZE(pcerts); i++)
		X509_free(pcerts[i]);
	json_object_put(meta);
	crypt_free(cd);
	return r;
}

/*
 * Steps 2-4 from a plain header: new key, its unbound keyslot and pending
 * token, reencryption metadata.
 */
static int prepare(const char *path, const char *name, const struct kd_secret *pass,
		   const struct kd_secret *pin_key, const struct kd_token *tok,
		   const struct crypt_params_reencrypt *params, const struct kd_rotate_opts *o,
		   unsigned esc_k, bool have_slot, int new_slot, const uint8_t *new_pin,
		   size_t *ret_dropped, struct crypt_device **ret_cd)
{
	_kd_secret_ struct kd_secret *nvk = NULL;
	struct crypt_device *cd = NULL;
	json_object *meta = NULL, *m2 = NULL;
	struct kd_token t = *tok;
	char *json = NULL;
	time_t now = time(NULL);
	struct tm tm;
	int slot = new_slot, r;

	if ((r = checked_cd(path, &cd, &meta)))
		return r;
	if (!have_slot) {
		if ((r = kd_secret_new(KD_VOLUME_KEY_SIZE, &nvk)))
			goto out;
		if (RAND_priv_bytes(nvk->data, (int)nvk->len) != 1) {
			r = kd_fail(KD_ECRYPTO, "no randomness for the new volume key");
			goto out;
		}
		if ((r = kd_volume_set_pbkdf(cd)))
			goto out;
		slot = crypt_keyslot_add_by_key(cd, CRYPT_ANY_SLOT, (const char *)nvk->data, nvk->len,
						(const char *)pass->data, pass->len,
						CRYPT_VOLUME_KEY_NO_SEGMENT);
		if (slot < 0) {
			r = kd_fail(KD_ELUKS, "cannot add a keyslot for the new volume key: %s",
				    strerror(-slot));
			goto out;
		}
		kd_failpoint("rotate.after-keyslot");
		{
			const char *j = NULL;

			if (crypt_dump_json(cd, &j, 0) < 0 || !j || !(m2 = json_tokener_parse(j))) {
				r = kd_fail(KD_ELUKS, "libcryptsetup cannot dump the LUKS2 metadata");
				goto out;
			}
		}
		t.keyslot = slot;
		t.token_id = -1;
		t.state = KD_TOKEN_ACTIVE;
		gmtime_r(&now, &tm);
		strftime(t.created, sizeof(t.created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if ((r = kd_volume_pin(pin_key, nvk, m2, crypt_get_uuid(cd), slot, t.pin)) ||
		    (r = kd_token_format(&t, &json)))
			goto undo;
		if ((r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json)) < 0) {
			r = kd_fail(KD_ELUKS, "cannot write the keyd token of the new key: %s",
				    strerror(-r));
			goto undo;
		}
		kd_failpoint("rotate.after-token");
	}
	json_object_put(m2);
	m2 = NULL;
	{
		const char *j = NULL;

		if (crypt_dump_json(cd, &j, 0) < 0 || !j || !(m2 = json_tokener_parse(j))) {
			r = kd_fail(KD_ELUKS, "libcryptsetup cannot dump the LUKS2 metadata");
			goto out;
		}
	}
	if ((r = write_plan(cd, m2, o, esc_k, pin_key, slot, have_slot ? new_pin : t.pin)))
		goto out;
	if ((r = drop_old_tokens(cd, m2, ret_dropped)))
		goto out;
	kd_failpoint("rotate.before-init");
	{
		struct crypt_params_reencrypt p = *params;

		/* Any keyslot of the old key that opens with this launch's
		 * passphrase: after a resume A's token may already be gone. The
		 * handle goes on to crypt_reencrypt_run: libcryptsetup 2.6 sizes
		 * checksum hotzones far smaller on a separate resume (about 4x
		 * slower), as `cryptsetup reencrypt --init-only` then
		 * `--resume-only` shows. */
		r = crypt_reencrypt_init_by_passphrase(cd, name, (const char *)pass->data, pass->len,
						       CRYPT_ANY_SLOT, slot, KD_VOLUME_CIPHER,
						       KD_VOLUME_CIPHER_MODE, &p);
	}
	if (r < 0) {
		r = kd_fail(KD_ELUKS, "cannot start the re-encryption: %s", strerror(-r));
		goto out;
	}
	kd_failpoint("rotate.after-init");
	*ret_cd = cd;
	cd = NULL;
	r = 0;
	goto out;
undo:
	/* A keyslot whose key nobody will use helps no one. */
	crypt_keyslot_destroy(cd, slot);
out:
	free(json);
	json_object_put(m2);
	json_object_put(meta);
	crypt_free(cd);
	return r;
}

/* Prepared header: the new slot's token for this launch, and its pin. */
static int check_prepared(const char *path, struct kd_volume *v, const struct kd_secret *pass,
			  const struct kd_secret *pin_key, const struct kd_token *launch_tok,
			  int *ret_slot, uint8_t ret_pin[KD_PIN_SIZE])
{
	struct crypt_device *cd = NULL;
	json_object *meta = NULL;
	_kd_secret_ struct kd_secret *nvk = NULL;
	const struct kd_token *toks;
	uint8_t pin[KD_PIN_SIZE];
	size_t nt, len = KD_VOLUME_KEY_SIZE;
	uint32_t fresh;
	int r, slot = -1;

	toks = kd_volume_tokens(v, &nt);
	if ((r = checked_cd(path, &cd, &meta)))
		return r;
	fresh = new_key_slots(meta);
	for (size_t i = 0; i < nt; i++)
		if ((fresh & (1u << toks[i].keyslot)) && same_launch(&toks[i], launch_tok))
			slot = (int)i;
	if (slot < 0) {
		/* Interrupted between keyslot and token: an unbound keyslot no
		 * token describes holds a key no data is under yet; drop it and
		 * start again. */
		struct tok_ref refs[MAX_IDS];
		size_t n = list_tokens(meta, refs, MAX_IDS);

		for (int s = 0; s < MAX_IDS; s++) {
			bool described = false;

			for (size_t i = 0; i < n; i++)
				described |= (refs[i].slots & (1u << s)) != 0;
			if ((fresh & (1u << s)) && !described &&
			    (r = crypt_keyslot_destroy(cd, s)) < 0) {
				r = kd_fail(KD_ELUKS, "cannot drop the half-made keyslot %d: %s", s,
					    strerror(-r));
				goto out;
			}
		}
		r = kd_fail(KD_ENOENT, "the prepared rotation's keyslot is not this launch's");
		goto out;
	}
	if ((r = kd_secret_new(KD_VOLUME_KEY_SIZE, &nvk)))
		goto out;
	r = crypt_volume_key_get(cd, toks[slot].keyslot, (char *)nvk->data, &len,
				 (const char *)pass->data, pass->len);
	if (r < 0 || len != KD_VOLUME_KEY_SIZE) {
		r = kd_fail(KD_ETAMPER, "the new-key keyslot %d does not open with this launch's key",
			    toks[slot].keyslot);
		goto out;
	}
	if ((r = kd_volume_pin(pin_key, nvk, meta, kd_volume_uuid(v), toks[slot].keyslot, pin)))
		goto out;
	if (!kd_ct_equal(pin, toks[slot].pin, sizeof(pin))) {
		r = kd_fail(KD_ETAMPER, "volume-key pin of the new-key token %d does not verify",
			    toks[slot].token_id);
		goto out;
	}
	*ret_slot = toks[slot].keyslot;
	memcpy(ret_pin, toks[slot].pin, KD_PIN_SIZE);
	r = 0;
out:
	kd_wipe(pin, sizeof(pin));
	json_object_put(meta);
	crypt_free(cd);
	return r;
}

int kd_rotate(const char *device, struct kd_backend *b, const struct kd_launch *l,
	      const struct kd_rotate_opts *o, struct kd_rotate_result *ret)
{
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL, *pin_key = NULL;
	struct crypt_params_luks2 luks2 = {.sector_size = KD_VOLUME_SECTOR_SIZE};
	struct crypt_params_reencrypt params = {
		.mode = CRYPT_REENCRYPT_REENCRYPT,
		.direction = CRYPT_REENCRYPT_FORWARD,
		.resilience = o->resilience ? o->resilience : KD_ROTATE_RESILIENCE_DEFAULT,
		.hash = "sha256",
		.max_hotzone_size = o->hotzone / 512,
		.luks2 = &luks2,
	};
	struct kd_rotate_result res;
	struct kd_rotate_status st;
	unsigned old_k = 0;
	size_t old_n = 0;
	struct kd_volume *v = NULL;
	struct crypt_device *cd = NULL;
	json_object *meta = NULL;
	struct kd_token tok;
	const struct kd_token *toks;
	char *path = NULL, active[128] = "";
	const char *name;
	unsigned esc_k = o->escrow_threshold;
	struct run_ctx ctx = {.o = o};
	size_t nt, dropped = 0;
	uint8_t new_pin[KD_PIN_SIZE] = {0};
	int r, new_slot = -1;

	memset(&res, 0, sizeof(res));
	if (strcmp(params.resilience, "journal") && strcmp(params.resilience, "checksum"))
		return kd_fail(KD_EINVAL, "resilience must be journal or checksum");
	if (o->drop_escrow && o->n_escrow_certs)
		return kd_fail(KD_EINVAL, "either re-split the escrow or drop it, not both");
	if (!o->escrow_find || !o->escrow_add || !o->plan_make || !o->plan_open)
		return kd_fail(KD_EINVAL, "kd_rotate needs the escrow steps (kd_escrow_rotate_hooks)");
	if ((r = kd_device_resolve(device, &path)))
		return r;
	if ((r = kd_volume_open(path, &v)))
		goto out;
	if (kd_volume_health(v)->allow_err) {
		r = kd_fail(kd_volume_health(v)->allow_err, "header refused: %s",
			    kd_volume_health(v)->allow_detail);
		goto out;
	}
	if (kd_volume_key_size(v) != KD_VOLUME_KEY_SIZE) {
		r = kd_fail(KD_EREFUSED, "an --integrity volume cannot be rotated: LUKS2 "
					 "re-encryption does not support dm-integrity (authenticated) "
					 "segments; copy the data to a freshly enrolled volume instead");
		goto out;
	}
	if ((r = kd_rotate_status(v, &st)))
		goto out;
	if (st.phase == KD_ROTATE_NONE && st.escrow_pending && !o->resume_only) {
		/* A plan with no rotation left to finish: only a resume completes
		 * it. A rotation asked for always makes a new volume key, so a
		 * plan token the host planted or replayed cannot turn it into an
		 * escrow-only run. */
		if (!o->n_escrow_certs && !o->drop_escrow) {
			r = kd_fail(KD_EREFUSED,
				    "an escrow re-split from an earlier rotation is pending; finish "
				    "it (keyd rotate --resume-only, or keyd-recover "
				    "finish-rotation), or rotate anew with --escrow CERT ... "
				    "--threshold K or --drop-escrow");
			goto out;
		}
		st.escrow_pending = false; /* this rotation's plan replaces it */
	}
	if (o->resume_only && st.phase == KD_ROTATE_NONE && !st.escrow_pending) {
		/* Nothing begun: the boot path asks on every boot. */
		res.idle = true;
		res.keyslot = -1;
		if (ret)
			*ret = res;
		goto out;
	}
	/* Step 1: this launch's slot, through the whole unlock order; the pin
	 * key (for the new key's pin) comes from the same derivation. */
	if ((r = kd_volume_unlock_keys(v, b, l, &vk, &pass, &pin_key, &tok)))
		goto out;
	if (tok.state != KD_TOKEN_ACTIVE) {
		r = kd_fail(KD_EREFUSED, "this launch's keyd slot %d is %s; commit it (keyd commit) "
					 "before rotating", tok.keyslot, kd_token_state_name(tok.state));
		goto out;
	}
	toks = kd_volume_tokens(v, &nt);
	if (st.phase == KD_ROTATE_NONE && !st.escrow_pending) {
		for (size_t i = 0; i < nt; i++)
			if (toks[i].state == KD_TOKEN_PENDING && !o->drop_pending) {
				r = kd_fail(KD_EREFUSED, "keyslot %d holds a pending handoff (label %s) "
							 "whose secret only its new version knows; "
							 "let it commit first, or pass --drop-pending "
							 "and hand off again after the rotation",
					    toks[i].keyslot, toks[i].label);
				goto out;
			}
		r = o->escrow_find(v, &old_k, &old_n, o->escrow_usr);
		if (r && r != KD_ENOENT)
			goto out;
		if (!r && !o->n_escrow_certs && !o->drop_escrow) {
			r = kd_fail(KD_EREFUSED, "the volume has a %u-of-%zu escrow whose shares would "
						 "stop working; give the admins' certificates "
						 "(--escrow CERT ...) to re-split it, or --drop-escrow",
				    old_k, old_n);
			goto out;
		}
		if (!r && !esc_k)
			esc_k = old_k;
		r = 0;
	}
	if (o->n_escrow_certs && !esc_k) {
		r = kd_fail(KD_EINVAL, "no old escrow to take the threshold from; give --threshold");
		goto out;
	}
	res.resumed = st.phase != KD_ROTATE_NONE || st.escrow_pending;
	if (st.phase == KD_ROTATE_NONE && st.escrow_pending) {
		/* The data is done; only the escrow (step 7) is left. */
		res.keyslot = tok.keyslot;
		res.escrow_only = true;
		goto escrow;
	}
	name = o->name;
	if (!name && find_active(kd_volume_uuid(v), active, sizeof(active)))
		name = active;
	res.online = name != NULL;

	/* Steps 2-4. */
	if (st.phase == KD_ROTATE_PREPARED) {
		r = check_prepared(path, v, pass, pin_key, &tok, &new_slot, new_pin);
		if (r == KD_ENOENT)
			st.phase = KD_ROTATE_NONE; /* the half-made slot was dropped */
		else if (r)
			goto out;
	}
	if (st.phase != KD_ROTATE_RUNNING &&
	    (r = prepare(path, name, pass, pin_key, &tok, &params, o, esc_k,
			 st.phase == KD_ROTATE_PREPARED, new_slot, new_pin, &dropped, &cd)))
		goto out;
	res.tokens_dropped = dropped;
	if (cd)
		goto run;

	/* Step 6: resume (also after a crash: libcryptsetup recovers the
	 * hotzone from the journal or checksums first). */
	if ((r = checked_cd(path, &cd, &meta)))
		goto out;
	if (all_data_new(meta)) {
		crypt_free(cd);
		cd = NULL;
		if ((r = finalize_by_hand(path)))
			goto out;
		ctx.p.size = ctx.p.done = ctx.p.start = st.size;
		clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
		goto finished;
	}
	/* Killed inside a hotzone: replay the journal (or check the checksums)
	 * first, as activation would; then load the repaired header again. */
	if (crypt_reencrypt_status(cd, NULL) == CRYPT_REENCRYPT_CRASH) {
		struct crypt_params_reencrypt p = {.flags = CRYPT_REENCRYPT_RECOVERY};

		r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)pass->data, pass->len,
						       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &p);
		crypt_free(cd);
		cd = NULL;
		json_object_put(meta);
		meta = NULL;
		if (r < 0) {
			r = kd_fail(KD_ELUKS, "recovery of the interrupted hotzone failed: %s",
				    strerror(-r));
			goto out;
		}
		res.recovered = true;
		if ((r = checked_cd(path, &cd, &meta)))
			goto out;
	}
	{
		struct crypt_params_reencrypt p = {.flags = CRYPT_REENCRYPT_RESUME_ONLY,
						   .max_hotzone_size = params.max_hotzone_size};

		r = crypt_reencrypt_init_by_passphrase(cd, name, (const char *)pass->data, pass->len,
						       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &p);
	}
	if (r < 0) {
		r = kd_fail(KD_ELUKS, "cannot resume the re-encryption: %s", strerror(-r));
		goto out;
	}
run:
	{
		struct crypt_params_reencrypt cur;

		memset(&cur, 0, sizeof(cur));
		if (crypt_reencrypt_status(cd, &cur) != CRYPT_REENCRYPT_NONE && cur.resilience)
			snprintf(res.resilience, sizeof(res.resilience), "%s", cur.resilience);
	}
	ctx.fp_bytes = UINT64_MAX;
#ifdef KEYD_FAILPOINTS
	if (getenv("KEYD_FAILPOINT_BYTES"))
		ctx.fp_bytes = strtoull(getenv("KEYD_FAILPOINT_BYTES"), NULL, 10);
	else
		ctx.fp_bytes = 0;
#endif
	clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
	r = crypt_reencrypt_run(cd, on_progress, &ctx);
	crypt_free(cd);
	cd = NULL;
	if (r < 0) {
		r = kd_fail(KD_ELUKS, "re-encryption stopped at %llu of %llu bytes: %s (the volume "
				      "still opens; run keyd rotate again to resume)",
			    (unsigned long long)ctx.p.done, (unsigned long long)ctx.p.size,
			    strerror(-r));
		goto out;
	}
finished:
	res.bytes = ctx.p.done - ctx.p.start;
	res.seconds = since(&ctx.t0);
	kd_failpoint("rotate.after-finish");

	/* Step 7: the escrow, for the new key (given certificates or the plan). */
escrow:
	kd_volume_close(v);
	v = NULL;
	if ((r = kd_volume_open(path, &v)) ||
	    (r = finish_escrow(path, v, b, l, o, esc_k, pin_key, &res)))
		goto out;
	/* The escrow, or the plan's removal, may have written the header. */
	kd_volume_close(v);
	v = NULL;
	if ((r = kd_volume_open(path, &v)))
		goto out;
	res.keyslot = -1;
	toks = kd_volume_tokens(v, &nt);
	for (size_t i = 0; i < nt; i++)
		if (same_launch(&toks[i], &tok))
			res.keyslot = toks[i].keyslot;
	if (!res.resilience[0])
		snprintf(res.resilience, sizeof(res.resilience), "%s", params.resilience);
	if (ret)
		*ret = res;
	r = 0;
out:
	json_object_put(meta);
	crypt_free(cd);
	kd_volume_close(v);
	free(path);
	return r;
}

/* ---------------------------------------------------------------- activation */

int kd_rotate_activate(struct kd_volume *v, const char *name, const struct kd_secret *pass,
		       uint32_t flags)
{
	struct crypt_device *cd = NULL;
	json_object *meta = NULL;
	int r;

	if (!pass)
		return kd_fail(KD_EINVAL, "activation during a rotation needs the keyslot passphrase");
	if ((r = checked_cd(kd_volume_path(v), &cd, &meta)))
		return r;
	json_object_put(meta);
	r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT, (const char *)pass->data,
					 pass->len,
					 CRYPT_ACTIVATE_NO_READ_WORKQUEUE |
						 CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE | flags);
	crypt_free(cd);
	return r < 0 ? kd_fail(KD_ELUKS, "activation of %.64s during a rotation failed: %s", name,
			       strerror(-r))
		     : 0;
}

const char *kd_rotate_keyslot_role(json_object *meta, int keyslot)
{
	char id[12];
	json_object *ks;

	if (kd_rotate_phase_of(meta) == KD_ROTATE_NONE || keyslot < 0 || keyslot >= MAX_IDS)
		return NULL;
	snprintf(id, sizeof(id), "%d", keyslot);
	if (!(ks = kd_lj_peek(kd_lj_peek(meta, "keyslots", json_type_object), id,
			      json_type_object)))
		return NULL;
	if (streq(kd_lj_peek_str(ks, "type"), "reencrypt"))
		return "rotation: the reencryption journal (removed when the rotation finishes)";
	if (new_key_slots(meta) & (1u << keyslot))
		return NULL;
	return "rotation: old volume key, still needed for the data not yet re-encrypted "
	       "(libcryptsetup removes it when the rotation finishes)";
}
