/* SPDX-License-Identifier: Apache-2.0 */
/* keyd rotate DEVICE: re-encrypt the volume under a fresh volume key (rotate.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "volume-cli.h"
#include "keyd/error.h"
#include "keyd/escrow.h"
#include "keyd/rotate.h"
#include "keyd/util.h"
#include "keyd/volume.h"

static const char rotate_usage[] =
	"Usage: keyd rotate DEVICE [options] [BACKEND OPTIONS]\n"
	"\n"
	"Re-encrypt the volume in place under a fresh random volume key, so that\n"
	"no header, keyslot or escrow share from before the rotation opens its\n"
	"data (a retired keyslot in an old header backup still yields the old key,\n"
	"and the old key no longer decrypts anything). This launch's active slot is\n"
	"re-created for the new key with a new pin; every other keyslot and token of\n"
	"the old key is removed. Online when the volume is active (the mapping is\n"
	"found by its UUID, or named with --name), offline otherwise. Interrupted\n"
	"(power loss, kill), the volume still unlocks, and running keyd rotate again\n"
	"finishes the rotation.\n"
	"\n"
	"  --name NAME            the active mapping (default: found by UUID)\n"
	"  --resilience MODE      journal (default: survives power loss at any point\n"
	"                         on any device) or checksum (faster; assumes 4096-byte\n"
	"                         sector writes are atomic)\n"
	"  --max-rate BYTES       throttle to BYTES per second (suffix K, M, G)\n"
	"  --hotzone BYTES        largest chunk re-encrypted per step (suffix K, M, G)\n"
	"  --escrow CERT          re-split the escrow with fresh shares to these admins\n"
	"  --threshold K          shares needed (default: the old escrow's)\n"
	"  --drop-escrow          remove the escrow instead (its old shares stop working)\n"
	"  --drop-pending         remove pending handoff slots (hand off again after)\n"
	"  --resume-only          finish a rotation in progress (interrupted by a\n"
	"                         crash or power loss), its escrow re-split included;\n"
	"                         start none: with none in\n"
	"                         progress, say so and exit 0 (the boot scripts run\n"
	"                         this after every unlock)\n"
	"  --json                 print a JSON summary at the end\n"
	"  --quiet                no progress\n" BACKEND_OPTS_HELP
	"\nWith --escrow, the certificates and the threshold are first recorded in the\n"
	"header as the rotation's escrow plan, authenticated with this launch's pin\n"
	"key: if the run is interrupted, whatever finishes the rotation (the boot\n"
	"scripts, keyd rotate again, keyd-recover finish-rotation) re-splits the\n"
	"escrow to them. A plan that does not verify is never used; the rotation then\n"
	"ends with \"escrow re-split pending\" and status shows it until re-split.\n"
	"\nOn a terminal, progress (bytes done, rate, time left) is shown on stderr.\n"
	"Otherwise (boot, systemd) a progress line goes to stderr and to the kernel\n"
	"log (/dev/kmsg, read by the journal) when the run starts, at every 10%,\n"
	"at least every 30 s in between, and at the end.\n"
	"\nExit status: 0 rotated, 1 refused or failed (the volume still opens), 2 usage.\n";

static int parse_size(const char *s, uint64_t *ret)
{
	char *end = NULL;
	unsigned long long n;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		mul = 1024;
	else if (*end == 'M' || *end == 'm')
		mul = 1024 * 1024;
	else if (*end == 'G' || *end == 'g')
		mul = 1024ull * 1024 * 1024;
	else if (*end)
		return -1;
	if (*end && end[1])
		return -1;
	if (n > UINT64_MAX / mul)
		return -1;
	*ret = n * mul;
	return 0;
}

/*
 * Progress. On a terminal, one line redrawn after every hotzone. Otherwise
 * (the boot scripts, a systemd unit) a line on stderr and the same line in
 * the kernel log (/dev/kmsg, which the journal reads) at a bounded rate: when
 * the run starts, at every tenth of the volume, at least every
 * PROGRESS_PERIOD seconds in between, and at the end. A stalled or slow
 * rotation at boot is thus visible in dmesg and journalctl without flooding
 * either. KEYD_KMSG names another log device (default /dev/kmsg).
 */
#define PROGRESS_PERIOD 30.0

struct prog {
	bool tty, quiet, started;
	int tenth;        /* tenths of the volume last reported */
	double last;      /* elapsed seconds at the last line */
	int kmsg;         /* kernel log fd, -1 if none */
	const char *dev;
};

static void human(double b, char *out, size_t len)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t i = 0;

	while (b >= 1024 && i + 1 < KD_ARRAY_SIZE(u)) {
		b /= 1024;
		i++;
	}
	snprintf(out, len, "%.1f %s", b, u[i]);
}

