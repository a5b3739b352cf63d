#!/bin/bash
# TCB roll-forward re-key, interrupted provisioning, and concurrent
# enroll/unlock on one header.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] || exit 77
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M1=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M1" 2>sim.log &
pid=$!
for _ in $(seq 50); do [ -S sim.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/sim.sock
K() { "$B/keyd" "$@"; }

truncate -s 32M img
K enroll img --format --label guestos-1.4 >/dev/null
# Firmware update: committed TCB goes up (snp 8 -> 9).
"$B/keyd-simfw" --state chip tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null
K status img | kd_has "the next unlock re-keys" || fail "status does not announce the re-key"
K rekey img >out || fail "rekey"
grep -q "re-keyed at the committed TCB" out || fail "rekey output: $(cat out)"
K status img --json >st
grep -q '"tcb":"0300000000000973"' st || fail "token not at the new TCB"
grep -q '"tcb":"0300000000000873"' st && fail "old slot not retired"
[ "$(cryptsetup luksDump img | grep -c ': luks2')" -eq 1 ] || fail "keyslot count after rekey"
K unlock img --dry-run >/dev/null || fail "does not open after rekey"
K rekey img | kd_has "already sealed" || fail "second rekey"
# Rolling the firmware back below the new seal: nothing derives.
"$B/keyd-simfw" --state chip tcb --current 0300000000000873 --committed 0300000000000873 >/dev/null
set +e; K unlock img --dry-run 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "rolled back below the sealed TCB" err || fail "rollback after rekey"
"$B/keyd-simfw" --state chip tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null

# Interrupted provisioning: a volume still labelled keyd-provisioning (as
# after a crash between format and token) is refused by unlock and redone
# by enroll without --force.
truncate -s 32M prov.img
head -c 64 /dev/urandom >vk
echo -n x | cryptsetup luksFormat -q --type luks2 --label keyd-provisioning --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --hash sha512 --sector-size 4096 prov.img -
cryptsetup luksKillSlot -q prov.img 0
set +e; K unlock prov.img --dry-run 2>err; rc=$?; set -e
[ $rc -eq 1 ] || fail "unlock of an unfinished volume: rc $rc"
K enroll prov.img --format --label g >out || fail "redo of unfinished provisioning"
grep -q "redoing an interrupted provisioning" out || fail "redo not reported: $(cat out)"
K unlock prov.img --dry-run >/dev/null || fail "redone volume does not open"

# Concurrent writers and readers on one header: libcryptsetup's locks plus
# keyd's shared lock while reading. The header must stay valid and open.
truncate -s 32M conc.img
K enroll conc.img --format --label c >/dev/null
for i in 1 2 3 4; do
	"$B/keyd-simfw" --state chip tcb --current "030000000000$(printf %02x $((9 + i)))73" \
		--committed "030000000000$(printf %02x $((9 + i)))73" >/dev/null
	(K rekey conc.img >/dev/null 2>&1 || true) &
	a=$!
	(for _ in 1 2 3; do K unlock conc.img --dry-run >/dev/null 2>&1 || true; done) &
	b=$!
	(K enroll conc.img --format >/dev/null 2>&1 || true) & # refused: completed volume
	c=$!
	wait $a $b $c
	cryptsetup luksDump conc.img >/dev/null || fail "header damaged after round $i"
	K unlock conc.img --dry-run >/dev/null || fail "does not open after round $i"
done
K status conc.img | kd_has "both header copies valid and identical" || fail "copies differ"
echo ok
