/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LUKS2 header copies and the allow-list (header.h).
 *
 * Binary header layout (LUKS2 on-disk format spec, §2; big-endian):
 *   0 magic[6]  6 version u16  8 hdr_size u64  16 seqid u64  24 label[48]
 *   72 checksum_alg[32]  104 salt[64]  168 uuid[40]  208 subsystem[48]
 *   256 hdr_offset u64  264 padding[184]  448 csum[64]  512 padding[3584]
 * followed by the JSON area (hdr_size - 4096 bytes, NUL-terminated text).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"
#include "keyd/rotate.h"
#include "keyd/token.h"
#include "keyd/util.h"
#include "keyd/volume.h"

/* The profile keyd writes (keyd/volume.h), the one the allow-list accepts. */
#define VOL_CIPHER KD_VOLUME_CIPHER "-" KD_VOLUME_CIPHER_MODE
#define VOL_KEY_BYTES KD_VOLUME_KEY_SIZE
/* keyd enroll --integrity: LUKS2 authenticated encryption, the only other
 * profile accepted. The volume key is the XTS key followed by the HMAC key;
 * keyslot areas stay plain AES-XTS with a 512-bit key. */
#define VOL_INTEGRITY KD_VOLUME_INTEGRITY
#define VOL_INTEGRITY_KEY_BYTES KD_VOLUME_INTEGRITY_KEY_SIZE
#define VOL_SECTOR KD_VOLUME_SECTOR_SIZE
#define PBKDF_FLOOR KD_KEYSLOT_PBKDF_ITER
#define KEYSLOTS_SIZE_MAX (128u * 1024u * 1024u) /* libcryptsetup's limit */
#define AREA_TRUNC "header area truncated"

static const uint8_t magic1[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
static const uint8_t magic2[6] = {'S', 'K', 'U', 'L', 0xba, 0xbe};

static int be64(struct kd_cursor *c, uint64_t *ret)
{
	uint8_t b[8];
	uint64_t v = 0;

	if (kd_cur_bytes(c, b, sizeof(b)))
		return kd_fail(KD_ETRUNC, "LUKS2 binary header truncated");
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	*ret = v;
	return 0;
}

static bool legal_hdr_size(uint64_t s)
{
	for (uint64_t v = 0x4000; v <= KD_LUKS2_HDR_MAX; v <<= 1)
		if (s == v)
			return true;
	return false;
}

/* A fixed-width NUL-padded string field must be terminated inside it. */
static int fixed_str(struct kd_cursor *c, size_t n, char *out, size_t out_len)
{
	const uint8_t *p;

	if (kd_cur_ptr(c, &p, n))
		return kd_fail(KD_ETRUNC, "LUKS2 binary header truncated");
	if (!memchr(p, 0, n) || strlen((const char *)p) >= out_len)
		return kd_fail(KD_EMALFORMED, "LUKS2 binary header: a string field is not "
					      "NUL-terminated");
	if (out)
		strcpy(out, (const char *)p);
	return 0;
}

static int copy_fail(struct kd_luks2_copy *r, int err, const char *why)
{
	r->ok = false;
	snprintf(r->err, sizeof(r->err), "%s", why);
	return kd_fail(err, "LUKS2 header at %llu: %s", (unsigned long long)r->hdr_offset, why);
}

int kd_luks2_parse_copy(const uint8_t *buf, size_t len, uint64_t offset,
			struct kd_luks2_copy *ret, char **ret_json)
{
	struct kd_cursor c;
	const uint8_t *mag, *csum;
	uint16_t ver;
	char alg[33];
	uint8_t digest[32];
	unsigned dlen = 0;
	EVP_MD_CTX *md;
	static const uint8_t zero64[64];
	const char *json, *nul;
	size_t json_max;
	char *out;
	int ok;

	memset(ret, 0, sizeof(*ret));
	ret->hdr_offset = offset;
	kd_cur_init(&c, buf, len);
	if (kd_cur_ptr(&c, &mag, 6))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	if (memcmp(mag, offset ? magic2 : magic1, 6))
		return copy_fail(ret, KD_EMALFORMED, "bad magic");
	if (kd_cur_bytes(&c, &ver, 2))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	ver = (uint16_t)(((const uint8_t *)&ver)[0] << 8 | ((const uint8_t *)&ver)[1]);
	if (ver != 2)
		return copy_fail(ret, KD_EUNSUPP, "not LUKS version 2");
	if (be64(&c, &ret->hdr_size) || be64(&c, &ret->seqid))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	/* Cheap sanity before anything is hashed (cf. hdr_disk_sanity_check_pre). */
	if (!legal_hdr_size(ret->hdr_size))
		return copy_fail(ret, KD_EMALFORMED, "illegal hdr_size");
	/* The secondary sits right after a primary of its own size. */
	if (offset && ret->hdr_size != offset)
		return copy_fail(ret, KD_EMALFORMED, "secondary hdr_size does not match its offset");
	if (fixed_str(&c, KD_LUKS2_LABEL_MAX, ret->label, sizeof(ret->label)) ||
	    fixed_str(&c, 32, alg, sizeof(alg)) || kd_cur_skip(&c, 64) ||
	    fixed_str(&c, KD_LUKS2_UUID_MAX, ret->uuid, sizeof(ret->uuid)) ||
	    fixed_str(&c, 48, NULL, 49))
		return copy_fail(ret, KD_EMALFORMED, "unterminated string field");
	{
		uint64_t hoff;

		if (be64(&c, &hoff) || hoff != offset)
			return copy_fail(ret, KD_EMALFORMED, "hdr_offset does not match its position");
	}
	if (strcmp(alg, "sha256"))
		return copy_fail(ret, KD_EUNSUPP, "checksum algorithm is not sha256");
	if (kd_cur_seek(&c, 448) || kd_cur_ptr(&c, &csum, 64))
		return copy_fail(ret, KD_ETRUNC, "truncated");
	if (memcmp(csum + 32, zero64, 32))
		return copy_fail(ret, KD_EMALFORMED, "checksum padding is not zero");
	if (len < ret->hdr_size)
		return copy_fail(ret, KD_ETRUNC, AREA_TRUNC);
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, buf, 448) &&
	     EVP_DigestUpdate(md, zero64, 64) &&
	     EVP_DigestUpdate(md, buf + 512, ret->hdr_size - 512) && EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	if (!ok || dlen != 32)
		return kd_fail(KD_ECRYPTO, "SHA-256 failed");
	if (memcmp(digest, csum, 32))
		return copy_fail(ret, KD_ETAMPER, "checksum mismatch");
	memcpy(ret->csum, csum, 32);
	json = (const char *)buf + KD_LUKS2_BIN_SIZE;
	json_max = ret->hdr_size - KD_LUKS2_BIN_SIZE;
	/*
	 * Framing as libcryptsetup checks it (validate_json_area): the JSON
	 * starts at the first byte of the area and only NUL bytes follow its
	 * terminator. A copy that fails this is one libcryptsetup ignores (and
	 * would overwrite from the other copy), so keyd treats it as damaged.
	 */
	if (!(nul = memchr(json, 0, json_max)))
		return copy_fail(ret, KD_EMALFORMED, "JSON area not terminated");
	if (json[0] != '{')
		return copy_fail(ret, KD_EMALFORMED, "JSON area does not start with '{'");
	for (const char *p = nul; p < json + json_max; p++)
		if (*p)
			return copy_fail(ret, KD_EMALFORMED, "non-NUL bytes after the JSON text");
	if (ret_json) {
		out = strdup(json);
		if (!out)
			return kd_fail(KD_ENOMEM, "out of memory (luks2)");
		*ret_json = out;
	}
	ret->ok = true;
	return 0;
}

