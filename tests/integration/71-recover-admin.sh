#!/bin/bash
# keyd-recover retire, wipe, header-backup/restore and rekey: every
# destructive step refuses what would make the volume unopenable or belongs
# to another volume, names what it destroys, and the refusals write nothing.
# The man page and --help agree; the raw and at-a-glance views; libcryptsetup's
# own log lines stay off the admin's terminal.
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
for c in status list dump "escrow add" export-shares decrypt-share unlock rekey retire header-backup \
	header-restore wipe finish-rotation; do
	read -ra words <<<"$c"
	R "${words[@]}" --help | kd_has "^Usage: keyd-recover $c" || fail "$c --help"
done
expect 2 "usage" R retire img
expect 2 "usage" R retire img 40

# The man page's SYNOPSIS and each command's --help Usage name the same
# options, and both state the same retire rule.
python3 - "$B/keyd-recover" "${KEYD_SRC:?}/man/keyd-recover.8" <<'PY' || fail "man page and --help disagree"
import os, re, subprocess, sys
tool, man = sys.argv[1], sys.argv[2]
env = dict(os.environ, MANWIDTH="2000")
page = subprocess.run(["man", "--nh", "--nj", "-l", man], env=env, capture_output=True,
                      text=True, check=True).stdout
norm = lambda t: " ".join(t.split())
syn = page.split("SYNOPSIS", 1)[1].split("DESCRIPTION", 1)[0]
cmds = ["status", "list", "dump", "escrow add", "export-shares", "decrypt-share", "unlock",
        "rekey", "retire", "header-backup", "header-restore", "wipe", "finish-rotation"]
opts = lambda t: set(re.findall(r"--[a-z][a-z-]*", t)) - {"--backend", "--sim", "--help"}
bad = []
for c in cmds:
    line = [l for l in syn.splitlines() if norm(l).startswith("keyd-recover %s " % c)]
    assert len(line) == 1, (c, line)
    helptext = subprocess.run([tool] + c.split() + ["--help"], capture_output=True, text=True).stdout
    usage = helptext.split("\n\n", 1)[0]
    if opts(line[0]) != opts(usage):
        bad.append((c, sorted(opts(line[0]) ^ opts(usage))))
    if c == "retire":
        rule = ("Slots sealed to another chip or another launch do not count, and a pending "
                "slot does not count")
        assert rule in norm(helptext), "retire --help lacks the rule"
        assert rule in norm(page), "man page lacks the retire rule"
assert not bad, bad
PY

# retire: the only keyd slot, no escrow -> refused, nothing written.
sum=$(sha256sum <img)
expect 1 "last slot that opens this volume" R retire img 0
[ "$(sha256sum <img)" = "$sum" ] || fail "refused retire wrote"
# With an escrow added later, retiring the keyd slot is allowed (escrow remains) ...
R escrow add img --admin adm.crt --threshold 1 >out || fail "escrow add: $(cat out)"
grep -q "1-of-1 escrow on keyslot 1" out || fail "escrow add output"
# The commitment is printed at provisioning, and is the escrow's.
C=$(sed -n 's/^  commitment \([0-9a-f]\{96\}\)$/\1/p' out)
[ "$(R status img --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["escrow"]["commitment"])')" = "$C" ] \
	|| fail "escrow add does not print the escrow's commitment: $(cat out)"
cp img img3
R escrow add img3 --admin adm.crt --threshold 1 --rotate --json >out || fail "escrow add --json"
python3 -c 'import json,sys; d=json.load(open("out")); assert len(d["commitment"])==96 and d["threshold"]==1' \
	|| fail "escrow add --json: $(cat out)"
rm img3
# Raw view: the JSON metadata as cryptsetup itself shows it; at-a-glance list.
R dump img >dump.json || fail "dump"
cryptsetup luksDump --dump-json-metadata img >cs.json
python3 -c 'import json; assert json.load(open("dump.json")) == json.load(open("cs.json"))' \
	|| fail "dump differs from cryptsetup luksDump --dump-json-metadata"
