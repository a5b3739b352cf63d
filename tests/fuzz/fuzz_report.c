/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SNP ATTESTATION_REPORT parser (kd_report_parse): the report comes from the
 * host (ext report, handoff HELLO, files), so every byte is hostile.
 * Properties: a parsed report re-encodes to exactly the input bytes (nothing
 * the parser accepted was ignored or normalised away), and the JSON and TCB
 * helpers work on whatever the parser accepted.
 */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/report.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_report r, r2;
	uint8_t out[KD_REPORT_SIZE];
	char hex[KD_TCB_HEX_LEN], txt[KD_TCB_STR_MAX];
	uint64_t back;
	json_object *j;

	if (kd_report_parse(data, size, &r))
		return 0;
	FUZZ_ASSERT(size == KD_REPORT_SIZE);
	FUZZ_ASSERT(r.version >= 2 && r.version <= 5);
	FUZZ_ASSERT(kd_report_encode(&r, out) == 0);
	FUZZ_ASSERT(memcmp(out, data, KD_REPORT_SIZE) == 0);
	FUZZ_ASSERT(kd_report_parse(out, sizeof(out), &r2) == 0);
	FUZZ_ASSERT(r2.product == r.product && r2.signing_key == r.signing_key);

	kd_tcb_hex(r.current_tcb, hex);
	FUZZ_ASSERT(strlen(hex) == KD_TCB_HEX_LEN - 1);
	FUZZ_ASSERT(kd_tcb_parse_hex(hex, &back) == 0 && back == r.current_tcb);
	kd_tcb_format(r.reported_tcb, r.product, txt, sizeof(txt));
	FUZZ_ASSERT(kd_tcb_ge(r.current_tcb, r.current_tcb, r.product));
	(void)kd_signing_key_name(r.signing_key);

	j = kd_report_to_json(&r);
	FUZZ_ASSERT(j != NULL);
	FUZZ_ASSERT(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) != NULL);
	json_object_put(j);
	kd_err_clear();
	return 0;
}
