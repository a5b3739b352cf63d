/* SPDX-License-Identifier: Apache-2.0 */
/* Handoff frames: u32 length, u16 type, payload; capped at 64 KiB. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/frame.h"
#include "keyd/secret.h"

const char *kd_msg_name(uint16_t type)
{
	switch (type) {
	case KD_MSG_HELLO: return "HELLO";
	case KD_MSG_VOLUMES: return "VOLUMES";
	case KD_MSG_ACCEPT: return "ACCEPT";
	case KD_MSG_DONE: return "DONE";
	case KD_MSG_ERROR: return "ERROR";
	default: return "unknown";
	}
}

int64_t kd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kd_frame_encode(uint16_t type, const void *payload, size_t len, uint8_t **ret,
		    size_t *ret_len)
{
	uint8_t *buf;

	if (type == 0 || type > KD_MSG__MAX)
		return kd_fail(KD_EINVAL, "frame type %u is not a handoff message", type);
	if (len > KD_FRAME_PAYLOAD_MAX)
		return kd_fail(KD_EINVAL, "frame payload of %zu bytes exceeds the %u-byte cap", len,
			       KD_FRAME_PAYLOAD_MAX);
	buf = malloc(KD_FRAME_HDR + len);
	if (!buf)
		return kd_fail(KD_ENOMEM, "out of memory (handoff)");
	kd_put_le32(buf, (uint32_t)len);
	kd_put_le16(buf + 4, type);
	if (len)
		memcpy(buf + KD_FRAME_HDR, payload, len);
	*ret = buf;
	*ret_len = KD_FRAME_HDR + len;
	return 0;
}

int kd_frame_parse_header(const uint8_t *hdr, size_t len, uint16_t *ret_type,
			  uint32_t *ret_len)
{
	struct kd_cursor c;
	uint32_t n;
	uint16_t t;

	kd_cur_init(&c, hdr, len);
	if (kd_cur_u32(&c, &n) || kd_cur_u16(&c, &t))
		return kd_fail(KD_ETRUNC, "frame header truncated (%zu of %u bytes)", len,
			       KD_FRAME_HDR);
	/* Cap first: an oversized announcement is refused before allocating. */
	if (n > KD_FRAME_PAYLOAD_MAX)
		return kd_fail(KD_EPROTO, "frame of %u bytes exceeds the %u-byte cap", n,
			       KD_FRAME_PAYLOAD_MAX);
	if (t == 0 || t > KD_MSG__MAX)
		return kd_fail(KD_EPROTO, "frame type %u is not a handoff message", t);
	*ret_type = t;
	*ret_len = n;
	return 0;
}

int kd_frame_parse(const uint8_t *buf, size_t len, uint16_t *ret_type,
		   const uint8_t **ret_payload, size_t *ret_len)
{
	struct kd_cursor c;
	const uint8_t *p;
	uint32_t n;
	uint16_t t;
	int r;

	r = kd_frame_parse_header(buf, len, &t, &n);
	if (r)
		return r;
	kd_cur_init(&c, buf, len);
	kd_cur_skip(&c, KD_FRAME_HDR);
	if (kd_cur_ptr(&c, &p, n))
		return kd_fail(KD_ETRUNC, "frame payload truncated (%zu of %u bytes)",
			       len - KD_FRAME_HDR, n);
	if (kd_cur_expect_end(&c))
		return kd_fail(KD_EMALFORMED, "%zu trailing bytes after frame",
			       kd_cur_remaining(&c));
	*ret_type = t;
	*ret_payload = p;
	*ret_len = n;
	return 0;
}

/* Milliseconds this read may wait: the per-read timeout, cut by the deadline. */
static int budget(const struct kd_io *io, int *ret_ms)
{
	int ms = io->read_timeout_ms > 0 ? io->read_timeout_ms : 30000;

	if (io->deadline_ms) {
		int64_t left = io->deadline_ms - kd_now_ms();

		if (left <= 0)
			return kd_fail(KD_ETIMEOUT, "handoff deadline expired");
		if (left < ms)
			ms = (int)left;
	}
	*ret_ms = ms;
	return 0;
}

