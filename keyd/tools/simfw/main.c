/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-simfw: the simulated AMD Secure Processor (docs/simulator.md).
 * Thin: chip state, derivation, rules and report signing are in
 * keyd/sim (libkeyd-sim); this file parses options, listens and logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "keyd/error.h"
#include "keyd/measure.h"
#include "keyd/report.h"
#include "keyd/sim.h"
#include "keyd/util.h"

static const char *state_dir;

static int need_state(void)
{
	if (!state_dir)
		return cli_usage_error("--state DIR is required before the command");
	return 0;
}

/*
 * After a command's options: no operand follows, --state was given, and
 * (ret not NULL) the chip is loaded from it. 0, or the exit code of the
 * usage error or refusal (already printed).
 */
static int chip_args(int argc, char **argv, struct kd_sim_chip **ret)
{
	int r;

	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if ((r = need_state()) != 0)
		return r;
	if (ret && (r = kd_sim_chip_load(state_dir, ret)) < 0)
		return cli_refuse(r);
	return 0;
}

static int parse_tcb(const char *s, uint64_t *ret)
{
	if (kd_tcb_parse_hex(s, ret) < 0)
		return cli_usage_error("TCB '%s' is not 16 hex digits (the 8 bytes in report order)", s);
	return 0;
}

/* ------------------------------------------------------------ init */

static int run_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"product", required_argument, NULL, 'p'},
		{"chip-id", required_argument, NULL, 'c'},
		{"tcb", required_argument, NULL, 't'},
		{0},
	};
	struct kd_sim_init_opts o = {.product = KD_PRODUCT_MILAN};
	uint8_t chip_id[64] = {0};
	size_t n;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (kd_product_from_name(optarg, &o.product) < 0)
				return cli_usage_error("--product must be milan, genoa or turin");
			break;
		case 'c':
			if (kd_unhex_var(optarg, chip_id, sizeof(chip_id), &n) < 0 ||
			    (n != 64 && n != 8))
				return cli_usage_error("--chip-id must be 64 bytes (or 8 on Turin) of hex");
			o.chip_id = chip_id;
			break;
		case 't':
			if ((r = parse_tcb(optarg, &o.tcb)) != 0)
				return r;
			o.have_tcb = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if ((r = chip_args(argc, argv, NULL)) != 0)
		return r;
	if ((r = kd_sim_chip_init(state_dir, &o)) < 0)
		return cli_refuse(r);
	fprintf(stderr, "keyd-simfw: created a simulated %s chip in %s\n", kd_product_name(o.product),
		state_dir);
	return 0;
}

/* ------------------------------------------------------------ certs */

static int write_out(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return kd_fail(KD_EINVAL, "output path too long");
	return kd_write_file(path, buf, len, 0644);
}

static int run_certs(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"tcb", required_argument, NULL, 't'},
		{0},
	};
	struct kd_sim_chip *chip = NULL;
	const char *out = NULL;
	char *ark = NULL, *ask = NULL;
	uint8_t *vcek = NULL;
	size_t vlen;
	uint64_t tcb = 0;
	bool have_tcb = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 't':
			if ((r = parse_tcb(optarg, &tcb)) != 0)
				return r;
			have_tcb = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	/* An unexpected operand is named before a missing --out. */
	if (optind == argc && !out)
		return cli_usage_error("--out DIR is required");
	if ((r = chip_args(argc, argv, &chip)) != 0)
		return r;
	if (!have_tcb)
		tcb = kd_sim_chip_current_tcb(chip);
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		r = kd_fail(KD_EIO, "cannot create %s: %s", out, strerror(errno));
		goto done;
	}
	if ((r = kd_sim_chip_cert_pem(chip, KD_SIM_CERT_ARK, tcb, &ark)) < 0 ||
	    (r = kd_sim_chip_cert_pem(chip, KD_SIM_CERT_ASK, tcb, &ask)) < 0 ||
	    (r = kd_sim_chip_cert_der(chip, KD_SIM_CERT_VCEK, tcb, &vcek, &vlen)) < 0)
		goto done;
	if ((r = write_out(out, "ark.pem", ark, strlen(ark))) < 0 ||
	    (r = write_out(out, "ask.pem", ask, strlen(ask))) < 0 ||
	    (r = write_out(out, "vcek.der", vcek, vlen)) < 0)
		goto done;
