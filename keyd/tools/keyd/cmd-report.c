/* SPDX-License-Identifier: Apache-2.0 */
/* keyd report show: decode an SEV-SNP attestation report, every field. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "keyd/error.h"
#include "keyd/report.h"
#include "keyd/util.h"

static const char report_show_usage[] =
	"Usage: keyd report show FILE [--json]\n"
	"\n"
	"Decode a raw SEV-SNP ATTESTATION_REPORT (1184 bytes; versions 2, 3, 4 and 5)\n"
	"and print every field, one per line with its offset, or as one JSON object.\n"
	"Policy, platform-info and signer bits are decoded by name, and each TCB\n"
	"(shown as its 8 bytes in report order, the form --min-tcb takes) is split\n"
	"into its components for the product: fmc/bl/tee/snp/ucode on Turin,\n"
	"bl/tee/snp/ucode on Milan and Genoa. The product comes from CPUID (v3+);\n"
	"a v2 report is Turin when only CHIP_ID[0:8] is set, otherwise 'unknown'\n"
	"(Milan or Genoa, decoded with their common layout).\n"
	"\n"
	"The report is parsed strictly: wrong size, an unknown version or a\n"
	"non-zero reserved field is refused. The signature is NOT verified here;\n"
	"use 'keyd verify-report' for that.\n"
	"\n"
	"  --json   print one JSON object instead of text\n"
	"\n"
	"Exit status: 0 printed, 1 unreadable or malformed report (one line on\n"
	"stderr), 2 usage error.\n";

/* Large enough that an oversized file is reported as such by the parser. */
#define REPORT_FILE_MAX (1u << 20)

