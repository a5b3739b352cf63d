#!/bin/bash
# Sealed volumes on LUKS2 image files: enroll, dry-run unlock, and the
# launches that must not open it (other measurement, debug policy, other
# chip, lower TCB), each with its exit code, its message and no write.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] || exit 77
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M1=$(printf 'a1f3%.0s' $(seq 24)); M2=$(printf '9b2c%.0s' $(seq 24))
# serve NAME STATE MEASUREMENT [serve options]
serve() {
	local n=$1 st=$2 m=$3; shift 3
	"$B/keyd-simfw" --state "$st" serve --listen "unix:$T/$n.sock" --measurement "$m" "$@" 2>"$T/$n.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -S "$T/$n.sock" ] && return 0; sleep 0.1; done
	fail "simulator $n did not start"
}
"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null
"$B/keyd-simfw" --state chip2 init --tcb 0300000000000873 >/dev/null
serve good chip "$M1"
serve other chip "$M2"
serve debug chip "$M1" --policy 0xB0000
serve chip2 chip2 "$M1"
K() { local s=$1; shift; KEYD_SIM="unix:$T/$s.sock" "$B/keyd" "$@"; }

# A fresh file with a filesystem signature is refused without --force.
truncate -s 32M fs.img && mkfs.ext4 -q fs.img
set +e; K good enroll fs.img --format >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "ext4 signature" err || fail "enroll over ext4: rc $rc $(cat err)"

truncate -s 32M img
K good enroll img --format --label guestos-1.4 >out || fail "enroll"
grep -q "enrolled LUKS2 volume" out || fail "enroll output"
cryptsetup luksDump img | kd_has "Iterations: 1000" || fail "keyslot PBKDF"
cryptsetup luksDump img | kd_has "sector: 4096" || fail "sector size"
K good unlock img --dry-run >out || fail "dry-run unlock"
grep -q "pin verified" out || fail "dry-run output"
K good unlock img --dry-run --json | kd_has '"pin":"verified"' || fail "json"
K good unlock img --dry-run --state-file st >/dev/null || fail "dry-run with --state-file"
[ "$(cat st)" = active ] || fail "--state-file holds '$(cat st)', not active"
rm -f st
if K good unlock img --dry-run --state-file nodir/st >/dev/null 2>err; then fail "unwritable --state-file accepted"; fi
grep "state file" err >/dev/null || fail "unwritable --state-file: $(cat err)"

# A completed keyd volume is never reformatted without --force.
set +e; K good enroll img --format >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "may hold data" err || fail "re-enroll: rc $rc"

sum=$(sha256sum <img)
refuse() { # SIM PATTERN
	local s=$1 pat=$2 rc
	set +e; K "$s" unlock img --dry-run >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "$s: unlock exit $rc, want 1"
	grep -q -- "$pat" err || fail "$s: message '$(cat err)' lacks '$pat'"
	[ "$(sha256sum <img)" = "$sum" ] || fail "$s: image changed by a refused unlock"
}
refuse other "sealed to measurement a1f3a1f3a1f3.* (label guestos-1.4), this launch is 9b2c9b2c9b2c.*; no handoff enrolled it"
refuse debug "debug policy"
refuse chip2 "another chip"
# status explains the same in words, and writes nothing.
K other status img | kd_has "cannot-unlock: sealed to measurement" || fail "status other"
K good status img --json | kd_has '"verdict":"can-unlock"' || fail "status good"
KEYD_SIM=unix:$T/none.sock "$B/keyd" status img | kd_has "this launch: unknown" || fail "status w/o backend"

# Firmware rolled back below the sealed TCB.
"$B/keyd-simfw" --state chip tcb --current 0300000000000773 --committed 0300000000000773 >/dev/null
refuse good "firmware TCB rolled back below the sealed TCB; no key can be derived"
"$B/keyd-simfw" --state chip tcb --current 0300000000000873 --committed 0300000000000873 >/dev/null
K good unlock img --dry-run >/dev/null || fail "unlock after restoring the TCB"
[ "$(sha256sum <img)" = "$sum" ] || fail "dry-run unlock wrote"

# Discovery: a bogus UUID= is not found.
set +e; K good unlock UUID=00000000-0000-0000-0000-000000000000 --dry-run 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "no device with UUID=" err || fail "UUID= lookup: rc $rc"
echo ok
