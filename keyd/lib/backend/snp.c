/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /dev/sev-guest backend: SNP_GET_DERIVED_KEY, SNP_GET_REPORT and
 * SNP_GET_EXT_REPORT (Linux include/uapi/linux/sev-guest.h; docs/snp-facts.md §1.1).
 *
 * A failed guest request makes the kernel wipe the VMPCK ("Disabling VMPCK
 * communication key to prevent IV reuse", snp_disable_vmpck() in
 * drivers/virt/coco/sev-guest/sev-guest.c): every later request fails until
 * the VM is relaunched, and a blind retry could reuse an IV. So after any
 * failure that reached the host this backend refuses all further requests
 * itself. Two answers are not such failures, and the driver says so:
 *
 *  - exitinfo2 0xff: snp_guest_ioctl() presets it before any firmware call,
 *    so an error that comes back with it untouched (EINVAL for msg_version 0
 *    or a certs_len above SEV_FW_BLOB_MAX_SIZE) never left the guest. Only
 *    ENOTTY ("VMPCK is disabled", snp_send_guest_request()) means the key is
 *    already gone, wiped by an earlier failure of any process.
 *  - vmm_error INVALID_LEN on SNP_GET_EXT_REPORT: the host's certificate
 *    table does not fit. The driver re-issues the request without extended
 *    data so the sequence number advances, and returns -EIO (6.2 and later,
 *    __handle_guest_request()) or, in early 6.x kernels, rc 0 with the
 *    override error in vmm_error (handle_guest_request() then set the error
 *    but not the return code).
 *
 * The certificate buffer is always SEV_FW_BLOB_MAX_SIZE (16 KiB): every
 * kernel refuses a larger certs_len in get_ext_report() with -EINVAL, so a
 * table the host says needs more can never be fetched through this ioctl.
 * keyd then takes the report without the table and the caller falls back
 * to the certificate bundle (keyd/certbundle.h).
 *
 * VMPL: under an SVSM or a paravisor the guest runs at VMPL 1-3 and the
 * kernel talks to the AMD-SP with that VMPL's VMPCK (vmpck_id defaults to
 * snp_vmpl in sev_guest_probe(); it is exported read-only as
 * /sys/module/sev_guest/parameters/vmpck_id). The firmware refuses a key or
 * report request for a VMPL below the requester's with status 0x16, so keyd
 * refuses such a request itself, in one line naming the VMPL it found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#include "backend/internal.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"

/* SEV_FW_BLOB_MAX_SIZE of the kernel (include/linux/psp-sev.h): 4 pages. */
#define SNP_CERTS_LEN (4u * 4096u)
/* snp_guest_ioctl() presets exitinfo2 to this before any firmware call. */
#define SNP_NO_FW_CALL 0xffull
#define SNP_VMPCK_ID_PATH "/sys/module/sev_guest/parameters/vmpck_id"

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

/*
 * One guest request. ext: an SNP_GET_EXT_REPORT, where INVALID_LEN is the
 * harmless "table too big" answer (*ret_invalid_len set, 0 returned).
 */
static int guest_request(struct snp_priv *p, const char *what, unsigned long cmd, void *req,
			 void *resp, bool ext, bool *ret_invalid_len)
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
	/* Before rc: early 6.x kernels say INVALID_LEN with rc 0. */
	if (ext && io.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN) {
		*ret_invalid_len = true;
		return 0;
	}
	if (rc == 0)
		return 0;
	if (e == ENOTTY) {
		p->disabled = true;
		return kd_fail(KD_EIO, "%s refused by the kernel: the VMPCK is disabled (an earlier "
				       "guest request failed; relaunch the VM)", what);
	}
	if (io.exitinfo2 == SNP_NO_FW_CALL || (e == EINVAL && io.exitinfo2 == 0))
		return kd_fail(KD_EIO, "%s refused by the kernel before any firmware call: %s",
			       what, e ? strerror(e) : "error");
	p->disabled = true;
	return kd_fail(KD_EIO, "%s failed: %s (fw_error 0x%x, vmm_error 0x%x%s); not retrying, "
			       "the VMPCK is disabled", what, e ? strerror(e) : "error",
		       io.fw_error, io.vmm_error,
		       io.vmm_error == SNP_GUEST_VMM_ERR_BUSY ? " BUSY" : "");
}

static int vmpl_check(struct kd_backend *b, const char *what, uint32_t vmpl)
{
	if (vmpl < b->vmpl)
		return kd_fail(KD_EUNSUPP, "%s for VMPL %u refused: this guest runs at VMPL %u "
					   "(%s), and the AMD-SP answers no request below it",
			       what, vmpl, b->vmpl, b->vmpl_source);
	return 0;
}

static int snp_derive(struct kd_backend *b, const struct kd_key_req *req, struct kd_secret **ret_key)
{
	struct snp_priv *p = b->priv;
	uint8_t kreq[KD_KEY_REQ_SIZE] __attribute__((aligned(8)));
	struct snp_derived_key_resp resp;
	int r;

	/* The firmware would say 0x16; say why before spending a request. */
	if ((r = kd_key_req_validate(req)) < 0 || (r = vmpl_check(b, "derived key", req->vmpl)) < 0)
		return r;
	kd_key_req_encode(req, kreq);
	memset(&resp, 0, sizeof(resp));
	r = guest_request(p, "SNP_GET_DERIVED_KEY", SNP_GET_DERIVED_KEY, kreq, &resp, false, NULL);
	if (r == 0)
		r = kd_key_rsp_parse(resp.data, sizeof(resp.data), ret_key);
	kd_wipe(&resp, sizeof(resp));
	return r;
}

