/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd kds fetch: the host side of "certificates without the host's help".
 * Fetch a report's VCEK and the AMD chain from a KDS-compatible URL, check
 * them against the report and the pinned roots, and cache the bundle under
 * its chip ID and TCB for the guest (keyd/certbundle.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "keyd/certbundle.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"
#include "keyd/verify.h"

#define KDS_TIMEOUT 30

static const char kds_usage[] =
	"Usage: keyd kds fetch --report FILE --url BASE --cache DIR [--product NAME]\n"
	"                      [--vlek FILE] [--ark FILE] [--at RFC3339] [--timeout S]\n"
	"\n"
	"Host side. Fetch the VCEK for a report's chip and TCB from a KDS-compatible\n"
	"service, and the AMD chain:\n"
	"  GET BASE/vcek/v1/PRODUCT/HWID?blSPL=B&teeSPL=T&snpSPL=S&ucodeSPL=U[&fmcSPL=F]\n"
	"  GET BASE/vcek/v1/PRODUCT/cert_chain   (/vlek/v1/... for a VLEK)\n"
	"verify the report with them (so nothing wrong is ever cached), and write\n"
	"DIR/<CHIP_ID hex>-<REPORTED_TCB hex>.pem (vlek-<TCB>.pem for a VLEK): the\n"
	"bundle keyd uses when the host's certificate table is empty.\n"
	"\n"
	"  --url BASE     e.g. https://kdsintf.amd.com (http:// for a local mirror)\n"
	"  --product P    Milan, Genoa or Turin: needed for a version 2 report\n"
	"  --vlek FILE    the VLEK from the host's own provisioning (a VLEK-signed\n"
	"                 report); only its chain is fetched\n"
	"  --ark FILE     trust this ARK instead of the AMD roots (tests)\n"
	"  --at RFC3339   certificate validity time for the check (default now)\n"
	"\n"
	"Exit status: 0 cached (the path on stdout), 1 refused, 2 usage.\n";

static int parse_product(const char *s, enum kd_product *ret)
{
	if (!strcasecmp(s, "milan"))
		*ret = KD_PRODUCT_MILAN;
	else if (!strcasecmp(s, "genoa"))
		*ret = KD_PRODUCT_GENOA;
	else if (!strcasecmp(s, "turin"))
		*ret = KD_PRODUCT_TURIN;
	else
		return -1;
	return 0;
}

/* Write DIR/name atomically (a reader never sees half a bundle). */
static int cache_write(const char *dir, const char *name, const uint8_t *buf, size_t len,
		       char *path, size_t path_len)
{
	char tmp[4200];
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return kd_fail(KD_EIO, "cannot create %s: %s", dir, strerror(errno));
	if (snprintf(path, path_len, "%s/%s", dir, name) >= (int)path_len ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp))
		return kd_fail(KD_EINVAL, "cache path too long");
	if ((r = kd_write_file(tmp, buf, len, 0644)) < 0)
		return r;
	if (rename(tmp, path) < 0) {
		r = kd_fail(KD_EIO, "cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return r;
	}
	return 0;
}

static int run_kds_fetch(int argc, char **argv)
{
	enum { O_REPORT = 256, O_URL, O_CACHE, O_PRODUCT, O_VLEK, O_ARK, O_AT, O_TIMEOUT };
	static const struct option opts[] = {
		{"report", required_argument, NULL, O_REPORT},
		{"url", required_argument, NULL, O_URL},
		{"cache", required_argument, NULL, O_CACHE},
		{"product", required_argument, NULL, O_PRODUCT},
		{"vlek", required_argument, NULL, O_VLEK},
		{"ark", required_argument, NULL, O_ARK},
		{"at", required_argument, NULL, O_AT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{0},
	};
	const char *report_path = NULL, *url = NULL, *cache = NULL, *vlek_path = NULL, *ark_path = NULL;
	_kd_free_ uint8_t *report = NULL, *vek = NULL, *chain = NULL, *bundle = NULL, *ark = NULL;
	size_t report_len = 0, vek_len = 0, chain_len = 0, bundle_len = 0, ark_len = 0;
	enum kd_product product = KD_PRODUCT_UNKNOWN;
	struct kd_verify_policy pol = {.allow_debug = true, .max_vmpl = 3};
	struct kd_cert_inputs in = {0};
	char vpath[KD_KDS_PATH_MAX], cpath[KD_KDS_PATH_MAX], name[KD_CERTBUNDLE_NAME_MAX], out[4200];
	struct kd_report rep;
	uint64_t timeout = KDS_TIMEOUT;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_REPORT: report_path = optarg; break;
		case O_URL: url = optarg; break;
		case O_CACHE: cache = optarg; break;
		case O_PRODUCT:
			if (parse_product(optarg, &product) < 0)
				return cli_usage_error("--product must be Milan, Genoa or Turin");
			break;
		case O_VLEK: vlek_path = optarg; break;
		case O_ARK: ark_path = optarg; break;
		case O_AT:
			if (kd_parse_rfc3339(optarg, &pol.at) < 0)
				return cli_usage_error("--at '%s' is not an RFC 3339 time with a zone", optarg);
			break;
		case O_TIMEOUT:
			if (kd_parse_u64(optarg, 600, &timeout) < 0 || timeout == 0)
				return cli_usage_error("--timeout must be 1..600 seconds");
			break;
		default:
			return cli_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!report_path || !url || !cache)
		return cli_usage_error("--report, --url and --cache are needed");

	if ((r = kd_read_file(report_path, 64 * 1024, &report, &report_len)) < 0 ||
	    (r = kd_report_parse(report, report_len, &rep)) < 0)
		return cli_refuse(r);
	if (kd_report_product(&rep) != KD_PRODUCT_UNKNOWN) {
		if (product != KD_PRODUCT_UNKNOWN && product != kd_report_product(&rep))
			return cli_refuse(kd_fail(KD_EINVAL, "--product %s, but the report is from %s",
						  kd_product_name(product),
						  kd_product_name(kd_report_product(&rep))));
		product = kd_report_product(&rep);
	}
	if (rep.signing_key == KD_SIGNING_KEY_VLEK && !vlek_path)
		return cli_refuse(kd_fail(KD_EINVAL, "the report is VLEK-signed: KDS does not publish "
						     "VLEKs; give the provisioned one with --vlek"));
	if ((r = kd_certbundle_name(&rep, name)) < 0 ||
	    (r = kd_kds_chain_path(product, rep.signing_key == KD_SIGNING_KEY_VLEK, cpath)) < 0)
		return cli_refuse(r);
	if (vlek_path) {
		if ((r = kd_read_file(vlek_path, 64 * 1024, &vek, &vek_len)) < 0)
			return cli_refuse(r);
	} else {
		if ((r = kd_kds_vcek_path(&rep, product, vpath)) < 0)
			return cli_refuse(r);
		fprintf(stderr, "keyd: GET %s%s\n", url, vpath);
		if ((r = kd_http_get(url, vpath, 64 * 1024, (int)timeout, &vek, &vek_len)) < 0)
			return cli_refuse(r);
	}
	fprintf(stderr, "keyd: GET %s%s\n", url, cpath);
	if ((r = kd_http_get(url, cpath, 64 * 1024, (int)timeout, &chain, &chain_len)) < 0 ||
	    (r = kd_certbundle_build(vek, vek_len, chain, chain_len, &bundle, &bundle_len)) < 0)
		return cli_refuse(r);
	if (ark_path) {
		if ((r = kd_read_file(ark_path, 64 * 1024, &ark, &ark_len)) < 0)
			return cli_refuse(r);
		in.ark = ark;
		in.ark_len = ark_len;
	}
	/* Only what verifies this very report is cached. */
	in.vek = in.chain_pem = bundle;
	in.vek_len = in.chain_pem_len = bundle_len;
	if ((r = kd_verify_report(report, report_len, &in, &pol, NULL, NULL)) < 0) {
		char why[300];

		snprintf(why, sizeof(why), "%s", kd_err_detail(r));
		return cli_refuse(kd_fail(r, "not cached: %s", why));
	}
	if ((r = cache_write(cache, name, bundle, bundle_len, out, sizeof(out))) < 0)
		return cli_refuse(r);
	printf("%s\n", out);
	return 0;
}

const struct kd_cmd cmd_kds_fetch = {
	"kds fetch", run_kds_fetch, "host: fetch and cache a report's VCEK and AMD chain from KDS",
	kds_usage,
};
