# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Shared by keyd's shell tests, the demo and the benchmarks. Source it.
#
# Two rules every script here follows:
#
# 1. No reader that stops early on the right of a pipe (`| head`, `| grep -q`,
#    `| grep -m`, `awk '{...; exit}'`). Under `set -o pipefail` the writer on
#    the left then dies of SIGPIPE whenever it still had output, and the
#    pipeline fails at random, depending on scheduling. kd_has and kd_first
#    read all of their input.
# 2. No silent `set -e` exit. kd_loud installs an ERR trap that names the
#    script, the line, the failing command and its exit status (and the step,
#    when the script sets KD_STEP) before the shell exits.

# kd_has PATTERN: true if a line of stdin matches the grep BRE PATTERN. Reads
# all of stdin first. Extra grep options may precede PATTERN (kd_has -F x).
kd_has() {
	local in
	in=$(cat)
	grep -q "$@" <<<"$in"
}

# kd_first [N]: the first N (default 1) lines of stdin, reading all of it.
kd_first() {
	local in
	in=$(cat)
	sed -n "1,${1:-1}p" <<<"$in"
}

kd__err() { # STATUS LINE FILE COMMAND
	# Only where `set -e` is about to exit: a `set +e` section probes on purpose.
	[[ $- == *e* ]] || return 0
	printf '%s: %sline %s of %s: `%s` failed (exit %s)\n' "$(basename "$0")" \
		"${KD_STEP:+step \"$KD_STEP\": }" "$2" "$3" "$4" "$1" >&2
}

# kd_loud: from here on, a command that makes `set -e` exit says so first.
kd_loud() {
	set -o errtrace
	trap 'kd__err "$?" "$LINENO" "${BASH_SOURCE[0]:-$0}" "$BASH_COMMAND"' ERR
}
