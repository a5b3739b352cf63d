/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one bounds-checked cursor through which all untrusted bytes pass.
 *
 * Rules (after OpenSSH's sshbuf and tpm2-tss's unmarshallers):
 *  - a getter consumes bytes only on success; on failure the offset is
 *    unchanged and the output is untouched;
 *  - integers are little-endian and decoded by byte shifts, never by casting
 *    a struct onto the input;
 *  - length checks subtract, so they cannot overflow;
 *  - kd_cur_expect_end() refuses trailing bytes.
 *
 * Errors: KD_ETRUNC when fewer bytes remain than asked for, KD_ERESERVED
 * when a must-be-zero range is not zero, KD_EMALFORMED for trailing bytes.
 */
#ifndef KEYD_CURSOR_H
#define KEYD_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct kd_cursor {
	const uint8_t *buf;
	size_t len;
	size_t off;
};

void kd_cur_init(struct kd_cursor *c, const void *buf, size_t len);
size_t kd_cur_remaining(const struct kd_cursor *c);

int kd_cur_u8(struct kd_cursor *c, uint8_t *ret);
int kd_cur_u16(struct kd_cursor *c, uint16_t *ret);
int kd_cur_u32(struct kd_cursor *c, uint32_t *ret);
int kd_cur_u64(struct kd_cursor *c, uint64_t *ret);
/* Copy n bytes out. */
int kd_cur_bytes(struct kd_cursor *c, void *ret, size_t n);
/* Borrow a pointer to the next n bytes (valid as long as the buffer). */
int kd_cur_ptr(struct kd_cursor *c, const uint8_t **ret, size_t n);
int kd_cur_skip(struct kd_cursor *c, size_t n);
/* Consume n bytes that must all be zero (MBZ). */
int kd_cur_zero(struct kd_cursor *c, size_t n);
/* Absolute seek within [0, len]. */
int kd_cur_seek(struct kd_cursor *c, size_t off);
/* 0 if everything was consumed, KD_EMALFORMED otherwise. */
int kd_cur_expect_end(const struct kd_cursor *c);

/* Writers for encoding into caller-owned fixed buffers. */
static inline void kd_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void kd_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void kd_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t kd_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t kd_get_le64(const uint8_t *p)
{
	return (uint64_t)kd_get_le32(p) | (uint64_t)kd_get_le32(p + 4) << 32;
}

#endif