/*
 * The certificate buffer, followed by an inaccessible page: an early 6.x
 * kernel copies back as many bytes as the host claimed to need after
 * INVALID_LEN, and that copy must fault rather than run past our buffer.
 */
static uint8_t *certs_map(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = SNP_CERTS_LEN + (size_t)pg;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m + SNP_CERTS_LEN, (size_t)pg, PROT_NONE) < 0) {
		munmap(m, len);
		return NULL;
	}
	return m;
}

static void certs_unmap(uint8_t *m)
{
	if (m)
		munmap(m, SNP_CERTS_LEN + (size_t)sysconf(_SC_PAGESIZE));
}

static int snp_report(struct kd_backend *b, const uint8_t report_data[64], uint32_t vmpl,
		      uint8_t **ret_report, size_t *ret_len, uint8_t **ret_certs, size_t *ret_certs_len)
{
	struct snp_priv *p = b->priv;
	struct snp_ext_report_req ext;
	struct snp_report_resp *resp;
	uint8_t *map = NULL, *certs = NULL, *rep = NULL;
	size_t certs_len = 0;
	bool invalid_len = false;
	int r;

	if (vmpl > 3)
		return kd_fail(KD_EINVAL, "report VMPL %u is above 3", vmpl);
	if ((r = vmpl_check(b, "report", vmpl)) < 0)
		return r;
	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return kd_fail(KD_ENOMEM, "out of memory (report response)");
	memset(&ext, 0, sizeof(ext));
	memcpy(ext.data.user_data, report_data, 64);
	ext.data.vmpl = vmpl;
	if (ret_certs) {
		if (!(map = certs_map())) {
			r = kd_fail(KD_ENOMEM, "cannot map the certificate buffer: %s", strerror(errno));
			goto out;
		}
		ext.certs_address = (__u64)(uintptr_t)map;
		ext.certs_len = SNP_CERTS_LEN;
		r = guest_request(p, "SNP_GET_EXT_REPORT", SNP_GET_EXT_REPORT, &ext, resp, true,
				  &invalid_len);
		if (r < 0)
			goto out;
		if (!invalid_len) {
			if (!(certs = malloc(SNP_CERTS_LEN))) {
				r = kd_fail(KD_ENOMEM, "out of memory (certificate table)");
				goto out;
			}
			memcpy(certs, map, SNP_CERTS_LEN);
			certs_len = SNP_CERTS_LEN;
		}
	}
	/*
	 * No table wanted, or the host's is over the kernel's 16 KiB: a plain
	 * report (the driver advanced the sequence number, the VMPCK is intact).
	 */
	if (!ret_certs || invalid_len) {
		memset(resp, 0, sizeof(*resp));
		r = guest_request(p, "SNP_GET_REPORT", SNP_GET_REPORT, &ext.data, resp, false, NULL);
		if (r < 0)
			goto out;
	}
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
	certs_unmap(map);
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

/*
 * The VMPCK the kernel uses, hence the VMPL the AMD-SP sees us at. A kernel
 * without the parameter (or not yet probed: -1) means VMPL 0.
 */
static int read_vmpck_id(const char *path, uint32_t *ret)
{
	uint8_t *buf = NULL;
	size_t len;
	uint64_t v;
	int r = kd_read_file(path, 32, &buf, &len);

	if (r == KD_ENOENT) {
		kd_err_clear();
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (!strcmp((char *)buf, "-1")) {
		v = 0;
	} else if (kd_parse_u64((char *)buf, 3, &v) < 0) {
		free(buf);
		return kd_fail(KD_EMALFORMED, "%s is not a VMPCK number 0..3", path);
	}
	free(buf);
	*ret = (uint32_t)v;
	return 0;
}

int kd_snp_backend_open_at(const char *path, const char *vmpck_id_path, kd_snp_ioctl_fn fn,
			   struct kd_backend **ret)
{
	struct kd_backend *b = calloc(1, sizeof(*b));
	struct snp_priv *p = calloc(1, sizeof(*p));
	uint32_t vmpl = 0;
	int r;

	if (!b || !p) {
		free(b);
		free(p);
		return kd_fail(KD_ENOMEM, "out of memory (sev-guest backend)");
	}
	if (!vmpck_id_path)
		vmpck_id_path = SNP_VMPCK_ID_PATH;
	if ((r = read_vmpck_id(vmpck_id_path, &vmpl)) < 0) {
		free(b);
		free(p);
		return r;
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
	b->vmpl = vmpl;
	snprintf(b->vmpl_source, sizeof(b->vmpl_source), "the kernel uses VMPCK%u: sev_guest "
		 "vmpck_id", vmpl);
	*ret = b;
	return 0;
}

int kd_snp_backend_open_with(const char *path, kd_snp_ioctl_fn fn, struct kd_backend **ret)
{
	return kd_snp_backend_open_at(path, NULL, fn, ret);
}

int kd_backend_snp_open(const char *path, struct kd_backend **ret)
{
	return kd_snp_backend_open_at(path, NULL, NULL, ret);
}
