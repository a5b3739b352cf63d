/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LUKS2 header reader and allow-list (kd_header_read): the host owns the
 * disk and writes any header it likes (CVE-2025-59054 / CVE-2025-58356).
 *
 * Input: one control byte, then the first bytes of the device. A fuzzer
 * cannot forge SHA-256, so control bit 0 / bit 1 make the harness fix the
 * primary / secondary copy's checksum before reading; with them clear the
 * checksum path itself is fuzzed.
 * Properties: the copy used is one that parsed; "agree" implies both copies
 * parsed with the same seqid; a header that passes the allow-list yields
 * deterministic pin parameters for every keyslot it names.
 */
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/header.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Recompute the checksum of the copy at off, if its hdr_size fits. */
static uint64_t fix_csum(uint8_t *img, size_t len, size_t off)
{
	uint64_t hs;
	unsigned dl;

	if (off > len || len - off < KD_LUKS2_BIN_SIZE)
		return 0;
	hs = be64_at(img + off + 8);
	if (hs < KD_LUKS2_BIN_SIZE || hs > len - off || hs > KD_LUKS2_HDR_MAX)
		return 0;
	memset(img + off + 448, 0, 32);
	EVP_Digest(img + off, hs, img + off + 448, &dl, EVP_sha256(), NULL);
	return hs;
}

static void check_pins(json_object *meta, const char *uuid)
{
	json_object *slots;

	if (!json_object_object_get_ex(meta, "keyslots", &slots) ||
	    !json_object_is_type(slots, json_type_object))
		return;
	json_object_object_foreach(slots, key, val)
	{
		uint8_t *a = NULL, *b = NULL;
		size_t al = 0, bl = 0;
		char *end;
		long id = strtol(key, &end, 10);

		(void)val;
		if (*end || id < 0 || id > 31)
			continue;
		if (kd_header_pin_params(meta, uuid, (int)id, &a, &al) == 0) {
			FUZZ_ASSERT(kd_header_pin_params(meta, uuid, (int)id, &b, &bl) == 0);
			FUZZ_ASSERT(al == bl && memcmp(a, b, al) == 0);
		}
		free(a);
		free(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_header_health h;
	json_object *meta = NULL;
	uint8_t *img;
	size_t len;
	uint64_t hs = 0;
	int fd, r;

	if (size < 1 || size > 2 * 1024 * 1024)
		return 0;
	len = size - 1;
	img = malloc(len ? len : 1);
	FUZZ_ASSERT(img);
	memcpy(img, data + 1, len);
	if (data[0] & 1)
		hs = fix_csum(img, len, 0);
	if (data[0] & 2)
		fix_csum(img, len, hs ? hs : 0x4000);

	fd = memfd_create("fuzz-luks2", MFD_CLOEXEC);
	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, img, len) == (ssize_t)len);
	free(img);

	r = kd_header_read(fd, &h, &meta);
	close(fd);
	(void)kd_header_health_summary(&h);
	if (r) {
		FUZZ_ASSERT(meta == NULL || r == 0);
		kd_err_clear();
		return 0;
	}
	FUZZ_ASSERT(h.used == 0 || h.used == 1);
	FUZZ_ASSERT(h.used == 0 ? h.primary.ok : h.secondary.ok);
	if (h.agree)
		FUZZ_ASSERT(h.primary.ok && h.secondary.ok && h.primary.seqid == h.secondary.seqid);
	FUZZ_ASSERT(memchr(h.primary.uuid, 0, sizeof(h.primary.uuid)));
	FUZZ_ASSERT(memchr(h.allow_detail, 0, sizeof(h.allow_detail)));
	if (meta && h.allow_err == 0)
		check_pins(meta, h.used ? h.secondary.uuid : h.primary.uuid);
	json_object_put(meta);
	kd_err_clear();
	return 0;
}