done:
	free(ark);
	free(ask);
	free(vcek);
	kd_sim_chip_free(chip);
	return r < 0 ? cli_refuse(r) : 0;
}

/* ------------------------------------------------------------ tcb, show */

static void print_state(struct kd_sim_chip *chip, bool json)
{
	enum kd_product p = kd_sim_chip_product(chip);
	char id[129], cur[KD_TCB_HEX_LEN], com[KD_TCB_HEX_LEN];
	char curs[KD_TCB_STR_MAX], coms[KD_TCB_STR_MAX];

	kd_hex(kd_sim_chip_id(chip), 64, id);
	kd_tcb_hex(kd_sim_chip_current_tcb(chip), cur);
	kd_tcb_hex(kd_sim_chip_committed_tcb(chip), com);
	kd_tcb_format(kd_sim_chip_current_tcb(chip), p, curs, sizeof(curs));
	kd_tcb_format(kd_sim_chip_committed_tcb(chip), p, coms, sizeof(coms));
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "product", json_object_new_string(kd_product_name(p)));
		json_object_object_add(o, "chip_id", json_object_new_string(id));
		json_object_object_add(o, "current_tcb", json_object_new_string(cur));
		json_object_object_add(o, "committed_tcb", json_object_new_string(com));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
		return;
	}
	printf("product        %s\n", kd_product_name(p));
	printf("chip_id        %s\n", id);
	printf("current_tcb    %s  %s\n", cur, curs);
	printf("committed_tcb  %s  %s\n", com, coms);
}

static int run_tcb(int argc, char **argv)
{
	static const struct option opts[] = {
		{"current", required_argument, NULL, 'c'},
		{"committed", required_argument, NULL, 'm'},
		{0},
	};
	struct kd_sim_chip *chip = NULL;
	uint64_t cur = 0, com = 0;
	bool set_cur = false, set_com = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if ((r = parse_tcb(optarg, &cur)) != 0)
				return r;
			set_cur = true;
			break;
		case 'm':
			if ((r = parse_tcb(optarg, &com)) != 0)
				return r;
			set_com = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if ((r = chip_args(argc, argv, &chip)) != 0)
		return r;
	if (set_cur || set_com) {
		r = kd_sim_chip_set_tcb(chip, set_cur ? cur : kd_sim_chip_current_tcb(chip),
					set_com ? com : kd_sim_chip_committed_tcb(chip));
		if (r < 0) {
			kd_sim_chip_free(chip);
			return cli_refuse(r);
		}
	}
	print_state(chip, false);
	kd_sim_chip_free(chip);
	return 0;
}

static int run_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	struct kd_sim_chip *chip = NULL;
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return EXIT_USAGE;
		json = true;
	}
	if ((r = chip_args(argc, argv, &chip)) != 0)
		return r;
	print_state(chip, json);
	kd_sim_chip_free(chip);
	return 0;
}

/* ------------------------------------------------------------ serve */

static const char *type_name(uint16_t t)
{
	switch (t) {
	case KD_SIM_REQ_DERIVE:
		return "DERIVE";
	case KD_SIM_REQ_REPORT:
		return "REPORT";
	case KD_SIM_REQ_CERTS:
		return "CERTS";
	default:
		return "UNKNOWN";
	}
}

/* One line per request: type and status, never key bytes. */
static void log_request(void *ctx, uint16_t type, uint32_t status, int err)
{
	struct kd_sim_fw *fw = ctx;

	if (err < 0)
		fprintf(stderr, "keyd-simfw: %s rejected: %s\n", type_name(type), kd_err_detail(err));
	else if (status != 0)
		fprintf(stderr, "keyd-simfw: %s status 0x%02x (%s)\n", type_name(type), status,
			kd_sim_fw_last_reason(fw));
	else
		fprintf(stderr, "keyd-simfw: %s status 0x%02x\n", type_name(type), status);
}