static void log_line(struct prog *g, const char *line)
{
	char rec[512];
	int n;

	fprintf(stderr, "keyd rotate: %s\n", line);
	if (g->kmsg < 0)
		return;
	/* One record per write(2); priority 6 (info), facility user. */
	n = snprintf(rec, sizeof(rec), "<14>keyd rotate: %s\n", line);
	if (n > 0 && (size_t)n < sizeof(rec) && write(g->kmsg, rec, (size_t)n) < 0) {
		close(g->kmsg); /* the kernel log refuses: stderr still has it */
		g->kmsg = -1;
	}
}

static int show_progress(const struct kd_rotate_progress *p, void *usr)
{
	struct prog *g = usr;
	char done[32], total[32], rate[32], left[32] = "--:--", line[256];
	int tenth;

	if (g->quiet || !p->size)
		return 0;
	human((double)p->done, done, sizeof(done));
	human((double)p->size, total, sizeof(total));
	human(p->rate, rate, sizeof(rate));
	if (p->rate > 0) {
		double s = (double)(p->size - p->done) / p->rate;

		snprintf(left, sizeof(left), "%u:%02u", (unsigned)(s / 60), (unsigned)s % 60);
	}
	if (g->tty) {
		fprintf(stderr, "\rrotating: %s of %s (%3.0f%%), %s/s, %s left   ", done, total,
			100.0 * (double)p->done / (double)p->size, rate, left);
		if (p->done == p->size)
			fputc('\n', stderr);
		return 0;
	}
	tenth = (int)(10 * p->done / p->size);
	if (!g->started) {
		g->started = true;
		g->tenth = tenth;
		g->last = p->elapsed;
		snprintf(line, sizeof(line), "%s: %s %s of %s (%.0f%%) already under the new key",
			 g->dev, p->start ? "resuming," : "starting,", done, total,
			 100.0 * (double)p->done / (double)p->size);
		log_line(g, line);
		return 0;
	}
	if (tenth <= g->tenth && p->elapsed - g->last < PROGRESS_PERIOD && p->done != p->size)
		return 0;
	g->tenth = tenth > g->tenth ? tenth : g->tenth;
	g->last = p->elapsed;
	snprintf(line, sizeof(line), "%s: %s of %s re-encrypted (%.0f%%), %s/s, %s left", g->dev,
		 done, total, 100.0 * (double)p->done / (double)p->size, rate, left);
	log_line(g, line);
	return 0;
}

/* 1: a rotation is prepared or running on device, or its escrow re-split is
 * pending; 0: none, <0: error. */
static int rotation_begun(const char *device)
{
	struct kd_volume *v = NULL;
	struct kd_rotate_status st;
	int r;

	if ((r = kd_volume_open(device, &v)) < 0)
		return r;
	if (kd_volume_health(v)->allow_err)
		r = kd_fail(kd_volume_health(v)->allow_err, "header refused: %s",
			    kd_volume_health(v)->allow_detail);
	else if ((r = kd_rotate_status(v, &st)) == 0)
		r = st.phase != KD_ROTATE_NONE || st.escrow_pending;
	kd_volume_close(v);
	return r;
}

