/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MSG_REPORT_RSP codec: what the firmware returns for MSG_REPORT_REQ, shared
 * by the snp backend (ioctl) and the simulator backend (wire).
 */
#include <stdlib.h>
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/report.h"

int kd_report_rsp_parse(const uint8_t *buf, size_t len, uint8_t **ret)
{
	struct kd_cursor c;
	uint32_t status, size;
	const uint8_t *rep;
	uint8_t *out;
	int r;

	kd_cur_init(&c, buf, len);
	if ((r = kd_cur_u32(&c, &status)) < 0 || (r = kd_cur_u32(&c, &size)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP truncated");
	if (status != 0)
		return kd_fail(KD_EFIRMWARE, "firmware refused report request: status 0x%x%s", status,
			       status == 0x16 ? " (INVALID_PARAMS)" : "");
	if (size != KD_REPORT_SIZE)
		return kd_fail(KD_EMALFORMED, "MSG_REPORT_RSP report_size %u is not %u", size,
			       KD_REPORT_SIZE);
	if ((r = kd_cur_zero(&c, 0x18)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP reserved bytes are not zero");
	if ((r = kd_cur_ptr(&c, &rep, KD_REPORT_SIZE)) < 0)
		return kd_fail(r, "MSG_REPORT_RSP shorter than its report_size");
	out = malloc(KD_REPORT_SIZE);
	if (!out)
		return kd_fail(KD_ENOMEM, "out of memory (report)");
	memcpy(out, rep, KD_REPORT_SIZE);
	*ret = out;
	return 0;
}