static void conn_ended(void *ctx, int r)
{
	if (r < 0)
		fprintf(stderr, "keyd-simfw: connection dropped: %s\n", kd_err_detail(r));
}

static int serve_unix(struct kd_sim_fw *fw, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int lfd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return kd_fail(KD_EINVAL, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	/* Replace a stale socket of an earlier run, never any other file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kd_fail(KD_EEXIST, "%s exists and is not a socket", path);
		unlink(path);
	}
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
		int e = errno;

		if (lfd >= 0)
			close(lfd);
		return kd_fail(KD_EIO, "cannot listen on %s: %s", path, strerror(e));
	}
	fprintf(stderr, "keyd-simfw: serving on unix:%s\n", path);
	r = kd_sim_serve_listener(fw, lfd, log_request, conn_ended, fw);
	close(lfd);
	return r;
}

static int serve_serial(struct kd_sim_fw *fw, const char *path)
{
	fprintf(stderr, "keyd-simfw: serving on serial:%s\n", path);
	for (;;) {
		int fd = kd_sim_serial_open(path, 0);
		struct timespec pause = {0, 200 * 1000 * 1000};
		int r;

		if (fd < 0)
			return kd_fail(KD_EIO, "cannot open %s: %s", path, strerror(errno));
		r = kd_sim_serve_fd(fw, fd, true, log_request, fw);
		if (r < 0)
			fprintf(stderr, "keyd-simfw: serial channel: %s\n", kd_err_detail(r));
		close(fd);
		/* The other end went away (EOF); wait for it to come back. */
		nanosleep(&pause, NULL);
	}
}

static int hex_opt(const char *name, const char *s, uint8_t *out, size_t len)
{
	if (kd_unhex(s, out, len) < 0)
		return cli_usage_error("--%s must be %zu bytes of hex", name, len);
	return 0;
}

