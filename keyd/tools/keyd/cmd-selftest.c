/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd selftest: run every hardware path once and print what it saw, for an
 * operator validating a real machine (docs/hardware.md). Never prints key
 * bytes: a derived key shows only whether two requests agreed and a one-way
 * fingerprint (HKDF label "keyd selftest fingerprint"), which an operator
 * can compare across reboots.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/backend.h"
#include "keyd/certbundle.h"
#include "keyd/certtable.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/util.h"
#include "keyd/verify.h"

static const char selftest_usage[] =
	"Usage: keyd selftest [--cert-dir DIR] [--ark FILE] [--backend snp|tsm|sim]\n"
	"                     [--sim unix:PATH|serial:PATH]\n"
	"\n"
	"Run every path to the AMD-SP once and print what was seen, one 'name: value'\n"
	"line each: the backend and the VMPL it runs at, a report (version, product,\n"
	"signer, TCBs, report_data echoed), where the certificates came from (the\n"
	"host's table or a cached bundle) and whether the report verifies with them,\n"
	"and the derived key (KEY_SEL 1, the sealing fields) requested twice: stable\n"
	"or not, with a one-way fingerprint. No key bytes are printed.\n"
	"\n"
	"  --cert-dir DIR  certificate bundles (default $KEYD_CERT_DIR or\n"
	"                  /var/cache/keyd/certs)\n"
	"  --ark FILE      trust this ARK instead of the AMD roots (simulator)\n"
	BACKEND_OPTS_HELP
	"\n"
	"Exit status: 0 every path worked, 1 one failed (its line says why), 2 usage.\n";

