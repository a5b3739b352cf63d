/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/util.h"

void kd_hex(const uint8_t *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	assert(out && (buf || !len));
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kd_unhex_var(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n;

	assert(ret_len && (out || !max));
	if (!s)
		return kd_fail(KD_EINVAL, "no hex string given");
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n % 2)
		return kd_fail(KD_EMALFORMED, "hex string has an odd number of digits (%zu)", n);
	if (n / 2 > max)
		return kd_fail(KD_EMALFORMED, "hex string is %zu bytes, at most %zu expected", n / 2, max);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return kd_fail(KD_EMALFORMED, "not a hex digit at position %zu", 2 * i + (hi < 0 ? 0 : 1));
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret_len = n / 2;
	return 0;
}

int kd_unhex(const char *s, uint8_t *out, size_t len)
{
	size_t n;
	int r = kd_unhex_var(s, out, len, &n);

	if (r < 0)
		return r;
	if (n != len)
		return kd_fail(KD_EMALFORMED, "hex string is %zu bytes, %zu expected", n, len);
	return 0;
}

int kd_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	assert(ret);
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return kd_fail(KD_EMALFORMED, "\"%s\" is not an unsigned number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return kd_fail(KD_EMALFORMED, "\"%s\" is not an unsigned number", s);
	if (v > max)
		return kd_fail(KD_EMALFORMED, "%s is larger than %llu", s, (unsigned long long)max);
	*ret = v;
	return 0;
}

int kd_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	assert(path && ret && ret_len);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return kd_fail(errno == ENOENT ? KD_ENOENT : KD_EIO, "cannot open %s: %s",
			       path, strerror(errno));
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nb;

			if (cap > max)
				break;
			nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				close(fd);
				return kd_fail(KD_ENOMEM, "out of memory (reading %s)", path);
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			close(fd);
			return kd_fail(KD_EIO, "cannot read %s: %s", path, strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > max) {
		free(buf);
		return kd_fail(KD_EMALFORMED, "%s is larger than %zu bytes", path, max);
	}
	if (!buf && !(buf = malloc(1)))
		return kd_fail(KD_ENOMEM, "out of memory (reading %s)", path);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int kd_write_file(const char *path, const void *buf, size_t len, unsigned mode)
{
	char tmp[PATH_MAX];
	const uint8_t *p = buf;
	int fd;

	assert(path && (buf || !len));
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return kd_fail(KD_EINVAL, "path is too long: %s", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return kd_fail(KD_EIO, "cannot create %s: %s", path, strerror(errno));
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return kd_fail(KD_EIO, "cannot write %s: %s", path, strerror(errno));
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return kd_fail(KD_EIO, "cannot write %s: %s", path, strerror(errno));
}
