/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private copies of a device's LUKS2 metadata (header.h).
 *
 * libcryptsetup writes on load: crypt_load rewrites a damaged or older
 * header copy from the good one (LUKS2_disk_hdr_read's recovery), and takes
 * metadata locks on the device. A command that only reads (status, a dry-run
 * unlock, keyd passphrase, the token plugin's checks, keyd-recover status,
 * unlock --check, header-backup) must leave the device byte-identical: a
 * host watching the disk would otherwise learn which copy the guest trusted,
 * and the damaged copy an admin needs as evidence would be gone. So such
 * commands give libcryptsetup a copy: a memfd holding the bytes of the
 * header (and, when a keyslot must be opened, the keyslot areas) at their
 * device offsets, sparse elsewhere and as large as the device. Whatever
 * libcryptsetup repairs or locks, it does so in that copy.
 *
 * The copy is what gets checked: it is read back with kd_header_read and
 * its own health and metadata are what the caller uses, so the bytes
 * libcryptsetup parses are exactly the bytes the allow-list passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/luks2json.h"

#define KEYSLOTS_SIZE_MAX (128u * 1024u * 1024u)

static int copy_range(int in, int out, uint64_t off, uint64_t len, uint64_t dev_size)
{
	uint8_t buf[65536];

	if (off >= dev_size)
		return 0;
	if (len > dev_size - off)
		len = dev_size - off;
	while (len) {
		size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t n = pread(in, buf, want, (off_t)off);

		if (n <= 0)
			return kd_fail(KD_EIO, "cannot read the LUKS2 metadata at %llu: %s",
				       (unsigned long long)off, n < 0 ? strerror(errno) : "short read");
		if (pwrite(out, buf, (size_t)n, (off_t)off) != n)
			return kd_fail(KD_EIO, "cannot write the private header copy: %s",
				       strerror(errno));
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* The keyslot areas the metadata names (typed getters: it may be hostile). */
static int copy_keyslot_areas(int in, int out, json_object *meta, uint64_t dev_size)
{
	json_object *slots;
	int r;

	if (!meta || kd_lj_obj(meta, "LUKS2 metadata", "keyslots", &slots))
		return 0;
	json_object_object_foreach(slots, id, ks) {
		json_object *area;
		uint64_t off, len;

		if (kd_lj_obj(ks, "keyslot", "area", &area) ||
		    kd_lj_u64(area, "keyslot area", "offset", &off) ||
		    kd_lj_u64(area, "keyslot area", "size", &len) || len > KEYSLOTS_SIZE_MAX) {
			(void)id;
			continue;
		}
		if ((r = copy_range(in, out, off, len, dev_size)))
			return r;
	}
	return 0;
}

/* End of the header copies as read: both copies of the size in use, and
 * a damaged primary's own (legal) claimed size. */
static uint64_t header_end(const struct kd_header_health *h)
{
	uint64_t end = 0;

	if (h->primary.ok)
		end = 2 * h->primary.hdr_size;
	if (h->secondary.ok && h->secondary.hdr_offset + h->secondary.hdr_size > end)
		end = h->secondary.hdr_offset + h->secondary.hdr_size;
	if (!h->primary.ok && h->primary.hdr_size <= KD_LUKS2_HDR_MAX &&
	    h->primary.hdr_size > end)
		end = h->primary.hdr_size;
	return end;
}

void kd_header_snap_free(struct kd_header_snap *s)
{
	if (!s)
		return;
	json_object_put(s->meta);
	s->meta = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int kd_header_snapshot(const char *path, enum kd_snap_scope scope, struct kd_header_snap *ret)
{
	struct kd_header_snap s = {.fd = -1};
	struct kd_header_health dh;
	json_object *dmeta = NULL;
	struct stat st;
	uint64_t dev_size, ks_size = 0, hdr_end;
	off_t end;
	int in, r;

	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %.200s: %s", path,
			       strerror(errno));
	/* libcryptsetup flock()s image files while it writes metadata. */
	if (!fstat(in, &st) && S_ISREG(st.st_mode))
		(void)flock(in, LOCK_SH);
	end = lseek(in, 0, SEEK_END);
	if (end < 0) {
		r = kd_fail(KD_EIO, "cannot size %.200s: %s", path, strerror(errno));
		goto out;
	}
	dev_size = (uint64_t)end;
	if ((r = kd_header_read(in, &dh, &dmeta)))
		goto out;
	hdr_end = header_end(&dh);
	s.fd = memfd_create("keyd-luks2-header", MFD_CLOEXEC);
	if (s.fd < 0) {
		r = kd_fail(KD_EIO, "cannot create a private header copy: %s", strerror(errno));
		goto out;
	}
	/* As large as the device (sparse): libcryptsetup checks that the
	 * metadata and data offset fit the device. */
	if (ftruncate(s.fd, (off_t)dev_size)) {
		r = kd_fail(KD_EIO, "cannot size the private header copy: %s", strerror(errno));
		goto out;
	}
	if ((r = copy_range(in, s.fd, 0, hdr_end, dev_size)))
		goto out;
	if (scope == KD_SNAP_KEYSLOTS && (r = copy_keyslot_areas(in, s.fd, dmeta, dev_size)))
		goto out;
	if (scope == KD_SNAP_METADATA) {
		json_object *config;

		/* The whole keyslots area, as crypt_header_backup reads it. */
		if (!dmeta || kd_lj_obj(dmeta, "LUKS2 metadata", "config", &config) ||
		    kd_lj_u64(config, "config", "keyslots_size", &ks_size) ||
		    ks_size > KEYSLOTS_SIZE_MAX)
			ks_size = 0;
		if ((r = copy_range(in, s.fd, hdr_end, ks_size, dev_size)))
			goto out;
	}
	close(in);
	in = -1;
	/* The copy is what libcryptsetup will parse: check the copy. */
	if ((r = kd_header_read(s.fd, &s.health, &s.meta)))
		goto out;
	/* Signatures elsewhere on the device are not in the copy. */
	s.health.ambiguous = dh.ambiguous;
	snprintf(s.path, sizeof(s.path), "/proc/self/fd/%d", s.fd);
	*ret = s;
	s.fd = -1;
	s.meta = NULL;
out:
	if (in >= 0)
		close(in);
	json_object_put(dmeta);
	kd_header_snap_free(&s);
	return r;
}

int kd_header_require_agree(const struct kd_header_health *h)
{
	const char *bad = kd_header_damaged_copy(h);
	const struct kd_luks2_copy *c;

	if (!bad)
		return 0;
	c = h->used ? &h->primary : &h->secondary;
	if (!c->ok)
		return kd_fail(KD_EREFUSED, "LUKS2 header copies disagree: the %s copy is damaged "
					    "(%s); keyd writes and unlocks nothing until keyd-recover "
					    "repair", bad, c->err);
	return kd_fail(KD_EREFUSED, "LUKS2 header copies disagree: the %s copy is %s; keyd writes "
				    "and unlocks nothing until keyd-recover repair", bad,
		       c->seqid != (h->used ? h->secondary.seqid : h->primary.seqid)
			       ? "older (interrupted write?)"
			       : "different at the same seqid");
}