static void line(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%-22s ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A derived key, once; *fp gets 8 bytes of HKDF(key, "keyd selftest fingerprint"). */
static int derive_once(struct kd_backend *b, const struct kd_key_req *req, uint8_t fp[8],
		       struct kd_secret **ret)
{
	struct kd_secret *k = NULL, *f = NULL;
	int r;

	if ((r = kd_backend_derive(b, req, &k)) < 0)
		return r;
	if ((r = kd_hkdf(k, "", 0, "keyd selftest fingerprint", 8, &f)) < 0) {
		kd_secret_free(k);
		return r;
	}
	memcpy(fp, f->data, 8);
	kd_secret_free(f);
	*ret = k;
	return 0;
}

static int derive_paths(struct kd_backend *b, uint64_t tcb)
{
	struct kd_key_req req = {.root_key_select = KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT,
				 .guest_field_select = KD_FIELDS_SEAL,
				 .vmpl = b->vmpl,
				 .tcb_version = tcb};
	struct kd_secret *k1 = NULL, *k2 = NULL, *k0 = NULL;
	uint8_t f1[8], f2[8], f0[8];
	char hex[17], fields[64];
	long long t0;
	int r;

	kd_fields_format(req.guest_field_select, fields, sizeof(fields));
	t0 = now_ms();
	if ((r = derive_once(b, &req, f1, &k1)) < 0) {
		char why[200];

		snprintf(why, sizeof(why), "%s", kd_err_detail(r));
		line("derived-key", "FAILED: %s", why);
		/* A firmware status leaves the channel usable: does KEY_SEL 0 work? */
		req.root_key_select = 0;
		if (r == KD_EFIRMWARE && derive_once(b, &req, f0, &k0) == 0) {
			line("key-sel-0", "works while KEY_SEL 1 does not: firmware without KEY_SEL "
					  "support (update the AMD-SP firmware)");
			kd_secret_free(k0);
		}
		kd_fail(r, "%s", why);
		return r;
	}
	line("derive-latency", "%lld ms", now_ms() - t0);
	if ((r = derive_once(b, &req, f2, &k2)) < 0) {
		line("derived-key", "FAILED on the second request: %s", kd_err_detail(r));
		kd_secret_free(k1);
		return r;
	}
	kd_hex(f1, 8, hex);
	r = CRYPTO_memcmp(k1->data, k2->data, k1->len)
		    ? kd_fail(KD_EFIRMWARE, "two identical key requests gave different keys")
		    : 0;
	line("derived-key", "KEY_SEL 1, fields %s, vmpl %u: stable: %s, fingerprint %s", fields,
	     req.vmpl, r ? "NO" : "yes", hex);
	if (r)
		goto out;
	/* KEY_SEL 0 means "VLEK if installed, else VCEK": equal unless a VLEK is installed. */
	req.root_key_select = 0;
	{
		/* Informational: a refusal here is printed, not a selftest failure. */
		int e = derive_once(b, &req, f0, &k0);

		if (e == 0) {
			line("key-sel-0", "%s", CRYPTO_memcmp(k0->data, k1->data, k1->len)
							? "differs from KEY_SEL 1 (on hardware: a VLEK is installed)"
							: "same as KEY_SEL 1 (no VLEK installed)");
			kd_secret_free(k0);
		} else {
			line("key-sel-0", "refused: %s", kd_err_detail(e));
		}
	}
out:
	(void)f0;
	kd_secret_free(k1);
	kd_secret_free(k2);
	return r;
}

static int run_selftest(int argc, char **argv)
{
	enum { O_DIR = 256, O_ARK };
	static const struct option opts[] = {
		{"cert-dir", required_argument, NULL, O_DIR},
		{"ark", required_argument, NULL, O_ARK},
		BACKEND_LONGOPTS,
		{0},
	};
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	const char *cert_dir = NULL, *ark_path = NULL;
	_kd_free_ uint8_t *rep_buf = NULL, *certs = NULL, *bundle = NULL, *ark = NULL;
	size_t rep_len = 0, certs_len = 0, ark_len = 0;
	uint8_t rd[64];
	struct kd_cert_inputs in = {0};
	struct kd_verify_policy pol = {.allow_debug = true, .max_vmpl = 3};
	struct kd_report rep;
	char source[4200] = "", chip[129], tcb_s[KD_TCB_STR_MAX], tcb_h[KD_TCB_HEX_LEN];
	int c, r, failed = 0;
	long long t0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_DIR: cert_dir = optarg; break;
		case O_ARK: ark_path = optarg; break;
		default:
			r = backend_opts_handle(c, optarg, &bopts);
			if (r <= 0)
				return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (ark_path && (r = kd_read_file(ark_path, 64 * 1024, &ark, &ark_len)) < 0)
		return cli_refuse(r);

	if ((r = kd_backend_open(&bopts, &b)) < 0) {
		line("backend", "FAILED: %s", kd_err_detail(r));
		return EXIT_REFUSED;
	}
	line("backend", "%s (derive %s, report %s, certificates %s)", b->ops->name,
	     b->caps & KD_CAP_DERIVE ? "yes" : "no", b->caps & KD_CAP_REPORT ? "yes" : "no",
	     b->caps & KD_CAP_CERTS ? "yes" : "no");

	/* The report, with a fresh report_data that must come back unchanged. */
	if (RAND_bytes(rd, sizeof(rd)) != 1) {
		r = kd_fail(KD_ECRYPTO, "OpenSSL: RAND_bytes failed");
		goto out;
	}
	t0 = now_ms();
	r = kd_backend_report(b, rd, b->vmpl, &rep_buf, &rep_len,
			      b->caps & KD_CAP_CERTS ? &certs : NULL, &certs_len);
	if (r == 0)
		line("report-latency", "%lld ms (handoff reads time out after 10 s)", now_ms() - t0);
	/* The tsm backend learns the VMPL from the report directory. */
	line("vmpl", "%u (%s)", b->vmpl, *b->vmpl_source ? b->vmpl_source : "the backend's default");
	if (r < 0 || (r = kd_report_parse(rep_buf, rep_len, &rep)) < 0) {
		line("report", "FAILED: %s", kd_err_detail(r));
		goto out;
	}
	kd_hex(rep.chip_id, 64, chip);
	line("report", "version %u, product %s, vmpl %u, signed by the %s", rep.version,
	     kd_product_name(kd_report_product(&rep)), rep.vmpl, kd_signing_key_name(rep.signing_key));
	line("report-data", "%s", memcmp(rep.report_data, rd, 64) ? "NOT echoed" : "echoed");
	if (memcmp(rep.report_data, rd, 64))
		failed = 1;
	line("chip-id", "%s", chip);
	kd_tcb_hex(rep.reported_tcb, tcb_h);
	kd_tcb_format(rep.reported_tcb, kd_report_product(&rep), tcb_s, sizeof(tcb_s));
	line("reported-tcb", "%s (%s)", tcb_h, tcb_s);
	kd_tcb_hex(rep.committed_tcb, tcb_h);
	kd_tcb_format(rep.committed_tcb, kd_report_product(&rep), tcb_s, sizeof(tcb_s));
	line("committed-tcb", "%s (%s)", tcb_h, tcb_s);
	line("firmware", "committed %u.%u.%u, current %u.%u.%u", rep.committed_major,
	     rep.committed_minor, rep.committed_build, rep.current_major, rep.current_minor,
	     rep.current_build);

	/* The plain request too (SNP_GET_REPORT), when the first one was the extended one. */
	if (b->caps & KD_CAP_CERTS) {
		_kd_free_ uint8_t *rep2 = NULL;
		size_t len2 = 0;
		struct kd_report p2;

		r = kd_backend_report(b, rd, b->vmpl, &rep2, &len2, NULL, NULL);
		if (r == 0)
			r = kd_report_parse(rep2, len2, &p2);
		if (r < 0) {
			line("plain-report", "FAILED: %s", kd_err_detail(r));
			failed = 1;
		} else {
			bool same = !memcmp(p2.chip_id, rep.chip_id, 64) &&
				    p2.reported_tcb == rep.reported_tcb &&
				    !memcmp(p2.measurement, rep.measurement, 48);

			line("plain-report", "%s", same ? "ok (same chip, TCB and measurement)"
							: "DIFFERS from the extended report");
			if (!same)
				failed = 1;
		}
	}

	/* Where the certificates come from, and whether they prove this report. */
	in.cert_table = certs;
	in.cert_table_len = certs_len;
	in.ark = ark;
	in.ark_len = ark_len;
	if ((r = kd_certs_from_bundle(&in, rep_buf, rep_len, cert_dir, &bundle, source,
				      sizeof(source))) < 0) {
		line("certificates", "NONE: %s", kd_err_detail(r));
		failed = 1;
	} else {
		line("certificates", "%s%s", bundle ? "bundle " : "", source);
		r = kd_verify_report(rep_buf, rep_len, &in, &pol, NULL, NULL);
		line("report-verifies", "%s%s", r ? "NO: " : "yes", r ? kd_err_detail(r) : "");
		if (r)
			failed = 1;
	}

	if (b->caps & KD_CAP_DERIVE) {
		if (derive_paths(b, rep.committed_tcb) < 0)
			failed = 1;
	} else {
		line("derived-key", "not offered by backend %s", b->ops->name);
	}
	r = 0;
out:
	kd_backend_close(b);
	return r < 0 || failed ? EXIT_REFUSED : 0;
}

const struct kd_cmd cmd_selftest = {
	"selftest", run_selftest, "run every AMD-SP path once and print what it saw",
	selftest_usage,
};
