/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyd-recover: the admin recovery tool (status, k-of-n escrow recovery,
 * re-key, retire, header backup/restore/repair, crypto-erase). Thin: each command
 * parses its options, calls libkeyd and prints one result.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "keyd/error.h"
#include "keyd/util.h"
#include "recover.h"

int collect_files(const char *opt, const char *first, int argc, char **argv, const char **out,
		  size_t *n)
{
	struct stat st;

	if (*n >= MAX_FILES)
		return cli_usage_error("at most %d files for --%s", MAX_FILES, opt);
	out[(*n)++] = first;
	while (optind < argc && argv[optind][0] != '-' && !stat(argv[optind], &st) &&
	       S_ISREG(st.st_mode)) {
		if (*n >= MAX_FILES)
			return cli_usage_error("at most %d files for --%s", MAX_FILES, opt);
		out[(*n)++] = argv[optind++];
	}
	return 0;
}

void free_shares(struct kd_secret *s[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		kd_secret_free(s[i]);
		s[i] = NULL;
	}
}

int read_shares(const char *const files[], size_t n, const char *key_path, const char *cert_path,
		struct kd_secret *out[])
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if ((r = kd_escrow_load_key(key_path, &key)) || (r = kd_escrow_load_cert(cert_path, &cert)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint8_t *der = NULL;
		size_t len = 0;

		if ((r = kd_read_file(files[i], KD_ESCROW_CMS_MAX, &der, &len)))
			goto out;
		r = kd_escrow_decrypt(der, len, key, cert, &out[i]);
		free(der);
		if (r) {
			char d[300];

			/* The detail lives in the buffer kd_fail writes: copy it first. */
			snprintf(d, sizeof(d), "%s", kd_err_detail(r));
			r = kd_fail(r, "%.200s: %s", files[i], d);
			free_shares(out, i);
			goto out;
		}
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

int get_launch(const struct kd_backend_opts *o, struct kd_backend **b, struct kd_launch *l)
{
	int r;

	if ((r = kd_backend_open(o, b)))
		return r;
	return kd_launch_get(*b, l);
}

int main(int argc, char **argv)
{
	const struct kd_cmd cmds[] = {
		cmd_status,	    cmd_escrow_add, cmd_export_shares, cmd_decrypt_share,
		cmd_unlock,	    cmd_rekey,	    cmd_retire,	       cmd_header_backup,
		cmd_header_restore, cmd_wipe,	    cmd_repair,	       {0},
	};

	return cli_dispatch("keyd-recover", cmds, argc, argv);
}
