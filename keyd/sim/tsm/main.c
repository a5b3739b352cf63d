/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-sevguest-tsm: the configfs-tsm report tree of the test guest, as a
 * FUSE filesystem mounted where the kernel's would be (the test /init
 * mounts it on /sys/kernel/config/tsm). keyd's production tsm backend then
 * runs against it unchanged. A TEST RIG: `make install` never installs it.
 *
 * The rules of the tree are in tsmtree.c. As sev_report_new() calls the
 * SEV guest driver's get_ext_report(), a report request here is an
 * SNP_GET_EXT_REPORT ioctl on the emulated /dev/sev-guest
 * (keyd-sevguest-cuse), which forwards it to keyd-simfw: one VMPCK, one
 * request lock and one path to the firmware for both interfaces, as in
 * the kernel.
 *
 * configfs file semantics kept here (fs/configfs/file.c): a binary
 * attribute collects every write of one open file and hands the blob to
 * the store when the file is closed, whose result is not reported (close
 * succeeds); a longer blob than the attribute's maximum is -EFBIG at
 * write. A text attribute is stored by each write(2), whose result is the
 * store's. A reader sees the contents as they were at its first read.
 * Opening a write-only attribute for reading, or a read-only one for
 * writing, is -EACCES, for root as well.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>

#include "tsmtree.h"

static struct tsm_tree *tree;
static const char *sev_guest = "/dev/sev-guest";

struct handle {
	char name[TSM_NAME_MAX + 1];
	enum tsm_attr attr;
	uint8_t *buf;
	size_t len;
	bool filled, writing;
};

/* The guest driver's get_ext_report, reached through the device. */
static int dev_ioctl(void *ctx, unsigned long cmd, struct snp_guest_request_ioctl *io)
{
	int fd, r;

	(void)ctx;
	if ((fd = open(sev_guest, O_RDWR | O_CLOEXEC)) < 0)
		return -ENODEV;
	r = ioctl(fd, cmd, io);
	r = r < 0 ? -errno : 0;
	close(fd);
	return r;
}

enum node { N_NONE, N_ROOT, N_REPORT, N_ENTRY, N_ATTR };

/* "/", "/report", "/report/NAME", "/report/NAME/ATTR". */
static enum node parse(const char *path, char name[TSM_NAME_MAX + 1], int *attr)
{
	const char *p, *slash;
	size_t n;

	if (!strcmp(path, "/"))
		return N_ROOT;
	if (strncmp(path, "/report", 7) || (path[7] && path[7] != '/'))
		return N_NONE;
	if (!path[7] || !path[8])
		return N_REPORT;
	p = path + 8;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (!n || n > TSM_NAME_MAX)
		return N_NONE;
	memcpy(name, p, n);
	name[n] = '\0';
	if (!slash)
		return N_ENTRY;
	if ((*attr = tsm_attr_lookup(slash + 1)) < 0)
		return N_NONE;
	return N_ATTR;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* Entries come and go under other processes: no caching. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	return NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0;
	enum node n = parse(path, name, &attr);

	(void)fi;
	memset(st, 0, sizeof(*st));
	switch (n) {
	case N_ROOT:
	case N_REPORT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	case N_ENTRY:
	case N_ATTR:
		if (!tsm_exists(tree, name))
			return -ENOENT;
		if (n == N_ENTRY) {
			st->st_mode = S_IFDIR | 0755;
			st->st_nlink = 2;
		} else {
			st->st_mode = S_IFREG | (tsm_attr_readable(attr) ? 0444 : 0) |
				      (tsm_attr_writable(attr) ? 0200 : 0);
			st->st_nlink = 1;
			/*
			 * The most an attribute holds (a page of text, or the
			 * binary attribute's maximum): readers that go by the
			 * size (sendfile, splice on 6.x FUSE) stop there.
			 */
			st->st_size = attr == TSM_INBLOB ? TSM_INBLOB_MAX
				    : tsm_attr_binary(attr) ? TSM_OUTBLOB_MAX : 4096;
		}
		return 0;
	default:
		return -ENOENT;
	}
}

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static void fill_one(void *ctx, const char *name)
{
	struct fill *f = ctx;

	f->filler(f->buf, name, NULL, 0, 0);
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0;
	enum node n = parse(path, name, &attr);
	struct fill f = {buf, filler};

	(void)off;
	(void)fi;
	(void)flags;
	if (n == N_ATTR)
		return -ENOTDIR;
	if (n == N_NONE || (n == N_ENTRY && !tsm_exists(tree, name)))
		return -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (n == N_ROOT)
		filler(buf, "report", NULL, 0, 0);
	else if (n == N_REPORT)
		tsm_list(tree, fill_one, &f);
	else
		for (int i = 0; i < TSM_NATTR; i++)
			filler(buf, tsm_attr_name(i), NULL, 0, 0);
	return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0;
	enum node n = parse(path, name, &attr);

	(void)mode;
	if (n == N_ENTRY)
		return tsm_mkdir(tree, name);
	/* configfs: a group without make_item, or an item, takes no mkdir. */
	return n == N_NONE ? -EPERM : -EEXIST;
}

static int fs_rmdir(const char *path)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0;
	enum node n = parse(path, name, &attr);

	if (n == N_ENTRY)
		return tsm_rmdir(tree, name);
	if (n == N_ATTR)
		return -ENOTDIR;
	return n == N_NONE ? -ENOENT : -EPERM;
}

