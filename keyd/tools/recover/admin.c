/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-recover rekey, retire, header-backup, header-restore, wipe, repair,
 * finish-rotation.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "recover.h"

/* ---------------------------------------------------------------- rekey */

/* The rekey command keyd has too (volume-cli.h). */
const struct kd_cmd cmd_rekey = {
	"rekey", cli_rekey_run, "TCB roll-forward of this launch's slot",
	"Usage: keyd-recover rekey DEVICE [BACKEND OPTIONS]\n" CLI_REKEY_HELP,
};

/* ---------------------------------------------------------------- retire */

static const char retire_usage[] =
	"Usage: keyd-recover retire DEVICE SLOT [--force] [BACKEND OPTIONS]\n"
	"\n"
	"Destroy keyslot SLOT and its token: a keyd slot (e.g. the pending slot of\n"
	"a failed upgrade, an old version's slot, or a lost chip's slot after a\n"
	"recovery), the escrow slot (removes the escrow), or a keyslot no token\n"
	"describes. Refused unless another way in works now: this launch's own\n"
	"active slot, opened here through the normal path (allow-list, derive,\n"
	"pin; nothing activated), or the escrow (its token checked). Slots sealed\n"
	"to another chip or another launch do not count, and a pending slot does\n"
	"not count (its launch has not booted). --force retires anyway; a forced\n"
	"retire of the last working slot can make the data unrecoverable.\n"
	BACKEND_OPTS_HELP
	"\nExit status: 0 retired, 1 refused, 2 usage.\n";

static int run_retire(int argc, char **argv)
{
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_retire_plan p;
	struct kd_launch l;
	bool force = false, have_launch;
	uint64_t slot;
	int r;

	if ((r = backend_opts_parse(argc, argv, "force", &force, &bopts)))
		return r;
	if (argc - optind != 2 || kd_parse_u64(argv[optind + 1], 31, &slot))
		return cli_usage_error("usage: keyd-recover retire DEVICE SLOT (0..31) [--force]");
	if ((r = kd_volume_open(argv[optind], &v)))
		return cli_refuse(r);
	have_launch = !cli_launch_open(&bopts, &b, &l);
	if ((r = kd_recover_retire_plan(v, have_launch ? b : NULL, have_launch ? &l : NULL, (int)slot,
					force, &p)) == 0)
		r = kd_recover_retire(v, &p, force);
	kd_volume_close(v);
	kd_backend_close(b);
	if (r)
		return cli_refuse(r);
	printf("keyslot %d destroyed (%s); %s\n", (int)slot,
	       p.kind == KD_RETIRE_ESCROW ? "the escrow: all its shares are void"
	       : p.kind == KD_RETIRE_KEYD ? "keyd" : "no token described it",
	       p.consequence);
	return 0;
}

const struct kd_cmd cmd_retire = {"retire", run_retire,
				  "destroy one keyslot (never the last way in)", retire_usage};

/* ---------------------------------------------------------------- header backup / restore */

static const char backup_usage[] =
	"Usage: keyd-recover header-backup DEVICE FILE\n"
	"\n"
	"Write the LUKS2 header and keyslots area of DEVICE to FILE (libcryptsetup\n"
	"crypt_header_backup). FILE must not exist. Keep it as safe as the\n"
	"volume: with the keyslots it holds, whoever can derive a keyd key or\n"
	"gather the escrow shares of that time opens the volume.\n"
	"\nExit status: 0 written, 1 refused, 2 usage.\n";