static int run_serve(int argc, char **argv)
{
	enum { OPT_LISTEN = 1, OPT_MEAS, OPT_OVMF, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_VCPUS, OPT_VCPU_TYPE,
	       OPT_POLICY, OPT_SVN, OPT_FAMILY, OPT_IMAGE, OPT_HOST, OPT_VMPL, OPT_PRINT, OPT_DEBUG_KEYS };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"measurement", required_argument, NULL, OPT_MEAS},
		{"ovmf", required_argument, NULL, OPT_OVMF},
		{"kernel", required_argument, NULL, OPT_KERNEL},
		{"initrd", required_argument, NULL, OPT_INITRD},
		{"append", required_argument, NULL, OPT_APPEND},
		{"vcpus", required_argument, NULL, OPT_VCPUS},
		{"vcpu-type", required_argument, NULL, OPT_VCPU_TYPE},
		{"policy", required_argument, NULL, OPT_POLICY},
		{"guest-svn", required_argument, NULL, OPT_SVN},
		{"family-id", required_argument, NULL, OPT_FAMILY},
		{"image-id", required_argument, NULL, OPT_IMAGE},
		{"host-data", required_argument, NULL, OPT_HOST},
		{"vmpl", required_argument, NULL, OPT_VMPL},
		{"print-measurement", no_argument, NULL, OPT_PRINT},
		{"debug-print-keys", required_argument, NULL, OPT_DEBUG_KEYS},
		{0},
	};
	struct kd_sim_launch l = {.policy = 0x30000};
	struct kd_measure_params mp = {.vcpus = 0, .guest_features = 0x1, .vmm = KD_VMM_QEMU};
	const char *listen_addr = NULL, *vcpu_type = "EPYC-v4", *debug_keys = NULL;
	enum kd_sim_transport kind;
	const char *path;
	struct kd_sim_chip *chip = NULL;
	struct kd_sim_fw *fw = NULL;
	bool have_meas = false, print_only = false;
	char mhex[2 * KD_LD_SIZE + 1];
	uint64_t v;
	int c, r, dfd = -1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			listen_addr = optarg;
			break;
		case OPT_MEAS:
			if ((r = hex_opt("measurement", optarg, l.measurement, 48)) != 0)
				return r;
			have_meas = true;
			break;
		case OPT_OVMF:
			mp.ovmf_path = optarg;
			break;
		case OPT_KERNEL:
			mp.kernel_path = optarg;
			break;
		case OPT_INITRD:
			mp.initrd_path = optarg;
			break;
		case OPT_APPEND:
			mp.append = optarg;
			break;
		case OPT_VCPUS:
			if (kd_parse_u64(optarg, 512, &v) < 0 || v == 0)
				return cli_usage_error("--vcpus must be 1..512");
			mp.vcpus = (unsigned)v;
			break;
		case OPT_VCPU_TYPE:
			vcpu_type = optarg;
			break;
		case OPT_POLICY:
			if (kd_parse_u64(optarg, UINT64_MAX, &l.policy) < 0)
				return cli_usage_error("--policy must be a number (0x30000)");
			break;
		case OPT_SVN:
			if (kd_parse_u64(optarg, UINT32_MAX, &v) < 0)
				return cli_usage_error("--guest-svn must be a 32-bit number");
			l.guest_svn = (uint32_t)v;
			break;
		case OPT_FAMILY:
			if ((r = hex_opt("family-id", optarg, l.family_id, 16)) != 0)
				return r;
			break;
		case OPT_IMAGE:
			if ((r = hex_opt("image-id", optarg, l.image_id, 16)) != 0)
				return r;
			break;
		case OPT_HOST:
			if ((r = hex_opt("host-data", optarg, l.host_data, 32)) != 0)
				return r;
			break;
		case OPT_VMPL:
			if (kd_parse_u64(optarg, 3, &v) < 0)
				return cli_usage_error("--vmpl must be 0..3");
			l.vmpl = (uint32_t)v;
			break;
		case OPT_PRINT:
			print_only = true;
			break;
		case OPT_DEBUG_KEYS:
			debug_keys = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (have_meas == !!mp.ovmf_path)
		return cli_usage_error("give either --measurement HEX or --ovmf F --kernel F ...");
	if (!have_meas && !mp.vcpus)
		return cli_usage_error("--ovmf needs --vcpus N");
	if (!print_only && !listen_addr)
		return cli_usage_error("--listen unix:PATH|serial:PATH is required");
	if (listen_addr && (r = kd_sim_addr_parse(listen_addr, &kind, &path)) < 0)
		return cli_usage_error("%s", kd_err_detail(r));
	if (mp.ovmf_path) {
		if (kd_vcpu_sig_from_name(vcpu_type, &mp.vcpu_sig) < 0)
			return cli_usage_error("unknown --vcpu-type '%s'", vcpu_type);
		if ((r = kd_measure(&mp, l.measurement)) < 0)
			return cli_refuse(r);
	}
	kd_hex(l.measurement, 48, mhex);
	if (print_only) {
		printf("%s\n", mhex);
		return 0;
	}
	if ((r = need_state()) != 0)
		return r;
	if (debug_keys) {
		dfd = open(debug_keys, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (dfd < 0)
			return cli_refuse(kd_fail(KD_EIO, "cannot open %s: %s", debug_keys,
						  strerror(errno)));
	}
	if ((r = kd_sim_chip_load(state_dir, &chip)) < 0)
		goto out;
	if ((r = kd_sim_fw_new(chip, &l, &fw)) < 0) {
		kd_sim_chip_free(chip);
		goto out;
	}
	kd_sim_fw_set_debug_key_fd(fw, dfd);
	fprintf(stderr, "keyd-simfw: launch measurement %s policy 0x%llx guest_svn %u vmpl %u\n",
		mhex, (unsigned long long)l.policy, l.guest_svn, l.vmpl);
	if (debug_keys)
		fprintf(stderr, "keyd-simfw: TEST MODE: derived keys are written to %s\n", debug_keys);
	signal(SIGPIPE, SIG_IGN);
	r = kind == KD_SIM_UNIX ? serve_unix(fw, path) : serve_serial(fw, path);
out:
	kd_sim_fw_free(fw);
	if (dfd >= 0)
		close(dfd);
	return r < 0 ? cli_refuse(r) : 0;
}

