/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Linux SEV guest driver's ioctl ABI, emulated in front of keyd-simfw
 * (see sevguest.h for what is mirrored and from which kernel files).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/simwire.h"
#include "sevguest.h"

/* exitinfo2 values (uapi sev-guest.h: bits 63:32 VMM error, 31:0 firmware error). */
#define SG_NO_FW_CALL 0xffull /* preset by snp_guest_ioctl */
#define SG_VMM_INVALID_LEN ((uint64_t)SNP_GUEST_VMM_ERR_INVALID_LEN << 32)
#define SG_VMM_HOST_FAILED (0xffffffffull << 32)

/* Guest message types (the driver's enum msg_type, SNP ABI "MSG_*"). */
#define SG_MSG_KEY_REQ 3
#define SG_MSG_REPORT_REQ 5

_Static_assert(sizeof(struct snp_guest_request_ioctl) == 32, "ioctl struct is 32 bytes");
_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req is 96 bytes");
_Static_assert(sizeof(struct snp_ext_report_req) == 112, "snp_ext_report_req is 112 bytes");

int sg_abi_parse(const char *s, enum sg_abi *ret)
{
	if (!strcmp(s, "6.1.0")) {
		*ret = SG_ABI_V6_1;
		return 0;
	}
	if (!strcmp(s, "6.1") || !strcmp(s, "6.1.y") || !strcmp(s, "6.12")) {
		*ret = SG_ABI_STABLE;
		return 0;
	}
	return kd_fail(KD_EINVAL, "kernel ABI '%s' is not 6.1.0, 6.1.y or 6.12", s);
}

const char *sg_abi_name(enum sg_abi abi)
{
	return abi == SG_ABI_V6_1 ? "6.1.0" : "6.1.y/6.12";
}

void sg_dev_init(struct sg_dev *d, enum sg_abi abi, sg_fw_fn fw, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->abi = abi;
	d->fw = fw;
	d->fw_ctx = ctx;
	pthread_mutex_init(&d->lock, NULL);
}

void sg_dev_destroy(struct sg_dev *d)
{
	pthread_mutex_destroy(&d->lock);
}

size_t sg_req_size(unsigned int cmd)
{
	switch (cmd) {
	case SNP_GET_REPORT:
		return sizeof(struct snp_report_req);
	case SNP_GET_DERIVED_KEY:
		return sizeof(struct snp_derived_key_req);
	case SNP_GET_EXT_REPORT:
		return sizeof(struct snp_ext_report_req);
	default:
		return 0;
	}
}

void sg_needs(unsigned int cmd, const struct snp_guest_request_ioctl *io, const void *req,
	      bool *ret_need_req, size_t *ret_certs_len)
{
	*ret_need_req = false;
	*ret_certs_len = 0;
	if (!io->msg_version || !io->req_data || !io->resp_data || !sg_req_size(cmd))
		return;
	*ret_need_req = true;
	if (cmd == SNP_GET_EXT_REPORT && req) {
		struct snp_ext_report_req ext;

		memcpy(&ext, req, sizeof(ext));
		if (ext.certs_len && ext.certs_address && ext.certs_len <= SG_CERTS_MAX &&
		    ext.certs_len % SG_PAGE == 0)
			*ret_certs_len = ext.certs_len;
	}
}

/*
 * The firmware's part of one message: MSG_KEY_REQ is forwarded as it is
 * (keyd-simfw applies the firmware's rules, reserved field included);
 * MSG_REPORT_REQ travels as report_data + vmpl, so its reserved bytes are
 * checked here, as the firmware would (status 0x16 in the response).
 */
