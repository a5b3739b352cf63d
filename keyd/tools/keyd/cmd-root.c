/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd root check: is the root this boot switches into covered by the
 * measurement (keyd/root.h)?
 * keyd root cmdline: the kernel command line that measures a verity root.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "keyd/error.h"
#include "keyd/root.h"

static const char check_usage[] =
	"Usage: keyd root check [--cmdline FILE] [--root NAME] [--usr NAME]\n"
	"\n"
	"Check that the root filesystem this boot switches into is covered by the\n"
	"launch measurement: the measured kernel command line (FILE, default\n"
	"/proc/cmdline) names its dm-verity root hash (roothash=, usrhash=) and\n"
	"/dev/mapper/NAME (default root, and usr when usrhash= is given) is a\n"
	"dm-verity mapping with exactly that hash; or the command line declares\n"
	"keyd.root=initramfs (the image runs entirely from its initramfs).\n"
	"keyd unlock, enroll and passphrase run the same check with --root-check.\n"
	"\n"
	"Exit status: 0 covered (one line says how), 1 refused (one line says why),\n"
	"2 usage.\n";

static const char cmdline_usage[] =
	"Usage: keyd root cmdline (--verity-output FILE | --roothash HEX)\n"
	"                         [--usr-verity-output FILE | --usrhash HEX]\n"
	"                         [--data DEV --hash DEV] [--append STRING]\n"
	"\n"
	"Print the kernel command line that measures a dm-verity root: STRING\n"
	"(the rest of the command line), then roothash=HEX (and usrhash=HEX), and\n"
	"with --data/--hash systemd's systemd.verity_root_data= and\n"
	"systemd.verity_root_hash=, which keyd's initramfs uses to map the root.\n"
	"FILE is what `veritysetup format DATA HASH` printed (its \"Root hash:\"\n"
	"line). Feed the result to keyd measure --append to get the launch digest.\n";

/* The "Root hash:" value of veritysetup format's output. */
static int read_verity_output(const char *path, char ret[KD_ROOTHASH_HEX_MAX + 1])
{
	char line[512];
	FILE *f = fopen(path, "re");
	bool found = false;
	int r = 0;

	if (!f)
		return kd_fail(KD_EIO, "cannot read %s: %m", path);
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;
		size_t n;

		if (strncmp(line, "Root hash:", 10))
			continue;
		for (p = line + 10; *p && isspace((unsigned char)*p); p++)
			;
		for (end = p; *end && isxdigit((unsigned char)*end); end++)
			;
		n = (size_t)(end - p);
		if (n < 32 || n > KD_ROOTHASH_HEX_MAX || n % 2) {
			r = kd_fail(KD_EMALFORMED, "%s: the Root hash line holds no hex digest", path);
			break;
		}
		memcpy(ret, p, n);
		ret[n] = '\0';
		found = true;
		break;
	}
	fclose(f);
	if (!r && !found)
		r = kd_fail(KD_ENOENT, "%s has no \"Root hash:\" line (veritysetup format output)",
			    path);
	return r;
}

static int run_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cmdline", required_argument, NULL, 'c'},
		{"root", required_argument, NULL, 'r'},
		{"usr", required_argument, NULL, 'u'},
		{0},
	};
	const char *cmdline = "/proc/cmdline", *root = NULL, *usr = NULL;
	char line[256];
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cmdline = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'u':
			usr = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage_error("keyd root check takes no arguments");
	if ((r = kd_root_check_boot(cmdline, root, usr, line, sizeof(line))) < 0)
		return cli_refuse(r);
	printf("%s\n", line);
	return 0;
}

static int run_cmdline(int argc, char **argv)
{
	static const struct option opts[] = {
		{"verity-output", required_argument, NULL, 'v'},
		{"usr-verity-output", required_argument, NULL, 'V'},
		{"roothash", required_argument, NULL, 'r'},
		{"usrhash", required_argument, NULL, 'u'},
		{"data", required_argument, NULL, 'd'},
		{"hash", required_argument, NULL, 'h'},
		{"append", required_argument, NULL, 'a'},
		{0},
	};
	char root[KD_ROOTHASH_HEX_MAX + 1] = "", usr[KD_ROOTHASH_HEX_MAX + 1] = "";
	char probe[2 * KD_ROOTHASH_HEX_MAX + 64];
	const char *data = NULL, *hash = NULL, *append = NULL, *rootarg = NULL, *usrarg = NULL;
	const char *rootfile = NULL, *usrfile = NULL;
	struct kd_root_expect e;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			rootfile = optarg;
			break;
		case 'V':
			usrfile = optarg;
			break;
		case 'r':
			rootarg = optarg;
			break;
		case 'u':
			usrarg = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'h':
			hash = optarg;
			break;
		case 'a':
			append = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage_error("keyd root cmdline takes no arguments");
	if (!!rootfile + !!rootarg != 1)
		return cli_usage_error("give exactly one of --verity-output and --roothash");
	if (usrfile && usrarg)
		return cli_usage_error("give at most one of --usr-verity-output and --usrhash");
	if (!data != !hash)
		return cli_usage_error("--data and --hash go together");
	if (rootfile && (r = read_verity_output(rootfile, root)) < 0)
		return cli_refuse(r);
	if (usrfile && (r = read_verity_output(usrfile, usr)) < 0)
		return cli_refuse(r);
	if (rootarg)
		snprintf(root, sizeof(root), "%s", rootarg);
	if (usrarg)
		snprintf(usr, sizeof(usr), "%s", usrarg);
	/* The boot side parses what this prints: check it the same way. */
	snprintf(probe, sizeof(probe), "roothash=%s%s%s", root, usr[0] ? " usrhash=" : "", usr);
	if ((r = kd_root_expect_parse(probe, &e)) < 0)
		return cli_refuse(r);
	if (append && (r = kd_root_expect_parse(append, &e)) < 0)
		return cli_refuse(r);
	if (append && (e.roothash[0] || e.usrhash[0] || e.initramfs_only))
		return cli_usage_error("--append must not carry roothash=, usrhash= or keyd.root=");
	printf("%s%sroothash=%s", append ? append : "", append && *append ? " " : "", root);
	if (usr[0])
		printf(" usrhash=%s", usr);
	if (data)
		printf(" systemd.verity_root_data=%s systemd.verity_root_hash=%s", data, hash);
	printf("\n");
	return 0;
}

const struct kd_cmd cmd_root_check = {
	"root check", run_check, "is the root covered by the measurement (dm-verity)?",
	check_usage,
};
const struct kd_cmd cmd_root_cmdline = {
	"root cmdline", run_cmdline, "the kernel command line that measures a verity root",
	cmdline_usage,
};
