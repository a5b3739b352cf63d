/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handoff message frames (docs/handoff-protocol.md).
 *
 * Wire format, little-endian like every other keyd encoding:
 *
 *   u32 length   number of payload bytes that follow the 6-byte header
 *   u16 type     one of KD_MSG_*; anything else is refused
 *   u8  payload[length]
 *
 * A whole frame (header + payload) is at most KD_FRAME_MAX = 64 KiB; a peer
 * announcing more is refused from the header alone, before anything is
 * allocated, so a hostile peer cannot make us buffer more than that.
 *
 * Reads go through struct kd_io, whose read callback honours a timeout, and
 * every receive also honours an absolute deadline for the whole exchange:
 * a peer that stops talking costs at most min(read timeout, deadline).
 */
#ifndef KEYD_FRAME_H
#define KEYD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define KD_FRAME_HDR 6u
#define KD_FRAME_MAX 65536u
#define KD_FRAME_PAYLOAD_MAX (KD_FRAME_MAX - KD_FRAME_HDR)

enum kd_msg_type {
	KD_MSG_HELLO = 1,   /* report, cert table, manifest, N's public key (both ways) */
	KD_MSG_VOLUMES = 2, /* O -> N: volume UUIDs to hand over */
	KD_MSG_ACCEPT = 3,  /* N -> O: the volumes N takes (no secret) */
	KD_MSG_DONE = 4,    /* O -> N: per volume enrollment result */
	KD_MSG_ERROR = 5,   /* either way: one-line reason, then close */
	KD_MSG__MAX = 5,
};

/* Name of a message type ("HELLO"), "unknown" otherwise. */
const char *kd_msg_name(uint16_t type);

/*
 * Encode a frame into a new malloc'ed buffer. KD_EINVAL for an unknown type
 * or a payload above KD_FRAME_PAYLOAD_MAX.
 */
int kd_frame_encode(uint16_t type, const void *payload, size_t len, uint8_t **ret,
		    size_t *ret_len);

/*
 * Check a 6-byte frame header. Errors: KD_ETRUNC (fewer than 6 bytes),
 * KD_EPROTO (unknown type, or a length above the cap). Outputs are written
 * only on success.
 */
int kd_frame_parse_header(const uint8_t *hdr, size_t len, uint16_t *ret_type,
			  uint32_t *ret_len);

/*
 * Parse exactly one whole frame from buf: header, then exactly `length`
 * payload bytes, no trailing bytes. *ret_payload points into buf.
 * Errors: KD_ETRUNC, KD_EPROTO, KD_EMALFORMED (trailing bytes).
 */
int kd_frame_parse(const uint8_t *buf, size_t len, uint16_t *ret_type,
		   const uint8_t **ret_payload, size_t *ret_len);

/*
 * A byte stream with timeouts. read() fills exactly len bytes or fails;
 * timeout_ms bounds the whole call. Both return 0 or a KD_E* code:
 * KD_ETIMEOUT, KD_EIO (peer closed or socket error).
 */
struct kd_io {
	int (*read)(void *ctx, void *buf, size_t len, int timeout_ms);
	int (*write)(void *ctx, const void *buf, size_t len, int timeout_ms);
	void *ctx;
	int read_timeout_ms; /* per read */
	int64_t deadline_ms; /* absolute CLOCK_MONOTONIC ms for the exchange; 0 = none */
};

/* CLOCK_MONOTONIC in milliseconds. */
int64_t kd_now_ms(void);
/*
 * Wait until fd is ready for ev (POLLIN/POLLOUT) or the monotonic deadline
 * `until` (kd_now_ms() scale) passes. 0, KD_ETIMEOUT or KD_EIO; EINTR is retried.
 */
int kd_fd_wait(int fd, short ev, int64_t until);

/* kd_io over a plain, blocking-or-not file descriptor (poll-based). */
void kd_io_fd(struct kd_io *io, int *fd);

/* Send one frame. */
int kd_frame_send(struct kd_io *io, uint16_t type, const void *payload, size_t len);

/*
 * Receive one frame. If the peer sends KD_MSG_ERROR instead of `expect`, the
 * result is KD_EREFUSED with a detail quoting the peer's (sanitised) reason;
 * any other unexpected type is KD_EPROTO. *ret_payload is malloc'ed (NULL
 * for an empty payload) and may hold secrets: the caller wipes it.
 */
int kd_frame_recv(struct kd_io *io, uint16_t expect, uint8_t **ret_payload, size_t *ret_len);

#endif