static int read_copy(int fd, uint64_t off, struct kd_luks2_copy *ret, char **ret_json)
{
	uint8_t bin[KD_LUKS2_BIN_SIZE];
	uint8_t *area;
	ssize_t n;
	int r;

	n = pread(fd, bin, sizeof(bin), (off_t)off);
	if (n != (ssize_t)sizeof(bin)) {
		memset(ret, 0, sizeof(*ret));
		ret->hdr_offset = off;
		if (n < 0)
			return copy_fail(ret, KD_EIO, "cannot read");
		return copy_fail(ret, KD_ETRUNC, "cannot read");
	}
	r = kd_luks2_parse_copy(bin, sizeof(bin), off, ret, NULL);
	/* Only the 4096-byte binary part was read: go on only if it was sane. */
	if (r != KD_ETRUNC || strcmp(ret->err, AREA_TRUNC))
		return r;
	area = malloc(ret->hdr_size);
	if (!area)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	n = pread(fd, area, ret->hdr_size, (off_t)off);
	if (n != (ssize_t)ret->hdr_size) {
		free(area);
		return copy_fail(ret, KD_EIO, "cannot read header area");
	}
	r = kd_luks2_parse_copy(area, ret->hdr_size, off, ret, ret_json);
	free(area);
	return r;
}

const char *kd_header_health_summary(const struct kd_header_health *h)
{
	if (h->used < 0)
		return "no valid LUKS2 header copy: libcryptsetup cannot load this device either";
	if (h->agree)
		return "both header copies valid and identical";
	/*
	 * What libcryptsetup does with it (LUKS2_disk_hdr_read): it rewrites a
	 * damaged or older copy from the good one on its next load, unless the
	 * device also carries another signature; then it refuses to load at all
	 * ("ambiguous signatures") until an explicit repair. Copies that are
	 * both valid at the same seqid are not repaired: it uses the primary.
	 */
	if (h->ambiguous)
		return h->primary.ok && h->secondary.ok
			       ? "one header copy is older and the device carries another "
				 "signature: libcryptsetup refuses to load it (ambiguous "
				 "signatures); needs keyd-recover repair"
			       : "one header copy is damaged and the device carries another "
				 "signature: libcryptsetup refuses to load it (ambiguous "
				 "signatures); needs keyd-recover repair";
	if (!h->primary.ok)
		return "primary header damaged, secondary intact: needs keyd-recover repair "
		       "(keyd refuses to unlock until then; a libcryptsetup load would rewrite "
		       "the primary from the secondary)";
	if (!h->secondary.ok)
		return "secondary header damaged, primary intact: needs keyd-recover repair "
		       "(keyd refuses to unlock until then; a libcryptsetup load would rewrite "
		       "the secondary from the primary)";
	if (h->primary.seqid != h->secondary.seqid)
		return h->used ? "primary header is older than the secondary (interrupted write): "
				 "needs keyd-recover repair (a libcryptsetup load would rewrite it "
				 "from the secondary)"
			       : "secondary header is older than the primary (interrupted write): "
				 "needs keyd-recover repair (a libcryptsetup load would rewrite it "
				 "from the primary)";
	return "header copies differ at the same seqid: libcryptsetup uses the primary and "
	       "repairs nothing; needs keyd-recover repair";
}

