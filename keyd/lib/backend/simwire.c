/* SPDX-License-Identifier: Apache-2.0 */
/* The simulator wire protocol: framing, timeouts, resync. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/simwire.h"

void kd_sim_hdr_encode(const struct kd_sim_hdr *h, uint8_t out[KD_SIM_HDR_SIZE])
{
	kd_put_le32(out, KD_SIM_MAGIC);
	kd_put_le16(out + 4, KD_SIM_VERSION);
	kd_put_le16(out + 6, h->type);
	kd_put_le32(out + 8, h->len);
	kd_put_le32(out + 12, h->id);
}

int kd_sim_hdr_parse(const uint8_t *buf, size_t len, struct kd_sim_hdr *ret)
{
	struct kd_cursor c;
	struct kd_sim_hdr h;
	uint32_t magic;
	uint16_t version;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = kd_cur_u32(&c, &magic)) < 0 || (r = kd_cur_u16(&c, &version)) < 0 ||
	    (r = kd_cur_u16(&c, &h.type)) < 0 || (r = kd_cur_u32(&c, &h.len)) < 0 ||
	    (r = kd_cur_u32(&c, &h.id)) < 0)
		return kd_fail(r, "simulator frame header truncated");
	if (magic != KD_SIM_MAGIC)
		return kd_fail(KD_EPROTO, "simulator frame has a bad magic");
	if (version != KD_SIM_VERSION)
		return kd_fail(KD_EPROTO, "simulator frame version %u is not %u", version,
			       KD_SIM_VERSION);
	/* Bounded before anything is allocated: a peer cannot make us buffer more. */
	if (h.len > KD_SIM_MAX_PAYLOAD)
		return kd_fail(KD_EMALFORMED, "simulator frame of %u bytes exceeds %u", h.len,
			       KD_SIM_MAX_PAYLOAD);
	*ret = h;
	return 0;
}

/* Wait at most ms for fd to be ready for events (POLLIN: a read, POLLOUT: a write). */
static int wait_ready(int fd, short events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return kd_fail(KD_EIO, "poll on simulator channel: %s", strerror(errno));
	if (r == 0)
		return kd_fail(KD_ETIMEOUT, "simulator channel: %s timed out",
			       events == POLLIN ? "read" : "write");
	return 0;
}

/* Read exactly n bytes; the first waits first_ms, later ones step_ms. */
static int read_exact(int fd, uint8_t *buf, size_t n, int first_ms, int step_ms, bool *started)
{
	size_t got = 0;

	while (got < n) {
		int r = wait_ready(fd, POLLIN, *started ? step_ms : first_ms);
		ssize_t k;

		if (r < 0)
			return r;
		k = read(fd, buf + got, n - got);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return kd_fail(KD_EIO, "read from simulator channel: %s", strerror(errno));
		if (k == 0)
			return *started ? kd_fail(KD_EPROTO, "simulator channel closed mid-frame")
					: kd_fail(KD_ENOENT, "simulator channel closed");
		*started = true;
		got += (size_t)k;
	}
	return 0;
}

