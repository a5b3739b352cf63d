/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-recover repair (header.h): the one place keyd rewrites a header copy
 * from the other. It is an explicit admin act because which copy wins is
 * a decision: libcryptsetup would make it silently on any load (the newer
 * valid copy), and a hostile host could have forged either. Both copies are
 * saved raw first, so the evidence survives the repair.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/util.h"

/* Binary header offsets (LUKS2 on-disk format, §2). */
#define OFF_MAGIC 0
#define OFF_SALT 104
#define OFF_HDR_OFFSET 256
#define OFF_CSUM 448
#define SALT_LEN 64
#define CSUM_FIELD 64

static const uint8_t magic1[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
static const uint8_t magic2[6] = {'S', 'K', 'U', 'L', 0xba, 0xbe};

static int read_area(int fd, uint64_t off, uint64_t len, uint8_t **ret)
{
	uint8_t *b = malloc(len);

	if (!b)
		return kd_fail(KD_ENOMEM, "out of memory (luks2)");
	if (pread(fd, b, len, (off_t)off) != (ssize_t)len) {
		free(b);
		return kd_fail(KD_EIO, "cannot read the header area at %llu", (unsigned long long)off);
	}
	*ret = b;
	return 0;
}

static int save(const char *prefix, const char *which, const uint8_t *b, size_t len)
{
	char name[4096];
	int fd;

	if (snprintf(name, sizeof(name), "%s.%s", prefix, which) >= (int)sizeof(name))
		return kd_fail(KD_EINVAL, "backup name too long");
	fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kd_fail(errno == EEXIST ? KD_EEXIST : KD_EIO, "cannot create %.200s: %s", name,
			       strerror(errno));
	if (write(fd, b, len) != (ssize_t)len || fsync(fd)) {
		close(fd);
		unlink(name);
		return kd_fail(KD_EIO, "cannot write %.200s", name);
	}
	close(fd);
	return 0;
}

/* The good copy, rewritten for the other position: magic, hdr_offset, a
 * fresh salt (as libcryptsetup does on recovery), checksum. */
static int retarget(uint8_t *a, size_t len, uint64_t to)
{
	static const uint8_t zero[CSUM_FIELD];
	uint8_t d[32];
	unsigned dl = 0;

	memcpy(a + OFF_MAGIC, to ? magic2 : magic1, sizeof(magic1));
	for (int i = 0; i < 8; i++)
		a[OFF_HDR_OFFSET + i] = (uint8_t)(to >> (56 - 8 * i));
	if (RAND_bytes(a + OFF_SALT, SALT_LEN) != 1)
		return kd_fail(KD_ECRYPTO, "no randomness for the header salt");
	memcpy(a + OFF_CSUM, zero, sizeof(zero));
	if (!EVP_Digest(a, len, d, &dl, EVP_sha256(), NULL) || dl != sizeof(d))
		return kd_fail(KD_ECRYPTO, "SHA-256 failed");
	memcpy(a + OFF_CSUM, d, sizeof(d));
	return 0;
}

int kd_header_repair(const char *path, const char *backup_prefix, const char **ret_which)
{
	struct kd_header_health h, after;
	uint8_t *prim = NULL, *sec = NULL;
	struct stat st;
	uint64_t size, from, to;
	int fd, r;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %.200s: %s", path,
			       strerror(errno));
	/* libcryptsetup's writers flock image files: exclude them meanwhile. */
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return kd_fail(KD_EREFUSED, "%.200s is locked by another writer", path);
	}
	if ((r = kd_header_read(fd, &h, NULL)))
		goto out;
	if (h.agree) {
		r = kd_fail(KD_EREFUSED, "both header copies of %.200s are valid and identical; "
					 "nothing to repair", path);
		goto out;
	}
	if (h.allow_err) {
		r = kd_fail(KD_EREFUSED, "the %s copy, the one a repair would keep, fails the "
					 "allow-list (%s); restore a header backup instead",
			    h.used ? "secondary" : "primary", h.allow_detail);
		goto out;
	}
	size = h.used ? h.secondary.hdr_size : h.primary.hdr_size;
	from = h.used ? h.secondary.hdr_offset : 0;
	to = h.used ? 0 : size;
	/* Evidence first: both copies as they are on the device. */
	if ((r = read_area(fd, 0, size, &prim)) || (r = read_area(fd, size, size, &sec)) ||
	    (r = save(backup_prefix, "primary", prim, size)) ||
	    (r = save(backup_prefix, "secondary", sec, size)))
		goto out;
	free(prim);
	prim = NULL;
	if ((r = read_area(fd, from, size, &prim)) || (r = retarget(prim, size, to)))
		goto out;
	if (pwrite(fd, prim, size, (off_t)to) != (ssize_t)size || fsync(fd)) {
		r = kd_fail(KD_EIO, "cannot write the repaired header copy: %s", strerror(errno));
		goto out;
	}
	if ((r = kd_header_read(fd, &after, NULL)))
		goto out;
	if (!after.agree || after.allow_err) {
		r = kd_fail(KD_EIO, "the header copies still disagree after the repair (%s)",
			    kd_header_health_summary(&after));
		goto out;
	}
	if (ret_which)
		*ret_which = to ? "secondary" : "primary";
out:
	free(prim);
	free(sec);
	close(fd);
	return r;
}
