/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include <json-c/json.h>

#include "backend-opts.h"
#include "keyd/pending.h"
#include "keyd/recover.h"
#include "volume-cli.h"

int cli_volume_main(const char *prog, const struct kd_cmd *cmds, int argc, char **argv)
{
	kd_volume_quiet_libcryptsetup();
	/* A pending handoff slot opens after its evidence is judged (pending.h). */
	kd_volume_default_pending_opener(kd_pending_opener, NULL);
	return cli_dispatch(prog, cmds, argc, argv);
}

int cli_launch_open(const struct kd_backend_opts *o, struct kd_backend **b, struct kd_launch *l)
{
	int r;

	if ((r = kd_backend_open(o, b)) < 0)
		return r;
	return kd_launch_get(*b, l);
}

int cli_status_run(int argc, char **argv)
{
	struct kd_backend_opts bopts = {0};
	json_object *o = NULL;
	bool json = false;
	int r;

	if ((r = backend_opts_parse(argc, argv, "json", &json, &bopts)))
		return r;
	if (argc - optind != 1)
		return cli_usage_error("usage: %s status DEVICE [--json]", cli_prog);
	if ((r = kd_recover_status_device(argv[optind], &bopts, &o)) < 0)
		return cli_refuse(r);
	if (json)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	else
		kd_recover_status_print(o, stdout);
	json_object_put(o);
	return 0;
}

int cli_rekey_run(int argc, char **argv)
{
	struct kd_backend_opts bopts = {0};
	struct kd_backend *b = NULL;
	struct kd_launch l;
	char tcb[KD_TCB_HEX_LEN];
	bool done = false;
	int r;

	if ((r = backend_opts_parse(argc, argv, NULL, NULL, &bopts)))
		return r;
	if (argc - optind != 1)
		return cli_usage_error("usage: %s rekey DEVICE", cli_prog);
	if ((r = cli_launch_open(&bopts, &b, &l)) < 0 ||
	    (r = kd_recover_rekey(argv[optind], b, &l, &done)) < 0)
		goto out;
	kd_tcb_hex(l.report.committed_tcb, tcb);
	printf("%s: %s (committed TCB %s)\n", argv[optind],
	       done ? "re-keyed at the committed TCB; old slot retired"
		    : "already sealed at the committed TCB",
	       tcb);
out:
	kd_backend_close(b);
	return r < 0 ? cli_refuse(r) : 0;
}
