/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper for 57-rotate.sh: encrypt or decrypt 4096-byte sectors of a
 * LUKS2 data segment in place the way dm-crypt aes-xts-plain64 does (IV =
 * little-endian 512-byte sector number from the segment start), so a test
 * on an image file (no device-mapper) can put known plaintext under a
 * volume key and read it back under another.
 *
 *   xts-sector enc|dec KEYHEX FILE SEGMENT_OFFSET SECTORS
 *
 * KEYHEX is the 128-hex-digit volume key (cryptsetup --dump-volume-key).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/evp.h>

#define SECTOR 4096

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int main(int argc, char **argv)
{
	uint8_t key[64], buf[SECTOR], out[SECTOR + 32], iv[16];
	unsigned long long off, n;
	int fd, enc, len;

	if (argc != 6 || (strcmp(argv[1], "enc") && strcmp(argv[1], "dec")) ||
	    strlen(argv[2]) != 128) {
		fprintf(stderr, "usage: xts-sector enc|dec KEYHEX FILE OFFSET SECTORS\n");
		return 2;
	}
	enc = !strcmp(argv[1], "enc");
	for (int i = 0; i < 64; i++) {
		int a = hexval(argv[2][2 * i]), b = hexval(argv[2][2 * i + 1]);

		if (a < 0 || b < 0)
			return 2;
		key[i] = (uint8_t)(a << 4 | b);
	}
	off = strtoull(argv[4], NULL, 10);
	n = strtoull(argv[5], NULL, 10);
	if ((fd = open(argv[3], O_RDWR)) < 0) {
		perror(argv[3]);
		return 1;
	}
	for (unsigned long long s = 0; s < n; s++) {
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		uint64_t sec = s * (SECTOR / 512);
		off_t pos = (off_t)(off + s * SECTOR);

		memset(iv, 0, sizeof(iv));
		for (int i = 0; i < 8; i++)
			iv[i] = (uint8_t)(sec >> (8 * i));
		if (pread(fd, buf, SECTOR, pos) != SECTOR || !c ||
		    !EVP_CipherInit_ex(c, EVP_aes_256_xts(), NULL, key, iv, enc) ||
		    !EVP_CipherUpdate(c, out, &len, buf, SECTOR) || len != SECTOR ||
		    pwrite(fd, out, SECTOR, pos) != SECTOR) {
			fprintf(stderr, "sector %llu failed\n", s);
			return 1;
		}
		EVP_CIPHER_CTX_free(c);
	}
	close(fd);
	return 0;
}
