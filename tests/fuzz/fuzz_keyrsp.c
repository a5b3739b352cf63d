/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MSG_KEY_RSP (kd_key_rsp_parse), the derived-key response, and MSG_KEY_REQ
 * (kd_key_req_decode), which the simulator parses from the guest.
 * Properties: an accepted response re-encodes to the same 64 bytes and its
 * key lands in a locked secret; a refused one never yields a secret; an
 * accepted request re-encodes to the same 32 bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "keyd/cursor.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/secret.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_secret *key = NULL;
	struct kd_key_req req;
	uint8_t out[KD_KEY_RSP_SIZE], rq[KD_KEY_REQ_SIZE];
	char buf[128];
	int r;

	r = kd_key_rsp_parse(data, size, &key);
	if (r == 0) {
		FUZZ_ASSERT(size == KD_KEY_RSP_SIZE);
		FUZZ_ASSERT(key && key->len == KD_DERIVED_KEY_SIZE);
		FUZZ_ASSERT(kd_secret_is_locked(key));
		kd_key_rsp_encode(KD_FW_SUCCESS, key->data, out);
		FUZZ_ASSERT(memcmp(out, data, sizeof(out)) == 0);
		kd_secret_free(key);
	} else {
		FUZZ_ASSERT(key == NULL);
		if (r == KD_EFIRMWARE)
			FUZZ_ASSERT(size == KD_KEY_RSP_SIZE && kd_get_le32(data) != 0);
	}
	if (size >= 4)
		(void)kd_fw_status_name(kd_get_le32(data));

	if (kd_key_req_decode(data, size, &req) == 0) {
		FUZZ_ASSERT(size == KD_KEY_REQ_SIZE);
		kd_key_req_encode(&req, rq);
		FUZZ_ASSERT(memcmp(rq, data, sizeof(rq)) == 0);
		if (kd_key_req_validate(&req) == 0)
			FUZZ_ASSERT((req.guest_field_select & ~KD_FIELD_VALID_MASK) == 0 &&
				    req.vmpl <= 3);
		kd_fields_format(req.guest_field_select, buf, sizeof(buf));
	}
	kd_err_clear();
	return 0;
}
