/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configfs-tsm report interface of the test guest: the state and rules
 * of /sys/kernel/config/tsm/report as Linux 6.7 to 6.12 implement them with
 * the sev_guest provider. A TEST RIG, never installed by `make install`.
 *
 * This file is the interface alone, free of FUSE, so that unit tests can
 * drive it in process; main.c mounts it as a FUSE filesystem.
 *
 * What it mirrors, from drivers/virt/coco/tsm.c (6.7-6.12; later kernels
 * moved it to drivers/virt/coco/guest/report.c),
 * Documentation/ABI/testing/configfs-tsm and sev_report_new() in
 * drivers/virt/coco/sev-guest/sev-guest.c:
 *
 *  - report/NAME is made by mkdir (any name) and removed by rmdir; each
 *    holds inblob, outblob, auxblob, generation, provider, privlevel and
 *    privlevel_floor (the SVSM service_* attributes and manifestblob are
 *    visible only at VMPL > 0 under an SVSM, which this rig does not model);
 *  - inblob (write only, binary, at most 64 bytes: a longer write is
 *    -EFBIG) and privlevel (write only, text) each advance the entry's
 *    write generation; `generation` shows it, so that a reader can tell
 *    that someone else wrote between its write and its read;
 *  - a write when the write generation is one short of the read generation
 *    (2^64 - 1 writes without a read) is -EBUSY until outblob is read;
 *  - privlevel takes kstrtouint syntax (decimal, 0x hex, 0 octal, one
 *    trailing newline) and must be privlevel_floor..3, else -EINVAL;
 *  - privlevel_floor is the VMPL of the VMPCK the driver uses (vmpck_id),
 *    provider is "sev_guest";
 *  - reading outblob or auxblob when inblob was never written is -EINVAL;
 *    otherwise the report of the current generation is returned, made
 *    once per generation: sev_report_new() refuses an inblob that is not
 *    64 bytes (-EINVAL), sends SNP_GET_EXT_REPORT with privlevel as the
 *    VMPL and a 16 KiB certificate buffer through the same guest-request
 *    path as /dev/sev-guest (the same VMPCK and lock: a wiped VMPCK is
 *    -ENOTTY here too), maps firmware status INVALID_PARAMS and
 *    INVALID_KEY to -EINVAL and any other to -ENXIO, and takes the
 *    certificate table up to its all-zero entry as auxblob (empty when
 *    the host sent none).
 *
 * The report request is an SNP_GET_EXT_REPORT ioctl made through
 * tsm_ioctl_fn: in the guest, on the emulated /dev/sev-guest, which
 * forwards it to keyd-simfw.
 */
#ifndef KEYD_SIM_TSMTREE_H
#define KEYD_SIM_TSMTREE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/ioctl.h>

#include <linux/sev-guest.h>

#define TSM_INBLOB_MAX 64u
#define TSM_OUTBLOB_MAX (32u * 1024u)
#define TSM_PRIVLEVEL_MAX 3u
#define TSM_NAME_MAX 255u

enum tsm_attr {
	TSM_INBLOB,
	TSM_OUTBLOB,
	TSM_AUXBLOB,
	TSM_GENERATION,
	TSM_PROVIDER,
	TSM_PRIVLEVEL,
	TSM_PRIVLEVEL_FLOOR,
	TSM_NATTR,
};

/* One ioctl on the guest device: 0 or -errno (io is updated as the kernel would). */
typedef int (*tsm_ioctl_fn)(void *ctx, unsigned long cmd, struct snp_guest_request_ioctl *io);

struct tsm_opts {
	const char *provider;  /* "sev_guest" unless a test wants another */
	unsigned privlevel_floor;
	tsm_ioctl_fn ioctl;
	void *ctx;
};

struct tsm_tree;

int tsm_tree_new(const struct tsm_opts *o, struct tsm_tree **ret);
void tsm_tree_free(struct tsm_tree *t);

/* The attribute called name, or -1. */
int tsm_attr_lookup(const char *name);
const char *tsm_attr_name(enum tsm_attr a);
/* Whether the attribute can be opened for reading / for writing. */
bool tsm_attr_readable(enum tsm_attr a);
bool tsm_attr_writable(enum tsm_attr a);
bool tsm_attr_binary(enum tsm_attr a);

/* report/NAME: 0, -EEXIST, -ENAMETOOLONG, -EINVAL (no name), -ENOMEM. */
int tsm_mkdir(struct tsm_tree *t, const char *name);
/* 0 or -ENOENT. */
int tsm_rmdir(struct tsm_tree *t, const char *name);
bool tsm_exists(struct tsm_tree *t, const char *name);
/*
 * Names of the entries, for readdir: calls fn for each, under the lock
 * (fn must not call back into the tree).
 */
void tsm_list(struct tsm_tree *t, void (*fn)(void *ctx, const char *name), void *ctx);

/*
 * The store of an attribute: for inblob the whole blob a writer wrote
 * before closing (configfs calls the bin attribute's write once, at
 * release), for privlevel one write(2). Returns len or -errno.
 */
long tsm_store(struct tsm_tree *t, const char *name, enum tsm_attr a, const void *buf, size_t len);

/*
 * The contents a reader sees (malloc'ed, *ret_len bytes; text attributes
 * end in a newline). Runs the report request for outblob and auxblob when
 * the current generation has none. 0 or -errno.
 */
int tsm_show(struct tsm_tree *t, const char *name, enum tsm_attr a, uint8_t **ret, size_t *ret_len);

/* Tests only: set an entry's write generation (the -EBUSY case needs 2^64 writes). */
int tsm_test_set_write_generation(struct tsm_tree *t, const char *name, uint64_t gen);

#endif