int kd_fd_wait(int fd, short ev, int64_t until)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = ev};
		int64_t left = until - kd_now_ms();
		int r;

		if (left <= 0)
			return kd_fail(KD_ETIMEOUT, "timed out waiting for the peer");
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return kd_fail(KD_ETIMEOUT, "timed out waiting for the peer");
		if (errno != EINTR)
			return kd_fail(KD_EIO, "poll: %s", strerror(errno));
	}
}

static int fd_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	int fd = *(int *)ctx;
	int64_t until = kd_now_ms() + timeout_ms;
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = kd_fd_wait(fd, POLLIN, until);

		if (r)
			return r;
		n = read(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return kd_fail(KD_EIO, n ? "read from the peer failed" : "the peer closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
	int fd = *(int *)ctx;
	int64_t until = kd_now_ms() + timeout_ms;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = kd_fd_wait(fd, POLLOUT, until);

		if (r)
			return r;
		n = write(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return kd_fail(KD_EIO, "write to the peer failed");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void kd_io_fd(struct kd_io *io, int *fd)
{
	memset(io, 0, sizeof(*io));
	io->read = fd_read;
	io->write = fd_write;
	io->ctx = fd;
	io->read_timeout_ms = 30000;
}

int kd_frame_send(struct kd_io *io, uint16_t type, const void *payload, size_t len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int ms = 0, r;

	r = budget(io, &ms);
	if (r)
		return r;
	r = kd_frame_encode(type, payload, len, &buf, &n);
	if (r)
		return r;
	r = io->write(io->ctx, buf, n, ms);
	kd_wipe(buf, n);
	free(buf);
	if (r == KD_ETIMEOUT)
		return kd_fail(r, "timed out sending %s", kd_msg_name(type));
	if (r)
		return kd_fail(r, "peer closed the connection while sending %s", kd_msg_name(type));
	return 0;
}

/* Keep only printable ASCII of a peer-supplied reason. */
static void sanitise(const uint8_t *in, size_t n, char *out, size_t out_len)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < out_len; i++) {
		/* One '?' per run of non-ASCII bytes (a UTF-8 ellipsis is 3 bytes). */
		if (in[i] >= 0x80 && i > 0 && in[i - 1] >= 0x80)
			continue;
		out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
	}
	out[j] = '\0';
}

/* A frame's n payload bytes; a budget spent or a short read is the peer's failure. */
static int read_payload(struct kd_io *io, uint16_t type, uint32_t n, uint8_t **ret)
{
	uint8_t *payload = malloc(n);
	int ms = 0, r;

	if (!payload)
		return kd_fail(KD_ENOMEM, "out of memory (handoff)");
	r = budget(io, &ms);
	if (r)
		goto fail;
	r = io->read(io->ctx, payload, n, ms);
	if (r)
		goto fail;
	*ret = payload;
	return 0;
fail:
	kd_wipe(payload, n);
	free(payload);
	if (r == KD_ETIMEOUT)
		return kd_fail(r, "timed out reading %s payload", kd_msg_name(type));
	return kd_fail(KD_EPROTO, "%s frame truncated: peer closed mid-frame", kd_msg_name(type));
}

int kd_frame_recv(struct kd_io *io, uint16_t expect, uint8_t **ret_payload, size_t *ret_len)
{
	uint8_t hdr[KD_FRAME_HDR];
	uint8_t *payload = NULL;
	uint16_t type;
	uint32_t n;
	int ms = 0, r;

	r = budget(io, &ms);
	if (r)
		return r;
	r = io->read(io->ctx, hdr, sizeof(hdr), ms);
	if (r == KD_ETIMEOUT)
		return kd_fail(r, "timed out waiting for %s from peer", kd_msg_name(expect));
	if (r)
		return kd_fail(KD_EPROTO, "peer closed the connection before %s",
			       kd_msg_name(expect));
	r = kd_frame_parse_header(hdr, sizeof(hdr), &type, &n);
	if (r)
		return r;
	if (type != expect && type != KD_MSG_ERROR)
		return kd_fail(KD_EPROTO, "peer sent %s where %s was expected", kd_msg_name(type),
			       kd_msg_name(expect));
	if (n) {
		r = read_payload(io, type, n, &payload);
		if (r)
			return r;
	}
	if (type == KD_MSG_ERROR) {
		char why[200];

		sanitise(payload, n, why, sizeof(why));
		free(payload);
		return kd_fail(KD_EREFUSED, "peer refused: %s", why);
	}
	*ret_payload = payload;
	*ret_len = n;
	return 0;
}