static void line(unsigned off, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void line(unsigned off, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("  0x%03X %-30s ", off, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void hex_line(unsigned off, const char *name, const uint8_t *p, size_t n)
{
	char s[2 * 72 + 1];

	kd_hex(p, n, s);
	line(off, name, "%s", s);
}

static void tcb_line(unsigned off, const char *name, uint64_t raw, enum kd_product p)
{
	char hex[KD_TCB_HEX_LEN], s[KD_TCB_STR_MAX];

	kd_tcb_hex(raw, hex);
	kd_tcb_format(raw, p, s, sizeof(s));
	line(off, name, "%s (%s)", hex, s);
}

/* "name=0/1" for each named bit, appended to buf. */
static void bits(char *buf, size_t len, uint64_t v,
		 const char *(*name_of)(size_t, uint64_t *))
{
	size_t used = strlen(buf);
	uint64_t bit;
	const char *n;

	for (size_t i = 0; (n = name_of(i, &bit)) != NULL && used < len; i++) {
		int w = snprintf(buf + used, len - used, " %s=%d", n, (v & bit) != 0);

		if (w < 0)
			return;
		used += (size_t)w;
	}
}

static void print_text(const char *path, const struct kd_report *r)
{
	char buf[512];
	uint64_t named = 0, bit;
	enum kd_product p = r->product;

	printf("%s\n", path);
	line(0x000, "version", "%u", r->version);
	line(0x004, "guest_svn", "%u", r->guest_svn);
	snprintf(buf, sizeof(buf), "0x%llx abi=%u.%u", (unsigned long long)r->policy,
		 (unsigned)((r->policy >> 8) & 0xff), (unsigned)(r->policy & 0xff));
	bits(buf, sizeof(buf), r->policy, kd_policy_bit_name);
	line(0x008, "policy", "%s", buf);
	hex_line(0x010, "family_id", r->family_id, 16);
	hex_line(0x020, "image_id", r->image_id, 16);
	line(0x030, "vmpl", "%u", r->vmpl);
	line(0x034, "signature_algo", "%u%s", r->signature_algo,
	     r->signature_algo == 1 ? " (ECDSA P-384 with SHA-384)" : " (unknown)");
	tcb_line(0x038, "current_tcb", r->current_tcb, p);
	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)r->platform_info);
	bits(buf, sizeof(buf), r->platform_info, kd_platform_bit_name);
	for (size_t i = 0; kd_platform_bit_name(i, &bit); i++)
		named |= bit;
	line(0x040, "platform_info", "%s unknown_bits=0x%llx", buf,
	     (unsigned long long)(r->platform_info & ~named));
	line(0x048, "signer_info", "0x%x author_key_en=%d mask_chip_key=%d signing_key=%d (%s)",
	     r->signer_info, (r->signer_info & KD_SIGNER_AUTHOR_KEY_EN) != 0,
	     (r->signer_info & KD_SIGNER_MASK_CHIP_KEY) != 0, r->signing_key,
	     kd_signing_key_name(r->signing_key));
	hex_line(0x050, "report_data", r->report_data, 64);
	hex_line(0x090, "measurement", r->measurement, 48);
	hex_line(0x0C0, "host_data", r->host_data, 32);
	hex_line(0x0E0, "id_key_digest", r->id_key_digest, 48);
	hex_line(0x110, "author_key_digest", r->author_key_digest, 48);
	hex_line(0x140, "report_id", r->report_id, 32);
	hex_line(0x160, "report_id_ma", r->report_id_ma, 32);
	tcb_line(0x180, "reported_tcb", r->reported_tcb, p);
	if (r->version >= 3)
		line(0x188, "cpuid_fam/mod/step", "0x%x/0x%x/0x%x", r->cpuid_fam_id,
		     r->cpuid_mod_id, r->cpuid_step);
	else
		line(0x188, "cpuid_fam/mod/step", "- (reserved in v2)");
	hex_line(0x1A0, "chip_id", r->chip_id, 64);
	tcb_line(0x1E0, "committed_tcb", r->committed_tcb, p);
	line(0x1E8, "current build/minor/major", "%u/%u/%u -> %u.%u.%u", r->current_build,
	     r->current_minor, r->current_major, r->current_major, r->current_minor,
	     r->current_build);
	line(0x1EC, "committed build/minor/major", "%u/%u/%u -> %u.%u.%u", r->committed_build,
	     r->committed_minor, r->committed_major, r->committed_major, r->committed_minor,
	     r->committed_build);
	tcb_line(0x1F0, "launch_tcb", r->launch_tcb, p);
	if (r->version >= 5) {
		line(0x1F8, "launch_mit_vector", "0x%llx",
		     (unsigned long long)r->launch_mit_vector);
		line(0x200, "current_mit_vector", "0x%llx",
		     (unsigned long long)r->current_mit_vector);
	} else {
		line(0x1F8, "launch/current_mit_vector", "- (reserved before v5)");
	}
	hex_line(0x2A0, "sig.r (LE,72)", r->sig_r, 72);
	hex_line(0x2E8, "sig.s (LE,72)", r->sig_s, 72);
	printf("  %-36s %s (%s)\n", "product", kd_product_name(p),
	       r->version >= 3 ? "from CPUID" : "v2: CHIP_ID heuristic");
	printf("  %-36s %s\n", "reserved fields", "all zero (checked)");
}

static int run_report_show(int argc, char **argv)
{
	enum { O_JSON = 256 };
	static const struct option opts[] = {
		{"json", no_argument, NULL, O_JSON},
		{0},
	};
	_kd_free_ uint8_t *buf = NULL;
	struct kd_report r;
	size_t len = 0;
	int json = 0, opt, err;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_JSON:
			json = 1;
			break;
		default:
			return cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return cli_usage_error("missing report FILE");
	if (argc - optind > 1)
		return cli_usage_error("unexpected argument '%s'", argv[optind + 1]);

	err = kd_read_file(argv[optind], REPORT_FILE_MAX, &buf, &len);
	if (err < 0)
		return cli_refuse(err);
	err = kd_report_parse(buf, len, &r);
	if (err < 0)
		return cli_refuse(err);

	if (json) {
		struct json_object *o = kd_report_to_json(&r);

		if (!o)
			return cli_refuse(kd_fail(KD_ENOMEM, "out of memory (JSON output)"));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		print_text(argv[optind], &r);
	}
	if (fflush(stdout) != 0)
		return cli_refuse(kd_fail(KD_EIO, "cannot write the output"));
	return 0;
}

const struct kd_cmd cmd_report_show = {
	"report show", run_report_show, "decode an SEV-SNP attestation report", report_show_usage,
};
