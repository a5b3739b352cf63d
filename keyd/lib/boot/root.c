/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Root-of-trust check of the boot path (keyd/root.h): the measured command
 * line names the verity root hash, and the live dm table must match it.
 *
 * The dm-verity table format is the kernel's
 * (Documentation/admin-guide/device-mapper/verity.rst):
 *   <version> <data_dev> <hash_dev> <data_block_size> <hash_block_size>
 *   <num_data_blocks> <hash_start_block> <algorithm> <digest> <salt>
 *   [<#opt_params> <opt_params>]
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdevmapper.h>

#include "keyd/error.h"
#include "keyd/root.h"

#define CMDLINE_MAX 4096

/* Kernel-style argument splitting: whitespace separates, double quotes group. */
static const char *next_arg(const char *p, char *buf, size_t len)
{
	size_t n = 0;
	bool quoted = false;

	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p)
		return NULL;
	for (; *p && (quoted || !isspace((unsigned char)*p)); p++) {
		if (*p == '"') {
			quoted = !quoted;
			continue;
		}
		if (n + 1 < len)
			buf[n++] = *p;
	}
	buf[n] = '\0';
	return p;
}

static int set_hash(const char *name, const char *val, char dst[KD_ROOTHASH_HEX_MAX + 1])
{
	size_t n = strlen(val);
	char low[KD_ROOTHASH_HEX_MAX + 1];

	if (n < 32 || n > KD_ROOTHASH_HEX_MAX || n % 2)
		return kd_fail(KD_EMALFORMED, "kernel command line: %s is not a 32..128-digit hex "
					      "root hash", name);
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)val[i]))
			return kd_fail(KD_EMALFORMED, "kernel command line: %s is not hex", name);
		low[i] = (char)tolower((unsigned char)val[i]);
	}
	low[n] = '\0';
	if (dst[0] && strcmp(dst, low))
		return kd_fail(KD_EMALFORMED, "kernel command line names two different %s values",
			       name);
	memcpy(dst, low, n + 1);
	return 0;
}

int kd_root_expect_parse(const char *cmdline, struct kd_root_expect *ret)
{
	struct kd_root_expect e = {0};
	char arg[CMDLINE_MAX];
	const char *p = cmdline;
	int r;

	if (!cmdline)
		return kd_fail(KD_EINVAL, "no kernel command line");
	while ((p = next_arg(p, arg, sizeof(arg)))) {
		const char *eq = strchr(arg, '=');
		const char *val = eq ? eq + 1 : "";
		size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);

#define KEY_IS(k) (klen == strlen(k) && !strncmp(arg, k, klen))
		if (KEY_IS("roothash") || KEY_IS("keyd.roothash")) {
			if ((r = set_hash("roothash", val, e.roothash)) < 0)
				return r;
		} else if (KEY_IS("usrhash") || KEY_IS("keyd.usrhash")) {
			if ((r = set_hash("usrhash", val, e.usrhash)) < 0)
				return r;
		} else if (KEY_IS("keyd.root")) {
			if (strcmp(val, "initramfs"))
				return kd_fail(KD_EINVAL, "kernel command line: keyd.root=%.32s is not "
							  "'initramfs'", val);
			e.initramfs_only = true;
		}
#undef KEY_IS
	}
	if (e.initramfs_only && (e.roothash[0] || e.usrhash[0]))
		return kd_fail(KD_EMALFORMED, "kernel command line declares keyd.root=initramfs and "
					      "a verity root hash: one or the other");
	if (e.usrhash[0] && !e.roothash[0] && !e.initramfs_only) {
		/* A verity /usr with an unverified root is still a host-chosen root. */
		return kd_fail(KD_EMALFORMED, "kernel command line has usrhash= but no roothash=");
	}
	*ret = e;
	return 0;
}

int kd_verity_params_roothash(const char *params, char ret[KD_ROOTHASH_HEX_MAX + 1],
			      bool *ret_weak)
{
	char field[CMDLINE_MAX], digest[KD_ROOTHASH_HEX_MAX + 1] = "";
	const char *p = params;
	unsigned long nopt;
	bool weak = false;
	int i;

	if (!params)
		return kd_fail(KD_EMALFORMED, "empty verity table");
	for (i = 0; i < 10; i++) {
		if (!(p = next_arg(p, field, sizeof(field))))
			return kd_fail(KD_EMALFORMED, "verity table has %d fields, not 10", i);
		if (i == 0 && strcmp(field, "1"))
			return kd_fail(KD_EMALFORMED, "verity table version %.8s is not 1", field);
		if (i == 8) {
			size_t n = strlen(field);

			if (n < 32 || n > KD_ROOTHASH_HEX_MAX)
				return kd_fail(KD_EMALFORMED, "verity table digest has %zu digits", n);
			for (size_t j = 0; j < n; j++) {
				if (!isxdigit((unsigned char)field[j]))
					return kd_fail(KD_EMALFORMED, "verity table digest is not hex");
				digest[j] = (char)tolower((unsigned char)field[j]);
			}
			digest[n] = '\0';
		}
	}
	if ((p = next_arg(p, field, sizeof(field)))) {
		char *end;

		nopt = strtoul(field, &end, 10);
		if (*end || end == field || nopt > 64)
			return kd_fail(KD_EMALFORMED, "verity table optional-argument count %.16s",
				       field);
		for (unsigned long k = 0; k < nopt; k++) {
			if (!(p = next_arg(p, field, sizeof(field))))
				return kd_fail(KD_EMALFORMED, "verity table ends inside its optional "
							      "arguments");
			if (!strcmp(field, "ignore_corruption") || !strcmp(field, "ignore_zero_blocks"))
				weak = true;
		}
		if (next_arg(p, field, sizeof(field)))
			return kd_fail(KD_EMALFORMED, "verity table has bytes after its arguments");
	}
	memcpy(ret, digest, strlen(digest) + 1);
	*ret_weak = weak;
	return 0;
}