const char *kd_header_damaged_copy(const struct kd_header_health *h)
{
	if (h->used < 0 || h->agree)
		return NULL;
	return h->used ? "primary" : "secondary";
}

/*
 * libcryptsetup probes the device for other signatures before it recovers a
 * copy (detect_device_signatures): any superblock or partition table but
 * LUKS makes it refuse. Same probe here, on the same fd.
 */
static bool other_signature(int fd)
{
	blkid_probe pr = blkid_new_probe();
	char *luks[] = {(char *)"crypto_LUKS", NULL};
	bool other = true;
	int r;

	if (!pr)
		return true;
	if (!blkid_probe_set_device(pr, fd, 0, 0)) {
		blkid_probe_enable_partitions(pr, 1);
		blkid_probe_set_partitions_flags(pr, 0);
		blkid_probe_enable_superblocks(pr, 1);
		blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
		blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_NOTIN, luks);
		r = blkid_do_safeprobe(pr);
		other = r != 1; /* 1: nothing found; 0 found, -2 ambiguous, -1 error */
	}
	blkid_free_probe(pr);
	return other;
}

int kd_header_read(int fd, struct kd_header_health *ret_health, struct json_object **ret_meta)
{
	static const uint64_t offsets[] = {0x4000, 0x8000, 0x10000, 0x20000, 0x40000,
					   0x80000, 0x100000, 0x200000, 0x400000};
	struct kd_header_health h;
	char *j1 = NULL, *j2 = NULL;
	const char *use;
	json_object *meta;
	int r;

	memset(&h, 0, sizeof(h));
	r = read_copy(fd, 0, &h.primary, &j1);
	if (r == KD_ENOMEM || r == KD_ECRYPTO)
		return r;
	/* The secondary follows a primary of its size; libcryptsetup searches
	 * every legal offset only when the primary's size is unknown. */
	if (legal_hdr_size(h.primary.hdr_size))
		read_copy(fd, h.primary.hdr_size, &h.secondary, &j2);
	if (!h.primary.ok && !h.secondary.ok) {
		struct kd_luks2_copy first = h.secondary;
		bool tried = legal_hdr_size(h.primary.hdr_size);

		/* libcryptsetup looks for the secondary at every legal offset. */
		for (size_t i = 0; i < KD_ARRAY_SIZE(offsets); i++) {
			free(j2);
			j2 = NULL;
			if (!read_copy(fd, offsets[i], &h.secondary, &j2))
				break;
		}
		if (!h.secondary.ok && tried) {
			h.secondary = first; /* say why the expected one is not valid */
		} else if (!h.secondary.ok) {
			h.secondary.hdr_offset = 0;
			snprintf(h.secondary.err, sizeof(h.secondary.err), "not found");
		}
	}
	if (h.primary.ok && h.secondary.ok) {
		h.used = h.secondary.seqid > h.primary.seqid ? 1 : 0;
		h.agree = h.primary.seqid == h.secondary.seqid &&
			  h.primary.hdr_size == h.secondary.hdr_size && !strcmp(j1, j2) &&
			  !strcmp(h.primary.uuid, h.secondary.uuid) &&
			  !strcmp(h.primary.label, h.secondary.label);
	} else {
		h.used = h.primary.ok ? 0 : h.secondary.ok ? 1 : -1;
	}
	if (h.used >= 0 && !h.agree)
		h.ambiguous = other_signature(fd);
	if (h.used < 0) {
		free(j1);
		free(j2);
		*ret_health = h;
		return kd_fail(KD_EMALFORMED, "no valid LUKS2 header: primary %s, secondary %s",
			       h.primary.err, h.secondary.err);
	}
	use = h.used ? j2 : j1;
	r = kd_lj_parse(use, strlen(use), 12, &meta);
	free(j1);
	free(j2);
	if (r == KD_ENOMEM)
		return r;
	if (r)
		meta = NULL;
	if (!meta) {
		h.allow_err = kd_fail(KD_ETAMPER, "LUKS2 JSON metadata does not parse");
	} else {
		h.allow_err = kd_header_allow(meta, h.used ? h.secondary.hdr_size : h.primary.hdr_size);
	}
	if (h.allow_err)
		snprintf(h.allow_detail, sizeof(h.allow_detail), "%s", kd_err_detail(h.allow_err));
	*ret_health = h;
	if (ret_meta)
		*ret_meta = meta;
	else
		json_object_put(meta);
	return 0;
}