static int run_rotate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},     {"resilience", required_argument, NULL, 'r'},
		{"max-rate", required_argument, NULL, 'm'}, {"hotzone", required_argument, NULL, 'z'},
		{"escrow", required_argument, NULL, 'e'},   {"threshold", required_argument, NULL, 't'},
		{"drop-escrow", no_argument, NULL, 'E'},    {"drop-pending", no_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'j'},           {"quiet", no_argument, NULL, 'q'},
		{"resume-only", no_argument, NULL, 'R'},
		BACKEND_LONGOPTS,                           {0},
	};
	struct kd_backend_opts bopts = {0};
	struct kd_rotate_opts o = {0};
	struct kd_rotate_result res;
	struct prog g = {.tty = isatty(STDERR_FILENO) == 1, .kmsg = -1};
	X509 *certs[KD_ESCROW_MAX_SHARES] = {0};
	const char *cert_paths[KD_ESCROW_MAX_SHARES];
	size_t n_certs = 0;
	struct kd_backend *b = NULL;
	struct kd_launch l;
	uint64_t threshold = 0;
	bool json = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.name = optarg;
			break;
		case 'r':
			if (strcmp(optarg, "journal") && strcmp(optarg, "checksum"))
				return cli_usage_error("--resilience is journal or checksum");
			o.resilience = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o.max_rate) || !o.max_rate)
				return cli_usage_error("--max-rate takes a positive byte count");
			break;
		case 'z':
			if (parse_size(optarg, &o.hotzone) || o.hotzone % 4096)
				return cli_usage_error("--hotzone takes a multiple of 4096 bytes");
			break;
		case 'e':
			if (n_certs == KD_ESCROW_MAX_SHARES)
				return cli_usage_error("at most %u --escrow certificates",
						       KD_ESCROW_MAX_SHARES);
			cert_paths[n_certs++] = optarg;
			break;
		case 't':
			if (kd_parse_u64(optarg, KD_ESCROW_MAX_SHARES, &threshold) < 0 || !threshold)
				return cli_usage_error("--threshold must be 1..%u", KD_ESCROW_MAX_SHARES);
			break;
		case 'E':
			o.drop_escrow = true;
			break;
		case 'P':
			o.drop_pending = true;
			break;
		case 'R':
			o.resume_only = true;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			g.quiet = true;
			break;
		default:
			if (backend_opts_handle(c, optarg, &bopts) <= 0)
				return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd rotate DEVICE");
	if (threshold && (!n_certs || threshold > n_certs))
		return cli_usage_error("--threshold K needs --escrow with at least K certificates");
	if (n_certs && o.drop_escrow)
		return cli_usage_error("--escrow and --drop-escrow exclude each other");
	for (size_t i = 0; i < n_certs; i++)
		if ((r = kd_escrow_load_cert(cert_paths[i], &certs[i])) < 0)
			goto out;
	o.escrow_certs = certs;
	o.n_escrow_certs = n_certs;
	o.escrow_threshold = (unsigned)threshold;
	kd_escrow_rotate_hooks(&o);
	o.progress = show_progress;
	o.usr = &g;
	g.dev = argv[optind];
	if (!g.tty && !g.quiet) {
		const char *k = getenv("KEYD_KMSG");

		g.kmsg = open(k && *k ? k : "/dev/kmsg", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
	}
	/* The boot path asks after every unlock: a plain header answers from
	 * the header alone, before the AMD-SP is asked for anything. */
	if (o.resume_only && (r = rotation_begun(argv[optind])) <= 0) {
		if (r == 0) {
			memset(&res, 0, sizeof(res));
			res.idle = true;
			res.keyslot = -1;
		}
	} else if ((r = cli_launch_open(&bopts, &b, &l)) < 0 ||
		   (r = kd_rotate(argv[optind], b, &l, &o, &res)) < 0) {
		goto out;
	}
	if (r < 0)
		goto out;
	if (json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "device", json_object_new_string(argv[optind]));
		json_object_object_add(j, "rotated", json_object_new_boolean(!res.idle));
		json_object_object_add(j, "resumed", json_object_new_boolean(res.resumed));
		json_object_object_add(j, "escrow_only", json_object_new_boolean(res.escrow_only));
		json_object_object_add(j, "online", json_object_new_boolean(res.online));
		json_object_object_add(j, "recovered", json_object_new_boolean(res.recovered));
		json_object_object_add(j, "keyslot", json_object_new_int(res.keyslot));
		json_object_object_add(j, "resilience", json_object_new_string(res.resilience));
		json_object_object_add(j, "tokens_dropped",
				       json_object_new_int64((int64_t)res.tokens_dropped));
		json_object_object_add(j, "escrow_resplit", json_object_new_boolean(res.escrow_resplit));
		json_object_object_add(j, "escrow_from_plan",
				       json_object_new_boolean(res.escrow_from_plan));
		json_object_object_add(j, "bytes", json_object_new_int64((int64_t)res.bytes));
		json_object_object_add(j, "seconds", json_object_new_double(res.seconds));
		json_object_object_add(j, "bytes_per_second",
				       json_object_new_double(res.seconds > 0 ? (double)res.bytes /
										res.seconds
									      : 0));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	} else if (res.idle) {
		printf("%s: no rotation in progress\n", argv[optind]);
	} else if (res.escrow_only) {
		printf("%s: the data was already under the new volume key; escrow re-split with "
		       "fresh shares to the rotation's escrow plan; keyslot %d opens it\n",
		       argv[optind], res.keyslot);
	} else {
		char bytes[32];

		human((double)res.bytes, bytes, sizeof(bytes));
		printf("%s: %s under a new volume key (%s, %s, %s); keyslot %d opens it; %zu old "
		       "token%s removed%s\n",
		       argv[optind], res.resumed ? "rotation finished" : "rotated", res.online ? "online" : "offline",
		       res.resilience, bytes, res.keyslot, res.tokens_dropped,
		       res.tokens_dropped == 1 ? "" : "s",
		       res.escrow_resplit ? res.escrow_from_plan
						    ? "; escrow re-split with fresh shares to the "
						      "rotation's escrow plan"
						    : "; escrow re-split with fresh shares"
					  : "");
	}
out:
	if (g.kmsg >= 0)
		close(g.kmsg);
	for (size_t i = 0; i < n_certs; i++)
		X509_free(certs[i]);
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_rotate = {"rotate", run_rotate,
				  "re-encrypt the volume under a fresh volume key (revocation)",
				  rotate_usage};