/* libdevmapper's own messages would break the one-line-refusal rule. */
static void dm_quiet(int level, const char *file, int line, int dm_errno, const char *f, ...)
{
	(void)level;
	(void)file;
	(void)line;
	(void)dm_errno;
	(void)f;
}

/* The one verity target of dm device name; its root hash into ret. */
static int dm_verity_roothash(const char *name, char ret[KD_ROOTHASH_HEX_MAX + 1])
{
	struct dm_task *dmt;
	struct dm_info info;
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	void *next;
	bool weak = false;
	int r = 0, targets = 0;

	dm_log_with_errno_init(dm_quiet);
	if (!(dmt = dm_task_create(DM_DEVICE_TABLE)))
		return kd_fail(KD_EPOLICY, "root: no device-mapper: /dev/mapper/%s cannot be a "
					   "verity root", name);
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) || !dm_task_get_info(dmt, &info) ||
	    !info.exists) {
		dm_task_destroy(dmt);
		return kd_fail(KD_EPOLICY, "root: /dev/mapper/%s does not exist: the root is not "
					   "verity-mapped", name);
	}
	next = NULL;
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
		if (!type)
			break;
		targets++;
		if (strcmp(type, "verity")) {
			r = kd_fail(KD_EPOLICY, "root: /dev/mapper/%s is a %.16s mapping, not "
						"dm-verity", name, type);
			break;
		}
		if ((r = kd_verity_params_roothash(params, ret, &weak)) < 0)
			break;
		if (weak) {
			r = kd_fail(KD_EPOLICY, "root: /dev/mapper/%s ignores verity corruption", name);
			break;
		}
	} while (next);
	dm_task_destroy(dmt);
	if (!r && targets != 1)
		r = kd_fail(KD_EPOLICY, "root: /dev/mapper/%s has %d targets, not one verity "
					"target", name, targets);
	return r;
}

static int check_one(const char *what, const char *dm, const char *want)
{
	char have[KD_ROOTHASH_HEX_MAX + 1];
	int r;

	if ((r = dm_verity_roothash(dm, have)) < 0)
		return r;
	if (strcmp(have, want))
		return kd_fail(KD_EPOLICY, "%s: /dev/mapper/%s has verity root hash %.16s..., the "
					   "measured command line says %.16s...", what, dm, have, want);
	return 0;
}

int kd_root_check(const struct kd_root_expect *e, const char *root_dm, const char *usr_dm,
		  char *ret_line, size_t len)
{
	int r;

	if (e->initramfs_only) {
		snprintf(ret_line, len, "root: this image runs entirely from its measured "
					"initramfs (keyd.root=initramfs)");
		return 0;
	}
	if (!e->roothash[0])
		return kd_fail(KD_EPOLICY, "root: the measured kernel command line has no roothash= "
					   "(nor keyd.root=initramfs): refusing to release state "
					   "keys to an unmeasured root");
	if ((r = check_one("root", root_dm ? root_dm : "root", e->roothash)) < 0)
		return r;
	if (e->usrhash[0] && (r = check_one("usr", usr_dm ? usr_dm : "usr", e->usrhash)) < 0)
		return r;
	snprintf(ret_line, len, "root: /dev/mapper/%s is dm-verity with the measured root hash "
				"%.16s...%s", root_dm ? root_dm : "root", e->roothash,
		 e->usrhash[0] ? ", and /usr with the measured usrhash" : "");
	return 0;
}

int kd_root_check_boot(const char *cmdline_path, const char *root_dm, const char *usr_dm,
		       char *ret_line, size_t len)
{
	struct kd_root_expect e;
	char buf[CMDLINE_MAX];
	size_t n;
	FILE *f = fopen(cmdline_path, "re");
	int r;

	if (!f)
		return kd_fail(KD_EIO, "cannot read %s: %m", cmdline_path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f))
		r = kd_fail(KD_EIO, "cannot read %s", cmdline_path);
	else if (!feof(f))
		r = kd_fail(KD_EMALFORMED, "%s is longer than %d bytes", cmdline_path, CMDLINE_MAX - 1);
	else
		r = 0;
	fclose(f);
	if (r < 0)
		return r;
	buf[n] = '\0';
	if (memchr(buf, '\0', n))
		return kd_fail(KD_EMALFORMED, "%s holds a NUL byte", cmdline_path);
	if ((r = kd_root_expect_parse(buf, &e)) < 0)
		return r;
	return kd_root_check(&e, root_dm, usr_dm, ret_line, len);
}
