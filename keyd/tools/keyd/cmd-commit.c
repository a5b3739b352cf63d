/* SPDX-License-Identifier: Apache-2.0 */
/* keyd commit DEVICE: make this launch's (handed-over) slot the active one. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/handoff.h"
#include "keyd/manifest.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "keyd/volume.h"

enum { O_KEEP = 256, O_RETIRE, O_JSON, O_ROTATE, O_MANIFEST };

/*
 * --manifest: this release's signed manifest (the host hands it over, like
 * in the handoff). It must be signed by k of the pinned release keys and
 * list this launch's measurement; otherwise nothing is committed. Its
 * "rotate" flag makes this commit rotate the volume key. The host can
 * withhold the manifest and so the request (a host that wants the old keys
 * to keep working can as well keep the node from committing at all); it
 * cannot forge one or make a release ask for less.
 */
static int release_asks_rotation(const char *path, struct kd_release_keys **keys,
				 struct kd_backend *b, bool *ret)
{
	struct kd_manifest *m = NULL;
	struct kd_launch l;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!*keys && (r = kd_release_keys_load(KD_RELEASE_KEYS_DEFAULT, keys)))
		return r;
	if ((r = kd_read_file(path, KD_MANIFEST_MAX_BYTES, &buf, &len)) ||
	    (r = kd_manifest_parse(buf, len, &m)) || (r = kd_manifest_verify(m, *keys, 0, NULL)) ||
	    (r = kd_launch_get(b, &l)) ||
	    (r = kd_manifest_has_measurement(m, l.report.measurement)))
		goto out;
	if (m->rotate)
		fprintf(stderr, "release %s (svn %u) asks for a volume-key rotation after the "
				"commit\n", m->version, m->svn);
	*ret = m->rotate;
out:
	kd_manifest_free(m);
	free(buf);
	return r;
}

/* --rotate: right after the commit, re-encrypt under a fresh volume key, so
 * the previous version's keys (and any header copy holding them) open
 * nothing any more (keyd rotate, rotate.h). */
static int rotate_after_commit(const char *device, struct kd_backend *b)
{
	struct kd_rotate_opts ro = {0};
	struct kd_rotate_result rr;
	struct kd_launch l;
	int r;

	kd_escrow_rotate_hooks(&ro);
	r = kd_launch_get(b, &l);
	if (r)
		return r;
	r = kd_rotate(device, b, &l, &ro, &rr);
	if (r) {
		/* The commit stands; say in one line that the rotation did not
		 * happen and why (an escrow needs the admins' certificates, which
		 * the boot does not have: keyd rotate DEVICE --escrow CERT ...). */
		char why[400];

		snprintf(why, sizeof(why), "%s", kd_err_detail(r));
		return kd_fail(r, "committed, but the volume key was NOT rotated: %s (then run "
				  "keyd rotate %.60s)", why, device);
	}
	fprintf(stderr, "rotated: keyslot %d opens the volume under a new volume key; "
			"%zu old token(s) removed\n", rr.keyslot, rr.tokens_dropped);
	return 0;
}

static int run_commit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"keep-previous", no_argument, NULL, O_KEEP},
		{"retire-previous", no_argument, NULL, O_RETIRE},
		{"json", no_argument, NULL, O_JSON},
		{"rotate", no_argument, NULL, O_ROTATE},
		PENDING_LONGOPTS,
		{"manifest", required_argument, NULL, O_MANIFEST},
		BACKEND_LONGOPTS,
		{0},
	};
	enum kd_commit_policy pol = KD_COMMIT_KEEP_PREVIOUS;
	struct kd_backend_opts bo = {0};
	struct kd_commit_result res;
	struct kd_backend *b = NULL;
	struct pending_opts po = {0};
	const char *manifest_path = NULL;
	bool json = false, have_pol = false, rotate = false, asked = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_KEEP:
		case O_RETIRE:
			if (have_pol)
				return cli_usage_error("give one of --keep-previous, --retire-previous");
			pol = c == O_KEEP ? KD_COMMIT_KEEP_PREVIOUS : KD_COMMIT_RETIRE_PREVIOUS;
			have_pol = true;
			break;
		case O_JSON: json = true; break;
		case O_ROTATE: rotate = true; break;
		case O_MANIFEST: manifest_path = optarg; break;
		default:
			if ((r = pending_opts_handle(c, optarg, &po)) < 0)
				return EXIT_USAGE;
			if (r == 1)
				break;
			r = backend_opts_handle(c, optarg, &bo);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return cli_usage_error("bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("commit needs DEVICE");
	r = pending_opts_finish(&po);
	if (r)
		goto out;
	r = kd_backend_open(&bo, &b);
	if (r)
		goto out;
	/* The release's request is judged before anything is written. */
	if (manifest_path) {
		r = release_asks_rotation(manifest_path, &po.keys, b, &asked);
		if (r)
			goto out;
		rotate |= asked;
	}
	r = kd_handoff_commit(argv[optind], b, &po.pol, pol, &res);
	if (r)
		goto out;
	if (rotate)
		r = rotate_after_commit(argv[optind], b);
out:
	kd_backend_close(b);
	pending_opts_free(&po);
	if (r)
		return cli_refuse(r);
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "keyslot", json_object_new_int(res.keyslot));
		json_object_object_add(o, "activated", json_object_new_boolean(res.was_pending));
		json_object_object_add(o, "retired", json_object_new_int((int)res.n_retired));
		json_object_object_add(o, "killed", json_object_new_int((int)res.n_killed));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		printf("committed: keyslot %d is %s; %zu previous slot(s) kept as retired, %zu "
		       "killed\n",
		       res.keyslot, res.was_pending ? "now active" : "already active", res.n_retired,
		       res.n_killed);
	}
	return 0;
}

const struct kd_cmd cmd_commit = {
	"commit", run_commit, "activate this launch's slot after an upgrade",
	"Usage: keyd commit DEVICE [--keep-previous | --retire-previous] [--rotate]\n"
	"                   [--manifest FILE] [--release-keys FILE]\n"
	"                   [--peer-svn-floor SVN | --no-peer-svn-floor] [--tcb-floor HEX]\n"
	"                   [--backend NAME] [--sim unix:PATH] [--json]\n"
	"\n"
	"Run on the new version's first real boot. Opens DEVICE with this launch's\n"
	"key and verifies the pin (as `keyd unlock --dry-run`: for a pending slot\n"
	"also the old version's evidence, judged with the release keys and floors\n"
	"this image pins, see below). Only then replaces the pending slot,\n"
	"whose secrets the old version made, with an active slot sealed to this\n"
	"launch (new slot first, then the pending one is removed). Then:\n"
	"  --keep-previous    (default) the previous active slot becomes 'retired'\n"
	"                     and stays for one rollback; older slots are killed\n"
	"  --retire-previous  every other keyd slot is killed\n"
	"Pending slots of other versions are left alone. The slot that just opened\n"
	"is never killed. Safe to rerun after an interruption.\n"
	"  --rotate           then re-encrypt under a fresh volume key (keyd rotate\n"
	"                     with its defaults): no earlier header, slot or escrow\n"
	"                     share opens the data afterwards\n"
	"  --manifest FILE    this release's signed manifest: it must be signed by k\n"
	"                     of the pinned release keys and list this launch's\n"
	"                     measurement (else nothing is committed); when it says\n"
	"                     \"rotate\": true (keyd manifest create --rotate), the\n"
	"                     commit rotates as with --rotate\n"
	"\n" BACKEND_OPTS_HELP "\n" PENDING_OPTS_HELP,
};
