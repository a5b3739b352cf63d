/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OVMF footer table and SEV metadata (kd_ovmf_parse): the firmware image is
 * chosen by whoever prepares the launch, i.e. the host.
 * Properties: a parsed image has a size that is a positive multiple of
 * 4 KiB, gpa = 4 GiB - size, at most KD_OVMF_MAX_SECTIONS sections, each of
 * a known type, below 4 GiB, and of whole pages where it is measured page by
 * page; parsing is deterministic.
 */
#include <string.h>

#include "fuzz.h"
#include "keyd/error.h"
#include "keyd/measure.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kd_ovmf_info a, b;

	if (kd_ovmf_parse(data, size, &a)) {
		kd_err_clear();
		return 0;
	}
	FUZZ_ASSERT(size > 0 && size % 4096 == 0);
	FUZZ_ASSERT(a.gpa == 0x100000000ull - size);
	FUZZ_ASSERT(a.n_sections <= KD_OVMF_MAX_SECTIONS);
	for (unsigned i = 0; i < a.n_sections; i++) {
		uint32_t t = a.sections[i].type;

		FUZZ_ASSERT((t >= KD_OVMF_SEC_MEM && t <= KD_OVMF_SVSM_CAA) ||
			    t == KD_OVMF_KERNEL_HASHES);
		/* Measured page by page: whole pages. SECRETS and CPUID are one
		 * page whatever their size says (as sev-snp-measure does). */
		if (t != KD_OVMF_SECRETS && t != KD_OVMF_CPUID)
			FUZZ_ASSERT(a.sections[i].size % 4096 == 0);
		FUZZ_ASSERT((uint64_t)a.sections[i].gpa + a.sections[i].size <= 0x100000000ull);
	}
	FUZZ_ASSERT(kd_ovmf_parse(data, size, &b) == 0);
	FUZZ_ASSERT(a.n_sections == b.n_sections && a.reset_eip == b.reset_eip &&
		    a.has_hash_table == b.has_hash_table);
	FUZZ_ASSERT(memcmp(a.sections, b.sections, a.n_sections * sizeof(a.sections[0])) == 0);
	return 0;
}
