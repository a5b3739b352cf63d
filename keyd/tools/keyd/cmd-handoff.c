/* SPDX-License-Identifier: Apache-2.0 */
/* keyd handoff serve|receive: the attested upgrade handoff (docs/handoff-protocol.md). */
#include <getopt.h>
#include <signal.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/handoff.h"
#include "keyd/pending.h"
#include "keyd/report.h"
#include "keyd/util.h"

#define HANDOFF_COMMON_HELP                                                                   \
	"  --manifest FILE        this image's signed release manifest (required)\n"         \
	"  --release-keys FILE    pinned release keys (default " KD_RELEASE_KEYS_DEFAULT ")\n" \
	"  --tcb-floor HEX        refuse a peer whose reported TCB is below this\n"          \
	"                         (16 hex digits, report byte order); default: the\n"       \
	"                         manifest's min_tcb for this chip's product\n"              \
	"  --no-tcb-floor         judge no TCB (refused without a floor otherwise)\n"       \
	"  --peer-svn-floor SVN   the revocation floor this image pins (" KD_PEER_SVN_FLOOR_FILE \
	")\n"                                                                                 \
	"                         applied with the manifest's min_peer_svn (the higher\n"  \
	"                         wins); an own manifest whose floor is higher is refused\n"\
	"  --ark FILE             trust this ARK instead of the AMD roots (simulator)\n"    \
	"  --timeout S            whole-handoff deadline in seconds (default 60)\n"          \
	"  --read-timeout S       per-read timeout in seconds (default 10)\n"                \
	"  --timings              print per-phase timings (ms) on stdout\n"                  \
	"  --json                 machine-readable result (with --timings: the phases)\n"   \
	"  --stall-after STEP     test aid: stop talking after tls|hello|volumes|accept\n"    \
	BACKEND_OPTS_HELP

enum {
	O_LISTEN = 256, O_CONNECT, O_DEVICE, O_MANIFEST, O_KEYS, O_FLOOR, O_ARK, O_TIMEOUT,
	O_RTIMEOUT, O_TIMINGS, O_JSON, O_STALL, O_NOFLOOR, O_SVNFLOOR,
};

struct args {
	const char *addr, *manifest, *keys, *ark;
	struct kd_backend_opts bo;
	const char *devices[KD_HANDOFF_MAX_VOLUMES];
	size_t n_devices;
	bool timings, json;
	struct kd_handoff_opts ho;
};

