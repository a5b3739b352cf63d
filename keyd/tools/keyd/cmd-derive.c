/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd derive: a 32-byte purpose key = HKDF-SHA384(derived key, salt = "",
 * info = purpose) for a binding given on the command line (docs/architecture.md#commands).
 * An admin and test tool: the boot path never writes keys to files.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "commands.h"
#include "keyd/backend.h"
#include "keyd/error.h"
#include "keyd/keyreq.h"
#include "keyd/report.h"
#include "keyd/secret.h"
#include "keyd/util.h"

#define PURPOSE_KEY_LEN 32

/*
 * The committed TCB, from a fresh report: the highest TCB the firmware lets
 * a key be bound to, and the one that stays valid until the next commit.
 */
static int committed_tcb(struct kd_backend *b, uint32_t vmpl, uint64_t *ret)
{
	uint8_t zero[64] = {0}, *rep = NULL;
	struct kd_report r;
	size_t len;
	int err;

	err = kd_backend_report(b, zero, vmpl, &rep, &len, NULL, NULL);
	if (err < 0)
		return err;
	err = kd_report_parse(rep, len, &r);
	free(rep);
	if (err < 0)
		return err;
	*ret = r.committed_tcb;
	return 0;
}

static int run_derive(int argc, char **argv)
{
	static const struct option opts[] = {
		{"purpose", required_argument, NULL, 'p'},
		{"fields", required_argument, NULL, 'f'},
		{"tcb", required_argument, NULL, 't'},
		{"guest-svn", required_argument, NULL, 's'},
		{"vmpl", required_argument, NULL, 'v'},
		{"root", required_argument, NULL, 'r'},
		{"output", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},
		BACKEND_LONGOPTS,
		{0},
	};
	struct kd_backend_opts bopts = {0};
	struct kd_key_req req = {.root_key_select = KD_KEY_SEL_VCEK << KD_KEY_SEL_SHIFT,
				 .guest_field_select = KD_FIELDS_SEAL};
	_kd_secret_ struct kd_secret *derived = NULL, *purpose_key = NULL;
	struct kd_backend *b = NULL;
	const char *purpose = NULL, *out = NULL;
	bool have_tcb = false, have_vmpl = false, json = false;
	char fields[128], tcb[KD_TCB_HEX_LEN];
	uint64_t v;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			purpose = optarg;
			break;
		case 'f':
			if ((r = kd_fields_parse(optarg, &req.guest_field_select)) < 0)
				return cli_usage_error("--fields: %s", kd_err_detail(r));
			break;
		case 't':
			if (kd_tcb_parse_hex(optarg, &req.tcb_version) < 0)
				return cli_usage_error("--tcb must be 16 hex digits (TCB bytes in report order)");
			have_tcb = true;
			break;
		case 's':
			if (kd_parse_u64(optarg, UINT32_MAX, &v) < 0)
				return cli_usage_error("--guest-svn must be a 32-bit number");
			req.guest_svn = (uint32_t)v;
			break;
		case 'v':
			if (kd_parse_u64(optarg, UINT32_MAX, &v) < 0)
				return cli_usage_error("--vmpl must be a number");
			req.vmpl = (uint32_t)v;
			have_vmpl = true;
			break;
		case 'r':
			if (kd_root_parse(optarg, &req.root_key_select) < 0)
				return cli_usage_error("--root must be vcek, vlek or vmrk");
			break;
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			r = backend_opts_handle(c, optarg, &bopts);
			if (r <= 0)
				return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!purpose || !*purpose)
		return cli_usage_error("--purpose STR is required");
	if (!out)
		return cli_usage_error("-o FILE is required");

	if ((r = kd_backend_open(&bopts, &b)) < 0)
		return cli_refuse(r);
	if (!(b->caps & KD_CAP_DERIVE)) {
		r = kd_fail(KD_ENOTSUP, "backend %s has no derived keys", b->ops->name);
		goto out;
	}
	/* Under an SVSM or paravisor the guest's own VMPL is the lowest it may ask for. */
	if (!have_vmpl)
		req.vmpl = b->vmpl;
	if (!have_tcb && (r = committed_tcb(b, req.vmpl, &req.tcb_version)) < 0)
		goto out;
	if ((r = kd_backend_derive(b, &req, &derived)) < 0)
		goto out;
	if ((r = kd_hkdf(derived, "", 0, purpose, PURPOSE_KEY_LEN, &purpose_key)) < 0)
		goto out;
	if ((r = kd_write_file(out, purpose_key->data, purpose_key->len, 0600)) < 0)
		goto out;
	kd_fields_format(req.guest_field_select, fields, sizeof(fields));
	kd_tcb_hex(req.tcb_version, tcb);
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "backend", json_object_new_string(b->ops->name));
		json_object_object_add(o, "purpose", json_object_new_string(purpose));
		json_object_object_add(o, "root", json_object_new_string(kd_root_name(req.root_key_select)));
		json_object_object_add(o, "root_key_select", json_object_new_int64(req.root_key_select));
		json_object_object_add(o, "fields", json_object_new_string(fields));
		json_object_object_add(o, "tcb", json_object_new_string(tcb));
		json_object_object_add(o, "guest_svn", json_object_new_int64(req.guest_svn));
		json_object_object_add(o, "vmpl", json_object_new_int64(req.vmpl));
		json_object_object_add(o, "output", json_object_new_string(out));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		fprintf(stderr, "keyd: wrote the '%s' key to %s (backend %s, fields %s, tcb %s)\n",
			purpose, out, b->ops->name, fields, tcb);
	}
out:
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}

const struct kd_cmd cmd_derive = {
	"derive",
	run_derive,
	"write a purpose key derived from the AMD-SP (admin/test tool)",
	"Usage: keyd derive --purpose STR [--fields LIST] [--tcb HEX] [--guest-svn N]\n"
	"                   [--vmpl N] [--root vcek|vlek|vmrk] [--backend snp|tsm|sim]\n"
	"                   [--sim unix:PATH|serial:PATH] [--json] -o FILE\n"
	"\n"
	"Ask the AMD-SP for a derived key (MSG_KEY_REQ) and write the 32-byte purpose\n"
	"key HKDF-SHA384(derived key, salt = \"\", info = STR) to FILE, mode 0600.\n"
	"\n"
	"  --fields LIST   comma list of policy, image-id, family-id, measurement,\n"
	"                  guest-svn, tcb; default measurement,policy,tcb (docs/formats.md §2)\n"
	"  --tcb HEX       TCB_VERSION to bind to: 16 hex digits, the 8 bytes in report\n"
	"                  order; default: the committed TCB of a fresh report\n"
	"  --guest-svn N   must not exceed the launch SVN (firmware status 0x16)\n"
	"  --vmpl N        must not be below the VMPL the guest runs at (default: that VMPL)\n"
	"  --root R        vcek (default; KEY_SEL 1, as tokens use), vlek (KEY_SEL 2),\n"
	"                  or vmrk (this launch only)\n"
	BACKEND_OPTS_HELP
	"\n"
	"This is an admin and test tool; the boot path never writes keys to files.\n"
	"Exit status: 0 written, 1 refused (the line says which check failed), 2 usage.\n",
};
