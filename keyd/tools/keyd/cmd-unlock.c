/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd unlock DEVICE NAME | DEVICE --dry-run, and keyd passphrase DEVICE
 * (the crypttab keyscript's helper). The order of DESIGN.md §5: header
 * allow-list, token for this launch, derive, keyslot, pin, then activate.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/error.h"
#include "keyd/manifest.h"
#include "keyd/secret.h"
#include "keyd/volume.h"

static const char unlock_usage[] =
	"Usage: keyd unlock DEVICE NAME [--no-rekey] [--json] [BACKEND OPTIONS]\n"
	"       keyd unlock DEVICE --dry-run [--json] [BACKEND OPTIONS]\n"
	"\n"
	"Open a keyd-sealed LUKS2 volume: check the header against the allow-list,\n"
	"pick the keyd token of this launch, derive its key, open the keyslot\n"
	"without activating, verify the volume-key pin in constant time, and only\n"
	"then activate /dev/mapper/NAME (dm-crypt, no read/write workqueues) and\n"
	"check the live table through libdevmapper. When the committed TCB is above\n"
	"the token's, the volume is re-keyed at the new TCB (not with --dry-run or\n"
	"--no-rekey). A refused unlock writes nothing; it never offers a reformat.\n"
	"\n"
	"DEVICE is a path, an image file, UUID=..., LABEL=... or PARTLABEL=....\n"
	"  --dry-run              everything except activation (works without dm)\n"
	"  --no-rekey             do not re-key after a firmware update\n"
	"  --json                 print the result as JSON\n"
	"  --release-keys FILE    keys that judge a pending handoff slot's evidence\n"
	"                         (default " KD_RELEASE_KEYS_DEFAULT ")\n" BACKEND_OPTS_HELP
	"\n"
	"Exit status: 0 unlocked, 1 refused (one line on stderr says why), 2 usage.\n";

static const char pass_usage[] =
	"Usage: keyd passphrase DEVICE [BACKEND OPTIONS]\n"
	"\n"
	"Run every check of keyd unlock --dry-run (header allow-list, derive, pin)\n"
	"and then write the keyslot passphrase of this launch to stdout, for a\n"
	"crypttab keyscript (luks-hooks/keyscript) that hands it to cryptsetup.\n"
	"Refuses to write it to a terminal. Nothing is logged.\n"
	"  --release-keys FILE    as for keyd unlock\n" BACKEND_OPTS_HELP;

static int run_unlock_common(int argc, char **argv, bool passphrase_mode)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"no-rekey", no_argument, NULL, 'R'},
		{"json", no_argument, NULL, 'j'},
		{"release-keys", required_argument, NULL, 'K'},
		BACKEND_LONGOPTS,
		{0},
	};
	struct kd_backend_opts bopts = {0};
	_kd_secret_ struct kd_secret *vk = NULL, *pass = NULL;
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_release_keys *keys = NULL;
	const char *keys_path = NULL;
	struct kd_launch l;
	struct kd_token tok;
	bool dry = false, norekey = false, json = false, rekeyed = false;
	const char *dev, *name = NULL;
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
		case 'K':
			keys_path = optarg;
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
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

	/* Header first: a tampered header is refused before any key exists. */
	if (keys_path && (r = kd_release_keys_load(keys_path, &keys)) < 0)
		return cli_refuse(r);
	if ((r = kd_volume_open(dev, &v)) < 0) {
		kd_release_keys_free(keys);
		return cli_refuse(r);
	}
	kd_volume_set_release_keys(v, keys);
	if (kd_volume_health(v)->allow_err) {
		r = kd_fail(kd_volume_health(v)->allow_err, "header refused: %s",
			    kd_volume_health(v)->allow_detail);
		goto out;
	}
	if ((r = kd_backend_open(&bopts, &b)) < 0 || (r = kd_launch_get(b, &l)) < 0)
		goto out;
	if ((r = kd_volume_unlock_secrets(v, b, &l, &vk, passphrase_mode ? &pass : NULL, &tok)) < 0)
		goto out;
	if (passphrase_mode) {
		r = fwrite(pass->data, 1, pass->len, stdout) == pass->len && fflush(stdout) == 0
			    ? 0
			    : kd_fail(KD_EIO, "cannot write the passphrase to stdout");
		goto out;
	}
	if (!dry && !norekey && (r = kd_volume_rekey(v, b, &l, vk, &tok, &rekeyed)) < 0)
		goto out;
	if (!dry && (r = kd_volume_activate(v, name, vk, 0)) < 0)
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
		       "dry run, not activated\n", kd_volume_path(v), tok.keyslot, tok.label,
		       kd_token_state_name(tok.state));
	} else {
		printf("%s: unlocked as /dev/mapper/%s with keyslot %d (label %s, %s)%s\n",
		       kd_volume_path(v), name, tok.keyslot, tok.label, kd_token_state_name(tok.state),
		       rekeyed ? "; re-keyed at the committed TCB" : "");
	}
	r = 0;
out:
	kd_volume_close(v);
	kd_release_keys_free(keys);
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