static int parse_seconds(const char *s, int *ret_ms)
{
	char *end;
	double d = strtod(s, &end);

	if (end == s || *end || !(d > 0) || d > 3600)
		return -1;
	*ret_ms = (int)(d * 1000);
	return *ret_ms > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, bool serve, struct args *a)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"connect", required_argument, NULL, O_CONNECT},
		{"device", required_argument, NULL, O_DEVICE},
		{"manifest", required_argument, NULL, O_MANIFEST},
		{"release-keys", required_argument, NULL, O_KEYS},
		{"tcb-floor", required_argument, NULL, O_FLOOR},
		{"no-tcb-floor", no_argument, NULL, O_NOFLOOR},
		{"peer-svn-floor", required_argument, NULL, O_SVNFLOOR},
		{"ark", required_argument, NULL, O_ARK},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"read-timeout", required_argument, NULL, O_RTIMEOUT},
		{"timings", no_argument, NULL, O_TIMINGS},
		{"json", no_argument, NULL, O_JSON},
		{"stall-after", required_argument, NULL, O_STALL},
		BACKEND_LONGOPTS,
		{0},
	};
	int c, r;

	memset(a, 0, sizeof(*a));
	a->ho.read_timeout_ms = 10000;
	a->ho.total_timeout_ms = 60000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (!serve)
				return cli_usage_error("--listen is for handoff serve");
			a->addr = optarg;
			break;
		case O_CONNECT:
			if (serve)
				return cli_usage_error("--connect is for handoff receive");
			a->addr = optarg;
			break;
		case O_DEVICE:
			if (!serve)
				return cli_usage_error("N needs no disk: --device is for handoff serve");
			if (a->n_devices == KD_HANDOFF_MAX_VOLUMES)
				return cli_usage_error("at most %u devices", KD_HANDOFF_MAX_VOLUMES);
			a->devices[a->n_devices++] = optarg;
			break;
		case O_MANIFEST: a->manifest = optarg; break;
		case O_KEYS: a->keys = optarg; break;
		case O_FLOOR:
			if (kd_tcb_parse_hex(optarg, &a->ho.trust.tcb_floor) < 0)
				return cli_usage_error("--tcb-floor needs 16 hex digits");
			a->ho.trust.has_tcb_floor = true;
			break;
		case O_NOFLOOR: a->ho.trust.no_tcb_floor = true; break;
		case O_SVNFLOOR: {
			char *end = NULL;
			unsigned long long n = strtoull(optarg, &end, 10);

			if (optarg[0] < '0' || optarg[0] > '9' || n > UINT32_MAX || *end)
				return cli_usage_error("--peer-svn-floor needs an SVN (0..4294967295)");
			a->ho.trust.has_peer_svn_floor = true;
			a->ho.trust.peer_svn_floor = (uint32_t)n;
			break;
		}
		case O_ARK: a->ark = optarg; break;
		case O_TIMEOUT:
			if (parse_seconds(optarg, &a->ho.total_timeout_ms))
				return cli_usage_error("--timeout needs seconds (0 < S <= 3600)");
			break;
		case O_RTIMEOUT:
			if (parse_seconds(optarg, &a->ho.read_timeout_ms))
				return cli_usage_error("--read-timeout needs seconds (0 < S <= 3600)");
			break;
		case O_TIMINGS: a->timings = true; break;
		case O_JSON: a->json = true; break;
		case O_STALL:
			if (kd_handoff_stall_parse(optarg, &a->ho.stall))
				return cli_usage_error("--stall-after: tls, hello, volumes or accept");
			break;
		default:
			r = backend_opts_handle(c, optarg, &a->bo);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return cli_usage_error("bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!a->addr)
		return cli_usage_error(serve ? "handoff serve needs --listen ADDR:PORT"
					     : "handoff receive needs --connect ADDR:PORT");
	if (serve && !a->n_devices)
		return cli_usage_error("handoff serve needs --device DEV");
	if (!a->manifest)
		return cli_usage_error("--manifest FILE is required");
	if (a->ho.trust.has_tcb_floor && a->ho.trust.no_tcb_floor)
		return cli_usage_error("--tcb-floor and --no-tcb-floor exclude each other");
	a->ho.devices = a->devices;
	a->ho.n_devices = a->n_devices;
	return 0;
}

static void print_result(const struct args *a, const struct kd_handoff_timings *t, bool serve)
{
	if (a->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "role", json_object_new_string(serve ? "O" : "N"));
		if (a->timings) {
			struct json_object *p = json_object_new_object();

			json_object_object_add(p, "tls_ms", json_object_new_double(t->tls_ms));
			json_object_object_add(p, "report_ms", json_object_new_double(t->report_ms));
			json_object_object_add(p, "hello_ms", json_object_new_double(t->hello_ms));
			json_object_object_add(p, "verify_ms", json_object_new_double(t->verify_ms));
			json_object_object_add(p, "keys_ms", json_object_new_double(t->keys_ms));
			json_object_object_add(p, "enroll_ms", json_object_new_double(t->enroll_ms));
			json_object_object_add(p, "total_ms", json_object_new_double(t->total_ms));
			json_object_object_add(o, "timings", p);
		}
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
		return;
	}
	if (serve)
		printf("handoff complete: %zu volume(s) enrolled for the new version (pending)\n",
		       a->n_devices);
	else
		printf("handoff complete: keyslots enrolled (pending); boot this version and run "
		       "`keyd commit`\n");
	if (a->timings)
		printf("timings: tls %.1f ms, report %.1f ms, hello %.1f ms, verify %.1f ms, "
		       "keys %.1f ms, enroll %.1f ms, total %.1f ms\n",
		       t->tls_ms, t->report_ms, t->hello_ms, t->verify_ms, t->keys_ms, t->enroll_ms,
		       t->total_ms);
}