/* ------------------------------------------------------------ main */

static const struct kd_cmd cmds[] = {
	{"init", run_init, "create a simulated chip (secret, chip id, TCB, ARK/ASK)",
	 "Usage: keyd-simfw --state DIR init [--product milan|genoa|turin] [--chip-id HEX]\n"
	 "                  [--tcb HEX]\n"
	 "\n"
	 "Create a chip in DIR: a random 32-byte chip secret (0600), a chip id (random\n"
	 "64 bytes, or 8 on Turin, unless --chip-id), the current = committed TCB\n"
	 "(--tcb: 16 hex digits, the 8 TCB_VERSION bytes in report order) and an\n"
	 "RSA-4096 ARK -> ASK chain with AMD's profile. VCEKs are made per TCB on use.\n"},
	{"certs", run_certs, "write ark.pem, ask.pem and vcek.der",
	 "Usage: keyd-simfw --state DIR certs --out DIR [--tcb HEX]\n"
	 "\n"
	 "Write the chip's ARK and ASK (PEM) and the VCEK (DER) of the current TCB,\n"
	 "or of --tcb, as AMD's key server would hand them out.\n"},
	{"tcb", run_tcb, "firmware update or rollback: set current/committed TCB",
	 "Usage: keyd-simfw --state DIR tcb [--current HEX] [--committed HEX]\n"
	 "\n"
	 "Set the chip's current and/or committed TCB (16 hex digits, report byte\n"
	 "order), then print the state. The committed TCB may not exceed the current\n"
	 "one. A running serve picks the change up at its next request.\n"},
	{"show", run_show, "print the chip state",
	 "Usage: keyd-simfw --state DIR show [--json]\n"},
	{"serve", run_serve, "run one launch and answer guest requests",
	 "Usage: keyd-simfw --state DIR serve --listen unix:PATH|serial:PATH\n"
	 "         (--measurement HEX | --ovmf F [--kernel F] [--initrd F] [--append S]\n"
	 "          --vcpus N [--vcpu-type T])\n"
	 "         [--policy HEX] [--guest-svn N] [--family-id HEX] [--image-id HEX]\n"
	 "         [--host-data HEX] [--vmpl N] [--print-measurement]\n"
	 "         [--debug-print-keys FILE]\n"
	 "\n"
	 "One launch: its measurement (given, or computed like `keyd measure` from\n"
	 "OVMF, kernel, initrd and command line; vCPU type default EPYC-v4), policy\n"
	 "(default 0x30000), guest SVN, family/image id, host data and VMPL are\n"
	 "fixed now. Serves any number of connections at once, each with any\n"
	 "number of requests, answering one request at a time (like the guest\n"
	 "driver's request lock); logs one line per request on stderr.\n"
	 "--print-measurement prints the measurement and exits.\n"
	 "--debug-print-keys FILE appends every derived key in hex to FILE: TESTS ONLY.\n"},
	{0},
};

int main(int argc, char **argv)
{
	/* The global --state DIR comes before the command. */
	if (argc >= 3 && !strcmp(argv[1], "--state")) {
		state_dir = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	} else if (argc >= 2 && !strncmp(argv[1], "--state=", 8)) {
		state_dir = argv[1] + 8;
		argv[1] = argv[0];
		argc -= 1;
		argv += 1;
	}
	return cli_dispatch("keyd-simfw", cmds, argc, argv);
}
