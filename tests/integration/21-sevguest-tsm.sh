#!/bin/bash
# The test guest's configfs-tsm tree (keyd-sevguest-tsm) as a real FUSE mount
# on the host: the file semantics of configfs-tsm (mkdir, write-only and
# read-only attributes, the 64-byte inblob, privlevel against its floor,
# generation, outblob before inblob, rmdir), and keyd's production tsm
# backend, unchanged, against it at /sys/kernel/config/tsm inside a private
# mount namespace: a provider other than sev_guest and a privlevel_floor
# above keyd's VMPL each give keyd's one-line refusal, before anything is
# written. There is no /dev/sev-guest on the host, so the report itself
# fails here as the device's absence (ENODEV); the report path end to end
# is test_tsmtree (in process) and VM scenario 18 (in the guest).
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud

B=${KEYD_BUILD:?}
TSMFS=$B/keyd-sevguest-tsm
KEYD=$B/keyd
[ -x "$TSMFS" ] && [ -x "$KEYD" ] || { echo "SKIP: binaries not built"; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: FUSE mounts here need root"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }

T=$(mktemp -d)
PID=
cleanup() {
	if [ -n "$PID" ]; then
		umount "$T/mnt" 2>/dev/null || true
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$T/mnt"
"$TSMFS" "$T/mnt" --sev-guest "$T/no-such-device" 2>"$T/fs.log" &
PID=$!
for _ in $(seq 100); do
	[ -d "$T/mnt/report" ] && break
	sleep 0.05
done
[ -d "$T/mnt/report" ] || { cat "$T/fs.log" >&2; echo "SKIP: cannot mount FUSE here"; exit 77; }

# expect_err ERRNO-TEXT COMMAND...: the command fails and says why.
expect_err() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded; wanted '$want'"
	fi
	kd_has -F "$want" <<<"$out" || fail "'$*' said '$out'; wanted '$want'"
}
rd() { cat "$E/$1"; }

R=$T/mnt/report
E=$R/e1
mkdir "$E"
expect_err "File exists" mkdir "$E"
[ "$(ls "$E" | tr '\n' ' ')" = "auxblob generation inblob outblob privlevel privlevel_floor provider " ] ||
	fail "attributes: $(ls "$E")"
[ "$(rd provider)" = sev_guest ] || fail "provider"
[ "$(rd privlevel_floor)" = 0 ] || fail "privlevel_floor"
[ "$(rd generation)" = 0 ] || fail "generation before any write"
# Reading a report before inblob was written.
expect_err "Invalid argument" cat "$E/outblob"
expect_err "Invalid argument" cat "$E/auxblob"
# Write-only and read-only, for root as well.
expect_err "Permission denied" cat "$E/inblob"
expect_err "Permission denied" cat "$E/privlevel"
expect_err "Permission denied" bash -c "echo 1 >'$E/generation'"
expect_err "Permission denied" bash -c "echo 1 >'$E/outblob'"
expect_err "Permission denied" touch "$E/newfile"
# inblob: at most 64 bytes; privlevel: floor..3.
expect_err "File too large" bash -c "head -c 65 /dev/zero >'$E/inblob'"
expect_err "Invalid argument" bash -c "echo 4 >'$E/privlevel'"
expect_err "Invalid argument" bash -c "echo x >'$E/privlevel'"
[ "$(rd generation)" = 0 ] || fail "refused writes moved the generation"
head -c 64 /dev/urandom >"$E/inblob"
[ "$(rd generation)" = 1 ] || fail "generation after inblob: $(rd generation)"
echo 0x2 >"$E/privlevel"
[ "$(rd generation)" = 2 ] || fail "generation after privlevel: $(rd generation)"
# The report goes to the guest device, which is absent here.
expect_err "No such device" cat "$E/outblob"
rmdir "$E"
[ -z "$(ls "$R")" ] || fail "rmdir left $(ls "$R")"
umount "$T/mnt"
wait "$PID" || fail "keyd-sevguest-tsm exited $? after umount"
PID=

# keyd, unchanged, against the tree where the kernel puts it, in a mount
# namespace of its own (/sys/kernel is a tmpfs there; the host's is untouched).
cat >"$T/inner.sh" <<'INNER'
set -eu
mount -t tmpfs keyd-test /sys/kernel
mkdir -p /sys/kernel/config/tsm
"$TSMFS" /sys/kernel/config/tsm --sev-guest /nonexistent "$@" 2>/dev/null &
pid=$!
i=0
while [ ! -d /sys/kernel/config/tsm/report ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
rc=0
"$KEYD" selftest --backend tsm || rc=$?
echo "selftest-exit=$rc"
echo "left=$(ls /sys/kernel/config/tsm/report | tr '\n' ' ')"
umount /sys/kernel/config/tsm
wait "$pid" || true
INNER
keyd_in_ns() { # tree options...
	TSMFS=$TSMFS KEYD=$KEYD unshare -m --propagation private sh "$T/inner.sh" "$@" 2>&1
}

out=$(keyd_in_ns --provider tdx_guest)
kd_has -F "configfs-tsm provider is 'tdx_guest', not sev_guest" <<<"$out" ||
	fail "keyd did not refuse a tdx_guest provider: $out"
kd_has -F "selftest-exit=1" <<<"$out" || fail "selftest exit: $out"
kd_has -x "left=" <<<"$out" || fail "keyd left its report directory: $out"

out=$(keyd_in_ns --privlevel-floor 2)
kd_has -F "report for VMPL 0 refused: this guest runs at VMPL 2 (configfs-tsm privlevel_floor 2)" <<<"$out" ||
	fail "keyd did not refuse a floor above its VMPL: $out"
kd_has -x "left=" <<<"$out" || fail "keyd left its report directory: $out"

# sev_guest at floor 0: keyd gets as far as the report, which needs the device.
out=$(keyd_in_ns)
kd_has "report.*FAILED.*outblob.*No such device" <<<"$out" ||
	fail "keyd did not reach the report request: $out"
kd_has -x "left=" <<<"$out" || fail "keyd left its report directory: $out"

echo "configfs-tsm tree: file semantics ok; keyd's tsm backend refuses tdx_guest and a floor above its VMPL"
