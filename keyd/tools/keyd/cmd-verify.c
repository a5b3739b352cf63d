/* SPDX-License-Identifier: Apache-2.0 */
/* keyd verify-report: an SEV-SNP report against the AMD chain and a policy. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "keyd/certbundle.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"
#include "keyd/verify.h"

static const char verify_usage[] =
	"Usage: keyd verify-report REPORT [--vcek FILE | --cert-table FILE] [--cert-dir DIR]\n"
	"                          [--chain PEM | --ask FILE [--ark FILE]] [--at RFC3339]\n"
	"                          [--expect-measurement HEX]... [--expect-chip-id HEX]\n"
	"                          [--expect-report-data HEX] [--min-tcb HEX]\n"
	"                          [--allow-debug] [--max-vmpl N] [--json]\n"
	"\n"
	"Verify a 1184-byte SEV-SNP attestation report end to end: the AMD chain\n"
	"ARK -> ASK/ASVK -> VCEK/VLEK (RSASSA-PSS SHA-384, salt 48), the report's\n"
	"ECDSA P-384 signature, the VCEK's TCB and hwID extensions against the\n"
	"report, and the policy below. The ARK, ASK and ASVK of Milan, Genoa and\n"
	"Turin are built in (ARKs pinned by SHA-256), so --vcek alone is enough.\n"
	"\n"
	"  --vcek FILE               VCEK or VLEK certificate, DER or PEM\n"
	"  --cert-table FILE         GHCB certificate table (SNP_GET_EXT_REPORT\n"
	"                            certs, configfs-tsm auxblob) with VCEK/ASK/ARK\n"
	"  --cert-dir DIR            certificate bundles cached by the host (`keyd kds\n"
	"                            fetch`), used when neither --vcek nor a table with\n"
	"                            a VCEK/VLEK is given; default $KEYD_CERT_DIR or\n"
	"                            /var/cache/keyd/certs; a file is the bundle itself\n"
	"  --chain PEM               KDS cert_chain: ASK (or ASVK), then ARK; the ARK\n"
	"                            must be a built-in one (or equal --ark)\n"
	"  --ask FILE                ASK or ASVK, DER or PEM\n"
	"  --ark FILE                trust this ARK INSTEAD of the AMD roots\n"
	"                            (simulator, tests)\n"
	"  --at RFC3339              check certificate validity at this time\n"
	"                            (default now), e.g. 2025-06-01T00:00:00Z\n"
	"  --expect-measurement HEX  96 hex digits; repeat to allow any of several\n"
	"  --expect-chip-id HEX      128 hex digits\n"
	"  --expect-report-data HEX  128 hex digits\n"
	"  --min-tcb HEX             16 hex digits in report byte order (as\n"
	"                            `keyd report show` prints); every component of\n"
	"                            the reported TCB must be >=\n"
	"  --allow-debug             accept the DEBUG and MIGRATE_MA policy bits\n"
	"  --max-vmpl N              highest accepted VMPL (default 0)\n"
	"  --json                    print every check with its result (also on\n"
	"                            refusal)\n"
	"\n"
	"Exit status: 0 verified; 1 refused (one line on stderr naming the failed\n"
	"check) or unreadable input; 2 usage error.\n";

#define MAX_MEASUREMENTS 64
#define CERT_MAX (64 * 1024)

struct verify_args {
	const char *report, *vcek, *chain, *ask, *ark, *table, *cert_dir;
	uint8_t (*measurements)[48];
	size_t n_meas;
	uint8_t chip_id[64], report_data[64];
	bool has_chip_id, has_report_data;
	struct kd_verify_policy pol;
	bool json;
};

static int parse_args(int argc, char **argv, struct verify_args *a)
{
	enum { O_VCEK = 256, O_CHAIN, O_ASK, O_ARK, O_TABLE, O_DIR, O_AT, O_MEAS, O_CHIP, O_RD, O_TCB, O_DEBUG, O_VMPL, O_JSON };
	static const struct option opts[] = {
		{"vcek", required_argument, NULL, O_VCEK},
		{"chain", required_argument, NULL, O_CHAIN},
		{"ask", required_argument, NULL, O_ASK},
		{"ark", required_argument, NULL, O_ARK},
		{"cert-table", required_argument, NULL, O_TABLE},
		{"cert-dir", required_argument, NULL, O_DIR},
		{"at", required_argument, NULL, O_AT},
		{"expect-measurement", required_argument, NULL, O_MEAS},
		{"expect-chip-id", required_argument, NULL, O_CHIP},
		{"expect-report-data", required_argument, NULL, O_RD},
		{"min-tcb", required_argument, NULL, O_TCB},
		{"allow-debug", no_argument, NULL, O_DEBUG},
		{"max-vmpl", required_argument, NULL, O_VMPL},
		{"json", no_argument, NULL, O_JSON},
		{0},
	};
	uint64_t u;
	int o;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_VCEK: a->vcek = optarg; break;
		case O_CHAIN: a->chain = optarg; break;
		case O_ASK: a->ask = optarg; break;
		case O_ARK: a->ark = optarg; break;
		case O_TABLE: a->table = optarg; break;
		case O_DIR: a->cert_dir = optarg; break;
		case O_AT:
			if (kd_parse_rfc3339(optarg, &a->pol.at) < 0)
				return cli_usage_error("--at '%s' is not an RFC 3339 time with a zone", optarg);
			break;
		case O_MEAS:
			if (a->n_meas == MAX_MEASUREMENTS)
				return cli_usage_error("at most %d --expect-measurement", MAX_MEASUREMENTS);
			if (kd_unhex(optarg, a->measurements[a->n_meas], 48) < 0)
				return cli_usage_error("--expect-measurement needs 96 hex digits");
			a->n_meas++;
			break;
		case O_CHIP:
			if (kd_unhex(optarg, a->chip_id, 64) < 0)
				return cli_usage_error("--expect-chip-id needs 128 hex digits");
			a->has_chip_id = true;
			break;
		case O_RD:
			if (kd_unhex(optarg, a->report_data, 64) < 0)
				return cli_usage_error("--expect-report-data needs 128 hex digits");
			a->has_report_data = true;
			break;
		case O_TCB:
			if (kd_tcb_parse_hex(optarg, &a->pol.min_tcb) < 0)
				return cli_usage_error("--min-tcb needs 16 hex digits");
			a->pol.has_min_tcb = true;
			break;
		case O_DEBUG: a->pol.allow_debug = true; break;
		case O_VMPL:
			if (kd_parse_u64(optarg, 3, &u) < 0)
				return cli_usage_error("--max-vmpl must be 0..3");
			a->pol.max_vmpl = (uint32_t)u;
			break;
		case O_JSON: a->json = true; break;
		default:
			return cli_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("exactly one REPORT file is needed");
	a->report = argv[optind];
	if (a->chain && a->ask)
		return cli_usage_error("--chain and --ask are exclusive");
	return 0;
}

static int read_opt(const char *path, const char *what, uint8_t **buf, size_t *len)
{
	int r;

	if (!path)
		return 0;
	r = kd_read_file(path, CERT_MAX, buf, len);
	if (r < 0)
		return kd_fail(r, "cannot read %s %s: %s", what, path, kd_strerror(r));
	return 0;
}

static void print_json(const struct kd_verify_result *res, int err, const struct kd_report *rep,
		       const char *source)
{
	struct json_object *o = json_object_new_object(), *checks = json_object_new_array();

	if (!o || !checks) {
		json_object_put(o);
		json_object_put(checks);
		return;
	}
	json_object_object_add(o, "verified", json_object_new_boolean(err == 0));
	if (err)
		json_object_object_add(o, "error", json_object_new_string(kd_err_detail(err)));
	for (size_t i = 0; i < res->n; i++) {
		struct json_object *c = json_object_new_object();

		json_object_object_add(c, "name", json_object_new_string(res->checks[i].name));
		json_object_object_add(c, "ok", json_object_new_boolean(res->checks[i].ok));
		json_object_object_add(c, "detail", json_object_new_string(res->checks[i].detail));
		json_object_array_add(checks, c);
	}
	json_object_object_add(o, "checks", checks);
	if (*source)
		json_object_object_add(o, "certificates", json_object_new_string(source));
	if (!err && rep) {
		json_object_object_add(o, "product", json_object_new_string(kd_product_name(rep->product)));
		json_object_object_add(o, "report", kd_report_to_json(rep));
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static int run_verify(int argc, char **argv)
{
	uint8_t meas[MAX_MEASUREMENTS][48];
	struct verify_args a = {.measurements = meas};
	_kd_free_ uint8_t *report = NULL, *vcek = NULL, *chain = NULL, *ask = NULL, *ark = NULL, *table = NULL,
			  *bundle = NULL;
	char source[4200] = "";
	size_t report_len = 0;
	struct kd_cert_inputs in = {0};
	struct kd_verify_result res = {.n = 0};
	struct kd_report rep;
	int r;

	if ((r = parse_args(argc, argv, &a)) != 0)
		return r;
	if (a.n_meas) {
		a.pol.measurements = (const uint8_t(*)[48])meas;
		a.pol.n_measurements = a.n_meas;
	}
	a.pol.chip_id = a.has_chip_id ? a.chip_id : NULL;
	a.pol.report_data = a.has_report_data ? a.report_data : NULL;

	if ((r = kd_read_file(a.report, 64 * 1024, &report, &report_len)) < 0) {
		r = kd_fail(r, "cannot read report %s: %s", a.report, kd_strerror(r));
		goto refuse;
	}
	if ((r = read_opt(a.vcek, "VCEK", &vcek, &in.vek_len)) < 0 ||
	    (r = read_opt(a.chain, "chain", &chain, &in.chain_pem_len)) < 0 ||
	    (r = read_opt(a.ask, "ASK", &ask, &in.ask_len)) < 0 ||
	    (r = read_opt(a.ark, "ARK", &ark, &in.ark_len)) < 0 ||
	    (r = read_opt(a.table, "certificate table", &table, &in.cert_table_len)) < 0)
		goto refuse;
	in.vek = vcek;
	in.chain_pem = chain;
	in.ask = ask;
	in.ark = ark;
	in.cert_table = table;
	/* No VCEK/VLEK given and none in the table: the host's cached bundle. */
	if ((r = kd_certs_from_bundle(&in, report, report_len, a.cert_dir, &bundle, source,
				      sizeof(source))) < 0)
		goto refuse;

	r = kd_verify_report(report, report_len, &in, &a.pol, &rep, &res);
	if (a.json)
		print_json(&res, r, r ? NULL : &rep, source);
	if (r < 0)
		return cli_refuse(r);
	if (!a.json) {
		char chip[2 * 64 + 1], m[2 * 48 + 1], tcbh[KD_TCB_HEX_LEN], tcb[KD_TCB_STR_MAX];

		kd_hex(rep.chip_id, 64, chip);
		kd_hex(rep.measurement, 48, m);
		kd_tcb_hex(rep.reported_tcb, tcbh);
		kd_tcb_format(rep.reported_tcb, rep.product, tcb, sizeof(tcb));
		printf("report verifies: product %s, chip %.16s..., measurement %s, tcb %s (%s)%s%s\n",
		       kd_product_name(rep.product), chip, m, tcbh, tcb, bundle ? ", certificates from " : "",
		       bundle ? source : "");
	}
	return 0;
refuse:
	if (a.json)
		print_json(&res, r, NULL, source);
	return cli_refuse(r);
}

const struct kd_cmd cmd_verify_report = {
	"verify-report", run_verify, "verify an SEV-SNP report against the AMD chain and a policy",
	verify_usage,
};
