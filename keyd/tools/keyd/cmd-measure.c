/* SPDX-License-Identifier: Apache-2.0 */
/* keyd measure: the SEV-SNP launch digest of an OVMF + kernel + initrd + cmdline. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "keyd/error.h"
#include "keyd/measure.h"
#include "keyd/util.h"

static const char measure_usage[] =
	"Usage: keyd measure --ovmf FILE [--kernel FILE] [--initrd FILE] [--append STR]\n"
	"                    --vcpus N (--vcpu-type NAME | --vcpu-sig HEX)\n"
	"                    [--guest-features HEX] [--vmm-type qemu|ec2|gce]\n"
	"                    [--snp-ovmf-hash HEX] [--json]\n"
	"       keyd measure --ovmf FILE --ovmf-hash-only [--json]\n"
	"\n"
	"Print the SEV-SNP launch digest (96 hex digits) that the AMD-SP computes for\n"
	"this launch, with the semantics of sev-snp-measure 0.0.13 in mode snp.\n"
	"\n"
	"  --ovmf FILE            OVMF image (with SEV metadata in its footer table)\n"
	"  --kernel FILE          kernel for direct boot; the OVMF must have a\n"
	"                         SNP_KERNEL_HASHES section (AmdSev build)\n"
	"  --initrd FILE          initrd (default: none, hashed as empty)\n"
	"  --append STR           kernel command line (default: empty)\n"
	"  --vcpus N              number of vCPUs (1..4096)\n"
	"  --vcpu-type NAME       QEMU -cpu model: EPYC, EPYC-v1..v4, EPYC-IBPB,\n"
	"                         EPYC-Rome[-v1..v3], EPYC-Milan[-v1,-v2],\n"
	"                         EPYC-Genoa[-v1], EPYC-Turin\n"
	"  --vcpu-sig HEX         CPUID(1).EAX signature instead of --vcpu-type\n"
	"  --guest-features HEX   VMSA SEV_FEATURES (default 0x1; 0x21 for host 6.6/6.7)\n"
	"  --vmm-type TYPE        qemu (default), ec2 or gce\n"
	"  --snp-ovmf-hash HEX    digest after the OVMF pages (from --ovmf-hash-only),\n"
	"                         skips hashing the image again\n"
	"  --ovmf-hash-only       print only the digest after the OVMF pages\n"
	"  --json                 print {\"measurement\": HEX, ...}\n"
	"\n"
	"Exit status: 0 printed, 1 bad or unreadable input (one line on stderr),\n"
	"2 usage error (including an unknown --vcpu-type).\n";

/* Strict hex (optional 0x), at most 16 digits: "HEX" options are never decimal. */
static int parse_hex_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		s += 2;
	for (; *s; s++, n++) {
		if (!isxdigit((unsigned char)*s) || n >= 16)
			return -1;
		v = v << 4 | (uint64_t)(isdigit((unsigned char)*s) ? *s - '0'
							   : tolower((unsigned char)*s) - 'a' + 10);
	}
	if (n == 0)
		return -1;
	*ret = v;
	return 0;
}

static int print_digest(const uint8_t ld[KD_LD_SIZE], int json, const struct kd_measure_params *p,
			int hash_only)
{
	char hex[2 * KD_LD_SIZE + 1];
	json_object *o;

	kd_hex(ld, KD_LD_SIZE, hex);
	if (!json) {
		printf("%s\n", hex);
		return 0;
	}
	o = json_object_new_object();
	if (!o)
		return cli_refuse(kd_fail(KD_ENOMEM, "out of memory (JSON output)"));
	json_object_object_add(o, hash_only ? "ovmf_hash" : "measurement",
			       json_object_new_string(hex));
	if (!hash_only) {
		static const char *const vmm[] = {"qemu", "ec2", "gce"};
		char buf[32];

		json_object_object_add(o, "vcpus", json_object_new_int64(p->vcpus));
		snprintf(buf, sizeof(buf), "0x%x", p->vcpu_sig);
		json_object_object_add(o, "vcpu_sig", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)p->guest_features);
		json_object_object_add(o, "guest_features", json_object_new_string(buf));
		json_object_object_add(o, "vmm_type", json_object_new_string(vmm[p->vmm]));
		json_object_object_add(o, "kernel_hashes",
				       json_object_new_boolean(p->kernel_path != NULL));
	}
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