static int run_backup(int argc, char **argv)
{
	struct kd_volume *v = NULL;
	int r;

	if (argc != 3)
		return cli_usage_error("usage: keyd-recover header-backup DEVICE FILE");
	if ((r = kd_volume_open(argv[1], &v)) || (r = kd_admin_header_backup(v, argv[2])))
		goto out;
	printf("%s: header of volume %s written to %s\n", kd_volume_path(v), kd_volume_uuid(v),
	       argv[2]);
out:
	kd_volume_close(v);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_header_backup = {"header-backup", run_backup,
					 "save the LUKS2 header to a file", backup_usage};

static const char restore_usage[] =
	"Usage: keyd-recover header-restore DEVICE FILE [--force] [--yes]\n"
	"\n"
	"Replace the LUKS2 header and keyslots area of DEVICE with the backup in\n"
	"FILE. Refused when the backup is of another volume (UUID), when the\n"
	"backup's header fails the keyd allow-list, and -- unless --force -- when\n"
	"DEVICE has keyslots the backup lacks (they would be destroyed) or no\n"
	"readable header to compare the UUID with. After these checks it asks for\n"
	"the volume's UUID or LUKS2 label to be typed (on stdin) unless --yes is\n"
	"given.\n"
	"\nExit status: 0 restored, 1 refused or not confirmed, 2 usage.\n";

static int confirm_restore(const char *uuid, const char *label, void *ctx)
{
	bool yes = *(const bool *)ctx;

	/* With --yes nothing is asked, so nothing is announced: one line at most. */
	if (!yes)
		fprintf(stderr, "This replaces the LUKS2 header and keyslots of volume %s%s%s with "
				"the backup.\n", uuid, label[0] ? ", label " : "", label);
	return confirm_volume(uuid, label, yes);
}

static int run_restore(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
					     {"yes", no_argument, NULL, 'y'}, {0}};
	bool force = false, yes = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else if (c == 'y')
			yes = true;
		else
			return EXIT_USAGE;
	}
	if (argc - optind != 2)
		return cli_usage_error("usage: keyd-recover header-restore DEVICE FILE [--force] "
				       "[--yes]");
	if ((r = kd_admin_header_restore(argv[optind], argv[optind + 1], force, confirm_restore,
					 &yes)))
		return cli_refuse(r);
	printf("%s: header restored from %s\n", argv[optind], argv[optind + 1]);
	return 0;
}

const struct kd_cmd cmd_header_restore = {"header-restore", run_restore,
					  "restore this volume's LUKS2 header from a backup",
					  restore_usage};

/* ---------------------------------------------------------------- wipe */

static const char wipe_usage[] =
	"Usage: keyd-recover wipe DEVICE [--yes]\n"
	"\n"
	"Decommission: crypto-erase every keyslot (and every token) of DEVICE.\n"
	"Without a keyslot the volume key is gone, so the data can never be\n"
	"decrypted again, by anyone, with any share or backup taken before.\n"
	"Asks for the volume's UUID or LUKS2 label to be typed (on stdin) unless\n"
	"--yes is given.\n"
	"\nExit status: 0 erased, 1 refused or not confirmed, 2 usage.\n";

static int run_wipe(int argc, char **argv)
{
	static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {0}};
	const struct kd_header_health *h;
	struct kd_volume *v = NULL;
	char uuid[KD_LUKS2_UUID_MAX + 1], label[KD_LUKS2_LABEL_MAX + 1];
	bool yes = false;
	size_t n = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'y')
			return EXIT_USAGE;
		yes = true;
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd-recover wipe DEVICE [--yes]");
	if ((r = kd_volume_open(argv[optind], &v)))
		return cli_refuse(r);
	h = kd_volume_health(v);
	snprintf(uuid, sizeof(uuid), "%s", kd_volume_uuid(v));
	snprintf(label, sizeof(label), "%s", h->used == 1 ? h->secondary.label : h->primary.label);
	kd_volume_close(v);
	fprintf(stderr, "This destroys EVERY keyslot of %s (volume %s%s%s): the data becomes\n"
			"unrecoverable for everyone, escrow admins included.\n",
		argv[optind], uuid, label[0] ? ", label " : "", label);
	if ((r = confirm_volume(uuid, label, yes)))
		return cli_refuse(r);
	if ((r = kd_admin_wipe(argv[optind], &n)))
		return cli_refuse(r);
	printf("%s: crypto-erased: %zu keyslot%s destroyed\n", argv[optind], n, n == 1 ? "" : "s");
	return 0;
}

const struct kd_cmd cmd_wipe = {"wipe", run_wipe, "crypto-erase every keyslot (decommission)",
				wipe_usage};

/* ---------------------------------------------------------------- repair */

