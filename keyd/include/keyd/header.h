/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LUKS2 header reader and allow-list (docs/formats.md §6).
 *
 * keyd reads both binary header copies itself, read-only, before
 * libcryptsetup ever loads the device: libcryptsetup repairs a damaged copy
 * on load, and a refused unlock must not write. Each copy is checked the way
 * the LUKS2 on-disk format defines it and libcryptsetup reads it (magic,
 * version 2, a legal hdr_size, its own offset, a secondary whose size is its
 * offset, SHA-256 over the whole area with the checksum field zeroed, JSON
 * that starts at the first byte with only NUL bytes after it). The copy
 * libcryptsetup would use (the valid one with the higher seqid; the primary
 * on a tie) then goes through the allow-list, because the host owns the
 * disk and can write any header: a cipher_null keyslot or segment that
 * accepts any passphrase and hands out a known volume key is the attack of
 * CVE-2025-59054 / CVE-2025-58356. The allow-list is at least as strict as
 * libcryptsetup's own validation, so keyd never accepts what libcryptsetup
 * would refuse or read differently. Every JSON member is read through the
 * typed getters of luks2json.h.
 *
 * When libcryptsetup must load a header for a command that only reads, it
 * is given a private copy (kd_header_snapshot); repairing a copy on the
 * device is only ever the explicit kd_header_repair.
 */
#ifndef KEYD_HEADER_H
#define KEYD_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define KD_LUKS2_BIN_SIZE 4096u
#define KD_LUKS2_HDR_MAX (4u * 1024u * 1024u)
#define KD_LUKS2_UUID_MAX 40u
#define KD_LUKS2_LABEL_MAX 48u

/* One binary header copy, parsed. */
struct kd_luks2_copy {
	bool ok;
	char err[160];      /* why it is not ok */
	uint64_t hdr_size;
	uint64_t seqid;
	uint64_t hdr_offset;
	char uuid[KD_LUKS2_UUID_MAX + 1];
	char label[KD_LUKS2_LABEL_MAX + 1];
	uint8_t csum[32];
};

/*
 * Parse one copy from buf (which must hold the whole hdr_size area, or at
 * least the 4096-byte binary header for the size to be learnt) at absolute
 * device offset `offset`. On success *ret_json (optional) is the malloc'ed
 * JSON text. Errors: KD_ETRUNC, KD_EMALFORMED, KD_ETAMPER (checksum).
 * ret->ok / ret->err are filled in either case.
 */
int kd_luks2_parse_copy(const uint8_t *buf, size_t len, uint64_t offset,
			struct kd_luks2_copy *ret, char **ret_json);

/* Header health for `status` and for the unlock path. */
struct kd_header_health {
	struct kd_luks2_copy primary, secondary;
	bool agree;        /* both valid, same seqid, same bytes */
	int used;          /* 0 primary, 1 secondary, -1 none valid */
	bool ambiguous;    /* copies disagree and the device carries another
			    * signature: libcryptsetup refuses to load it */
	int allow_err;     /* 0 or the allow-list's KD_E* code */
	char allow_detail[256];
};

/*
 * One line on the copies and what libcryptsetup would do with them ("both
 * header copies valid and identical", "primary header damaged, secondary
 * intact: needs keyd-recover repair (...)").
 */
const char *kd_header_health_summary(const struct kd_header_health *h);

/* "primary" or "secondary": the copy libcryptsetup would not use when the
 * copies disagree; NULL when they agree or none is valid. */
const char *kd_header_damaged_copy(const struct kd_header_health *h);

/*
 * Read both copies of the LUKS2 header of the file/device at fd. On success
 * *ret_meta is the parsed JSON of the used copy (json_object_put to free)
 * and *ret_health is filled. The allow-list has been run; its verdict is in
 * ret_health->allow_err (the function still succeeds so that status can
 * show it). Errors: KD_EIO, KD_EMALFORMED (no valid LUKS2 copy).
 */
/* One header copy's health as a status JSON object {ok, offset, seqid|error}. */
struct json_object *kd_luks2_copy_status_json(const struct kd_luks2_copy *c);

int kd_header_read(int fd, struct kd_header_health *ret_health, struct json_object **ret_meta);
/* The same on the device or image file path, read-only (a shared lock on image files). */
int kd_header_read_file(const char *path, struct kd_header_health *ret_health,
			struct json_object **ret_meta);

/*
 * The allow-list on parsed LUKS2 JSON metadata with header size hdr_size.
 * Errors: KD_ETAMPER / KD_EPOLICY with a one-line detail naming the check.
 */
int kd_header_allow(struct json_object *meta, uint64_t hdr_size);

/*
 * Canonical encoding of the security-relevant header parameters for the pin
 * of the keyd token on keyslot: UUID, segment cipher, volume key size,
 * sector size, segment offset and size, keyslot number, keyslot PBKDF
 * type/hash/iterations. meta must have passed kd_header_allow.
 */
int kd_header_pin_params(struct json_object *meta, const char *uuid, int keyslot,
			 uint8_t **ret, size_t *ret_len);

/*
 * KD_EREFUSED with a detail naming the damaged (or older) copy when the two
 * header copies disagree; 0 when they agree. Every write and every real
 * unlock requires agreement: libcryptsetup would otherwise repair the device
 * on load, and which copy wins is for an admin to decide (keyd-recover
 * repair), not for a side effect.
 */
int kd_header_require_agree(const struct kd_header_health *h);

/* ---------------------------------------------------------------- private copies */

/* What a private copy holds besides both header copies. */
enum kd_snap_scope {
	KD_SNAP_HEADER,   /* the header copies only: metadata reads */
	KD_SNAP_KEYSLOTS, /* and every keyslot area: opening a keyslot */
	KD_SNAP_METADATA, /* and the whole keyslots area: crypt_header_backup */
};

/* A private copy of a device's LUKS2 metadata in a memfd. */
struct kd_header_snap {
	int fd;                         /* the memfd, -1 when none */
	char path[32];                  /* /proc/self/fd/N, for crypt_init */
	struct kd_header_health health; /* of the copy (ambiguous: of the device) */
	struct json_object *meta;       /* of the copy's used header */
};

/*
 * Copy the LUKS2 metadata of the device or file at path into a memfd at
 * the same offsets (sparse, the device's size) and read the copy's header
 * back: libcryptsetup given s.path can repair or lock only the copy, and
 * parses exactly the bytes the caller checks. Nothing is written to path.
 * Errors: KD_ENOENT, KD_EIO, KD_EMALFORMED (no valid copy), KD_ENOMEM.
 */
int kd_header_snapshot(const char *path, enum kd_snap_scope scope, struct kd_header_snap *ret);
void kd_header_snap_free(struct kd_header_snap *s);

/*
 * keyd-recover repair: back up both header copies of the device at path
 * raw (to PREFIX.primary and PREFIX.secondary, which must not exist), then
 * write the copy libcryptsetup would use over the other one (binary header
 * adjusted for its position, checksum recomputed) and read both back.
 * Refused (KD_EREFUSED) when the copies already agree, when no copy is
 * valid, or when the good copy fails the allow-list (restore a backup
 * instead). *ret_which (optional): "primary" or "secondary", the copy
 * rewritten.
 */
int kd_header_repair(const char *path, const char *backup_prefix, const char **ret_which);

/* Strict decimal u64 of a LUKS2 JSON string field ("32768"). */
int kd_luks2_u64(struct json_object *o, const char *key, uint64_t *ret);

#endif