/* ---------------------------------------------------------------- allow-list */

int kd_luks2_u64(struct json_object *o, const char *key, uint64_t *ret)
{
	return kd_lj_u64(o, "LUKS2 metadata", key, ret);
}

/*
 * The allow-list is a table of checks, one concern each, in the manner of
 * libcryptsetup's LUKS2_hdr_validate: every header libcryptsetup's own
 * validation refuses is refused here too (type of every member, references
 * between sections, flags arrays, area intervals), and on top keyd admits
 * only its own profile. What the checks learn is carried in struct allow.
 */
struct allow {
	json_object *meta, *keyslots, *segments, *digests, *tokens, *config, *seg;
	uint64_t hdr_size, json_size, ks_size, seg_off;
	uint32_t slots;       /* keyslot ids present */
	uint32_t keyd_slots;  /* keyslots a keyd token owns */
	uint32_t token_slots; /* keyslots any token names */
	uint32_t vk_bytes;    /* volume key size segment 0 implies */
};

static bool str_eq(const char *a, const char *b)
{
	return a && !strcmp(a, b);
}

/* Only the five LUKS2 sections, each an object; keyslot ids collected. */
static int allow_sections(struct allow *a)
{
	static const char *const names[] = {"keyslots", "segments", "digests", "tokens", "config"};
	json_object **dst[] = {&a->keyslots, &a->segments, &a->digests, &a->tokens, &a->config};
	const char *other;
	int r;

	if (!json_object_is_type(a->meta, json_type_object))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata is not an object");
	if ((other = kd_lj_unknown_key(a->meta, names, KD_ARRAY_SIZE(names))))
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: unexpected section \"%.32s\"", other);
	for (size_t i = 0; i < KD_ARRAY_SIZE(names); i++)
		if ((r = kd_lj_obj(a->meta, "LUKS2 metadata", names[i], dst[i])))
			return r;
	json_object_object_foreach(a->keyslots, kid, ks) {
		int id = kd_lj_id(kid, "LUKS2 keyslots", "keyslot");

		if (id < 0)
			return id;
		if (!json_object_is_type(ks, json_type_object))
			return kd_fail(KD_ETAMPER, "keyslot %d is not an object", id);
		a->slots |= 1u << id;
	}
	return 0;
}

/* Only members in `allowed` (a NULL-terminated list). */
static int only_members(json_object *o, const char *where, const char *const *allowed)
{
	const char *other;
	size_t n = 0;

	while (allowed[n])
		n++;
	if ((other = kd_lj_unknown_key(o, allowed, n)))
		return kd_fail(KD_ETAMPER, "%s: unexpected member \"%.32s\"", where, other);
	return 0;
}

/*
 * config: sizes consistent with the binary header and libcryptsetup's
 * limits; flags an array of strings keyd knows; no requirements (online
 * reencryption and other features keyd never sets up).
 */
static int allow_config(struct allow *a)
{
	static const char *const members[] = {"json_size", "keyslots_size", "flags", "requirements",
					      NULL};
	json_object *flags, *req, *mand;
	int r;

	if ((r = only_members(a->config, "config", members)) ||
	    (r = kd_lj_u64(a->config, "config", "json_size", &a->json_size)) ||
	    (r = kd_lj_u64(a->config, "config", "keyslots_size", &a->ks_size)))
		return r;
	if (a->json_size != a->hdr_size - KD_LUKS2_BIN_SIZE)
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: json_size does not match the header size");
	if (a->ks_size % VOL_SECTOR || a->ks_size > KEYSLOTS_SIZE_MAX)
		return kd_fail(KD_ETAMPER, "LUKS2 metadata: keyslots_size is not sane");
	if ((r = kd_lj_opt(a->config, "config", "requirements", json_type_object, &req)))
		return r;
	if (req) {
		if ((r = only_members(req, "config requirements", (const char *const[]){"mandatory",
											   NULL})) ||
		    (r = kd_lj_str_array(req, "config requirements", "mandatory", &mand)))
			return r;
		if (mand && json_object_array_length(mand))
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: header carries requirements "
						   "(reencryption?); refused");
	}
	if ((r = kd_lj_str_array(a->config, "config", "flags", &flags)))
		return r;
	for (size_t i = 0; flags && i < json_object_array_length(flags); i++) {
		const char *f = kd_lj_elem_str(flags, i);

		if (!str_eq(f, "allow-discards") && !str_eq(f, "no-read-workqueue") &&
		    !str_eq(f, "no-write-workqueue"))
			return kd_fail(KD_ETAMPER, "LUKS2 metadata: unexpected persistent flag \"%.32s\"",
				       f);
	}
	return 0;
}

/*
 * Segment integrity, when present, must be exactly keyd's profile: HMAC-SHA256
 * tags and no journal crypto. Anything else (a CRC "integrity" that proves
 * nothing, a different MAC, an encrypted journal keyd never set up) is
 * refused, like any other cipher the host might pick.
 */
