/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keyd/error.h"
#include "keyd/secret.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

int kd_secret_new(size_t len, struct kd_secret **ret)
{
	struct kd_secret *s;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t map_len;
	void *m;

	assert(ret);
	if (len == 0 || len > (1u << 20))
		return kd_fail(KD_EINVAL, "secret size %zu is not in 1..1 MiB", len);
	map_len = (len + page - 1) / page * page;
	s = calloc(1, sizeof(*s));
	if (!s)
		return kd_fail(KD_ENOMEM, "out of memory (secret)");
	m = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		free(s);
		return kd_fail(KD_ENOMEM, "cannot map secret memory: %s", strerror(errno));
	}
	/* A key that could be swapped out or dumped is not kept: fail. */
	if (mlock(m, map_len) < 0 || madvise(m, map_len, MADV_DONTDUMP) < 0) {
		munmap(m, map_len);
		free(s);
		return kd_fail(KD_ENOMEM, "cannot lock secret memory (RLIMIT_MEMLOCK?)");
	}
	(void)madvise(m, map_len, MADV_WIPEONFORK);
	s->data = m;
	s->len = len;
	s->map_len = map_len;
	*ret = s;
	return 0;
}

int kd_secret_dup(const void *buf, size_t len, struct kd_secret **ret)
{
	struct kd_secret *s;
	int r = kd_secret_new(len, &s);

	if (r < 0)
		return r;
	memcpy(s->data, buf, len);
	*ret = s;
	return 0;
}

void (*kd_secret_free_observer)(const uint8_t *data, size_t map_len);

void kd_secret_free(struct kd_secret *s)
{
	if (!s)
		return;
	if (s->data) {
		OPENSSL_cleanse(s->data, s->map_len);
		if (kd_secret_free_observer)
			kd_secret_free_observer(s->data, s->map_len);
		munlock(s->data, s->map_len);
		munmap(s->data, s->map_len);
	}
	free(s);
}

int kd_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void kd_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

int kd_secret_is_locked(const struct kd_secret *s)
{
	unsigned char vec[1];

	/* mincore tells residency; a locked page is always resident. */
	if (!s || !s->data)
		return 0;
	if (mincore(s->data, 1, vec) < 0)
		return 0;
	return (vec[0] & 1) != 0;
}

void kd_process_harden(void)
{
	struct rlimit rl = {0, 0};

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &rl);
}