static int run(int argc, char **argv, bool serve)
{
	struct kd_handoff_timings tm = {0};
	struct kd_release_keys *ks = NULL;
	struct kd_backend *b = NULL;
	uint8_t *manifest = NULL, *ark = NULL;
	struct args a;
	int r;

	r = parse_args(argc, argv, serve, &a);
	if (r)
		return r;
	/* A peer that hangs up must give an error return, not kill us mid-write. */
	signal(SIGPIPE, SIG_IGN);
	if ((r = kd_read_file(a.manifest, KD_MANIFEST_MAX_BYTES, &manifest, &a.ho.manifest_len))) {
		r = kd_fail(r, "cannot read manifest %s", a.manifest);
		goto out;
	}
	if ((r = kd_release_keys_load(a.keys, &ks)))
		goto out;
	if (a.ark && (r = kd_read_file(a.ark, 65536, &ark, &a.ho.trust.ark_len))) {
		r = kd_fail(r, "cannot read ARK %s", a.ark);
		goto out;
	}
	if ((r = kd_backend_open(&a.bo, &b)))
		goto out;
	a.ho.backend = b;
	a.ho.manifest = manifest;
	a.ho.trust.keys = ks;
	a.ho.trust.ark = ark;
	a.ho.timings = &tm;
	r = serve ? kd_handoff_serve(&a.ho, a.addr) : kd_handoff_receive(&a.ho, a.addr);
out:
	kd_backend_close(b);
	kd_release_keys_free(ks);
	free(manifest);
	free(ark);
	if (r)
		return cli_refuse(r);
	print_result(&a, &tm, serve);
	return 0;
}

static int run_serve(int argc, char **argv)
{
	return run(argc, argv, true);
}

static int run_receive(int argc, char **argv)
{
	return run(argc, argv, false);
}

const struct kd_cmd cmd_handoff_serve = {
	"handoff serve", run_serve, "old version: hand the volumes to an attested new version",
	"Usage: keyd handoff serve --listen ADDR:PORT --device DEV [--device DEV ...]\n"
	"                          --manifest FILE [options]\n"
	"\n"
	"Run on the old version O, which can open DEV. First checks its own manifest\n"
	"(k-of-n signed, lists this launch, svn >= its own floor), CHIP_ID and TCB\n"
	"floor. Then serves until one new version N completes or --timeout passes\n"
	"(stray or refused connections do not end it): verifies N's attestation\n"
	"report (chain, binding to this session, same chip, no debug, VMPL 0, TCB\n"
	"floor, measurement in N's k-of-n signed manifest, no SVN downgrade, svn >=\n"
	"the revocation floor) and adds a pending keyslot + token for N on every\n"
	"DEV: fresh slot secrets wrapped to the public key N's report vouches for,\n"
	"with this launch's report and a signature over each slot as evidence.\n"
	"The volume key never leaves O. See keyd-handoff(8).\n"
	"\n" HANDOFF_COMMON_HELP,
};

const struct kd_cmd cmd_handoff_receive = {
	"handoff receive", run_receive, "new version: get enrolled by an attested old version",
	"Usage: keyd handoff receive --connect ADDR:PORT --manifest FILE [options]\n"
	"\n"
	"Run on the new version N, booted in upgrade mode (no disk needed). Checks\n"
	"its own release first, then verifies O the same way O verifies N, sends\n"
	"only a public key derived from its sealing key (bound into its report),\n"
	"accepts the volumes O offers and waits for O's DONE. Connection failures\n"
	"are retried until --timeout; refusals are final. Run `keyd commit` at the\n"
	"first real boot.\n"
	"\n" HANDOFF_COMMON_HELP,
};
