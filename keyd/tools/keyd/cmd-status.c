/* SPDX-License-Identifier: Apache-2.0 */
/* keyd status DEVICE: tokens, header health and whether this launch can unlock. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/error.h"
#include "keyd/header.h"
#include "keyd/rotate.h"
#include "keyd/token.h"
#include "keyd/util.h"
#include "keyd/volume.h"

static const char status_usage[] =
	"Usage: keyd status DEVICE [--json] [BACKEND OPTIONS]\n"
	"\n"
	"Show every keyd token (keyslot, state, label, SVN, measurement, TCB,\n"
	"created), the health of both LUKS2 header copies (agree, or which one\n"
	"needs repair), the allow-list verdict, and whether the current launch can\n"
	"unlock the volume -- and if not, why, in words; a volume-key rotation in\n"
	"progress (keyd rotate), how far it got and what to do. Without a reachable\n"
	"backend the launch part says \"unknown\". Reads only; writes nothing.\n" BACKEND_OPTS_HELP
	"\nExit status: 0 shown (whatever the verdict), 1 not a readable LUKS2\n"
	"volume, 2 usage.\n";

static int run_status(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, BACKEND_LONGOPTS, {0}};
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	const struct kd_header_health *h;
	const struct kd_token *toks;
	struct kd_rotate_status rot;
	struct kd_launch l;
	char launch[512], mhex[2 * KD_MEASUREMENT_SIZE + 1] = "";
	const char *verdict;
	size_t n, idx = 0;
	bool json = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (backend_opts_handle(c, optarg, &bopts) <= 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd status DEVICE [--json]");
	if ((r = kd_volume_open(argv[optind], &v)) < 0)
		return cli_refuse(r);
	h = kd_volume_health(v);
	toks = kd_volume_tokens(v, &n);
	if ((r = kd_rotate_status(v, &rot)) < 0) {
		kd_volume_close(v);
		return cli_refuse(r);
	}

	if ((r = kd_backend_open(&bopts, &b)) < 0 || (r = kd_launch_get(b, &l)) < 0) {
		verdict = "unknown";
		snprintf(launch, sizeof(launch), "no trust backend answered (%s)", kd_err_detail(r));
	} else if ((r = kd_volume_match(v, &l, &idx)) < 0) {
		verdict = "cannot-unlock";
		snprintf(launch, sizeof(launch), "%s", kd_err_detail(r));
	} else {
		verdict = "can-unlock";
		snprintf(launch, sizeof(launch), "keyslot %d (label %s, %s)%s", toks[idx].keyslot,
			 toks[idx].label, kd_token_state_name(toks[idx].state),
			 toks[idx].tcb != l.report.committed_tcb
				 ? "; committed TCB is newer: the next unlock re-keys"
				 : "");
	}
	if (!strcmp(verdict, "unknown"))
		mhex[0] = 0;
	else
		kd_hex(l.report.measurement, sizeof(l.report.measurement), mhex);

	if (json) {
		json_object *o = json_object_new_object(), *hdr = json_object_new_object(),
			    *arr = json_object_new_array(), *lo = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(kd_volume_path(v)));
		json_object_object_add(o, "uuid", json_object_new_string(kd_volume_uuid(v)));
		json_object_object_add(hdr, "copies_agree", json_object_new_boolean(h->agree));
		json_object_object_add(hdr, "needs_repair", json_object_new_boolean(!h->agree));
		json_object_object_add(hdr, "summary", json_object_new_string(kd_header_health_summary(h)));
		json_object_object_add(hdr, "primary", kd_luks2_copy_status_json(&h->primary));
		json_object_object_add(hdr, "secondary", kd_luks2_copy_status_json(&h->secondary));
		json_object_object_add(hdr, "allow_list",
				       json_object_new_string(h->allow_err ? h->allow_detail : "passed"));
		json_object_object_add(o, "header", hdr);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, kd_token_status_json(&toks[i]));
		json_object_object_add(o, "tokens", arr);
		json_object_object_add(lo, "verdict", json_object_new_string(verdict));
		json_object_object_add(lo, "detail", json_object_new_string(launch));
		if (mhex[0])
			json_object_object_add(lo, "measurement", json_object_new_string(mhex));
		json_object_object_add(o, "launch", lo);
		json_object_object_add(o, "rotation", kd_rotate_status_json(&rot));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		printf("device:     %s\nuuid:       %s\n", kd_volume_path(v), kd_volume_uuid(v));
		printf("header:     %s\n", kd_header_health_summary(h));
		printf("  primary:   %s\n", h->primary.ok ? "ok" : h->primary.err);
		printf("  secondary: %s\n", h->secondary.ok ? "ok" : h->secondary.err);
		printf("allow-list: %s\n", h->allow_err ? h->allow_detail : "passed");
		printf("tokens:     %zu keyd token%s\n", n, n == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++) {
			char m[2 * KD_MEASUREMENT_SIZE + 1], tcb[KD_TCB_HEX_LEN];

			kd_hex(toks[i].measurement, sizeof(toks[i].measurement), m);
			kd_tcb_hex(toks[i].tcb, tcb);
			printf("  token %d: keyslot %d, %s, label \"%s\", svn %u, created %s\n"
			       "    measurement %s\n    tcb %s, policy 0x%llx, backend %s\n",
			       toks[i].token_id, toks[i].keyslot, kd_token_state_name(toks[i].state),
			       toks[i].label, toks[i].svn, toks[i].created, m, tcb,
			       (unsigned long long)toks[i].policy, toks[i].backend);
		}
		if (mhex[0])
			printf("launch:     measurement %s\n", mhex);
		printf("this launch: %s: %s\n", verdict, launch);
		if (rot.phase == KD_ROTATE_RUNNING)
			printf("rotation:   %s, %llu of %llu bytes (%.0f%%), %s resilience\n"
			       "  %s\n", rot.interrupted ? "interrupted" : "in progress",
			       (unsigned long long)rot.done, (unsigned long long)rot.size,
			       rot.size ? 100.0 * (double)rot.done / (double)rot.size : 0.0,
			       rot.resilience, rot.advice);
		else if (rot.phase == KD_ROTATE_PREPARED)
			printf("rotation:   prepared\n  %s\n", rot.advice);
	}
	kd_volume_close(v);
	kd_backend_close(b);
	return 0;
}

const struct kd_cmd cmd_status = {"status", run_status,
				  "show keyd tokens, header health and whether this launch can unlock",
				  status_usage};
