/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulated /dev/sev-guest of the test guest: the Linux guest driver's
 * ioctl ABI in front of keyd-simfw. A TEST RIG, never installed by
 * `make install` (install-simfw installs it with the simulator).
 *
 * This file is the ABI alone, free of CUSE, so that unit tests can drive
 * keyd's production snp backend through it in process; main.c puts it
 * behind a CUSE character device and forwards firmware requests over the
 * virtio-serial port (keyd/simwire.h).
 *
 * What it mirrors, per ioctl, from the kernel's
 * drivers/virt/coco/sev-guest/sev-guest.c (snp_guest_ioctl, get_report,
 * get_derived_key, get_ext_report) and the guest-request path
 * (handle_guest_request in the same file in 6.1; __handle_guest_request
 * and snp_send_guest_request in 6.12; snp_issue_guest_request in
 * arch/x86/kernel/sev.c in 6.1 and arch/x86/coco/sev/core.c in 6.12):
 *
 *  - exitinfo2 is preset to 0xff (no firmware call) and the ioctl struct is
 *    copied back only when exitinfo2 is non-zero at the end;
 *  - msg_version 0 is -EINVAL before anything else (nothing copied back);
 *  - one request at a time (the driver's snp_cmd_mutex), across every
 *    open file and process;
 *  - once a request has failed the VMPCK is wiped: every later ioctl is
 *    -ENOTTY until the VM is relaunched;
 *  - NULL req_data/resp_data is -EINVAL (exitinfo2 0xff copied back);
 *  - SNP_GET_EXT_REPORT: certs_len > 16 KiB (SEV_FW_BLOB_MAX_SIZE) or not
 *    page-aligned is -EINVAL before any firmware call, VMPCK kept; a
 *    certs_len or certs_address of 0 means "no certificates"; a table that
 *    does not fit is INVALID_LEN (vmm_error 1) with the needed size written
 *    back to certs_len, after the driver re-issued the request without
 *    certificates so that the sequence number moves on;
 *  - the report response is the 4000-byte snp_report_resp, the key
 *    response the 64-byte snp_derived_key_resp; firmware statuses inside
 *    them (0x16 INVALID_PARAMS, ...) are not ioctl errors.
 *
 * Kernel behaviours that differ (SG_ABI_*):
 *  - v6.1 as released: INVALID_LEN comes back with ioctl rc 0 (the
 *    re-issued plain request succeeded), the report and a zeroed
 *    certificate buffer are copied out.
 *  - later kernels, and the 6.1.y stable series with its backports (Debian
 *    12's 6.1 sev-guest.ko handles -ENOSPC and -EAGAIN and overrides the
 *    result with -EIO), and 6.12: INVALID_LEN is rc -EIO with exitinfo2
 *    still saying INVALID_LEN, nothing but certs_len is copied out, and
 *    the VMPCK is kept.
 *
 * Assumptions about the firmware and the host, which the kernel does not
 * decide: a msg_version other than 1 makes the firmware fail the command
 * (fw_error 0x16, so -EIO and a wiped VMPCK); non-zero reserved bytes of
 * MSG_REPORT_REQ get status 0x16 in MSG_REPORT_RSP; a host that fails to
 * answer fails the request (-EIO, vmm_error 0xffffffff).
 */
#ifndef KEYD_SIM_SEVGUEST_H
#define KEYD_SIM_SEVGUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/ioctl.h>

#include <linux/sev-guest.h>

/* SEV_FW_BLOB_MAX_SIZE of the driver: the certificate buffer cap. */
#define SG_CERTS_MAX (4u * 4096u)
#define SG_PAGE 4096u

enum sg_abi {
	SG_ABI_V6_1 = 1, /* v6.1 as released */
	SG_ABI_STABLE,   /* 6.1.y with backports (Debian 12's), 6.12 */
};

/* "6.1.0" -> SG_ABI_V6_1; "6.1" / "6.1.y" / "6.12" -> SG_ABI_STABLE. */
int sg_abi_parse(const char *s, enum sg_abi *ret);
const char *sg_abi_name(enum sg_abi abi);

/*
 * The firmware and host behind the device: one simwire request (type
 * KD_SIM_REQ_*, payload) -> the response payload (malloc'ed). Negative
 * KD_E* when the host did not answer.
 */
typedef int (*sg_fw_fn)(void *ctx, uint16_t type, const void *req, size_t len, uint8_t **ret,
			size_t *ret_len);

struct sg_dev {
	enum sg_abi abi;
	sg_fw_fn fw;
	void *fw_ctx;
	pthread_mutex_t lock; /* the driver's snp_cmd_mutex */
	bool vmpck_disabled;
	uint64_t requests;    /* guest requests that reached the firmware */
};

void sg_dev_init(struct sg_dev *d, enum sg_abi abi, sg_fw_fn fw, void *ctx);
void sg_dev_destroy(struct sg_dev *d);

/* Size of the request struct behind req_data for cmd; 0 if cmd is unknown. */
size_t sg_req_size(unsigned int cmd);

/*
 * One ioctl. The caller (CUSE, or a test's fake ioctl) has fetched the
 * memory the call names and hands it over here; the result says what the
 * kernel would write back.
 *
 * In:  cmd, io (the caller's struct), req (req_size bytes at req_data, NULL
 *      when io had NULL pointers or msg_version 0, or cmd is unknown).
 * Out: rc (0 or -errno, the ioctl's return), and the write-back of each
 *      piece in the kernel's terms: io_out if write_io, req_out if write_req
 *      (SNP_GET_EXT_REPORT's certs_len), resp[0..resp_len) if write_resp,
 *      certs[0..certs_len) if write_certs.
 */
struct sg_call {
	unsigned int cmd;
	struct snp_guest_request_ioctl io;
	const void *req;

	long rc;
	struct snp_guest_request_ioctl io_out;
	bool write_io;
	struct snp_ext_report_req req_out;
	bool write_req;
	uint8_t resp[sizeof(struct snp_report_resp)];
	size_t resp_len;
	bool write_resp;
	uint8_t certs[SG_CERTS_MAX];
	size_t certs_len;
	bool write_certs;
	bool vmpck_disabled; /* the device's state after this call */
};

/*
 * What memory the call needs, from what is known so far: *ret_need_req
 * when req_data must be fetched (size sg_req_size), *ret_certs_len > 0
 * when the certificate buffer is an output (SNP_GET_EXT_REPORT with a
 * valid certs_len; needs the request struct). req may be NULL.
 */
void sg_needs(unsigned int cmd, const struct snp_guest_request_ioctl *io, const void *req,
	      bool *ret_need_req, size_t *ret_certs_len);

void sg_ioctl(struct sg_dev *d, struct sg_call *c);

#endif
