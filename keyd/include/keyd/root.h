/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The root the initramfs switches into must be covered by the launch
 * measurement before any state key is released.
 *
 * The measured kernel command line carries the expected dm-verity root hash
 * (systemd's convention: roothash=HEX, and usrhash=HEX for a separate /usr;
 * keyd.roothash= and keyd.usrhash= are accepted as aliases), or declares
 * keyd.root=initramfs: the image runs entirely from its (measured)
 * initramfs and switches into nothing. Anything else is refused: without a
 * root hash on the command line, a measured initramfs would unlock the
 * state and hand it to whatever root filesystem the host supplied.
 *
 * The check then reads the live device-mapper table of the mapped root
 * (and /usr): its only target must be dm-verity with exactly the expected
 * root hash, and the mapping must not be opened in a mode that hides
 * corruption (ignore_corruption, ignore_zero_blocks).
 */
#ifndef KEYD_ROOT_H
#define KEYD_ROOT_H

#include <stdbool.h>
#include <stddef.h>

/* A SHA-512 digest in hex is the longest root hash dm-verity takes. */
#define KD_ROOTHASH_HEX_MAX 128

struct kd_root_expect {
	bool initramfs_only;                  /* keyd.root=initramfs */
	char roothash[KD_ROOTHASH_HEX_MAX + 1]; /* lowercase hex, "" if none */
	char usrhash[KD_ROOTHASH_HEX_MAX + 1];
};

/*
 * Parse a kernel command line. KD_EMALFORMED for a hash that is not even-
 * length hex of 32..128 characters, for a name given twice with different
 * values, or for keyd.root=initramfs together with a root hash (an image
 * cannot both switch into a verity root and run from its initramfs);
 * KD_EINVAL for an unknown keyd.root= value. *ret is set only on success.
 */
int kd_root_expect_parse(const char *cmdline, struct kd_root_expect *ret);

/*
 * The root-hash field of a dm-verity table line ("1 DATA HASH DBS HBS
 * NBLOCKS HSTART ALG DIGEST SALT [N OPT...]") into ret (lowercase hex).
 * *ret_weak is set when an optional argument hides corruption.
 * KD_EMALFORMED if the line is not a version-1 verity table.
 */
int kd_verity_params_roothash(const char *params, char ret[KD_ROOTHASH_HEX_MAX + 1],
			      bool *ret_weak);

/*
 * The whole check: the policy of e against the device-mapper devices
 * root_dm and usr_dm (names under /dev/mapper; usr_dm is only looked at
 * when e->usrhash is set). On success ret_line (len bytes) says which case
 * held, in one line for the console and /dev/kmsg. KD_EPOLICY with a
 * one-line reason otherwise.
 */
int kd_root_check(const struct kd_root_expect *e, const char *root_dm, const char *usr_dm,
		  char *ret_line, size_t len);

/* The same, with the expectation read from cmdline_path (/proc/cmdline). */
int kd_root_check_boot(const char *cmdline_path, const char *root_dm, const char *usr_dm,
		       char *ret_line, size_t len);

#endif
