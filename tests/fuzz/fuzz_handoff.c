/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handoff message payloads (HELLO, VOLUMES, ACCEPT, DONE), parsed before the
 * peer is verified. The first input byte picks the message; the rest is the
 * payload. ACCEPT and DONE must name the UUIDs that were asked for, which a
 * fuzzer cannot guess, so the harness takes them from where they sit in the
 * input itself (it has to, or the parsers past the UUID check are never
 * reached).
 * Properties: every accepted payload re-encodes to exactly its bytes; a
 * HELLO's handoff key is 32 bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/handoff.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static void hello(const uint8_t *p, size_t n)
{
	struct kd_hello h;
	uint8_t *enc = NULL;
	size_t elen = 0;

	if (kd_hello_parse(p, n, &h))
		return;
	FUZZ_ASSERT(h.role == KD_ROLE_OLD || h.role == KD_ROLE_NEW);
	FUZZ_ASSERT(h.report_len == KD_REPORT_SIZE);
	FUZZ_ASSERT(h.report >= p && h.manifest + h.manifest_len <= p + n);
	FUZZ_ASSERT(h.kex_len == KD_KEX_PUB_LEN);
	FUZZ_ASSERT(kd_hello_encode(&h, &enc, &elen) == 0);
	FUZZ_ASSERT(elen == n && memcmp(enc, p, n) == 0);
	free(enc);
}

static void volumes(const uint8_t *p, size_t n)
{
	char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	size_t cnt = 0, elen = 0;
	uint8_t *enc = NULL;

	if (kd_volumes_parse(p, n, uuids, &cnt))
		return;
	FUZZ_ASSERT(cnt >= 1 && cnt <= KD_HANDOFF_MAX_VOLUMES);
	for (size_t i = 0; i < cnt; i++)
		FUZZ_ASSERT(strlen(uuids[i]) == KD_UUID_LEN);
	FUZZ_ASSERT(kd_volumes_encode((const char(*)[KD_UUID_LEN + 1])uuids, cnt, &enc, &elen) == 0);
	FUZZ_ASSERT(elen == n && memcmp(enc, p, n) == 0);
	free(enc);
}

/* The UUIDs an ACCEPT/DONE payload names (`extra` bytes after each), unvalidated. */
static size_t peek_uuids(const uint8_t *p, size_t n, size_t extra,
			 char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1])
{
	size_t cnt, off = 2;

	if (n < 2)
		return 0;
	cnt = (size_t)p[0] | (size_t)p[1] << 8;
	if (cnt == 0 || cnt > KD_HANDOFF_MAX_VOLUMES)
		return cnt > KD_HANDOFF_MAX_VOLUMES ? 1 : 0;
	for (size_t i = 0; i < cnt; i++) {
		if (n - off < KD_UUID_LEN)
			return i ? i : 1;
		memcpy(uuids[i], p + off, KD_UUID_LEN);
		uuids[i][KD_UUID_LEN] = 0;
		off += KD_UUID_LEN;
		if (n - off < extra)
			return i + 1;
		off += extra;
	}
	return cnt;
}

static void accept_msg(const uint8_t *p, size_t n)
{
	char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	size_t cnt, elen = 0;
	uint8_t *enc = NULL;

	memset(uuids, 'a', sizeof(uuids));
	for (size_t i = 0; i < KD_HANDOFF_MAX_VOLUMES; i++)
		uuids[i][KD_UUID_LEN] = 0;
	cnt = peek_uuids(p, n, 0, uuids);
	if (cnt == 0)
		cnt = 1;
	if (kd_accept_parse(p, n, (const char(*)[KD_UUID_LEN + 1])uuids, cnt))
		return;
	FUZZ_ASSERT(kd_accept_encode((const char(*)[KD_UUID_LEN + 1])uuids, cnt, &enc, &elen) == 0);
	FUZZ_ASSERT(elen == n && memcmp(enc, p, n) == 0);
	free(enc);
}

static void done(const uint8_t *p, size_t n)
{
	char uuids[KD_HANDOFF_MAX_VOLUMES][KD_UUID_LEN + 1];
	uint32_t slots[KD_HANDOFF_MAX_VOLUMES];
	size_t cnt, elen = 0;
	uint8_t *enc = NULL;

	memset(uuids, 'a', sizeof(uuids));
	for (size_t i = 0; i < KD_HANDOFF_MAX_VOLUMES; i++)
		uuids[i][KD_UUID_LEN] = 0;
	cnt = peek_uuids(p, n, 4, uuids);
	if (cnt == 0)
		cnt = 1;
	if (kd_done_parse(p, n, (const char(*)[KD_UUID_LEN + 1])uuids, cnt, slots))
		return;
	FUZZ_ASSERT(kd_done_encode((const char(*)[KD_UUID_LEN + 1])uuids, slots, cnt, &enc,
				   &elen) == 0);
	FUZZ_ASSERT(elen == n && memcmp(enc, p, n) == 0);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: hello(data + 1, size - 1); break;
	case 1: volumes(data + 1, size - 1); break;
	case 2: accept_msg(data + 1, size - 1); break;
	default: done(data + 1, size - 1); break;
	}
	kd_err_clear();
	return 0;
}
