/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the libFuzzer targets. A broken property aborts, so libFuzzer
 * keeps the input as a crash artifact just as it does for a sanitizer report.
 */
#ifndef KEYD_FUZZ_H
#define KEYD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			abort();                                                       \
		}                                                                      \
	} while (0)

#endif
