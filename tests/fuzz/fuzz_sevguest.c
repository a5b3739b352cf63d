/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test guest's emulated /dev/sev-guest (keyd/sim/cuse/sevguest.c):
 * any ioctl struct and request struct from the caller, and any answer from
 * the host side (the bytes keyd-simfw sends back, or no answer).
 * Properties: only the driver's return values come out; a response is
 * written only on success and never longer than the caller's buffer; an
 * ioctl that failed in the guest-request path (other than INVALID_LEN on
 * later kernels) leaves the VMPCK disabled, after which every ioctl is
 * -ENOTTY; -EINVAL for a bad certificate buffer reaches no firmware.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "sevguest.h"

struct script {
	const uint8_t *p;
	size_t n;
	int calls;
};

/* Each host answer: one length byte (0xff = no answer), then that many x 32 bytes. */
static int fw(void *ctx, uint16_t type, const void *req, size_t len, uint8_t **ret, size_t *ret_len)
{
	struct script *s = ctx;
	size_t want;
	uint8_t *out;

	s->calls++;
	if (!s->n)
		return KD_EIO;
	want = (size_t)s->p[0] * 32;
	s->p++, s->n--;
	if (want == 0xff * 32)
		return KD_EIO;
	if (want > s->n)
		want = s->n;
	out = malloc(want ? want : 1);
	if (!out)
		return KD_ENOMEM;
	memcpy(out, s->p, want);
	s->p += want, s->n -= want;
	*ret = out;
	*ret_len = want;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int cmds[] = {SNP_GET_REPORT, SNP_GET_DERIVED_KEY, SNP_GET_EXT_REPORT,
					    _IOWR('S', 0x9, struct snp_guest_request_ioctl)};
	uint8_t req[sizeof(struct snp_ext_report_req)];
	struct script s = {0};
	struct sg_dev d;
	struct sg_call *c;
	enum sg_abi abi;
	uint8_t flags;

	if (size < 2 + sizeof(struct snp_guest_request_ioctl) + sizeof(req))
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	flags = data[0];
	abi = (data[1] & 1) ? SG_ABI_V6_1 : SG_ABI_STABLE;
	c->cmd = cmds[flags & 3];
	memcpy(&c->io, data + 2, sizeof(c->io));
	memcpy(req, data + 2 + sizeof(c->io), sizeof(req));
	/* Pointers are the caller's; here only "NULL or not" matters. */
	c->io.req_data = (flags & 4) ? 0 : 1;
	c->io.resp_data = (flags & 8) ? 0 : 1;
	if (c->cmd == SNP_GET_EXT_REPORT && (flags & 16)) {
		/* Mostly plausible certificate buffers. */
		struct snp_ext_report_req *e = (struct snp_ext_report_req *)req;

		e->certs_len = (uint32_t)(data[1] >> 1) * 1024;
		e->certs_address = 1;
	}
	s.p = data + 2 + sizeof(c->io) + sizeof(req);
	s.n = size - 2 - sizeof(c->io) - sizeof(req);
	sg_dev_init(&d, abi, fw, &s);
	{
		bool need;
		size_t certs_len;

		sg_needs(c->cmd, &c->io, req, &need, &certs_len);
		c->req = need ? req : NULL;
		FUZZ_ASSERT(certs_len <= SG_CERTS_MAX && certs_len % SG_PAGE == 0);
	}
	for (int round = 0; round < 3; round++) {
		int calls = s.calls;
		bool was_disabled = d.vmpck_disabled;

		sg_ioctl(&d, c);
		FUZZ_ASSERT(c->rc == 0 || c->rc == -EINVAL || c->rc == -ENOTTY || c->rc == -EIO ||
			    c->rc == -EBADMSG);
		if (c->write_resp) {
			FUZZ_ASSERT(c->rc == 0 || d.abi == SG_ABI_V6_1);
			FUZZ_ASSERT(c->resp_len == sizeof(struct snp_report_resp) ||
				    c->resp_len == sizeof(struct snp_derived_key_resp));
		}
		if (c->write_certs)
			FUZZ_ASSERT(c->certs_len <= SG_CERTS_MAX && c->certs_len % SG_PAGE == 0);
		if (c->rc == -EBADMSG || (c->rc == -EIO && !(c->write_io &&
							     c->io_out.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN)))
			FUZZ_ASSERT(d.vmpck_disabled);
		if (c->rc == -EINVAL)
			FUZZ_ASSERT(s.calls == calls);
		if (was_disabled && c->io.msg_version)
			FUZZ_ASSERT(c->rc == -ENOTTY && s.calls == calls && !c->write_io);
	}
	sg_dev_destroy(&d);
	free(c);
	return 0;
}
