/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest side of the simulated AMD-SP: frames of keyd/sim.h over a unix
 * socket or a serial port (virtio-serial /dev/virtio-ports/org.keyd.sim).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "backend/internal.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/simwire.h"

#define SIM_FIRST_MS 30000 /* the simulator may be making a VCEK first */
#define SIM_STEP_MS 10000

struct sim_priv {
	int fd;
	bool serial;
};

static int sim_connect(const char *addr, struct sim_priv *p)
{
	enum kd_sim_transport kind;
	const char *path;
	int fd, r;

	if ((r = kd_sim_addr_parse(addr, &kind, &path)) < 0)
		return r;
	if (kind == KD_SIM_UNIX) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(path) >= sizeof(sa.sun_path))
			return kd_fail(KD_EINVAL, "socket path too long: %s", path);
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return kd_fail(KD_EIO, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			r = kd_fail(KD_EIO, "cannot reach keyd-simfw at %s: %s", path, strerror(errno));
			close(fd);
			return r;
		}
		p->fd = fd;
		p->serial = false;
		return 0;
	}
	fd = kd_sim_serial_open(path, O_NONBLOCK);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open simulator port %s: %s", path, strerror(errno));
	p->fd = fd;
	p->serial = true;
	return 0;
}

static int exchange(struct sim_priv *p, uint16_t type, const void *req, size_t req_len,
		    uint8_t **ret, size_t *ret_len)
{
	uint32_t id;
	int r;

	if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
		return kd_fail(KD_ECRYPTO, "OpenSSL: RAND_bytes failed");
	r = kd_sim_request(p->fd, p->serial, SIM_FIRST_MS, SIM_STEP_MS, type, id, req, req_len, ret,
			   ret_len);
	if (r == KD_ENOENT)
		return kd_fail(KD_EIO, "keyd-simfw closed the connection");
	return r;
}

static int sim_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key)
{
	struct sim_priv *p = b->priv;
	uint8_t buf[KD_KEY_REQ_SIZE], *rsp = NULL;
	size_t len;
	int r;

	kd_key_req_encode(req, buf);
	if ((r = exchange(p, KD_SIM_REQ_DERIVE, buf, sizeof(buf), &rsp, &len)) < 0)
		return r;
	r = kd_key_rsp_parse(rsp, len, ret_key);
	kd_wipe(rsp, len);
	free(rsp);
	return r;
}

static int sim_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	struct sim_priv *p = b->priv;
	uint8_t req[KD_SIM_REPORT_REQ_SIZE], *rsp = NULL, *rep = NULL, *certs = NULL;
	size_t len, clen = 0;
	int r;

	memcpy(req, report_data, 64);
	kd_put_le32(req + 64, vmpl);
	if ((r = exchange(p, KD_SIM_REQ_REPORT, req, sizeof(req), &rsp, &len)) < 0)
		return r;
	if (len != KD_SIM_REPORT_RSP_SIZE && len >= 4 && kd_get_le32(rsp) == 0) {
		free(rsp);
		return kd_fail(KD_EMALFORMED, "MSG_REPORT_RSP of %zu bytes", len);
	}
	r = kd_report_rsp_parse(rsp, len, &rep);
	free(rsp);
	if (r < 0)
		return r;
	if (ret_certs) {
		r = exchange(p, KD_SIM_REQ_CERTS, NULL, 0, &certs, &clen);
		if (r < 0) {
			free(rep);
			return r;
		}
		*ret_certs = certs;
		*ret_certs_len = clen;
	}
	*ret_report = rep;
	*ret_len = KD_REPORT_SIZE;
	return 0;
}

static void sim_close(struct kd_backend *b)
{
	struct sim_priv *p = b->priv;

	if (p && p->fd >= 0)
		close(p->fd);
	free(p);
	free(b);
}

static const struct kd_backend_ops sim_ops = {
	.name = "sim",
	.derive = sim_derive,
	.report = sim_report,
	.close = sim_close,
};

int kd_backend_sim_open(const char *addr, struct kd_backend **ret)
{
	struct kd_backend *b = calloc(1, sizeof(*b));
	struct sim_priv *p = calloc(1, sizeof(*p));
	int r;

	if (!b || !p) {
		free(b);
		free(p);
		return kd_fail(KD_ENOMEM, "out of memory (simulator backend)");
	}
	if ((r = sim_connect(addr, p)) < 0) {
		free(b);
		free(p);
		return r;
	}
	b->ops = &sim_ops;
	b->caps = KD_CAP_DERIVE | KD_CAP_REPORT | KD_CAP_CERTS;
	b->priv = p;
	*ret = b;
	return 0;
}
