/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-sevguest-cuse: /dev/sev-guest for the test guest, as a CUSE
 * character device whose firmware is keyd-simfw on the host, reached over
 * the virtio-serial port (keyd/simwire.h). keyd inside the guest then runs
 * its production snp backend exactly as on SEV-SNP hardware. A TEST RIG:
 * `make install-simfw` installs it, `make install` never does.
 *
 * The ioctl ABI is in sevguest.c. This file fetches the memory an ioctl
 * names: snp_guest_request_ioctl holds pointers (req_data, resp_data, and
 * certs_address inside snp_ext_report_req), so the device is an
 * unrestricted CUSE ioctl and asks the kernel for each buffer with
 * fuse_reply_ioctl_retry until it has everything, then answers with the
 * ioctl's return value and exactly the bytes the driver would write back.
 * Requests of every process are served at once (multithreaded session)
 * and serialized per request by the ABI's lock.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cuse_lowlevel.h>
#include <fuse_lowlevel.h>

#include "keyd/error.h"
#include "keyd/simwire.h"
#include "sevguest.h"

#define LINK_FIRST_MS 30000 /* keyd-simfw may be making a VCEK first */
#define LINK_STEP_MS 10000

struct link {
	int fd;
	uint32_t next_id;
};

static struct sg_dev dev;

/* One simwire exchange; called with the device lock held. */
static int link_fw(void *ctx, uint16_t type, const void *req, size_t len, uint8_t **ret,
		   size_t *ret_len)
{
	struct link *l = ctx;

	/* A serial line: what an exchange of a killed daemon left is dropped first. */
	return kd_sim_request(l->fd, true, LINK_FIRST_MS, LINK_STEP_MS, type, l->next_id++, req, len,
			      ret, ret_len);
}

static int link_open(const char *path, struct link *l)
{
	int fd = kd_sim_serial_open(path, O_NONBLOCK);

	if (fd < 0)
		return kd_fail(KD_EIO, "cannot open %s: %s", path, strerror(errno));
	if (getrandom(&l->next_id, sizeof(l->next_id), 0) != (ssize_t)sizeof(l->next_id))
		l->next_id = (uint32_t)getpid() << 16;
	l->fd = fd;
	return 0;
}

static void sg_open(fuse_req_t req, struct fuse_file_info *fi)
{
	fuse_reply_open(req, fi);
}

static size_t resp_size(unsigned int cmd)
{
	return cmd == SNP_GET_DERIVED_KEY ? sizeof(struct snp_derived_key_resp)
					  : sizeof(struct snp_report_resp);
}

static size_t iov_total(const struct iovec *v, size_t n)
{
	size_t t = 0;

	for (size_t i = 0; i < n; i++)
		t += v[i].iov_len;
	return t;
}

