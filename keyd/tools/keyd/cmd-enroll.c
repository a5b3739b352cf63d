/* SPDX-License-Identifier: Apache-2.0 */
/* keyd enroll DEVICE --format: provision a sealed state volume (docs/formats.md §1). */
#include <getopt.h>
#include <stdio.h>

#include "backend-opts.h"
#include "commands.h"
#include "volume-cli.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/recover.h"
#include "keyd/util.h"
#include "keyd/volume.h"

static const char enroll_usage[] =
	"Usage: keyd enroll DEVICE --format [--label NAME] [--svn N] [--force]\n"
	"                   [--integrity [--integrity-no-wipe]] [--root-check]\n"
	"                   [BACKEND OPTIONS]\n"
	"\n"
	"Provision a new keyd volume: LUKS2, aes-xts-plain64, a random 512-bit\n"
	"volume key, 4096-byte sectors, and one keyd keyslot (PBKDF2-SHA512, 1000\n"
	"iterations) sealed to this launch's measurement, policy and committed TCB,\n"
	"described by an active keyd token with the volume-key pin.\n"
	"\n"
	"Refuses a device that carries any signature (filesystem, partition table,\n"
	"LUKS) unless --force. Crash-safe: the volume carries the LUKS2 label\n"
	"keyd-provisioning until its first token is written; such an unfinished\n"
	"volume was never opened for use and is simply provisioned again.\n"
	"\n"
	"  --format               required: create a new volume (destroys DEVICE)\n"
	"  --label NAME           label of the token, e.g. the GuestOS version\n"
	"  --svn N                release SVN recorded in the token (default 0)\n"
	"  --force                format over an existing signature or volume\n"
	"  --integrity            authenticated encryption: aes-xts-plain64 plus\n"
	"                         HMAC-SHA256 tags per sector (dm-integrity, volume\n"
	"                         key 64+32 bytes); needs device-mapper, so only in\n"
	"                         the guest. Every sector is written once (slow on\n"
	"                         big disks) unless:\n"
	"  --integrity-no-wipe    skip that; sectors never written read as integrity\n"
	"                         errors until they are written (see keyd(8))\n"
	"  --escrow CERT          add a k-of-n recovery escrow; one share per admin\n"
	"                         certificate (repeat the option, up to 8)\n"
	"  --threshold K          escrow shares needed to recover (keyd-recover(8))\n"
	"  --root-check           first check that the root this boot switches into is\n"
	"                         covered by the measurement (keyd root check)\n" BACKEND_OPTS_HELP
	"\nExit status: 0 enrolled, 1 refused, 2 usage.\n";

static int run_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", no_argument, NULL, 'F'}, {"label", required_argument, NULL, 'l'},
		{"svn", required_argument, NULL, 's'}, {"force", no_argument, NULL, 'f'},
		{"escrow", required_argument, NULL, 'e'}, {"threshold", required_argument, NULL, 't'},
		{"integrity", no_argument, NULL, 'I'}, {"integrity-no-wipe", no_argument, NULL, 'W'},
		{"root-check", no_argument, NULL, 'C'}, BACKEND_LONGOPTS, {0},
	};
	struct kd_backend_opts bopts = {0};
	struct kd_enroll_opts eo = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_launch l;
	bool format = false, redone = false, root_check = false;
	const char *escrow[KD_ESCROW_MAX_SHARES];
	size_t n_escrow = 0;
	uint64_t n, threshold = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'F':
			format = true;
			break;
		case 'l':
			eo.label = optarg;
			break;
		case 's':
			if (kd_parse_u64(optarg, UINT32_MAX, &n) < 0)
				return cli_usage_error("--svn must be a 32-bit number");
			eo.svn = (uint32_t)n;
			break;
		case 'f':
			eo.force = true;
			break;
		case 'I':
			eo.integrity = true;
			break;
		case 'W':
			eo.integrity_no_wipe = true;
			break;
		case 'C':
			root_check = true;
			break;
		case 'e':
			if (n_escrow == KD_ESCROW_MAX_SHARES)
				return cli_usage_error("at most %u --escrow certificates", KD_ESCROW_MAX_SHARES);
			escrow[n_escrow++] = optarg;
			break;
		case 't':
			if (kd_parse_u64(optarg, KD_ESCROW_MAX_SHARES, &threshold) < 0 || !threshold)
				return cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd enroll DEVICE --format [--label NAME]");
	if (!format)
		return cli_usage_error("--format is required (enroll creates a new volume)");
	if (eo.integrity_no_wipe && !eo.integrity)
		return cli_usage_error("--integrity-no-wipe needs --integrity");
	/* Escrow on an integrity volume needs dm to format, so it can only be
	 * exercised in a guest; it is refused until a VM scenario covers it. */
	if (eo.integrity && n_escrow)
		return cli_usage_error("--escrow cannot be combined with --integrity");
	if (!n_escrow != !threshold || threshold > n_escrow)
		return cli_usage_error("--escrow and --threshold K (K <= number of certificates) go together");
	/* No state key for a root the measurement does not cover. */
	if (root_check && (r = cli_root_check()) < 0)
		return cli_refuse(r);
	if ((r = cli_launch_open(&bopts, &b, &l)) < 0 ||
	    (r = kd_volume_enroll(argv[optind], b, &l, &eo, &redone)) < 0)
		goto out;
	if (n_escrow && (r = kd_escrow_enroll(argv[optind], b, &l, escrow, n_escrow,
					      (unsigned)threshold)) < 0)
		goto out;
	if ((r = kd_volume_open(argv[optind], &v)) < 0)
		goto out;
	if (n_escrow) {
		struct kd_escrow_token t;
		char hex[2 * KD_ESCROW_COMMIT_SIZE + 1];

		if ((r = kd_escrow_find(v, &t)) < 0)
			goto out;
		kd_recover_commitment_hex(t.commitment, hex);
		kd_escrow_token_clear(&t);
		printf("%s: %u-of-%zu recovery escrow added\n  commitment %s\n"
		       "  (record it: admins compare it before decrypting a share)\n",
		       kd_volume_path(v), (unsigned)threshold, n_escrow, hex);
	}
	printf("%s: enrolled LUKS2 volume %s%s (label %s)%s\n", kd_volume_path(v), kd_volume_uuid(v),
	       redone ? ", redoing an interrupted provisioning" : "", eo.label ? eo.label : "",
	       !eo.integrity ? ""
	       : eo.integrity_no_wipe ? "; integrity hmac(sha256), tags not initialised"
				      : "; integrity hmac(sha256), tags initialised");
out:
	kd_volume_close(v);
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_enroll = {"enroll", run_enroll, "provision a sealed LUKS2 state volume",
				  enroll_usage};
