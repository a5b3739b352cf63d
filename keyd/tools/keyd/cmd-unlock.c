/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd unlock DEVICE NAME | DEVICE --dry-run, and keyd passphrase DEVICE
 * (the crypttab keyscript's helper). The order of docs/formats.md §7: header
 * allow-list, token for this launch, derive, keyslot, pin, then activate.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "volume-cli.h"
#include "keyd/error.h"
#include "keyd/manifest.h"
#include "keyd/pending.h"
#include "keyd/secret.h"
#include "keyd/rotate.h"
#include "keyd/volume.h"

static const char unlock_usage[] =
	"Usage: keyd unlock DEVICE NAME [--no-rekey] [--root-check] [--json] [--state-file FILE]\n"
	"                   [BACKEND OPTIONS] [PENDING SLOT OPTIONS]\n"
	"       keyd unlock DEVICE --dry-run [--json] [--state-file FILE] [BACKEND OPTIONS]\n"
	"                   [PENDING SLOT OPTIONS]\n"
	"\n"
	"Open a keyd-sealed LUKS2 volume: check the header against the allow-list,\n"
	"pick the keyd token of this launch, derive its key, open the keyslot\n"
	"without activating, verify the volume-key pin in constant time, and only\n"
	"then activate /dev/mapper/NAME (dm-crypt, no read/write workqueues) and\n"
	"check the live table through libdevmapper. When the committed TCB is above\n"
	"the token's, the volume is re-keyed at the new TCB (not with --dry-run or\n"
	"--no-rekey). A refused unlock writes nothing; it never offers a reformat.\n"
	"While the two LUKS2 header copies disagree (one damaged or older) it is\n"
	"refused and names the copy: run keyd-recover repair DEVICE BACKUP first.\n"
	"--dry-run and keyd passphrase never write: libcryptsetup only sees a\n"
	"private copy of the header and keyslot areas.\n"
	"\n"
	"DEVICE is a path, an image file, UUID=..., LABEL=... or PARTLABEL=....\n"
	"  --dry-run              everything except activation (works without dm)\n"
	"  --no-rekey             do not re-key after a firmware update\n"
	"  --json                 print the result as JSON\n"
	"  --root-check           first check that the root this boot switches into is\n"
	"                         covered by the measurement (keyd root check)\n"
	"  --state-file FILE      on success, write the state of the token that opened\n"
	"                         (one word: active or pending) to FILE, for boot\n"
	"                         scripts (a pending slot is an upgrade to commit)\n"
	BACKEND_OPTS_HELP "\n" PENDING_OPTS_HELP
	"\n"
	"Exit status: 0 unlocked, 1 refused (one line on stderr says why), 2 usage.\n";

static const char pass_usage[] =
	"Usage: keyd passphrase DEVICE [--root-check] [BACKEND OPTIONS] [PENDING SLOT OPTIONS]\n"
	"\n"
	"Run every check of keyd unlock --dry-run (header allow-list, derive, pin)\n"
	"and then write the keyslot passphrase of this launch to stdout, for a\n"
	"crypttab keyscript (luks-hooks/keyscript) that hands it to cryptsetup.\n"
	"Refuses to write it to a terminal. Nothing is logged.\n"
	"  --root-check           first check that the root this boot switches into is\n"
	"                         covered by the measurement (keyd root check)\n"
	BACKEND_OPTS_HELP "\n" PENDING_OPTS_HELP;

int pending_opts_handle(int opt, const char *arg, struct pending_opts *o)
{
	char *end = NULL;
	unsigned long long n;

	switch (opt) {
	case PENDING_OPT_KEYS:
		o->keys_path = arg;
		return 1;
	case PENDING_OPT_FLOOR:
		if (arg[0] < '0' || arg[0] > '9' || (n = strtoull(arg, &end, 10)) > UINT32_MAX || *end) {
			cli_usage_error("--peer-svn-floor needs an SVN (0..4294967295)");
			return -1;
		}
		o->pol.has_peer_svn_floor = true;
		o->pol.peer_svn_floor = (uint32_t)n;
		break;
	case PENDING_OPT_NOFLOOR:
		o->pol.no_peer_svn_floor = true;
		break;
	case PENDING_OPT_TCB:
		if (kd_tcb_parse_hex(arg, &o->pol.tcb_floor) < 0) {
			cli_usage_error("--tcb-floor needs 16 hex digits");
			return -1;
		}
		o->pol.has_tcb_floor = true;
		return 1;
	default:
		return 0;
	}
	if (o->pol.has_peer_svn_floor && o->pol.no_peer_svn_floor) {
		cli_usage_error("give one of --peer-svn-floor, --no-peer-svn-floor");
		return -1;
	}
	return 1;
}

int pending_opts_finish(struct pending_opts *o)
{
	int r;

	if (!o->keys_path)
		return 0;
	if ((r = kd_release_keys_load(o->keys_path, &o->keys)) < 0)
		return r;
	o->pol.keys = o->keys;
	return 0;
}

void pending_opts_free(struct pending_opts *o)
{
	kd_release_keys_free(o->keys);
	o->keys = NULL;
	o->pol.keys = NULL;
}

/* One word and a newline, written whole: the boot scripts' machine interface. */
static int write_state_file(const char *path, enum kd_token_state st)
{
	FILE *f = fopen(path, "we");
	int ok;

	if (!f)
		return kd_fail(KD_EIO, "cannot write the state file %s: %m", path);
	ok = fprintf(f, "%s\n", kd_token_state_name(st)) > 0;
	ok = (fclose(f) == 0) && ok;
	return ok ? 0 : kd_fail(KD_EIO, "cannot write the state file %s", path);
}

static int run_unlock_common(int argc, char **argv, bool passphrase_mode)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"no-rekey", no_argument, NULL, 'R'},
		{"json", no_argument, NULL, 'j'},
		{"state-file", required_argument, NULL, 's'},
		{"root-check", no_argument, NULL, 'C'},
		PENDING_LONGOPTS,
		BACKEND_LONGOPTS,
		{0},
	};
	struct kd_backend_opts bopts = {0};
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL;
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct pending_opts po = {0};
	struct kd_launch l;
	struct kd_token tok;
	struct kd_rotate_status rot;
	bool dry = false, norekey = false, json = false, rekeyed = false, root_check = false;
	const char *dev, *name = NULL, *state_file = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry = true;
			break;
		case 'R':
			norekey = true;
			break;
		case 'j':
			json = true;
			break;
		case 'C':
			root_check = true;
			break;
		case 's':
			if (passphrase_mode)
				return cli_usage_error("--state-file is an option of keyd unlock");
			state_file = optarg;
			break;
		default:
			if ((r = pending_opts_handle(c, optarg, &po)) < 0)
				return EXIT_USAGE;
			if (r == 0 && backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (passphrase_mode) {
		if (argc - optind != 1)
			return cli_usage_error("usage: keyd passphrase DEVICE");
		if (isatty(STDOUT_FILENO))
			return cli_usage_error("refusing to print a passphrase on a terminal");
	} else if (dry ? argc - optind != 1 : argc - optind != 2) {
		return cli_usage_error(dry ? "usage: keyd unlock DEVICE --dry-run"
					   : "usage: keyd unlock DEVICE NAME (or DEVICE --dry-run)");
	}
	dev = argv[optind];
	if (!passphrase_mode && !dry)
		name = argv[optind + 1];

	/* No state key for a root the measurement does not cover. */
	if (root_check && (r = cli_root_check()) < 0)
		return cli_refuse(r);
	if ((r = pending_opts_finish(&po)) < 0)
		return cli_refuse(r);
	/* Header first: a tampered header is refused before any key exists. */
	if ((r = kd_volume_open(dev, &v)) < 0) {
		pending_opts_free(&po);
		return cli_refuse(r);
	}
	kd_volume_set_pending_opener(v, kd_pending_opener, &po.pol);
	if (kd_volume_health(v)->allow_err) {
		r = kd_fail(kd_volume_health(v)->allow_err, "header refused: %s",
			    kd_volume_health(v)->allow_detail);
		goto out;
	}
	/* A real unlock writes (activation, re-key): not while the header
	 * copies disagree, which only keyd-recover repair resolves. */
	if (!dry && !passphrase_mode && (r = kd_header_require_agree(kd_volume_health(v))) < 0)
		goto out;
	if ((r = cli_launch_open(&bopts, &b, &l)) < 0)
		goto out;
	if ((r = kd_volume_unlock_secrets(v, b, &l, &vk, &pass, &tok)) < 0)
		goto out;
	/* A volume-key rotation in progress (keyd rotate) needs both keys:
	 * libcryptsetup opens them with the passphrase just checked. */
	if ((r = kd_rotate_status(v, &rot)) < 0)
		goto out;
	if (passphrase_mode) {
		r = fwrite(pass->data, 1, pass->len, stdout) == pass->len && fflush(stdout) == 0
			    ? 0
			    : kd_fail(KD_EIO, "cannot write the passphrase to stdout");
		goto out;
	}
	if (!dry && !norekey && rot.phase == KD_ROTATE_NONE && (r = kd_volume_rekey(v, b, &l, vk, &tok, &rekeyed)) < 0)
		goto out;
	/* Before activation: a state file that cannot be written activates nothing. */
	if (state_file && (r = write_state_file(state_file, tok.state)) < 0)
		goto out;
	if (!dry && (r = rot.phase == KD_ROTATE_NONE ? kd_volume_activate(v, name, vk, 0)
						      : kd_rotate_activate(v, name, pass, 0)) < 0)
		goto out;
	if (json) {
		json_object *o = json_object_new_object();
		char tcb[KD_TCB_HEX_LEN];

		kd_tcb_hex(tok.tcb, tcb);
		json_object_object_add(o, "device", json_object_new_string(kd_volume_path(v)));
		json_object_object_add(o, "uuid", json_object_new_string(kd_volume_uuid(v)));
		json_object_object_add(o, "keyslot", json_object_new_int(tok.keyslot));
		json_object_object_add(o, "label", json_object_new_string(tok.label));
		json_object_object_add(o, "state", json_object_new_string(kd_token_state_name(tok.state)));
		json_object_object_add(o, "tcb", json_object_new_string(tcb));
		json_object_object_add(o, "pin", json_object_new_string("verified"));
		json_object_object_add(o, "activated", name ? json_object_new_string(name) : NULL);
		json_object_object_add(o, "rekeyed", json_object_new_boolean(rekeyed));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else if (dry) {
		printf("%s: keyslot %d (label %s, %s) opens with this launch; pin verified; "
		       "dry run, not activated%s%s\n", kd_volume_path(v), tok.keyslot, tok.label,
		       kd_token_state_name(tok.state),
		       kd_volume_health(v)->agree ? "" : "; but a real unlock refuses until keyd-recover "
							"repair: ",
		       kd_volume_health(v)->agree ? "" : kd_header_health_summary(kd_volume_health(v)));
	} else {
		printf("%s: unlocked as /dev/mapper/%s with keyslot %d (label %s, %s)%s\n",
		       kd_volume_path(v), name, tok.keyslot, tok.label, kd_token_state_name(tok.state),
		       rekeyed ? "; re-keyed at the committed TCB" : "");
	}
	r = 0;
out:
	kd_volume_close(v);
	pending_opts_free(&po);
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}

static int run_unlock(int argc, char **argv)
{
	return run_unlock_common(argc, argv, false);
}

static int run_passphrase(int argc, char **argv)
{
	return run_unlock_common(argc, argv, true);
}

const struct kd_cmd cmd_unlock = {"unlock", run_unlock,
				  "check, derive, verify the pin and open a sealed volume", unlock_usage};
const struct kd_cmd cmd_passphrase = {"passphrase", run_passphrase,
				      "print the checked keyslot passphrase (crypttab keyscript)",
				      pass_usage};