R list img >out || fail "list"
grep -q '^0: keyd active "v1" svn 0 chip [0-9a-f]\{8\} (this chip)' out || fail "list keyd line: $(cat out)"
grep -q "^1: escrow 1-of-1 commitment ${C:0:16}" out || fail "list escrow line: $(cat out)"
expect 1 "already has a 1-of-1 escrow" R escrow add img --admin adm.crt --threshold 1
# ... but the escrow is never removed while it is the only way in.
cp img img2
R retire img2 0 >out 2>err || fail "retire keyd slot with escrow present: $(cat err)"
grep -q "afterwards only the escrow (keyslot 1) opens the volume" out || fail "retire names the consequence"
expect 1 "only way into this volume" R retire img2 1
R status img2 --json | python3 -c "
import json,sys; s=json.load(sys.stdin)
assert s['tokens']==[] and s['escrow']['keyslot']==1 and s['verdict']['openable'] is True, s
assert s['launch']['reason']=='no-keyd-slot', s['launch']
" || fail "status after retire"
rm img2
# Backup, then a new slot: restoring the old backup would drop it -> refused.
R header-backup img hdr.bak >out || fail "header-backup"
grep -q "$UUID" out || fail "backup names the volume"
expect 1 "exists" R header-backup img hdr.bak
# libcryptsetup's own lines ("Cannot create header backup file ...") do not
# leak: exactly one line, keyd-recover's.
expect 1 "header backup to nodir/x failed" R header-backup img nodir/x
[ "$(wc -l <err)" -eq 1 ] || fail "more than one line on stderr: $(cat err)"
R retire img 1 >out || fail "retire the escrow slot while a keyd slot remains"
grep -q "the escrow: all its shares are void" out || fail "retire escrow names it"
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
# Argon2 keyslots print their parameters (not "argon2id--/0").
R status evil.img --json | python3 -c '
import json,sys; s=json.load(sys.stdin); p=s["keyslots"][0]["pbkdf"]
assert p.startswith("argon2id/t4,m32KiB,p"), p
assert s["launch"]["reason"] == "header-refused", s["launch"]' || fail "argon2 keyslot pbkdf, header-refused"
# header-restore asks for the UUID or label after its checks, like wipe.
expect 1 "nothing was changed" R header-restore img hdr.bak --force <<<"not-the-uuid"
cmp -s <(cryptsetup luksDump img) d1 || fail "unconfirmed restore wrote"
grep -q "replaces the LUKS2 header" err || fail "restore does not say what it replaces"
# The volume's own backup restores (forced: the newer escrow slot is lost).
R header-restore img hdr.bak --force <<<"$UUID" >/dev/null 2>&1 || fail "restore own backup"
R header-backup img hdr2.bak >/dev/null
R header-restore img hdr2.bak --yes >/dev/null 2>&1 || fail "restore --yes"
"$B/keyd" unlock img --dry-run >/dev/null || fail "unlock after restore"
[ "$(cryptsetup luksUUID img)" = "$UUID" ] || fail "UUID after restore"

# rekey: nothing to do at the same TCB; after a firmware update it re-keys.
R rekey img | kd_has "already sealed" || fail "rekey no-op"
"$B/keyd-simfw" --state chip tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null
R rekey img | kd_has "re-keyed at the committed TCB" || fail "rekey"
# keyd and keyd-recover run one rekey and one status: the same words.
[ "$(R rekey img)" = "$("$B/keyd" rekey img)" ] || fail "keyd rekey and keyd-recover rekey differ"
[ "$(R status img)" = "$("$B/keyd" status img)" ] || fail "keyd status and keyd-recover status differ"
"$B/keyd" unlock img --dry-run >/dev/null || fail "unlock after rekey"
# Stable reason codes for every cannot-unlock verdict (status --json).
reason() { python3 -c 'import json,sys; print(json.load(sys.stdin)["launch"]["reason"])'; }
"$B/keyd-simfw" --state chip tcb --current 0300000000000873 --committed 0300000000000873 >/dev/null
[ "$(R status img --json | reason)" = tcb-rollback ] || fail "reason for a TCB rollback"
"$B/keyd-simfw" --state chip tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null
[ "$(R status img --json | reason)" = None ] || fail "reason when this launch can unlock"
other() { # NAME SERVE-OPTIONS...: the same chip, another launch
	local n=$1; shift
	"$B/keyd-simfw" --state chip serve --listen "unix:$T/$n.sock" "$@" 2>"$n.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -S "$n.sock" ] && return 0; sleep 0.1; done
	fail "simulator $n did not start"
}
other m2 --measurement "$(printf 'feed%.0s' $(seq 24))"
other dbg --measurement "$M" --policy 0xb0000
other pol --measurement "$M" --policy 0x30001
[ "$(KEYD_SIM=unix:$T/m2.sock R status img --json | reason)" = other-measurement ] || fail "reason other-measurement"
[ "$(KEYD_SIM=unix:$T/dbg.sock R status img --json | reason)" = debug-launch ] || fail "reason debug-launch"
[ "$(KEYD_SIM=unix:$T/pol.sock R status img --json | reason)" = other-policy ] || fail "reason other-policy"
[ "$(KEYD_SIM=unix:$T/none.sock R status img --json | reason)" = no-backend ] || fail "reason no-backend"

# wipe: wrong confirmation refused, nothing destroyed; the UUID confirms.
sum=$(sha256sum <img)
expect 1 "nothing was changed" R wipe img <<<"not-the-uuid"
expect 1 "nothing was changed" R wipe img </dev/null
[ "$(sha256sum <img)" = "$sum" ] || fail "refused wipe wrote"
R wipe img <<<"$UUID" >out 2>err || fail "wipe: $(cat err)"
grep -q "destroys EVERY keyslot" err || fail "wipe names what it destroys"
grep -q "crypto-erased: 2 keyslots destroyed" out || fail "wipe output: $(cat out)"
[ "$(cryptsetup luksDump img | grep -c '^  [0-9]*: luks2')" -eq 0 ] || fail "keyslots left"
expect 1 "" "$B/keyd" unlock img --dry-run
R wipe other --yes >/dev/null || fail "wipe --yes"
echo ok