static const char repair_usage[] =
	"Usage: keyd-recover repair DEVICE BACKUP [--yes]\n"
	"\n"
	"Repair a LUKS2 header whose two copies disagree (one damaged, or one\n"
	"older after an interrupted write). keyd never lets libcryptsetup repair\n"
	"a header as a side effect: until this runs, keyd unlock and every\n"
	"keyd write refuse the volume. First both copies are saved, raw, to\n"
	"BACKUP.primary and BACKUP.secondary (which must not exist); then the\n"
	"copy libcryptsetup would use (the valid one, the newer one) is written\n"
	"over the other, and both are read back. Refused when the copies agree,\n"
	"when no copy is valid, or when the good copy fails keyd's allow-list\n"
	"(restore a known-good backup with header-restore instead).\n"
	"Asks for the volume's UUID to be typed (on stdin) unless --yes is given.\n"
	"\nExit status: 0 repaired, 1 refused or not confirmed, 2 usage.\n";

static int run_repair(int argc, char **argv)
{
	static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {0}};
	struct kd_header_health h;
	const char *which = NULL;
	char line[256], uuid[KD_LUKS2_UUID_MAX + 1];
	bool yes = false;
	int c, r, fd;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'y')
			return EXIT_USAGE;
		yes = true;
	}
	if (argc - optind != 2)
		return cli_usage_error("usage: keyd-recover repair DEVICE BACKUP [--yes]");
	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_refuse(kd_fail(KD_EIO, "cannot open %.200s", argv[optind]));
	r = kd_header_read(fd, &h, NULL);
	close(fd);
	if (r)
		return cli_refuse(r);
	snprintf(uuid, sizeof(uuid), "%s", h.used == 1 ? h.secondary.uuid : h.primary.uuid);
	fprintf(stderr, "%s (volume %s): %s\n", argv[optind], uuid, kd_header_health_summary(&h));
	if (!yes && !h.agree) {
		fprintf(stderr, "This rewrites the %s header copy from the %s one.\n",
			h.used ? "primary" : "secondary", h.used ? "secondary" : "primary");
		if (isatty(0))
			fprintf(stderr, "Type the volume UUID to confirm: ");
		if (!fgets(line, sizeof(line), stdin))
			line[0] = 0;
		line[strcspn(line, "\r\n")] = 0;
		if (strcasecmp(line, uuid))
			return cli_refuse(kd_fail(KD_EREFUSED, "confirmation does not match the volume "
								"UUID; nothing was written"));
	}
	if ((r = kd_header_repair(argv[optind], argv[optind + 1], &which)))
		return cli_refuse(r);
	printf("%s: %s header copy rewritten; both copies saved to %s.primary and %s.secondary\n",
	       argv[optind], which, argv[optind + 1], argv[optind + 1]);
	return 0;
}

const struct kd_cmd cmd_repair = {"repair", run_repair,
				  "rewrite a damaged header copy (after saving both)", repair_usage};

/* ---------------------------------------------------------------- finish-rotation */

static const char finish_usage[] =
	"Usage: keyd-recover finish-rotation DEVICE [--name NAME] [--max-rate BYTES]\n"
	"                   [--escrow CERT ... --threshold K] [--json] [BACKEND OPTIONS]\n"
	"\n"
	"Finish a volume-key rotation (keyd rotate) that a crash, a power loss or a\n"
	"kill interrupted: replay the interrupted hotzone from the journal, re-encrypt\n"
	"the rest under the new key through this launch's keyd slot, and drop the\n"
	"old key's keyslots. Online when the volume is active (found by its UUID, or\n"
	"--name), offline otherwise. Starts no new rotation: with none in progress it\n"
	"says so and changes nothing. The boot scripts do the same after every unlock\n"
	"unless KEYD_ROTATE_RESUME=no; keyd-recover status shows how far it got.\n"
	"\n"
	"  --name NAME            the active mapping (default: found by UUID)\n"
	"  --max-rate BYTES       throttle to BYTES per second (suffix K, M, G)\n"
	"  --escrow CERT          re-split the escrow for the new key to these admins\n"
	"                         (default: to those of the rotation's escrow plan,\n"
	"                         which keyd rotate --escrow recorded in the header)\n"
	"  --threshold K          shares needed for that escrow (1..the certificates)\n"
	"  --json                 print the result as JSON\n" BACKEND_OPTS_HELP
	"\nExit status: 0 finished or nothing to finish, 1 refused or failed (the\n"
	"volume still opens), 2 usage.\n";