static int fw_message(struct sg_dev *d, uint8_t msg_type, const void *msg, uint8_t **ret,
		      size_t *ret_len)
{
	if (msg_type == SG_MSG_KEY_REQ)
		return d->fw(d->fw_ctx, KD_SIM_REQ_DERIVE, msg, sizeof(struct snp_derived_key_req),
			     ret, ret_len);
	{
		const struct snp_report_req *r = msg;
		uint8_t wire[KD_SIM_REPORT_REQ_SIZE];

		for (size_t i = 0; i < sizeof(r->rsvd); i++) {
			if (r->rsvd[i]) {
				uint8_t *rsp = calloc(1, KD_SIM_REPORT_RSP_SIZE);

				if (!rsp)
					return kd_fail(KD_ENOMEM, "out of memory (report response)");
				kd_put_le32(rsp, KD_FW_INVALID_PARAMS);
				*ret = rsp;
				*ret_len = KD_SIM_REPORT_RSP_SIZE;
				return 0;
			}
		}
		memcpy(wire, r->user_data, 64);
		kd_put_le32(wire + 64, r->vmpl);
		return d->fw(d->fw_ctx, KD_SIM_REQ_REPORT, wire, sizeof(wire), ret, ret_len);
	}
}

/*
 * One guest request, as __handle_guest_request + snp_send_guest_request
 * (6.12) and handle_guest_request (6.1) do it. Lock held.
 * ext: SVM_VMGEXIT_EXT_GUEST_REQUEST with *npages pages of certificate
 * buffer (certs); on INVALID_LEN *npages becomes the host's page count.
 * resp gets the response message, zero-padded to resp_size.
 */
static long guest_request(struct sg_dev *d, struct snp_guest_request_ioctl *io, uint8_t msg_type,
			  const void *msg, uint8_t *resp, size_t resp_size, bool ext,
			  unsigned *npages, uint8_t *certs)
{
	uint8_t *rsp = NULL, *table = NULL;
	size_t rsp_len = 0, table_len = 0;
	uint64_t override = 0;
	long rc = 0;
	int r;

	d->requests++;
	if (io->msg_version != 1) {
		/* Assumed: the firmware fails a message version it lacks. */
		io->exitinfo2 = KD_FW_INVALID_PARAMS;
		rc = -EIO;
		goto disable;
	}
	/*
	 * The host's half of an extended request (GHCB: the certificate
	 * table). A guest that offers no pages gets the plain request.
	 */
	if (ext && *npages) {
		unsigned need;

		if ((r = d->fw(d->fw_ctx, KD_SIM_REQ_CERTS, NULL, 0, &table, &table_len)) < 0) {
			io->exitinfo2 = SG_VMM_HOST_FAILED;
			rc = -EIO;
			goto disable;
		}
		need = (unsigned)((table_len + SG_PAGE - 1) / SG_PAGE);
		if (need > *npages) {
			/*
			 * INVALID_LEN with the needed pages in RBX (-ENOSPC in
			 * snp_issue_guest_request); the driver re-issues the
			 * request without certificates so that the sequence
			 * number is not reused, and reports INVALID_LEN.
			 */
			*npages = need;
			override = SG_VMM_INVALID_LEN;
		} else if (table_len) {
			memcpy(certs, table, table_len);
		}
		free(table);
	}
	if ((r = fw_message(d, msg_type, msg, &rsp, &rsp_len)) < 0) {
		io->exitinfo2 = SG_VMM_HOST_FAILED;
		rc = -EIO;
		goto disable;
	}
	io->exitinfo2 = 0;
	/* verify_and_dec_payload: the message must fit the response buffer. */
	if (rsp_len > resp_size) {
		free(rsp);
		rc = -EBADMSG;
		goto disable;
	}
	memset(resp, 0, resp_size);
	memcpy(resp, rsp, rsp_len);
	kd_wipe(rsp, rsp_len);
	free(rsp);
	if (override) {
		io->exitinfo2 = override;
		/* Later kernels: "return -EIO back to the caller as would have originally been returned". */
		if (d->abi != SG_ABI_V6_1)
			return -EIO;
	}
	return 0;
disable:
	/* snp_disable_vmpck: "Disabling VMPCK%d communication key to prevent IV reuse." */
	d->vmpck_disabled = true;
	return rc;
}