static int integrity_profile(json_object *seg)
{
	json_object *io;
	const char *t, *je, *ji;
	int r;

	if ((r = kd_lj_obj(seg, "segment 0", "integrity", &io)) ||
	    (r = kd_lj_str(io, "segment 0 integrity", "type", &t)) ||
	    (r = kd_lj_str(io, "segment 0 integrity", "journal_encryption", &je)) ||
	    (r = kd_lj_str(io, "segment 0 integrity", "journal_integrity", &ji)))
		return r;
	if (json_object_object_length(io) != 3 || strcmp(t, VOL_INTEGRITY) || strcmp(je, "none") ||
	    strcmp(ji, "none"))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 integrity is not keyd's " VOL_INTEGRITY
					   " profile; refused");
	return 0;
}

/* Exactly one segment: crypt, aes-xts-plain64, 4096-byte sectors, no flags. */
static int allow_segments(struct allow *a)
{
	static const char *const members[] = {"type",	     "offset",	    "size",	 "iv_tweak",
					      "encryption", "sector_size", "integrity", "flags",
					      NULL};
	json_object *flags, *integ;
	const char *type, *enc, *size;
	int64_t sector;
	uint64_t u, seg_size;
	int r;

	if (json_object_object_length(a->segments) != 1)
		return kd_fail(KD_ETAMPER, "LUKS2 header has %d segments; exactly segment 0 is allowed",
			       json_object_object_length(a->segments));
	if ((r = kd_lj_obj(a->segments, "LUKS2 segments", "0", &a->seg)) ||
	    (r = only_members(a->seg, "segment 0", members)) ||
	    (r = kd_lj_str(a->seg, "segment 0", "type", &type)) ||
	    (r = kd_lj_str(a->seg, "segment 0", "encryption", &enc)) ||
	    (r = kd_lj_int(a->seg, "segment 0", "sector_size", 0, UINT32_MAX, &sector)) ||
	    (r = kd_lj_u64(a->seg, "segment 0", "iv_tweak", &u)) ||
	    (r = kd_lj_u64(a->seg, "segment 0", "offset", &a->seg_off)) ||
	    (r = kd_lj_str(a->seg, "segment 0", "size", &size)) ||
	    (r = kd_lj_str_array(a->seg, "segment 0", "flags", &flags)) ||
	    (r = kd_lj_opt(a->seg, "segment 0", "integrity", json_type_object, &integ)))
		return r;
	if (strcmp(type, "crypt"))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 is not of type crypt");
	if (strcmp(enc, VOL_CIPHER))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 cipher \"%.32s\" is not " VOL_CIPHER
					   " (cipher_null header attack?)", enc);
	if (sector != VOL_SECTOR)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 sector size is not 4096");
	a->vk_bytes = VOL_KEY_BYTES;
	if (integ) {
		if ((r = integrity_profile(a->seg)))
			return r;
		a->vk_bytes = VOL_KEY_BYTES + VOL_INTEGRITY_KEY_BYTES;
	}
	if (flags && json_object_array_length(flags))
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 has flags; refused");
	if (u != 0)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 iv_tweak is not 0");
	if (a->seg_off % VOL_SECTOR || a->seg_off < 2 * a->hdr_size + a->ks_size)
		return kd_fail(KD_ETAMPER, "LUKS2 segment 0 offset overlaps the metadata");
	if (strcmp(size, "dynamic")) {
		if ((r = kd_lj_u64(a->seg, "segment 0", "size", &seg_size)))
			return r;
		if (!seg_size || seg_size % VOL_SECTOR)
			return kd_fail(KD_ETAMPER, "LUKS2 segment 0 size is not sane");
	}
	return 0;
}

/*
 * Every token, keyd's or not, as libcryptsetup validates it (a non-empty
 * type, keyslots an array naming keyslots that exist: libcryptsetup refuses
 * the whole header otherwise). Then: which keyslots are keyd's, and that no
 * other token claims them.
 */
static int allow_tokens(struct allow *a)
{
	char where[24];
	int r;

	json_object_object_foreach(a->tokens, tid, tok) {
		const char *type;
		uint32_t m;

		kd_lj_where(where, sizeof(where), "token", tid);
		if ((r = kd_lj_id(tid, "LUKS2 tokens", "token")) < 0)
			return r;
		if (!json_object_is_type(tok, json_type_object))
			return kd_fail(KD_ETAMPER, "%s is not an object", where);
		if ((r = kd_lj_str(tok, where, "type", &type)) ||
		    (r = kd_lj_id_set(tok, where, "keyslots", &m)))
			return r;
		if (m & ~a->slots)
			return kd_fail(KD_ETAMPER, "%s (type %.32s) names a keyslot that does not exist",
				       where, type);
		if (!strcmp(type, KD_TOKEN_TYPE)) {
			if (__builtin_popcount(m) != 1)
				return kd_fail(KD_ETAMPER, "keyd token %s must reference exactly one keyslot",
					       tid);
			if (a->keyd_slots & m)
				return kd_fail(KD_ETAMPER, "two keyd tokens reference the same keyslot");
			a->keyd_slots |= m;
		}
	}
	/* Second pass: a foreign token may be listed before the keyd token. */
	json_object_object_foreach(a->tokens, tid2, tok2) {
		const char *type = NULL;
		uint32_t m = 0;

		kd_lj_where(where, sizeof(where), "token", tid2);
		if ((r = kd_lj_str(tok2, where, "type", &type)) ||
		    (r = kd_lj_id_set(tok2, where, "keyslots", &m)))
			return r;
		if (strcmp(type, KD_TOKEN_TYPE) && (m & a->keyd_slots))
			return kd_fail(KD_ETAMPER, "foreign token %s (type %.32s) is assigned to a keyd "
						   "keyslot", tid2, type);
		a->token_slots |= m;
	}
	return 0;
}