static int parse_rate(const char *s, uint64_t *ret)
{
	char *end = NULL;
	unsigned long long n;
	uint64_t mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0:
		break;
	case 'K': case 'k':
		mul = 1024;
		break;
	case 'M': case 'm':
		mul = 1024 * 1024;
		break;
	case 'G': case 'g':
		mul = 1024ull * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if ((*end && end[1]) || !n || n > UINT64_MAX / mul)
		return -1;
	*ret = n * mul;
	return 0;
}

static int run_finish_rotation(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},	  {"max-rate", required_argument, NULL, 'm'},
		{"escrow", required_argument, NULL, 'e'}, {"threshold", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},	  BACKEND_LONGOPTS,
		{0},
	};
	struct kd_backend_opts bopts = {0};
	struct kd_rotate_opts o = {0};
	struct kd_rotate_result res;
	struct kd_backend *b = NULL;
	struct kd_launch l;
	X509 *certs[KD_ESCROW_MAX_SHARES] = {0};
	const char *cert_paths[KD_ESCROW_MAX_SHARES];
	size_t n_certs = 0;
	uint64_t threshold = 0;
	bool json = false;
	int c, r = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.name = optarg;
			break;
		case 'm':
			if (parse_rate(optarg, &o.max_rate))
				return cli_usage_error("--max-rate takes a positive byte count");
			break;
		case 'e':
			if (add_file("escrow", optarg, cert_paths, &n_certs))
				return EXIT_USAGE;
			break;
		case 't':
			if (kd_parse_u64(optarg, KD_ESCROW_MAX_SHARES, &threshold) < 0 || !threshold)
				return cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			break;
		case 'j':
			json = true;
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd-recover finish-rotation DEVICE");
	if (!threshold != !n_certs)
		return cli_usage_error("--escrow and --threshold go together");
	if (threshold > n_certs)
		return cli_usage_error("--threshold K needs at least K --escrow certificates");
	for (size_t i = 0; i < n_certs; i++)
		if ((r = kd_escrow_load_cert(cert_paths[i], &certs[i])))
			goto out;
	o.resume_only = true;
	o.escrow_certs = certs;
	o.n_escrow_certs = n_certs;
	o.escrow_threshold = (unsigned)threshold;
	kd_escrow_rotate_hooks(&o);
	if ((r = cli_launch_open(&bopts, &b, &l)) || (r = kd_rotate(argv[optind], b, &l, &o, &res)))
		goto out;
	if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "device", json_object_new_string(argv[optind]));
		json_object_object_add(j, "finished", json_object_new_boolean(!res.idle));
		json_object_object_add(j, "escrow_only", json_object_new_boolean(res.escrow_only));
		json_object_object_add(j, "online", json_object_new_boolean(res.online));
		json_object_object_add(j, "recovered", json_object_new_boolean(res.recovered));
		json_object_object_add(j, "keyslot", json_object_new_int(res.keyslot));
		json_object_object_add(j, "escrow_resplit", json_object_new_boolean(res.escrow_resplit));
		json_object_object_add(j, "escrow_from_plan",
				       json_object_new_boolean(res.escrow_from_plan));
		json_object_object_add(j, "bytes", json_object_new_int64((int64_t)res.bytes));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	} else if (res.idle) {
		printf("%s: no rotation in progress; nothing to finish\n", argv[optind]);
	} else if (res.escrow_only) {
		printf("%s: the data was already under the new volume key; escrow re-split with "
		       "fresh shares to the rotation's escrow plan; keyslot %d opens it\n",
		       argv[optind], res.keyslot);
	} else {
		printf("%s: rotation finished (%s%s); keyslot %d opens the volume under the new key%s\n",
		       argv[optind], res.online ? "online" : "offline",
		       res.recovered ? ", interrupted hotzone replayed" : "", res.keyslot,
		       res.escrow_resplit ? res.escrow_from_plan
						    ? "; escrow re-split with fresh shares to the "
						      "rotation's escrow plan"
						    : "; escrow re-split with fresh shares"
					  : "");
	}
out:
	for (size_t i = 0; i < n_certs; i++)
		X509_free(certs[i]);
	kd_backend_close(b);
	return r ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_finish_rotation = {"finish-rotation", run_finish_rotation,
					   "finish an interrupted volume-key rotation", finish_usage};
