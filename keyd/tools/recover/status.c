/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover status DEVICE [--json]. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "recover.h"

static const char usage[] =
	"Usage: keyd-recover status DEVICE [--json] [BACKEND OPTIONS]\n"
	"\n"
	"Everything an admin needs in one screen: the volume, the health of both\n"
	"LUKS2 header copies and the allow-list verdict, every keyslot with what\n"
	"describes it (keyd token and state, escrow, or nothing), every keyd token\n"
	"with the measurement, TCB, label and time it is sealed to, pending\n"
	"handoffs, the escrow (threshold, admin certificate fingerprints), whether\n"
	"the current launch can unlock, and a verdict in words: what can open the\n"
	"volume now and what to do next. Reads only; writes nothing.\n"
	"\n"
	"  --json                 machine-readable output (schema: keyd-recover(8))\n" BACKEND_OPTS_HELP
	"\nExit status: 0 shown (whatever the verdict), 1 not a readable LUKS2\n"
	"volume, 2 usage.\n";

static void print_list(const char *title, json_object *arr)
{
	printf("%s\n", title);
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		printf("  - %s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
}

#define G(o, k) json_object_object_get(o, k)
#define GS(o, k) json_object_get_string(G(o, k))
#define GI(o, k) json_object_get_int(G(o, k))

static int run(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, BACKEND_LONGOPTS, {0}};
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_volume *v = NULL;
	struct kd_launch l;
	json_object *o = NULL, *h, *arr, *e, *vd;
	char why[300] = "";
	bool json = false, have_launch;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (backend_opts_handle(c, optarg, &bopts) <= 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd-recover status DEVICE [--json]");
	if ((r = kd_volume_open(argv[optind], &v)))
		return cli_refuse(r);
	have_launch = !(r = get_launch(&bopts, &b, &l));
	if (!have_launch)
		snprintf(why, sizeof(why), "no trust backend answered (%s)", kd_err_detail(r));
	r = kd_recover_status(v, have_launch ? &l : NULL, why, &o);
	kd_backend_close(b);
	kd_volume_close(v);
	if (r)
		return cli_refuse(r);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
		return 0;
	}
	h = G(o, "header");
	printf("device:     %s\nuuid:       %s\n", GS(o, "device"), GS(o, "uuid"));
	printf("header:     %s\n", GS(h, "summary"));
	printf("  primary:   %s\n", json_object_get_boolean(G(G(h, "primary"), "ok"))
				       ? "ok" : GS(G(h, "primary"), "error"));
	printf("  secondary: %s\n", json_object_get_boolean(G(G(h, "secondary"), "ok"))
				       ? "ok" : GS(G(h, "secondary"), "error"));
	printf("allow-list: %s\n", GS(h, "allow_list"));
	arr = G(o, "keyslots");
	printf("keyslots:\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i);

		printf("  keyslot %d: %s, %s, %s\n", GI(s, "keyslot"), GS(s, "kind"), GS(s, "state"),
		       GS(s, "pbkdf"));
	}
	arr = G(o, "tokens");
	printf("keyd tokens:\n");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		printf("  token %d: keyslot %d, %s, label \"%s\", svn %d, created %s\n"
		       "    measurement %s\n    tcb %s, policy 0x%llx, backend %s\n",
		       GI(t, "token"), GI(t, "keyslot"), GS(t, "state"), GS(t, "label"), GI(t, "svn"),
		       GS(t, "created"), GS(t, "measurement"), GS(t, "tcb"),
		       (unsigned long long)json_object_get_int64(G(t, "policy")), GS(t, "backend"));
	}
	arr = G(o, "pending_handoff");
	printf("pending handoff: %s\n", json_object_array_length(arr) ? "" : "none");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		printf("  keyslot %d, label \"%s\", waits for keyd commit\n", GI(p, "keyslot"),
		       GS(p, "label"));
	}
	e = G(o, "escrow");
	if (e) {
		printf("escrow:     %d of %d admins, keyslot %d, created %s\n", GI(e, "threshold"),
		       GI(e, "admins"), GI(e, "keyslot"), GS(e, "created"));
		printf("  commitment %s\n", GS(e, "commitment"));
		arr = G(e, "shares");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *s = json_object_array_get_idx(arr, i);

			printf("  share %d: %s\n    sha256 %s\n", GI(s, "index"), GS(s, "subject"),
			       GS(s, "admin"));
		}
	} else {
		printf("escrow:     %s\n", G(o, "escrow_error") ? GS(o, "escrow_error") : "none");
	}
	printf("this launch: %s: %s\n", GS(G(o, "launch"), "verdict"), GS(G(o, "launch"), "detail"));
	vd = G(o, "verdict");
	print_list(json_object_get_boolean(G(vd, "openable")) ? "VERDICT: openable. Can open it now:"
							     : "VERDICT: NOT openable. Can open it now:",
		   G(vd, "can_open"));
	print_list("Next:", G(vd, "next"));
	json_object_put(o);
	return 0;
}

const struct kd_cmd cmd_status = {"status", run,
				  "everything about a volume, and what to do next", usage};