/* The kdf object of a keyslot as libcryptsetup validates it; *ret_type. */
static int keyslot_kdf(json_object *kdf, const char *where, const char **ret_type,
		       const char **ret_hash, int64_t *ret_iter)
{
	const char *type, *s;
	int64_t n;
	int r;

	*ret_hash = NULL;
	*ret_iter = -1;
	if ((r = kd_lj_str(kdf, where, "type", &type)) || (r = kd_lj_str(kdf, where, "salt", &s)))
		return r;
	if (!strcmp(type, "pbkdf2")) {
		if ((r = kd_lj_str(kdf, where, "hash", ret_hash)) ||
		    (r = kd_lj_int(kdf, where, "iterations", 1, UINT32_MAX, ret_iter)))
			return r;
		if (json_object_object_length(kdf) != 4)
			return kd_fail(KD_ETAMPER, "%s: unexpected PBKDF2 parameters", where);
	} else if (!strcmp(type, "argon2i") || !strcmp(type, "argon2id")) {
		if ((r = kd_lj_int(kdf, where, "time", 1, UINT32_MAX, &n)) ||
		    (r = kd_lj_int(kdf, where, "memory", 1, UINT32_MAX, &n)) ||
		    (r = kd_lj_int(kdf, where, "cpus", 1, UINT32_MAX, &n)))
			return r;
		if (json_object_object_length(kdf) != 5)
			return kd_fail(KD_ETAMPER, "%s: unexpected Argon2 parameters", where);
	} else {
		return kd_fail(KD_ETAMPER, "%s: unknown KDF \"%.16s\"", where, type);
	}
	*ret_type = type;
	return 0;
}

/*
 * Keyslots: luks2 with the members libcryptsetup requires, AES-XTS areas
 * inside the keyslots area that do not overlap, and the PBKDF profile keyd
 * sets on its own slots.
 */
static int allow_keyslots(struct allow *a)
{
	static const char *const members[] = {"type", "key_size", "area", "af", "kdf", "priority",
					      NULL};
	struct {
		uint64_t off, len;
		int slot;
	} areas[KD_LJ_MAX_ID];
	size_t n_areas = 0;
	char where[40];
	int r;

	json_object_object_foreach(a->keyslots, kid, ks) {
		json_object *area, *af, *kdf, *prio;
		const char *type, *atype, *aenc, *aftype, *afhash, *kdft = NULL, *kdfh = NULL;
		int64_t key_size, akey, stripes, iter, p;
		uint64_t off, len;
		int id = kd_lj_id(kid, "LUKS2 keyslots", "keyslot");

		if (id < 0)
			return id;
		kd_lj_where(where, sizeof(where), "keyslot", kid);
		if ((r = only_members(ks, where, members)) ||
		    (r = kd_lj_str(ks, where, "type", &type)) ||
		    (r = kd_lj_int(ks, where, "key_size", 0, UINT32_MAX, &key_size)) ||
		    (r = kd_lj_obj(ks, where, "area", &area)) || (r = kd_lj_obj(ks, where, "af", &af)) ||
		    (r = kd_lj_obj(ks, where, "kdf", &kdf)) ||
		    (r = kd_lj_opt(ks, where, "priority", json_type_int, &prio)))
			return r;
		if (prio && (r = kd_lj_int(ks, where, "priority", 0, 2, &p)))
			return r;
		if (strcmp(type, "luks2"))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d is not of type luks2", id);
		if (key_size != (int64_t)a->vk_bytes)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d key size is not %u bits", id,
				       8 * a->vk_bytes);
		kd_lj_where(where, sizeof(where), "keyslot area", kid);
		if ((r = kd_lj_str(area, where, "type", &atype)) ||
		    (r = kd_lj_str(area, where, "encryption", &aenc)) ||
		    (r = kd_lj_int(area, where, "key_size", 0, UINT32_MAX, &akey)) ||
		    (r = kd_lj_u64(area, where, "offset", &off)) ||
		    (r = kd_lj_u64(area, where, "size", &len)))
			return r;
		if (strcmp(atype, "raw") || strcmp(aenc, VOL_CIPHER))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area cipher \"%.32s\" is not " VOL_CIPHER
						   " (cipher_null header attack?)", id, aenc);
		if (akey != VOL_KEY_BYTES || json_object_object_length(area) != 5)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area key size is not 512 bits", id);
		kd_lj_where(where, sizeof(where), "keyslot af", kid);
		if ((r = kd_lj_str(af, where, "type", &aftype)) ||
		    (r = kd_lj_str(af, where, "hash", &afhash)) ||
		    (r = kd_lj_int(af, where, "stripes", 0, UINT32_MAX, &stripes)))
			return r;
		if (strcmp(aftype, "luks1") || stripes != 4000 || json_object_object_length(af) != 3)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d anti-forensic splitter is not luks1/4000",
				       id);
		kd_lj_where(where, sizeof(where), "keyslot kdf", kid);
		if ((r = keyslot_kdf(kdf, where, &kdft, &kdfh, &iter)))
			return r;
		if (off < 2 * a->hdr_size || len == 0 || len > a->ks_size ||
		    off - 2 * a->hdr_size > a->ks_size - len || off + len > a->seg_off)
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d area lies outside the keyslots area", id);
		for (size_t i = 0; i < n_areas; i++)
			if (off < areas[i].off + areas[i].len && areas[i].off < off + len)
				return kd_fail(KD_ETAMPER, "LUKS2 keyslot areas %d and %d overlap", id,
					       areas[i].slot);
		areas[n_areas].off = off;
		areas[n_areas].len = len;
		areas[n_areas++].slot = id;
		/* A keyslot no token describes was added outside keyd, or is the
		 * remnant of an enrollment interrupted between keyslot and token
		 * writes. Only the latter (the exact keyd profile) is tolerated,
		 * so such a crash never leaves a volume that cannot open. */
		if (!(a->token_slots & (1u << id)) &&
		    (!str_eq(kdft, "pbkdf2") || !str_eq(kdfh, "sha512") || iter != PBKDF_FLOOR))
			return kd_fail(KD_ETAMPER, "LUKS2 keyslot %d is not described by any token "
						   "(added outside keyd?)", id);
		if (a->keyd_slots & (1u << id)) {
			/* The keyd secret is high-entropy, but a floor stops a header
			 * that makes the slot trivially brute-forceable offline. */
			if (!str_eq(kdft, "pbkdf2") || !str_eq(kdfh, "sha512"))
				return kd_fail(KD_ETAMPER, "keyd keyslot %d PBKDF is not PBKDF2-SHA512", id);
			if (iter < (int64_t)PBKDF_FLOOR)
				return kd_fail(KD_ETAMPER, "keyd keyslot %d PBKDF2 iterations below the floor "
							   "of %u (downgraded header)", id, PBKDF_FLOOR);
		}
	}
	return 0;
}