static int run_measure(int argc, char **argv)
{
	enum { O_OVMF = 256, O_KERNEL, O_INITRD, O_APPEND, O_VCPUS, O_VTYPE, O_VSIG, O_GF, O_VMM,
	       O_OHASH, O_HONLY, O_JSON };
	static const struct option opts[] = {
		{"ovmf", required_argument, NULL, O_OVMF},
		{"kernel", required_argument, NULL, O_KERNEL},
		{"initrd", required_argument, NULL, O_INITRD},
		{"append", required_argument, NULL, O_APPEND},
		{"vcpus", required_argument, NULL, O_VCPUS},
		{"vcpu-type", required_argument, NULL, O_VTYPE},
		{"vcpu-sig", required_argument, NULL, O_VSIG},
		{"guest-features", required_argument, NULL, O_GF},
		{"vmm-type", required_argument, NULL, O_VMM},
		{"snp-ovmf-hash", required_argument, NULL, O_OHASH},
		{"ovmf-hash-only", no_argument, NULL, O_HONLY},
		{"json", no_argument, NULL, O_JSON},
		{0},
	};
	struct kd_measure_params p = {.guest_features = 0x1, .vmm = KD_VMM_QEMU};
	uint8_t ovmf_hash[KD_LD_SIZE], ld[KD_LD_SIZE];
	const char *vtype = NULL, *vsig = NULL;
	int json = 0, hash_only = 0, have_vcpus = 0, opt, err;
	uint64_t v;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_OVMF:
			p.ovmf_path = optarg;
			break;
		case O_KERNEL:
			p.kernel_path = optarg;
			break;
		case O_INITRD:
			p.initrd_path = optarg;
			break;
		case O_APPEND:
			p.append = optarg;
			break;
		case O_VCPUS:
			/* QEMU's limit for a single guest; keeps the loop bounded. */
			if (kd_parse_u64(optarg, KD_MEASURE_MAX_VCPUS, &v) < 0 || v < 1)
				return cli_usage_error("--vcpus must be a number from 1 to 4096");
			p.vcpus = (unsigned)v;
			have_vcpus = 1;
			break;
		case O_VTYPE:
			vtype = optarg;
			break;
		case O_VSIG:
			vsig = optarg;
			break;
		case O_GF:
			if (parse_hex_u64(optarg, &p.guest_features) < 0)
				return cli_usage_error("--guest-features must be hex");
			break;
		case O_VMM:
			if (!strcmp(optarg, "qemu"))
				p.vmm = KD_VMM_QEMU;
			else if (!strcmp(optarg, "ec2"))
				p.vmm = KD_VMM_EC2;
			else if (!strcmp(optarg, "gce"))
				p.vmm = KD_VMM_GCE;
			else
				return cli_usage_error("--vmm-type must be qemu, ec2 or gce");
			break;
		case O_OHASH:
			if (kd_unhex(optarg, ovmf_hash, sizeof(ovmf_hash)) < 0)
				return cli_usage_error("--snp-ovmf-hash must be 96 hex digits");
			p.ovmf_hash = ovmf_hash;
			break;
		case O_HONLY:
			hash_only = 1;
			break;
		case O_JSON:
			json = 1;
			break;
		default:
			return cli_usage_error("unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!p.ovmf_path)
		return cli_usage_error("--ovmf is required");
	if (hash_only) {
		if (p.kernel_path || p.initrd_path || p.append || have_vcpus || vtype || vsig ||
		    p.ovmf_hash)
			return cli_usage_error("--ovmf-hash-only takes only --ovmf and --json");
		err = kd_measure_ovmf_hash(p.ovmf_path, ld);
		if (err < 0)
			return cli_refuse(err);
		return print_digest(ld, json, &p, 1);
	}
	if (!have_vcpus)
		return cli_usage_error("--vcpus is required");
	if (!!vtype == !!vsig)
		return cli_usage_error("give exactly one of --vcpu-type and --vcpu-sig");
	if (vtype && kd_vcpu_sig_from_name(vtype, &p.vcpu_sig) < 0)
		return cli_usage_error("unknown --vcpu-type '%s'", vtype);
	if (vsig) {
		if (parse_hex_u64(vsig, &v) < 0 || v > UINT32_MAX)
			return cli_usage_error("--vcpu-sig must be a 32-bit hex value");
		p.vcpu_sig = (uint32_t)v;
	}
	if ((p.initrd_path || p.append) && !p.kernel_path)
		return cli_usage_error("--initrd and --append need --kernel");

	err = kd_measure(&p, ld);
	if (err < 0)
		return cli_refuse(err);
	return print_digest(ld, json, &p, 0);
}

const struct kd_cmd cmd_measure = {
	"measure", run_measure, "compute the SEV-SNP launch digest of a GuestOS image",
	measure_usage,
};
