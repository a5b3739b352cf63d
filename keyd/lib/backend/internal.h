/* SPDX-License-Identifier: Apache-2.0 */
/* Private constructors of the trust backends (keyd/backend.h). */
#ifndef KEYD_BACKEND_INTERNAL_H
#define KEYD_BACKEND_INTERNAL_H

#include "keyd/backend.h"

int kd_backend_sim_open(const char *addr, struct kd_backend **ret);
int kd_backend_snp_open(const char *path, struct kd_backend **ret);
int kd_backend_tsm_open(const char *root, struct kd_backend **ret);

/*
 * Test seams. The snp backend issues its ioctls through fn (ioctl(2) when
 * NULL; path NULL: no device is opened and fd -1 is passed), so a unit test
 * can check the exact bytes sent and play the kernel's failures.
 */
typedef int (*kd_snp_ioctl_fn)(int fd, unsigned long request, void *arg);
int kd_snp_backend_open_with(const char *path, kd_snp_ioctl_fn fn, struct kd_backend **ret);
/* The same, reading the guest's VMPCK number from vmpck_id_path (NULL: sysfs). */
int kd_snp_backend_open_at(const char *path, const char *vmpck_id_path, kd_snp_ioctl_fn fn,
			   struct kd_backend **ret);

/*
 * The tsm backend calls hook (if set) with the report directory it made:
 * stage 3 right after the mkdir (where the kernel's read-only attributes,
 * provider and privlevel_floor, appear), stage 0 after writing inblob and
 * privlevel, stage 1 after reading outblob, stage 2 just before the rmdir. A test uses it to play the kernel's part in a plain directory.
 */
typedef void (*kd_tsm_hook_fn)(const char *dir, int stage, void *ctx);
int kd_tsm_backend_open_with(const char *root, kd_tsm_hook_fn hook, void *ctx,
			     struct kd_backend **ret);

#endif