static long get_report(struct sg_dev *d, struct snp_guest_request_ioctl *io, struct sg_call *c)
{
	struct snp_report_req req;
	long rc;

	if (!io->req_data || !io->resp_data || !c->req)
		return -EINVAL;
	memcpy(&req, c->req, sizeof(req));
	rc = guest_request(d, io, SG_MSG_REPORT_REQ, &req, c->resp,
			   sizeof(struct snp_report_resp), false, NULL, NULL);
	if (rc)
		return rc;
	c->resp_len = sizeof(struct snp_report_resp);
	c->write_resp = true;
	return 0;
}

static long get_derived_key(struct sg_dev *d, struct snp_guest_request_ioctl *io, struct sg_call *c)
{
	struct snp_derived_key_req req;
	long rc;

	if (!io->req_data || !io->resp_data || !c->req)
		return -EINVAL;
	memcpy(&req, c->req, sizeof(req));
	rc = guest_request(d, io, SG_MSG_KEY_REQ, &req, c->resp,
			   sizeof(struct snp_derived_key_resp), false, NULL, NULL);
	if (rc)
		return rc;
	c->resp_len = sizeof(struct snp_derived_key_resp);
	c->write_resp = true;
	return 0;
}

static long get_ext_report(struct sg_dev *d, struct snp_guest_request_ioctl *io, struct sg_call *c)
{
	struct snp_ext_report_req req;
	unsigned npages = 0;
	size_t user_len = 0;
	long rc;

	if (!io->req_data || !io->resp_data || !c->req)
		return -EINVAL;
	memcpy(&req, c->req, sizeof(req));
	/* certs_len or certs_address 0: the caller does not want certificates. */
	if (req.certs_len && req.certs_address) {
		/* SEV_FW_BLOB_MAX_SIZE: refused before any firmware call, VMPCK kept. */
		if (req.certs_len > SG_CERTS_MAX || req.certs_len % SG_PAGE)
			return -EINVAL;
		user_len = req.certs_len;
		memset(c->certs, 0, user_len);
		npages = req.certs_len / SG_PAGE;
	}
	rc = guest_request(d, io, SG_MSG_REPORT_REQ, &req.data, c->resp,
			   sizeof(struct snp_report_resp), true, &npages, c->certs);
	/* "If certs length is invalid then copy the returned length" */
	if (io->vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN) {
		req.certs_len = npages * SG_PAGE;
		c->req_out = req;
		c->write_req = true;
		/* 6.1.0 then copies the zeroed buffer: at most the caller's size here. */
		memset(c->certs, 0, user_len);
	}
	if (rc)
		return rc;
	if (user_len) {
		c->certs_len = user_len;
		c->write_certs = true;
	}
	c->resp_len = sizeof(struct snp_report_resp);
	c->write_resp = true;
	return 0;
}

void sg_ioctl(struct sg_dev *d, struct sg_call *c)
{
	struct snp_guest_request_ioctl io = c->io;
	long rc;

	c->write_io = c->write_req = c->write_resp = c->write_certs = false;
	c->vmpck_disabled = false;
	c->resp_len = c->certs_len = 0;
	io.exitinfo2 = SG_NO_FW_CALL;
	/* "Message version must be non-zero" (nothing is copied back). */
	if (!io.msg_version) {
		c->rc = -EINVAL;
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (d->vmpck_disabled) {
		pthread_mutex_unlock(&d->lock);
		c->vmpck_disabled = true;
		c->rc = -ENOTTY; /* "VMPCK is disabled" */
		return;
	}
	switch (c->cmd) {
	case SNP_GET_REPORT:
		rc = get_report(d, &io, c);
		break;
	case SNP_GET_DERIVED_KEY:
		rc = get_derived_key(d, &io, c);
		break;
	case SNP_GET_EXT_REPORT:
		rc = get_ext_report(d, &io, c);
		break;
	default:
		rc = -ENOTTY;
		break;
	}
	c->vmpck_disabled = d->vmpck_disabled;
	pthread_mutex_unlock(&d->lock);
	if (io.exitinfo2) {
		c->io_out = io;
		c->write_io = true;
	}
	c->rc = rc;
}