/* One pbkdf2 digest binding every keyslot to segment 0. */
static int allow_digests(struct allow *a)
{
	static const char *const members[] = {"type", "keyslots", "segments", "hash", "iterations",
					      "salt", "digest", NULL};
	char where[24];
	int n = json_object_object_length(a->digests), r;

	if (n != 1)
		return kd_fail(KD_ETAMPER, "LUKS2 header has %d digests; exactly one is allowed", n);
	json_object_object_foreach(a->digests, did, dig) {
		const char *type, *s;
		uint32_t dslots, dsegs;
		int64_t iter;

		kd_lj_where(where, sizeof(where), "digest", did);
		if ((r = kd_lj_id(did, "LUKS2 digests", "digest")) < 0)
			return r;
		if (!json_object_is_type(dig, json_type_object))
			return kd_fail(KD_ETAMPER, "%s is not an object", where);
		if ((r = only_members(dig, where, members)) ||
		    (r = kd_lj_str(dig, where, "type", &type)) ||
		    (r = kd_lj_id_set(dig, where, "keyslots", &dslots)) ||
		    (r = kd_lj_id_set(dig, where, "segments", &dsegs)) ||
		    (r = kd_lj_str(dig, where, "hash", &s)) ||
		    (r = kd_lj_int(dig, where, "iterations", 1, UINT32_MAX, &iter)) ||
		    (r = kd_lj_str(dig, where, "salt", &s)) || (r = kd_lj_str(dig, where, "digest", &s)))
			return r;
		if (strcmp(type, "pbkdf2"))
			return kd_fail(KD_ETAMPER, "LUKS2 digest is not pbkdf2");
		if (dslots & ~a->slots)
			return kd_fail(KD_ETAMPER, "%s names a keyslot that does not exist", where);
		if (dsegs != 1u || dslots != a->slots)
			return kd_fail(KD_ETAMPER, "LUKS2 digest does not bind every keyslot to segment 0");
	}
	return 0;
}

/* In order: later checks rely on what earlier ones established. */
static int (*const allow_checks[])(struct allow *) = {
	allow_sections, allow_config, allow_segments, allow_tokens, allow_keyslots, allow_digests,
};

int kd_header_allow(struct json_object *meta, uint64_t hdr_size)
{
	struct allow a = {.meta = meta, .hdr_size = hdr_size};
	json_object *view = NULL;
	int r;

	/* A volume-key rotation (rotate.h) is checked as the header it leads to. */
	if ((r = kd_rotate_header_view(meta, &view)))
		return r;
	if (view) {
		r = kd_header_allow(view, hdr_size);
		json_object_put(view);
		return r;
	}
	for (size_t i = 0; i < KD_ARRAY_SIZE(allow_checks); i++)
		if ((r = allow_checks[i](&a)))
			return r;
	return 0;
}

/* ---------------------------------------------------------------- pin params */

