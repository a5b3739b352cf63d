/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret memory: every key, passphrase and pin key lives in a kd_secret.
 *
 * The bytes sit in their own anonymous mapping that is mlock()ed (never
 * swapped), marked MADV_DONTDUMP (never in a core dump) and MADV_WIPEONFORK,
 * and wiped with OPENSSL_cleanse() before it is unmapped. Ownership moves
 * explicitly: kd_secret_take() returns the pointer and clears the source.
 */
#ifndef KEYD_SECRET_H
#define KEYD_SECRET_H

#include <stddef.h>
#include <stdint.h>

struct kd_secret {
	uint8_t *data;
	size_t len;
	size_t map_len;
};

/* A zeroed secret of len bytes (len > 0). KD_ENOMEM if it cannot be locked. */
int kd_secret_new(size_t len, struct kd_secret **ret);
/* A new secret holding a copy of buf[0..len). */
int kd_secret_dup(const void *buf, size_t len, struct kd_secret **ret);
/* Wipe, unlock, unmap. NULL is fine. */
void kd_secret_free(struct kd_secret *s);
static inline void kd_secret_freep(struct kd_secret **s)
{
	kd_secret_free(*s);
	*s = NULL;
}
static inline struct kd_secret *kd_secret_take(struct kd_secret **s)
{
	struct kd_secret *t = *s;

	*s = NULL;
	return t;
}
#define _kd_secret_ __attribute__((cleanup(kd_secret_freep)))

/* Constant-time equality of two equal-length buffers (CRYPTO_memcmp). */
int kd_ct_equal(const void *a, const void *b, size_t len);

/* Wipe a plain buffer (OPENSSL_cleanse). */
void kd_wipe(void *p, size_t len);

/* Introspection for tests: is this secret locked and excluded from dumps? */
int kd_secret_is_locked(const struct kd_secret *s);

/*
 * Test hook (tests/unit/test_hygiene.c): when set, kd_secret_free() calls it
 * with the still-mapped pages after the wipe and before munmap, so a test
 * can show the bytes are gone without touching freed memory. No executable
 * sets it.
 */
extern void (*kd_secret_free_observer)(const uint8_t *data, size_t map_len);

/*
 * Process-wide hardening, called first thing in every main():
 * PR_SET_DUMPABLE 0 and RLIMIT_CORE 0, so no core dump can carry a key.
 */
void kd_process_harden(void);

#endif