static int fs_unlink(const char *path)
{
	(void)path;
	return -EPERM;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return -EACCES;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0;

	(void)size;
	(void)fi;
	/* O_TRUNC on an attribute: configfs keeps no file contents to cut. */
	return parse(path, name, &attr) == N_ATTR && tsm_exists(tree, name) ? 0 : -EPERM;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	char name[TSM_NAME_MAX + 1];
	int attr = 0, acc = fi->flags & O_ACCMODE;
	struct handle *h;

	if (parse(path, name, &attr) != N_ATTR || !tsm_exists(tree, name))
		return -ENOENT;
	if ((acc != O_WRONLY && !tsm_attr_readable(attr)) ||
	    (acc != O_RDONLY && !tsm_attr_writable(attr)))
		return -EACCES;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	memcpy(h->name, name, sizeof(h->name));
	h->attr = attr;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->nonseekable = 0;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r;

	(void)path;
	if (h->writing)
		return -ETXTBSY;
	if (!h->filled) {
		if ((r = tsm_show(tree, h->name, h->attr, &h->buf, &h->len)) < 0)
			return r;
		h->filled = true;
	}
	if (off < 0 || (size_t)off >= h->len)
		return 0;
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	memcpy(buf, h->buf + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	long r;

	(void)path;
	if (!tsm_attr_binary(h->attr)) {
		r = tsm_store(tree, h->name, h->attr, buf, size);
		return r < 0 ? (int)r : (int)size;
	}
	if (h->filled)
		return -ETXTBSY;
	if (off < 0 || (size_t)off + size > TSM_INBLOB_MAX)
		return -EFBIG;
	if (!h->buf && !(h->buf = calloc(1, TSM_INBLOB_MAX)))
		return -ENOMEM;
	memcpy(h->buf + off, buf, size);
	if ((size_t)off + size > h->len)
		h->len = (size_t)off + size;
	h->writing = true;
	return (int)size;
}

/* The binary store at close; its result is dropped, as configfs does. */
static void bin_store(struct handle *h)
{
	if (h->writing) {
		(void)tsm_store(tree, h->name, h->attr, h->buf, h->len);
		h->writing = false;
		h->len = 0;
	}
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	/* close(2) waits for FLUSH, not for RELEASE: store here so the next open sees it. */
	bin_store((struct handle *)(uintptr_t)fi->fh);
	return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)path;
	bin_store(h);
	if (h->buf)
		explicit_bzero(h->buf, h->filled ? h->len : TSM_INBLOB_MAX);
	free(h->buf);
	free(h);
	return 0;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.unlink = fs_unlink,
	.create = fs_create,
	.truncate = fs_truncate,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
};

static void usage(FILE *f)
{
	fputs("Usage: keyd-sevguest-tsm MOUNTPOINT [--sev-guest PATH] [--provider NAME]\n"
	      "                         [--privlevel-floor N] [--debug]\n"
	      "\n"
	      "TEST RIG. Mount the Linux configfs-tsm report tree (report/NAME with inblob,\n"
	      "outblob, auxblob, generation, provider, privlevel, privlevel_floor) on\n"
	      "MOUNTPOINT, usually /sys/kernel/config/tsm. Each report is an\n"
	      "SNP_GET_EXT_REPORT on the SEV guest device PATH (default /dev/sev-guest,\n"
	      "keyd-sevguest-cuse), as the kernel's sev_guest provider makes it.\n"
	      "--provider (default sev_guest) and --privlevel-floor (default 0, the VMPL\n"
	      "of the VMPCK in use) set what the tree says. Runs in the foreground;\n"
	      "needs /dev/fuse (modprobe fuse).\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sev-guest", required_argument, NULL, 's'},
		{"provider", required_argument, NULL, 'p'},
		{"privlevel-floor", required_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tsm_opts o = {.provider = "sev_guest", .ioctl = dev_ioctl};
	char *fargv[8], *end;
	int fargc = 0, c, r;
	bool debug = false;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sev_guest = optarg;
			break;
		case 'p':
			if (!*optarg || strchr(optarg, '\n')) {
				usage(stderr);
				return 2;
			}
			o.provider = optarg;
			break;
		case 'f': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || end == optarg || v > TSM_PRIVLEVEL_MAX) {
				fprintf(stderr, "keyd-sevguest-tsm: --privlevel-floor must be 0..3\n");
				return 2;
			}
			o.privlevel_floor = (unsigned)v;
			break;
		}
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if ((r = tsm_tree_new(&o, &tree)) < 0) {
		fprintf(stderr, "keyd-sevguest-tsm: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "keyd-sevguest-tsm: %s/report (provider %s, privlevel_floor %u) -> %s\n",
		argv[optind], o.provider, o.privlevel_floor, sev_guest);
	fargv[fargc++] = argv[0];
	fargv[fargc++] = (char *)"-f";
	fargv[fargc++] = (char *)"-o";
	fargv[fargc++] = (char *)"fsname=keyd-sevguest-tsm,subtype=configfs-tsm";
	if (debug)
		fargv[fargc++] = (char *)"-d";
	fargv[fargc++] = argv[optind];
	fargv[fargc] = NULL;
	r = fuse_main(fargc, fargv, &ops, NULL);
	tsm_tree_free(tree);
	return r ? 1 : 0;
}
