/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VCEK/VLEK certificate extensions (kd_vek_parse), DER or PEM: the
 * certificate comes from the host's table or from KDS through the host.
 * Properties: the documented shape of a success (VCEK: 8- or 64-byte hwID,
 * VLEK: cspID and no hwID; strings NUL-terminated; a known product), and
 * parsing is deterministic.
 */
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kd_vek_info v, v2;

	memset(&v, 0, sizeof(v));
	if (kd_vek_parse(data, size, &v)) {
		kd_err_clear();
		return 0;
	}
	FUZZ_ASSERT(memchr(v.product_name, 0, sizeof(v.product_name)) != NULL);
	FUZZ_ASSERT(memchr(v.csp_id, 0, sizeof(v.csp_id)) != NULL);
	FUZZ_ASSERT(v.product != KD_PRODUCT_UNKNOWN);
	if (v.is_vlek)
		FUZZ_ASSERT(v.hwid_len == 0);
	else
		FUZZ_ASSERT(v.hwid_len == 8 || v.hwid_len == 64);
	memset(&v2, 0, sizeof(v2));
	FUZZ_ASSERT(kd_vek_parse(data, size, &v2) == 0);
	FUZZ_ASSERT(v.is_vlek == v2.is_vlek && v.product == v2.product);
	FUZZ_ASSERT(strcmp(v.product_name, v2.product_name) == 0);
	FUZZ_ASSERT(v.bl_spl == v2.bl_spl && v.tee_spl == v2.tee_spl && v.snp_spl == v2.snp_spl &&
		    v.ucode_spl == v2.ucode_spl && v.fmc_spl == v2.fmc_spl);
	FUZZ_ASSERT(v.hwid_len == v2.hwid_len && memcmp(v.hwid, v2.hwid, v.hwid_len) == 0);
	return 0;
}