static void sg_ioctl_cb(fuse_req_t req, int cmd_arg, void *arg, struct fuse_file_info *fi,
			unsigned int flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	unsigned int cmd = (unsigned int)cmd_arg;
	size_t rsz = sg_req_size(cmd), certs_len = 0, nin = 0, nout = 0, len = 0;
	struct iovec in_iov[2], out_iov[4];
	struct snp_guest_request_ioctl io;
	const uint8_t *in = in_buf, *reqp = NULL;
	uint8_t *out;
	struct sg_call *c;
	bool need_req = false;

	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	/* snp_guest_ioctl: copy_from_user(&input, argp, sizeof(input)) first. */
	in_iov[nin++] = (struct iovec){arg, sizeof(io)};
	out_iov[nout++] = (struct iovec){arg, sizeof(io)};
	if (in_bufsz >= sizeof(io)) {
		memcpy(&io, in, sizeof(io));
		if (rsz && in_bufsz >= sizeof(io) + rsz)
			reqp = in + sizeof(io);
		sg_needs(cmd, &io, reqp, &need_req, &certs_len);
	}
	if (need_req) {
		in_iov[nin++] = (struct iovec){(void *)(uintptr_t)io.req_data, rsz};
		if (cmd == SNP_GET_EXT_REPORT)
			out_iov[nout++] = (struct iovec){(void *)(uintptr_t)io.req_data, rsz};
		out_iov[nout++] = (struct iovec){(void *)(uintptr_t)io.resp_data, resp_size(cmd)};
		if (certs_len) {
			struct snp_ext_report_req ext;

			memcpy(&ext, reqp, sizeof(ext));
			out_iov[nout++] = (struct iovec){(void *)(uintptr_t)ext.certs_address,
							 certs_len};
		}
	}
	if (in_bufsz != iov_total(in_iov, nin) || out_bufsz != iov_total(out_iov, nout)) {
		fuse_reply_ioctl_retry(req, in_iov, nin, out_iov, nout);
		return;
	}

	c = calloc(1, sizeof(*c));
	out = malloc(out_bufsz);
	if (!c || !out) {
		free(c);
		free(out);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	c->cmd = cmd;
	c->io = io;
	c->req = need_req ? reqp : NULL;
	sg_ioctl(&dev, c);
	if (c->rc && c->rc != -EINVAL && c->rc != -ENOTTY)
		fprintf(stderr, "keyd-sevguest: ioctl 0x%x: %s, exitinfo2 0x%llx%s\n", cmd,
			strerror((int)-c->rc), (unsigned long long)c->io_out.exitinfo2,
			c->vmpck_disabled ? "; VMPCK disabled" : "");

	/*
	 * The out buffer is [io][ext req][resp][certs]: write the prefix up
	 * to the last piece the driver writes; pieces before it that it does
	 * not write keep the caller's own bytes.
	 */
	memcpy(out, c->write_io ? (const void *)&c->io_out : (const void *)&io, sizeof(io));
	if (c->write_io)
		len = sizeof(io);
	{
		size_t off = sizeof(io);

		if (need_req && cmd == SNP_GET_EXT_REPORT) {
			memcpy(out + off, c->write_req ? (const void *)&c->req_out : (const void *)reqp,
			       rsz);
			off += rsz;
			if (c->write_req)
				len = off;
		}
		if (need_req) {
			memset(out + off, 0, resp_size(cmd));
			if (c->write_resp) {
				memcpy(out + off, c->resp, c->resp_len);
				len = off + resp_size(cmd);
			}
			off += resp_size(cmd);
		}
		if (certs_len && c->write_certs) {
			memcpy(out + off, c->certs, certs_len);
			len = off + certs_len;
		}
	}
	fuse_reply_ioctl(req, (int)c->rc, len ? out : NULL, len);
	explicit_bzero(out, out_bufsz);
	explicit_bzero(c, sizeof(*c));
	free(out);
	free(c);
}

static const struct cuse_lowlevel_ops ops = {
	.open = sg_open,
	.ioctl = sg_ioctl_cb,
};

static void usage(FILE *f)
{
	fputs("Usage: keyd-sevguest-cuse --port PATH [--kernel-abi 6.1.0|6.1.y|6.12]\n"
	      "                          [--name DEVNAME] [--debug]\n"
	      "\n"
	      "TEST RIG. Create /dev/DEVNAME (default sev-guest) with the Linux SEV guest\n"
	      "driver's ioctl ABI (SNP_GET_REPORT, SNP_GET_DERIVED_KEY, SNP_GET_EXT_REPORT)\n"
	      "and forward each guest request to keyd-simfw over the serial port PATH\n"
	      "(the virtio-serial port of `keyd-simfw serve --listen`). --kernel-abi picks\n"
	      "the kernel whose behaviour is reproduced (default 6.12; 6.1.y is the same,\n"
	      "6.1.0 reports a too small certificate buffer with ioctl rc 0). Runs in the\n"
	      "foreground; needs /dev/cuse (modprobe cuse).\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"kernel-abi", required_argument, NULL, 'k'},
		{"name", required_argument, NULL, 'n'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *port = NULL, *name = "sev-guest";
	enum sg_abi abi = SG_ABI_STABLE;
	char devname[300];
	const char *dev_info[] = {devname};
	char *fargv[4];
	int fargc = 0, c, r;
	bool debug = false;
	struct link l;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = optarg;
			break;
		case 'k':
			if ((r = sg_abi_parse(optarg, &abi)) < 0) {
				fprintf(stderr, "keyd-sevguest: %s\n", kd_err_detail(r));
				return 2;
			}
			break;
		case 'n':
			name = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !port || strchr(name, '/') ||
	    snprintf(devname, sizeof(devname), "DEVNAME=%s", name) >= (int)sizeof(devname)) {
		usage(stderr);
		return 2;
	}
	if ((r = link_open(port, &l)) < 0) {
		fprintf(stderr, "keyd-sevguest: %s\n", kd_err_detail(r));
		return 1;
	}
	sg_dev_init(&dev, abi, link_fw, &l);
	fprintf(stderr, "keyd-sevguest: /dev/%s (kernel ABI %s) -> keyd-simfw at %s\n", name,
		sg_abi_name(abi), port);
	fargv[fargc++] = argv[0];
	fargv[fargc++] = (char *)"-f";
	if (debug)
		fargv[fargc++] = (char *)"-d";
	fargv[fargc] = NULL;
	{
		struct cuse_info ci = {
			.dev_info_argc = 1,
			.dev_info_argv = dev_info,
			.flags = CUSE_UNRESTRICTED_IOCTL,
		};

		r = cuse_lowlevel_main(fargc, fargv, &ci, &ops, NULL);
	}
	sg_dev_destroy(&dev);
	close(l.fd);
	return r ? 1 : 0;
}
