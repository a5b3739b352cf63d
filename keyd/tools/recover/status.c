/* SPDX-License-Identifier: Apache-2.0 */
/* keyd-recover status, list and dump: read-only views of a volume. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keyd/error.h"
#include "keyd/header.h"
#include "recover.h"

/* The status command keyd has too (volume-cli.h). */
const struct kd_cmd cmd_status = {
	"status", cli_status_run, "everything about a volume, and what to do next",
	"Usage: keyd-recover status DEVICE [--json] [BACKEND OPTIONS]\n" CLI_STATUS_HELP,
};

/* ---------------------------------------------------------------- list */

static const char list_usage[] =
	"Usage: keyd-recover list DEVICE [BACKEND OPTIONS]\n"
	"\n"
	"At a glance, one line per keyslot: what it is (keyd, escrow, foreign,\n"
	"untokened), its state and label, the chip it is sealed to (a short\n"
	"fingerprint of the chip-ID digest, and whether it is this chip), the\n"
	"version (SVN) and measurement; for the escrow its threshold and\n"
	"commitment. Reads only.\n" BACKEND_OPTS_HELP
	"\nExit status: 0 shown, 1 not a readable LUKS2 volume, 2 usage.\n";

static int run_list(int argc, char **argv)
{
	struct kd_backend_opts bopts = {0};
	json_object *o = NULL;
	int r;

	if ((r = backend_opts_parse(argc, argv, NULL, NULL, &bopts)))
		return r;
	if (argc - optind != 1)
		return cli_usage_error("usage: keyd-recover list DEVICE");
	if ((r = kd_recover_status_device(argv[optind], &bopts, &o)))
		return cli_refuse(r);
	kd_recover_list_print(o, stdout);
	json_object_put(o);
	return 0;
}

const struct kd_cmd cmd_list = {"list", run_list, "one line per keyslot: kind, chip, version",
				list_usage};

/* ---------------------------------------------------------------- dump */

static const char dump_usage[] =
	"Usage: keyd-recover dump DEVICE\n"
	"\n"
	"Print the raw LUKS2 JSON metadata (keyslots, tokens, segments, digests,\n"
	"config) of the header copy libcryptsetup would use, as keyd's own\n"
	"read-only parser found it (like cryptsetup luksDump\n"
	"--dump-json-metadata, without libcryptsetup touching the header). Holds\n"
	"no secret: the token contents are public metadata. Reads only.\n"
	"\nExit status: 0 printed, 1 no readable LUKS2 header, 2 usage.\n";

static int run_dump(int argc, char **argv)
{
	struct kd_header_health h;
	json_object *meta = NULL;
	char *path = NULL;
	int fd, r;

	if (argc != 2)
		return cli_usage_error("usage: keyd-recover dump DEVICE");
	if ((r = kd_device_resolve(argv[1], &path)))
		return cli_refuse(r);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = kd_fail(KD_EIO, "cannot open %.200s: %s", path, strerror(errno));
		free(path);
		return cli_refuse(r);
	}
	free(path);
	r = kd_header_read(fd, &h, &meta);
	close(fd);
	if (r)
		return cli_refuse(r);
	if (!meta)
		return cli_refuse(kd_fail(KD_EMALFORMED, "no readable LUKS2 metadata"));
	printf("%s\n", json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(meta);
	return 0;
}

const struct kd_cmd cmd_dump = {"dump", run_dump, "print the raw LUKS2 JSON metadata", dump_usage};
