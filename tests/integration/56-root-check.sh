#!/bin/bash
# The root the boot switches into must be covered by the measurement:
# keyd root cmdline turns veritysetup's output into the measured command
# line; keyd root check and --root-check on unlock, passphrase and enroll
# refuse a command line without roothash= (or keyd.root=initramfs) before
# any key is derived. The positive case with a live dm-verity root needs
# device-mapper: VM scenario 11-verity-root.sh.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] || exit 77
command -v veritysetup >/dev/null || { echo "no veritysetup"; exit 77; }
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_refusal PATTERN CMD...: exit 1, one stderr line matching PATTERN, no stdout
expect_refusal() {
	local pat=$1 rc=0
	shift
	"$@" >out 2>err || rc=$?
	[ "$rc" -eq 1 ] || fail "$* -> rc $rc, want 1: $(cat err)"
	grep -e "$pat" err >/dev/null || fail "$* -> stderr lacks '$pat': $(cat err)"
	[ "$(wc -l <err)" -eq 1 ] || fail "$* -> stderr is not one line: $(cat err)"
	[ ! -s out ] || fail "$* -> printed on stdout while refusing"
}

# ---- keyd root cmdline from real veritysetup output
truncate -s 4M root.img
truncate -s 1M root.hash
veritysetup format root.img root.hash >vf.txt
want=$(sed -n 's/^Root hash:[[:space:]]*//p' vf.txt)
[ ${#want} -eq 64 ] || fail "veritysetup printed no root hash"
"$B/keyd" root cmdline --verity-output vf.txt --append "console=ttyS0 quiet" \
	--data /dev/vdb --hash /dev/vdc >cl
[ "$(cat cl)" = "console=ttyS0 quiet roothash=$want systemd.verity_root_data=/dev/vdb systemd.verity_root_hash=/dev/vdc" ] ||
	fail "root cmdline printed: $(cat cl)"
"$B/keyd" root cmdline --roothash "$want" >cl2
[ "$(cat cl2)" = "roothash=$want" ] || fail "root cmdline --roothash: $(cat cl2)"
printf 'no hash here\n' >bad.txt
expect_refusal 'no "Root hash:" line' "$B/keyd" root cmdline --verity-output bad.txt
expect_refusal 'not a 32..128-digit hex' "$B/keyd" root cmdline --roothash abc
set +e
"$B/keyd" root cmdline --roothash "$want" --append "roothash=$want" >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "--append with its own roothash= -> rc $rc, want 2"

# ---- keyd root check against command-line files
echo "console=ttyS0 keyd.root=initramfs" >c.initramfs
"$B/keyd" root check --cmdline c.initramfs >out || fail "keyd.root=initramfs refused"
grep -e "runs entirely from its measured initramfs" out >/dev/null || fail "root check said: $(cat out)"
echo "console=ttyS0 quiet" >c.none
expect_refusal "no roothash=" "$B/keyd" root check --cmdline c.none
echo "roothash=$want keyd.root=initramfs" >c.both
expect_refusal "one or the other" "$B/keyd" root check --cmdline c.both
# A root hash on the command line but no verity mapping to match it (this
# host has no device-mapper; a guest without the mapping is refused the same).
echo "roothash=$want" >c.hash
expect_refusal "root: " "$B/keyd" root check --cmdline c.hash

# ---- --root-check on the commands that release a state key: this host's
# /proc/cmdline has no roothash=, so each is refused before any derivation.
if grep -E '(^| )(roothash|keyd\.roothash)=|keyd\.root=initramfs' /proc/cmdline >/dev/null; then
	echo "this host's own command line carries a root policy"
	exit 77
fi
M1=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init >/dev/null
"$B/keyd-simfw" --state chip serve --listen "unix:$T/s.sock" --measurement "$M1" 2>"$T/sim.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$T/s.sock" ] && break; sleep 0.1; done
export KEYD_SIM="unix:$T/s.sock"
truncate -s 32M img
"$B/keyd" enroll img --format >/dev/null || fail "enroll without --root-check"
sum=$(sha256sum img)
n_before=$(wc -l <"$T/sim.log")
expect_refusal "no roothash=" "$B/keyd" unlock img --dry-run --root-check
expect_refusal "no roothash=" "$B/keyd" passphrase img --root-check
truncate -s 32M blank.img
expect_refusal "no roothash=" "$B/keyd" enroll blank.img --format --root-check
[ "$(sha256sum img)" = "$sum" ] || fail "a refused --root-check changed the volume"
[ "$(wc -l <"$T/sim.log")" -eq "$n_before" ] || fail "a refused --root-check still asked the AMD-SP"
cmp -s blank.img <(head -c 33554432 /dev/zero) || fail "a refused enroll --root-check wrote"
"$B/keyd" unlock img --dry-run >/dev/null || fail "unlock without --root-check"
echo ok