struct enc {
	uint8_t buf[512];
	size_t len;
	bool overflow;
};

static void put(struct enc *e, const void *p, size_t n)
{
	if (n > sizeof(e->buf) - e->len) {
		e->overflow = true;
		return;
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void put_str(struct enc *e, const char *s)
{
	uint8_t l[4];

	kd_put_le32(l, (uint32_t)strlen(s));
	put(e, l, 4);
	put(e, s, strlen(s));
}

static void put_u64(struct enc *e, uint64_t v)
{
	uint8_t b[8];

	kd_put_le64(b, v);
	put(e, b, 8);
}

static int pin_params_plain(struct json_object *meta, const char *uuid, int keyslot,
			    uint8_t **ret, size_t *ret_len)
{
	json_object *segs, *seg, *slots, *ks, *kdf, *integ;
	const char *enc, *size_s, *kdf_type, *kdf_hash, *integ_type = "";
	char id[12];
	int64_t key_size, sector, iter;
	uint64_t off, size = UINT64_MAX;
	struct enc e = {.len = 0};
	uint8_t *out;
	int r;

	snprintf(id, sizeof(id), "%d", keyslot);
	if ((r = kd_lj_obj(meta, "LUKS2 metadata", "segments", &segs)) ||
	    (r = kd_lj_obj(segs, "LUKS2 segments", "0", &seg)) ||
	    (r = kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &slots)) ||
	    (r = kd_lj_obj(slots, "LUKS2 keyslots", id, &ks)) ||
	    (r = kd_lj_obj(ks, "keyslot", "kdf", &kdf)) ||
	    (r = kd_lj_u64(seg, "segment 0", "offset", &off)) ||
	    (r = kd_lj_str(seg, "segment 0", "encryption", &enc)) ||
	    (r = kd_lj_str(seg, "segment 0", "size", &size_s)) ||
	    (r = kd_lj_int(seg, "segment 0", "sector_size", 0, UINT32_MAX, &sector)) ||
	    (r = kd_lj_int(ks, "keyslot", "key_size", 0, UINT32_MAX, &key_size)) ||
	    (r = kd_lj_str(kdf, "keyslot kdf", "type", &kdf_type)) ||
	    (r = kd_lj_str(kdf, "keyslot kdf", "hash", &kdf_hash)) ||
	    (r = kd_lj_int(kdf, "keyslot kdf", "iterations", 0, UINT32_MAX, &iter)) ||
	    (r = kd_lj_opt(seg, "segment 0", "integrity", json_type_object, &integ)))
	{
		char d[200];

		snprintf(d, sizeof(d), "%s", kd_err_detail(r));
		return kd_fail(r, "LUKS2 metadata lacks the parameters the pin covers: %s", d);
	}
	if (strcmp(size_s, "dynamic") && (r = kd_lj_u64(seg, "segment 0", "size", &size)))
		return r;
	if (integ && kd_lj_str(integ, "segment 0 integrity", "type", &integ_type))
		integ_type = "";
	/* Length-prefixed fields: no two parameter sets encode the same bytes. */
	put_str(&e, "keyd-pin-v1");
	put_str(&e, uuid);
	put_str(&e, enc);
	put_u64(&e, (uint64_t)key_size);
	put_u64(&e, (uint64_t)sector);
	put_u64(&e, off);
	put_u64(&e, size);
	put_u64(&e, (uint64_t)keyslot);
	put_str(&e, kdf_type);
	put_str(&e, kdf_hash);
	put_u64(&e, (uint64_t)iter);
	/* Only present on --integrity volumes, so plain volumes keep their pins. */
	if (integ)
		put_str(&e, integ_type);
	if (e.overflow)
		return kd_fail(KD_ETAMPER, "LUKS2 pin parameters too long");
	out = malloc(e.len);
	if (!out)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	memcpy(out, e.buf, e.len);
	*ret = out;
	*ret_len = e.len;
	return 0;
}

int kd_header_pin_params(struct json_object *meta, const char *uuid, int keyslot,
			 uint8_t **ret, size_t *ret_len)
{
	json_object *view = NULL;
	int r;

	/* During a rotation the pin covers the header the rotation leads to
	 * (rotate.h), so a keyslot's pin stays valid while its volume rotates. */
	if ((r = kd_rotate_header_view(meta, &view)))
		return r;
	if (!view)
		return pin_params_plain(meta, uuid, keyslot, ret, ret_len);
	r = pin_params_plain(view, uuid, keyslot, ret, ret_len);
	json_object_put(view);
	return r;
}

json_object *kd_luks2_copy_status_json(const struct kd_luks2_copy *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(c->ok));
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)c->hdr_offset));
	if (c->ok)
		json_object_object_add(o, "seqid", json_object_new_int64((int64_t)c->seqid));
	else
		json_object_object_add(o, "error", json_object_new_string(c->err));
	return o;
}

int kd_header_read_file(const char *path, struct kd_header_health *ret_health,
			struct json_object **ret_meta)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %.200s: %s", path, strerror(errno));
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		(void)flock(fd, LOCK_SH);
	r = kd_header_read(fd, ret_health, ret_meta);
	close(fd);
	return r;
}
