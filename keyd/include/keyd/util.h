/* SPDX-License-Identifier: Apache-2.0 */
/* Small shared helpers: hex, files. */
#ifndef KEYD_UTIL_H
#define KEYD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define KD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void kd_freep(void *p)
{
	free(*(void **)p);
}
#define _kd_free_ __attribute__((cleanup(kd_freep)))

/* Hand a value out of a cleanup variable: returns it and clears the variable. */
#define KD_TAKE_PTR(p)                                                                             \
	({                                                                                         \
		__typeof__(p) kd_take_ = (p);                                                      \
		(p) = NULL;                                                                        \
		kd_take_;                                                                          \
	})

/* Lowercase hex of buf into out (2*len+1 bytes). */
void kd_hex(const uint8_t *buf, size_t len, char *out);
/*
 * Parse exactly len bytes of hex (optional "0x" prefix, no other text).
 * KD_EMALFORMED on bad digits or wrong length.
 */
int kd_unhex(const char *s, uint8_t *out, size_t len);
/* Parse hex of any even length up to max; *ret_len gets the byte count. */
int kd_unhex_var(const char *s, uint8_t *out, size_t max, size_t *ret_len);
/* Strict unsigned parse (decimal or 0x hex) with range check. */
int kd_parse_u64(const char *s, uint64_t max, uint64_t *ret);

/* Read a whole file (at most max bytes) into a malloc'ed buffer. */
int kd_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len);
/* Write a file atomically (tmp + fsync + rename) with the given mode. */
int kd_write_file(const char *path, const void *buf, size_t len, unsigned mode);

#endif
