/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /dev/sev-guest backend: SNP_GET_DERIVED_KEY, SNP_GET_REPORT and
 * SNP_GET_EXT_REPORT (Linux uapi <linux/sev-guest.h>, docs/snp-facts.md §1.1).
 *
 * A failed guest request makes the kernel wipe the VMPCK ("Disabling VMPCK
 * communication key to prevent IV reuse"): every later request fails until
 * the VM is relaunched, and a blind retry could reuse an IV. So after any
 * transport failure this backend refuses all further requests itself. The
 * only failure the kernel treats as harmless is SNP_GET_EXT_REPORT's
 * INVALID_LEN (certificate buffer too small), which is retried once with
 * the size the host asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#include "backend/internal.h"
#include "keyd/error.h"
#include "keyd/report.h"

/* SEV_FW_BLOB_MAX_SIZE of the kernel driver: 4 pages. */
#define SNP_CERTS_START (4u * 4096u)
/* A host asking for more than this is not believed (frames cap at 64 KiB). */
#define SNP_CERTS_MAX (16u * 4096u)

_Static_assert(sizeof(struct snp_derived_key_req) == KD_KEY_REQ_SIZE, "MSG_KEY_REQ is 32 bytes");
_Static_assert(sizeof(struct snp_derived_key_resp) == KD_KEY_RSP_SIZE, "MSG_KEY_RSP is 64 bytes");
_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req is 96 bytes");

struct snp_priv {
	int fd;
	kd_snp_ioctl_fn ioctl_fn;
	bool disabled; /* a request failed: the VMPCK is gone for this VM */
};

static int real_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

/* One guest request. rc != 0 disables the backend unless allow_len. */
static int guest_request(struct snp_priv *p, const char *what, unsigned long cmd, void *req,
			 void *resp, bool allow_len, bool *ret_invalid_len)
{
	struct snp_guest_request_ioctl io;
	int rc, e;

	if (p->disabled)
		return kd_fail(KD_EIO, "%s refused: an earlier guest request failed and the kernel "
				       "has disabled the VMPCK (relaunch the VM)", what);
	memset(&io, 0, sizeof(io));
	io.msg_version = 1;
	io.req_data = (__u64)(uintptr_t)req;
	io.resp_data = (__u64)(uintptr_t)resp;
	errno = 0;
	rc = p->ioctl_fn(p->fd, cmd, &io);
	e = errno;
	if (rc == 0)
		return 0;
	if (allow_len && io.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN) {
		*ret_invalid_len = true;
		return 0;
	}
	p->disabled = true;
	return kd_fail(KD_EIO, "%s failed: %s (fw_error 0x%x, vmm_error 0x%x%s); not retrying, "
			       "the VMPCK is disabled", what, e ? strerror(e) : "error",
		       io.fw_error, io.vmm_error,
		       io.vmm_error == SNP_GUEST_VMM_ERR_BUSY ? " BUSY" : "");
}

static int snp_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key)
{
	struct snp_priv *p = b->priv;
	uint8_t kreq[KD_KEY_REQ_SIZE] __attribute__((aligned(8)));
	struct snp_derived_key_resp resp;
	int r;

	/* The firmware would say 0x16; say why before spending a request. */
	if ((r = kd_key_req_validate(req)) < 0)
		return r;
	kd_key_req_encode(req, kreq);
	memset(&resp, 0, sizeof(resp));
	r = guest_request(p, "SNP_GET_DERIVED_KEY", SNP_GET_DERIVED_KEY, kreq, &resp, false, NULL);
	if (r == 0)
		r = kd_key_rsp_parse(resp.data, sizeof(resp.data), ret_key);
	kd_wipe(&resp, sizeof(resp));
	return r;
}

static int snp_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	struct snp_priv *p = b->priv;
	struct snp_ext_report_req ext;
	struct snp_report_resp *resp;
	uint8_t *certs = NULL, *rep = NULL;
	size_t certs_len = 0;
	bool invalid_len = false;
	int r;

	if (vmpl > 3)
		return kd_fail(KD_EINVAL, "report VMPL %u is above 3", vmpl);
	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return KD_ENOMEM;
	memset(&ext, 0, sizeof(ext));
	memcpy(ext.data.user_data, report_data, 64);
	ext.data.vmpl = vmpl;
	if (!ret_certs) {
		r = guest_request(p, "SNP_GET_REPORT", SNP_GET_REPORT, &ext.data, resp, false, NULL);
		goto parse;
	}
	certs_len = SNP_CERTS_START;
	for (int attempt = 0;; attempt++) {
		free(certs);
		certs = calloc(1, certs_len);
		if (!certs) {
			r = KD_ENOMEM;
			goto out;
		}
		ext.certs_address = (__u64)(uintptr_t)certs;
		ext.certs_len = (__u32)certs_len;
		invalid_len = false;
		r = guest_request(p, "SNP_GET_EXT_REPORT", SNP_GET_EXT_REPORT, &ext, resp, attempt == 0,
				  &invalid_len);
		if (r < 0 || !invalid_len)
			break;
		/* The kernel wrote back the size the host needs: resize once. */
		if (ext.certs_len <= certs_len || ext.certs_len > SNP_CERTS_MAX ||
		    ext.certs_len % 4096) {
			r = kd_fail(KD_EPROTO, "SNP_GET_EXT_REPORT: host asks for a %u-byte certificate "
					       "buffer", ext.certs_len);
			goto out;
		}
		certs_len = ext.certs_len;
	}
parse:
	if (r < 0)
		goto out;
	if ((r = kd_report_rsp_parse(resp->data, sizeof(resp->data), &rep)) < 0)
		goto out;
	if (ret_certs) {
		*ret_certs = certs;
		*ret_certs_len = certs_len;
		certs = NULL;
	}
	*ret_report = rep;
	*ret_len = KD_REPORT_SIZE;
out:
	free(certs);
	free(resp);
	return r;
}

static void snp_close(struct kd_backend *b)
{
	struct snp_priv *p = b->priv;

	if (p && p->fd >= 0)
		close(p->fd);
	free(p);
	free(b);
}

static const struct kd_backend_ops snp_ops = {
	.name = "snp",
	.derive = snp_derive,
	.report = snp_report,
	.close = snp_close,
};

int kd_snp_backend_open_with(const char *path, kd_snp_ioctl_fn fn, struct kd_backend **ret)
{
	struct kd_backend *b = calloc(1, sizeof(*b));
	struct snp_priv *p = calloc(1, sizeof(*p));

	if (!b || !p) {
		free(b);
		free(p);
		return KD_ENOMEM;
	}
	p->fd = -1;
	p->ioctl_fn = fn ? fn : real_ioctl;
	if (path) {
		p->fd = open(path, O_RDWR | O_CLOEXEC);
		if (p->fd < 0) {
			int e = errno;

			free(b);
			free(p);
			return kd_fail(e == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %s: %s", path,
				       strerror(e));
		}
	}
	b->ops = &snp_ops;
	b->caps = KD_CAP_DERIVE | KD_CAP_REPORT | KD_CAP_CERTS;
	b->priv = p;
	*ret = b;
	return 0;
}

int kd_backend_snp_open(const char *path, struct kd_backend **ret)
{
	return kd_snp_backend_open_with(path, NULL, ret);
}
