/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handoff frames (kd_frame_parse, kd_frame_parse_header) and the frame
 * reader over a byte stream (kd_frame_recv): the peer is on the network and
 * unverified when its frames are parsed.
 * Properties: a parsed frame re-encodes to the input bytes; the header
 * parser agrees with the whole-frame parser; kd_frame_recv over the same
 * bytes returns the same payload.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

struct mem {
	const uint8_t *p;
	size_t n, off;
};

static int mem_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	struct mem *m = ctx;

	(void)timeout_ms;
	if (len > m->n - m->off)
		return KD_EIO;
	memcpy(buf, m->p + m->off, len);
	m->off += len;
	return 0;
}

static int mem_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t type = 0, htype = 0;
	uint32_t hlen = 0;
	const uint8_t *payload = NULL;
	size_t plen = 0, elen = 0;
	uint8_t *enc = NULL, *got = NULL;
	size_t got_len = 0;
	struct mem m = {data, size, 0};
	struct kd_io io = {mem_read, mem_write, &m, 1000, 0};
	int r, rh;

	rh = kd_frame_parse_header(data, size, &htype, &hlen);
	r = kd_frame_parse(data, size, &type, &payload, &plen);
	if (r == 0) {
		FUZZ_ASSERT(rh == 0 && htype == type && hlen == plen);
		FUZZ_ASSERT(size == KD_FRAME_HDR + plen && size <= KD_FRAME_MAX);
		FUZZ_ASSERT(payload == data + KD_FRAME_HDR);
		(void)kd_msg_name(type);
		FUZZ_ASSERT(kd_frame_encode(type, payload, plen, &enc, &elen) == 0);
		FUZZ_ASSERT(elen == size && memcmp(enc, data, size) == 0);
		free(enc);
	}
	if (rh == 0) {
		/* The stream reader: expect the announced type so ERROR is not special. */
		r = kd_frame_recv(&io, htype, &got, &got_len);
		if (r == 0) {
			FUZZ_ASSERT(got_len == hlen && size >= KD_FRAME_HDR + got_len);
			FUZZ_ASSERT(got_len == 0 || memcmp(got, data + KD_FRAME_HDR, got_len) == 0);
			free(got);
		} else {
			FUZZ_ASSERT(size < KD_FRAME_HDR + (size_t)hlen || htype == KD_MSG_ERROR);
		}
	}
	/* A peer's ERROR instead of what we wait for: the reason is sanitised. */
	m.off = 0;
	got = NULL;
	r = kd_frame_recv(&io, KD_MSG_DONE, &got, &got_len);
	if (r == 0)
		free(got);
	if (r == KD_EREFUSED)
		for (const char *d = kd_err_detail(r); *d; d++)
			FUZZ_ASSERT(*d >= 0x20 && *d < 0x7f);
	kd_err_clear();
	return 0;
}
