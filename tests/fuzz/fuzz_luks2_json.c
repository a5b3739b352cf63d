/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LUKS2 JSON allow-list alone (kd_header_allow, kd_header_pin_params),
 * without the binary header and checksum in front, so the fuzzer spends its
 * time on the metadata checks that stop cipher_null and friends.
 * Properties: the verdict and the pin parameters are deterministic, and a
 * header the allow-list accepts has pin parameters for some keyslot only if
 * that keyslot exists.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/header.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	json_object *meta, *slots = NULL;
	int r1, r2;

	if (size > KD_LUKS2_HDR_MAX)
		return 0;
	tok = json_tokener_new_ex(12);
	FUZZ_ASSERT(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	meta = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (!meta)
		return 0;
	r1 = kd_header_allow(meta, 16384);
	r2 = kd_header_allow(meta, 16384);
	FUZZ_ASSERT(r1 == r2);
	(void)kd_header_allow(meta, 0x400000);
	if (r1 == 0) {
		json_object_object_get_ex(meta, "keyslots", &slots);
		for (int id = 0; id < 32; id++) {
			uint8_t *a = NULL, *b = NULL;
			size_t al = 0, bl = 0;
			char key[12];
			int ra = kd_header_pin_params(meta, "uuid", id, &a, &al);

			snprintf(key, sizeof(key), "%d", id);
			if (ra == 0) {
				FUZZ_ASSERT(slots && json_object_object_get_ex(slots, key, NULL));
				FUZZ_ASSERT(kd_header_pin_params(meta, "uuid", id, &b, &bl) == 0);
				FUZZ_ASSERT(al == bl && memcmp(a, b, al) == 0);
			}
			free(a);
			free(b);
		}
	}
	json_object_put(meta);
	kd_err_clear();
	return 0;
}
