/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <string.h>

#include "keyd/cursor.h"
#include "keyd/error.h"

void kd_cur_init(struct kd_cursor *c, const void *buf, size_t len)
{
	assert(c);
	c->buf = buf;
	c->len = buf ? len : 0;
	c->off = 0;
}

size_t kd_cur_remaining(const struct kd_cursor *c)
{
	/* A cursor never points past its buffer: every move checks first. */
	assert(c && c->off <= c->len);
	return c->len - c->off;
}

int kd_cur_ptr(struct kd_cursor *c, const uint8_t **ret, size_t n)
{
	assert(ret);
	if (n > kd_cur_remaining(c))
		return kd_fail(KD_ETRUNC, "input truncated: %zu bytes needed at offset %zu, %zu left", n,
			       c->off, kd_cur_remaining(c));
	*ret = c->buf + c->off;
	c->off += n;
	return 0;
}

int kd_cur_bytes(struct kd_cursor *c, void *ret, size_t n)
{
	const uint8_t *p;
	int r;

	assert(ret || !n);
	if ((r = kd_cur_ptr(c, &p, n)) < 0)
		return r;
	if (n)
		memcpy(ret, p, n);
	return 0;
}

static int get_le(struct kd_cursor *c, size_t n, uint64_t *ret)
{
	const uint8_t *p;
	uint64_t v = 0;
	int r = kd_cur_ptr(c, &p, n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	*ret = v;
	return 0;
}

int kd_cur_u8(struct kd_cursor *c, uint8_t *ret)
{
	uint64_t v;
	int r = get_le(c, 1, &v);

	assert(ret);
	if (r == 0)
		*ret = (uint8_t)v;
	return r;
}

int kd_cur_u16(struct kd_cursor *c, uint16_t *ret)
{
	uint64_t v;
	int r = get_le(c, 2, &v);

	assert(ret);
	if (r == 0)
		*ret = (uint16_t)v;
	return r;
}

int kd_cur_u32(struct kd_cursor *c, uint32_t *ret)
{
	uint64_t v;
	int r = get_le(c, 4, &v);

	assert(ret);
	if (r == 0)
		*ret = (uint32_t)v;
	return r;
}

int kd_cur_u64(struct kd_cursor *c, uint64_t *ret)
{
	assert(ret);
	return get_le(c, 8, ret);
}

int kd_cur_skip(struct kd_cursor *c, size_t n)
{
	const uint8_t *p;

	return kd_cur_ptr(c, &p, n);
}

int kd_cur_zero(struct kd_cursor *c, size_t n)
{
	if (n > kd_cur_remaining(c))
		return kd_fail(KD_ETRUNC, "input truncated: %zu reserved bytes needed at offset %zu, %zu left",
			       n, c->off, kd_cur_remaining(c));
	for (size_t i = 0; i < n; i++)
		if (c->buf[c->off + i] != 0)
			return kd_fail(KD_ERESERVED, "reserved byte at offset 0x%zx is not zero", c->off + i);
	c->off += n;
	return 0;
}

int kd_cur_seek(struct kd_cursor *c, size_t off)
{
	if (off > c->len)
		return kd_fail(KD_ETRUNC, "input truncated: offset %zu is past its end (%zu bytes)", off, c->len);
	c->off = off;
	return 0;
}

int kd_cur_expect_end(const struct kd_cursor *c)
{
	if (kd_cur_remaining(c))
		return kd_fail(KD_EMALFORMED, "%zu trailing bytes after the input", kd_cur_remaining(c));
	return 0;
}
