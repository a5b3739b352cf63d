/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the whole-image targets (fuzz_volume, fuzz_admin): the input
 * becomes the start of a private, sparse image file that the library opens
 * by path, exactly as keyd and keyd-recover open a device.
 *
 * Input layout: one control byte, then the first bytes of a device (both
 * header copies, as `tests/hostile/gen.py header IMG OUT` writes them, with
 * the control byte in front). A fuzzer cannot forge SHA-256: control bit 0 /
 * bit 1 make the harness recompute the primary / secondary checksum, so the
 * JSON behind a valid checksum is reached; with them clear the checksum
 * paths themselves are fuzzed. The other bits are the target's.
 */
#ifndef KEYD_FUZZ_IMAGE_H
#define KEYD_FUZZ_IMAGE_H

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "keyd/header.h"

/* Larger than the 16 MiB data offset keyd and cryptsetup use by default. */
#define FUZZ_IMAGE_SIZE (20u * 1024u * 1024u)

static char fuzz_dir[64];

/* A private directory for the image and its side files. */
static void fuzz_image_init(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(fuzz_dir, sizeof(fuzz_dir), "%.40s/keyd-fuzz.XXXXXX", base ? base : "/tmp");
	FUZZ_ASSERT(mkdtemp(fuzz_dir));
}

static void fuzz_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", fuzz_dir, name);
}

static uint64_t fuzz_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Recompute the SHA-256 of the copy at off if its hdr_size fits the input. */
static uint64_t fuzz_fix_csum(uint8_t *img, size_t len, size_t off)
{
	uint64_t hs;
	unsigned dl;

	if (off > len || len - off < KD_LUKS2_BIN_SIZE)
		return 0;
	hs = fuzz_be64(img + off + 8);
	if (hs < KD_LUKS2_BIN_SIZE || hs > len - off || hs > KD_LUKS2_HDR_MAX)
		return 0;
	memset(img + off + 448, 0, 64);
	EVP_Digest(img + off, hs, img + off + 448, &dl, EVP_sha256(), NULL);
	return hs;
}

/* Write the image for data[0..size) to path; 0 if the input is too short. */
static int fuzz_write_image(const char *path, const uint8_t *data, size_t size)
{
	uint8_t *img;
	size_t len;
	uint64_t hs = 0;
	int fd;

	if (size < 2)
		return 0;
	len = size - 1;
	img = malloc(len);
	FUZZ_ASSERT(img);
	memcpy(img, data + 1, len);
	if (data[0] & 1)
		hs = fuzz_fix_csum(img, len, 0);
	if (data[0] & 2)
		fuzz_fix_csum(img, len, hs ? hs : 16384);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, img, len) == (ssize_t)len);
	FUZZ_ASSERT(ftruncate(fd, FUZZ_IMAGE_SIZE) == 0);
	close(fd);
	free(img);
	return 1;
}

/*
 * A fingerprint of the file for the read-only property: SHA-256 of its first
 * `len` bytes (the input: both header copies), its size and its allocated
 * blocks (a write anywhere past the input fills a hole of the sparse file).
 * Cheaper than hashing 20 MiB per run, and it misses no write.
 */
struct fuzz_print {
	uint8_t sha[32];
	off_t size;
	blkcnt_t blocks;
};

static void fuzz_fingerprint(const char *path, size_t len, struct fuzz_print *out)
{
	uint8_t *buf = malloc(len ? len : 1);
	struct stat st;
	unsigned dl;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	FUZZ_ASSERT(buf && fd >= 0);
	FUZZ_ASSERT(pread(fd, buf, len, 0) == (ssize_t)len);
	FUZZ_ASSERT(fstat(fd, &st) == 0);
	memset(out, 0, sizeof(*out));
	EVP_Digest(buf, len, out->sha, &dl, EVP_sha256(), NULL);
	out->size = st.st_size;
	out->blocks = st.st_blocks;
	close(fd);
	free(buf);
}

#endif
