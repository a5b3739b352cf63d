/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the measure module's files. */
#ifndef KEYD_MEASURE_INTERNAL_H
#define KEYD_MEASURE_INTERNAL_H

#include <stdint.h>

#define KD_PAGE_SIZE 4096u
/* Far above any real OVMF (4 MiB today); keeps a bogus path from eating RAM. */
#define KD_OVMF_MAX_SIZE (64u << 20)

/* A GUID in EFI (uuid bytes_le) order, written from its canonical text fields. */
#define KD_GUID_LE(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                             \
	{                                                                                \
		(uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16),                 \
		(uint8_t)((a) >> 24), (uint8_t)(b), (uint8_t)((b) >> 8), (uint8_t)(c),   \
		(uint8_t)((c) >> 8), d0, d1, d2, d3, d4, d5, d6, d7                      \
	}

extern const uint8_t kd_guid_ovmf_footer[16];

#endif
