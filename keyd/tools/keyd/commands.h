/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands of keyd; each lives in its own cmd-*.c file. */
#ifndef KEYD_COMMANDS_H
#define KEYD_COMMANDS_H

#include "cli.h"
#include "keyd/pending.h"

/*
 * What judges a pending handoff slot's evidence (keyd unlock, keyd
 * passphrase, keyd commit): the release keys and the floors the image pins
 * (pending.h), each overridable here. Handle with pending_opts_handle:
 * 1 ours, 0 not ours, -1 usage error printed.
 */
enum { PENDING_OPT_KEYS = 0x1300, PENDING_OPT_FLOOR, PENDING_OPT_NOFLOOR, PENDING_OPT_TCB };

#define PENDING_LONGOPTS                                                       \
	{"release-keys", required_argument, NULL, PENDING_OPT_KEYS},           \
	{"peer-svn-floor", required_argument, NULL, PENDING_OPT_FLOOR},        \
	{"no-peer-svn-floor", no_argument, NULL, PENDING_OPT_NOFLOOR},         \
	{"tcb-floor", required_argument, NULL, PENDING_OPT_TCB}

#define PENDING_OPTS_HELP                                                                    \
	"A pending handoff slot opens only after the old version's evidence is judged\n"      \
	"with what this image pins (defaults in /etc/keyd):\n"                                 \
	"  --release-keys FILE    release keys (default " KD_RELEASE_KEYS_DEFAULT ")\n"        \
	"  --peer-svn-floor SVN   revocation floor: refuse a slot made by a release with\n"   \
	"                         a lower svn (default " KD_PEER_SVN_FLOOR_FILE ";\n"          \
	"                         with none, pending slots are refused)\n"                    \
	"  --no-peer-svn-floor    opt out of the revocation floor (default: whether\n"        \
	"                         " KD_NO_PEER_SVN_FLOOR_FILE " exists)\n"                     \
	"  --tcb-floor HEX        refuse a slot whose maker's reported TCB is lower\n"        \
	"                         (default " KD_TCB_FLOOR_FILE " if present)\n"

struct pending_opts {
	struct kd_pending_policy pol;
	struct kd_release_keys *keys; /* loaded from --release-keys, owned */
	const char *keys_path;
};
int pending_opts_handle(int opt, const char *arg, struct pending_opts *o);
/* Load --release-keys if given: 0 or a KD_E* refusal. */
int pending_opts_finish(struct pending_opts *o);
void pending_opts_free(struct pending_opts *o);

/* Each cmd-*.c defines one or more `const struct kd_cmd cmd_xxx`. */
extern const struct kd_cmd cmd_version;
extern const struct kd_cmd cmd_measure;
extern const struct kd_cmd cmd_derive;
extern const struct kd_cmd cmd_enroll, cmd_unlock, cmd_status, cmd_rekey, cmd_passphrase;
extern const struct kd_cmd cmd_rotate;
extern const struct kd_cmd cmd_verify_report;
extern const struct kd_cmd cmd_root_check, cmd_root_cmdline;
extern const struct kd_cmd cmd_kds_fetch;
extern const struct kd_cmd cmd_selftest;
extern const struct kd_cmd cmd_report_show;
extern const struct kd_cmd cmd_manifest_keygen, cmd_manifest_keys, cmd_manifest_create,
	cmd_manifest_sign, cmd_manifest_verify, cmd_manifest_show, cmd_handoff_serve,
	cmd_handoff_receive, cmd_commit;

#endif
