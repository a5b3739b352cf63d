#!/bin/bash
# keyd-recover retire, wipe, header-backup/restore and rekey: every
# destructive step refuses what would make the volume unopenable or belongs
# to another volume, names what it destroys, and the refusals write nothing.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M=$(printf 'beef%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null
"$B/keyd-simfw" --state chip serve --listen "unix:$T/a.sock" --measurement "$M" 2>a.log &
pids+=($!)
for _ in $(seq 50); do [ -S a.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/a.sock
R() { "$B/keyd-recover" "$@"; }
expect() { # RC PATTERN CMD...
	local want=$1 pat=$2 rc; shift 2
	set +e; "$@" >out 2>err; rc=$?; set -e
	[ $rc -eq "$want" ] || fail "'$*': exit $rc, want $want ($(cat err))"
	grep -q -- "$pat" out err || fail "'$*': output lacks '$pat': $(cat out err)"
}
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout adm.key -out adm.crt \
	-subj /CN=adm -days 2 2>/dev/null

truncate -s 24M img other
"$B/keyd" enroll img --format --label v1 >/dev/null
"$B/keyd" enroll other --format --label other >/dev/null
UUID=$(cryptsetup luksUUID img)

# --help everywhere, usage errors exit 2.
for c in status "escrow add" export-shares decrypt-share unlock rekey retire header-backup \
	header-restore wipe; do
	read -ra words <<<"$c"
	R "${words[@]}" --help | kd_has "^Usage: keyd-recover $c" || fail "$c --help"
done
expect 2 "usage" R retire img
expect 2 "usage" R retire img 40

# retire: the only keyd slot, no escrow -> refused, nothing written.
sum=$(sha256sum <img)
expect 1 "last slot that opens this volume" R retire img 0
[ "$(sha256sum <img)" = "$sum" ] || fail "refused retire wrote"
# With an escrow added later, retiring the keyd slot is allowed (escrow remains) ...
R escrow add img --admin adm.crt --threshold 1 >out || fail "escrow add: $(cat out)"
grep -q "1-of-1 escrow on keyslot 1" out || fail "escrow add output"
expect 1 "already has a 1-of-1 escrow" R escrow add img --admin adm.crt --threshold 1
# ... but the escrow is never removed while it is the only way in.
cp img img2
R retire img2 0 >out || fail "retire keyd slot with escrow present"
grep -q "afterwards only the escrow opens the volume" out || fail "retire names the consequence"
expect 1 "only way into this volume" R retire img2 1
R status img2 --json | python3 -c "
import json,sys; s=json.load(sys.stdin)
assert s['tokens']==[] and s['escrow']['keyslot']==1 and s['verdict']['openable'] is True, s
" || fail "status after retire"
rm img2
# Backup, then a new slot: restoring the old backup would drop it -> refused.
R header-backup img hdr.bak >out || fail "header-backup"
grep -q "$UUID" out || fail "backup names the volume"
expect 1 "exists" R header-backup img hdr.bak
R retire img 1 >out || fail "retire the escrow slot while a keyd slot remains"
grep -q "all its shares become void" out || fail "retire escrow names it"
R escrow add img --admin adm.crt --threshold 1 >/dev/null
cryptsetup luksDump img >d1
expect 1 "would destroy keyslot" R header-restore img hdr.bak
cmp -s <(cryptsetup luksDump img) d1 || fail "refused restore wrote"
# Another volume's backup is refused, even with --force.
R header-backup other other.bak >/dev/null
expect 1 "refusing to restore another volume's header" R header-restore img other.bak
expect 1 "another volume" R header-restore img other.bak --force
# A backup that fails the allow-list (a cipher_null keyslot) is refused.
# (Same UUID as img, a keyslot outside keyd's profile: no token, Argon2id.)
truncate -s 24M evil.img
echo -n pw | cryptsetup luksFormat -q --type luks2 --uuid "$UUID" --key-size 512 --sector-size 4096 \
	--pbkdf argon2id --pbkdf-memory 32 --pbkdf-force-iterations 4 evil.img - || fail "evil format"
cryptsetup luksHeaderBackup evil.img --header-backup-file evil.bak
expect 1 "fails the allow-list" R header-restore img evil.bak
expect 1 "fails the allow-list" R header-restore img evil.bak --force
cmp -s <(cryptsetup luksDump img) d1 || fail "refused restore wrote"
# The volume's own backup restores (forced: the newer escrow slot is lost).
R header-restore img hdr.bak --force >/dev/null || fail "restore own backup"
"$B/keyd" unlock img --dry-run >/dev/null || fail "unlock after restore"
[ "$(cryptsetup luksUUID img)" = "$UUID" ] || fail "UUID after restore"

# rekey: nothing to do at the same TCB; after a firmware update it re-keys.
R rekey img | kd_has "already sealed" || fail "rekey no-op"
"$B/keyd-simfw" --state chip tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null
R rekey img | kd_has "re-keyed at the committed TCB" || fail "rekey"
"$B/keyd" unlock img --dry-run >/dev/null || fail "unlock after rekey"

# wipe: wrong confirmation refused, nothing destroyed; the UUID confirms.
sum=$(sha256sum <img)
expect 1 "nothing was destroyed" R wipe img <<<"not-the-uuid"
expect 1 "nothing was destroyed" R wipe img </dev/null
[ "$(sha256sum <img)" = "$sum" ] || fail "refused wipe wrote"
R wipe img <<<"$UUID" >out 2>err || fail "wipe: $(cat err)"
grep -q "destroys EVERY keyslot" err || fail "wipe names what it destroys"
grep -q "crypto-erased: 2 keyslots destroyed" out || fail "wipe output: $(cat out)"
[ "$(cryptsetup luksDump img | grep -c '^  [0-9]*: luks2')" -eq 0 ] || fail "keyslots left"
expect 1 "" "$B/keyd" unlock img --dry-run
R wipe other --yes >/dev/null || fail "wipe --yes"
echo ok