int kd_sim_read_frame(int fd, int first_ms, int step_ms, bool resync, struct kd_sim_hdr *ret_hdr,
		      uint8_t **ret_payload)
{
	uint8_t win[KD_SIM_HDR_SIZE];
	struct kd_sim_hdr h;
	uint8_t *payload = NULL;
	bool started = false;
	size_t have = 0;
	int r;

	for (;;) {
		r = read_exact(fd, win + have, sizeof(win) - have, first_ms, step_ms, &started);
		if (r < 0)
			return r;
		r = kd_sim_hdr_parse(win, sizeof(win), &h);
		if (r == 0)
			break;
		if (!resync)
			return r;
		/* Leftovers of an abandoned exchange: slide to the next magic. */
		memmove(win, win + 1, sizeof(win) - 1);
		have = sizeof(win) - 1;
	}
	if (h.len) {
		payload = malloc(h.len);
		if (!payload)
			return kd_fail(KD_ENOMEM, "out of memory (simulator frame)");
		r = read_exact(fd, payload, h.len, first_ms, step_ms, &started);
		if (r < 0) {
			free(payload);
			return r;
		}
	}
	kd_err_clear();
	*ret_hdr = h;
	*ret_payload = payload;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, int step_ms)
{
	while (n) {
		int r = wait_ready(fd, POLLOUT, step_ms);
		ssize_t k;

		if (r < 0)
			return r;
		k = write(fd, p, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return kd_fail(KD_EIO, "write to simulator channel: %s",
				       k < 0 ? strerror(errno) : "no progress");
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int kd_sim_write_frame(int fd, int step_ms, uint16_t type, uint32_t id, const void *payload,
		       size_t len)
{
	struct kd_sim_hdr h = {.type = type, .len = (uint32_t)len, .id = id};
	uint8_t hdr[KD_SIM_HDR_SIZE];
	uint8_t *frame;
	int r;

	if (len > KD_SIM_MAX_PAYLOAD)
		return kd_fail(KD_EINVAL, "simulator frame of %zu bytes is too large", len);
	/* One buffer, so a frame is written in as few pieces as possible. */
	frame = malloc(sizeof(hdr) + len);
	if (!frame)
		return kd_fail(KD_ENOMEM, "out of memory (simulator frame)");
	kd_sim_hdr_encode(&h, hdr);
	memcpy(frame, hdr, sizeof(hdr));
	if (len)
		memcpy(frame + sizeof(hdr), payload, len);
	r = write_all(fd, frame, sizeof(hdr) + len, step_ms);
	free(frame);
	return r;
}

/* Drop whatever an earlier, abandoned exchange left on a serial line. */
static void drain(int fd)
{
	uint8_t junk[512];

	while (read(fd, junk, sizeof(junk)) > 0)
		;
}

int kd_sim_request(int fd, bool serial, int first_ms, int step_ms, uint16_t type, uint32_t id,
		   const void *req, size_t len, uint8_t **ret, size_t *ret_len)
{
	struct kd_sim_hdr h;
	uint8_t *rsp = NULL;
	int r;

	if (serial)
		drain(fd);
	if ((r = kd_sim_write_frame(fd, step_ms, type, id, req, len)) < 0)
		return r;
	for (int stale = 0;; stale++) {
		if ((r = kd_sim_read_frame(fd, first_ms, step_ms, serial, &h, &rsp)) < 0)
			return r;
		if (h.id == id)
			break;
		free(rsp);
		rsp = NULL;
		if (!serial || stale >= KD_SIM_MAX_STALE)
			return kd_fail(KD_EPROTO, "keyd-simfw answered another request");
	}
	if (h.type == KD_SIM_RSP_ERROR) {
		uint32_t why = h.len == 4 ? kd_get_le32(rsp) : 0;

		free(rsp);
		return kd_fail(KD_EPROTO, "keyd-simfw rejected the request: %s",
			       kd_strerror(-(int)why));
	}
	if (h.type != (type | KD_SIM_RSP)) {
		free(rsp);
		return kd_fail(KD_EPROTO, "keyd-simfw answered with type %u to type %u", h.type,
			       type);
	}
	*ret = rsp;
	*ret_len = h.len;
	return 0;
}

int kd_sim_addr_parse(const char *addr, enum kd_sim_transport *ret_kind, const char **ret_path)
{
	if (!addr)
		return kd_fail(KD_EINVAL, "no simulator address given");
	if (!strncmp(addr, "unix:", 5) && addr[5]) {
		*ret_kind = KD_SIM_UNIX;
		*ret_path = addr + 5;
		return 0;
	}
	if (!strncmp(addr, "serial:", 7) && addr[7]) {
		*ret_kind = KD_SIM_SERIAL;
		*ret_path = addr + 7;
		return 0;
	}
	return kd_fail(KD_EINVAL, "simulator address '%s' is not unix:PATH or serial:PATH", addr);
}

int kd_sim_serial_open(const char *path, int extra_flags)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | extra_flags);
	struct termios t;

	if (fd >= 0 && isatty(fd) && tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}
