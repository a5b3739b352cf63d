#!/bin/bash
# keyd-recover: 2-of-3 escrow at provisioning; stock `openssl cms -decrypt`
# opens a share exactly as keyd-recover does; a simulated chip replacement
# (a new keyd-simfw chip cannot unlock) is recovered by two admins, and the
# volume key, UUID, segment and data area are unchanged; wrong admin keys
# and tampered tokens are refused; status --json field by field. Mistakes
# a tired admin makes: a mistyped share path, a share of another volume or
# of an older escrow (named, by file), a commitment that is not the one
# recorded at provisioning.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
command -v openssl >/dev/null && command -v python3 >/dev/null || exit 77
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M=$(printf 'c0de%.0s' $(seq 24))
serve() {
	local n=$1 st=$2; shift 2
	"$B/keyd-simfw" --state "$st" serve --listen "unix:$T/$n.sock" --measurement "$M" "$@" 2>"$T/$n.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -S "$T/$n.sock" ] && return 0; sleep 0.1; done
	fail "simulator $n did not start"
}
K() { local s=$1; shift; KEYD_SIM="unix:$T/$s.sock" "$B/keyd" "$@"; }
R() { local s=$1; shift; KEYD_SIM="unix:$T/$s.sock" "$B/keyd-recover" "$@"; }
expect_refused() { # PATTERN CMD... : exit 1 and the message
	local pat=$1 rc; shift
	set +e; "$@" >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "'$*': exit $rc, want 1 ($(cat err))"
	grep -q -- "$pat" err || fail "'$*': message '$(cat err)' lacks '$pat'"
}

# Admins (two P-256, one RSA-2048) and the recovering operator.
for a in alice bob carol op; do
	if [ $a = carol ]; then alg=(-newkey rsa:2048); else alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
	openssl req -x509 -nodes "${alg[@]}" -keyout $a.key -out $a.crt -subj "/CN=$a" -days 2 2>/dev/null
done
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout mallory.key \
	-out mallory.crt -subj "/CN=mallory" -days 2 2>/dev/null

"$B/keyd-simfw" --state chipA init --tcb 0300000000000873 >/dev/null
"$B/keyd-simfw" --state chipB init --tcb 0300000000000873 >/dev/null
serve A chipA
serve B chipB

truncate -s 32M img
K A enroll img --format --label guestos-1.4 --escrow alice.crt --escrow bob.crt \
	--escrow carol.crt --threshold 2 >out || fail "enroll --escrow"
grep -q "2-of-3 recovery escrow added" out || fail "enroll output: $(cat out)"
UUID=$(cryptsetup luksUUID img)
# The commitment is printed at provisioning, to be recorded.
COMMIT=$(sed -n 's/^  commitment \([0-9a-f]\{96\}\)$/\1/p' out)
[ -n "$COMMIT" ] || fail "enroll does not print the escrow commitment: $(cat out)"
cryptsetup luksDump img >dump
grep -q "keyd-escrow" dump || fail "no keyd-escrow token"
[ "$(grep -c 'PBKDF: *pbkdf2' dump)" -eq 2 ] && ! grep -q argon dump || fail "escrow keyslot is not PBKDF2"
K A unlock img --dry-run >/dev/null || fail "chip A unlock"

# status --json, field by field.
R A status img --json >st.json || fail "status"
python3 - "$UUID" st.json <<'PY' || fail "status --json fields"
import json, sys
uuid, st = sys.argv[1], json.load(open(sys.argv[2]))
assert st["uuid"] == uuid, st["uuid"]
h = st["header"]
assert h["copies_agree"] is True and h["needs_repair"] is False
assert h["primary"]["ok"] and h["secondary"]["ok"] and h["allow_list"] == "passed"
ks = {k["keyslot"]: k for k in st["keyslots"]}
assert ks[0]["kind"] == "keyd" and ks[0]["state"] == "active", ks
assert ks[1]["kind"] == "escrow" and ks[1]["pbkdf"] == "pbkdf2-sha512/1000", ks
assert len(st["tokens"]) == 1
t = st["tokens"][0]
assert t["label"] == "guestos-1.4" and t["state"] == "active" and t["keyslot"] == 0
assert t["measurement"] == "c0de" * 24 and t["tcb"] == "0300000000000873", t
assert st["pending_handoff"] == []
e = st["escrow"]
assert e["threshold"] == 2 and e["admins"] == 3 and e["keyslot"] == 1 and e["generations"] == 1
assert [s["subject"] for s in e["shares"]] == ["/CN=alice", "/CN=bob", "/CN=carol"], e
assert all(len(s["admin"]) == 64 for s in e["shares"])
assert st["launch"]["verdict"] == "can-unlock", st["launch"]
assert st["schema"] == 2 and st["launch"]["reason"] is None
assert t["policy_hex"] == "0x%x" % t["policy"] and t["chip_is_this"] is True and len(t["chip"]) == 8
assert st["launch"]["chip"] == t["chip"]
v = st["verdict"]
assert v["openable"] is True
assert any("this launch" in c for c in v["can_open"]) and any("2 of the 3" in c for c in v["can_open"])
PY
# admin fingerprints are the certificates' SHA-256
fp=$(openssl x509 -in bob.crt -outform DER | sha256sum | cut -d' ' -f1)
python3 -c "import json,sys; s=json.load(open('st.json'))['escrow']['shares']; assert s[1]['admin']=='$fp'" \
	|| fail "admin fingerprint"
R A status img | kd_has "2 of 3 admins, keyslot 1" || fail "status text"

# Chip replacement: chip B cannot unlock.
sum_data=$(tail -c +$((16 * 1024 * 1024 + 1)) img | sha256sum)
seg_before=$(cryptsetup luksDump img | sed -n '/^Data segments:/,/^Keyslots:/p')
expect_refused "another chip" K B unlock img --dry-run
R B status img --json >st.json
python3 - st.json <<'PY' || fail "status on chip B"
import json, sys
s = json.load(open(sys.argv[1]))
assert s['launch']['verdict'] == 'cannot-unlock' and s['launch']['reason'] == 'other-chip', s['launch']
assert any('recover with 2 admins' in n for n in s['verdict']['next']), s['verdict']
t = s['tokens'][0]
assert t['chip_is_this'] is False and t['chip'] != s['launch']['chip'], t
# This launch has the sealed measurement and is refused: never "can open" unqualified.
line = [c for c in s['verdict']['can_open'] if 'keyslot 0' in c][0]
assert 'another chip' in line and 'not this launch' in line, line
PY
R B status img >st.txt
grep -q "chip [0-9a-f]\{8\} (another chip)" st.txt || fail "status text: no chip fingerprint: $(cat st.txt)"
grep -q "reason other-chip" st.txt || fail "status text: no reason code"
R B list img >list.txt
grep -q "^0: keyd active \"guestos-1.4\" svn 0 chip [0-9a-f]\{8\} (another chip)" list.txt || fail "list: $(cat list.txt)"
grep -q "^1: escrow 2-of-3 commitment ${COMMIT:0:16}" list.txt || fail "list escrow: $(cat list.txt)"

# Recovery: export, two admins decrypt to the operator.
R B export-shares img --out shares >out || fail "export-shares"
[ "$(ls shares | wc -l)" -eq 3 ] || fail "3 share files"
grep -q "for /CN=carol" out || fail "export lists holders"
# Stock OpenSSL opens an admin share and an operator share to the same bytes.
openssl cms -decrypt -inform DER -in shares/share-3.der -recip carol.crt -inkey carol.key -out carol.plain \
	|| fail "openssl cms -decrypt (RSA admin)"
openssl cms -decrypt -inform DER -in shares/share-1.der -recip alice.crt -inkey alice.key -out alice.plain \
	|| fail "openssl cms -decrypt (EC admin)"
head -c 8 carol.plain | kd_has KDSHARE1 || fail "share magic"
R B decrypt-share shares/share-1.der --key alice.key --cert alice.crt --to op.crt --out op1.der \
	--volume "$UUID" >out || fail "decrypt-share alice"
grep -q "share 1 of a 2-of-3 escrow for volume $UUID" out || fail "decrypt-share output"
grep -q "commitment $COMMIT" out || fail "decrypt-share does not show the commitment: $(cat out)"
# A commitment other than the recorded one is refused, nothing written.
expect_refused "is not the recorded" R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt \
	--to op.crt --out x.der --expect-commitment "$(printf '0%.0s' $(seq 96))"
[ ! -e x.der ] || fail "decrypt-share wrote despite a commitment mismatch"
set +e; R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt --to op.crt --out x.der \
	--expect-commitment abc >out 2>err; rc=$?; set -e
[ $rc -eq 2 ] || fail "a malformed --expect-commitment is not a usage error ($rc)"
R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt --to op.crt --out op2.der \
	--expect-commitment "$COMMIT" >out || fail "decrypt-share with the recorded commitment"
grep -q "commitment matches" out || fail "decrypt-share --expect-commitment output"
R B decrypt-share shares/share-3.der --key carol.key --cert carol.crt --to op.crt --out op3.der \
	>/dev/null || fail "decrypt-share carol"
openssl cms -decrypt -inform DER -in op1.der -recip op.crt -inkey op.key -out op1.plain || fail "op share"
cmp -s op1.plain alice.plain || fail "operator share differs from the admin's"
openssl cms -decrypt -inform DER -in op3.der -recip op.crt -inkey op.key -out op3.plain
cmp -s op3.plain carol.plain || fail "operator share 3 differs"
# Recovery without keyd, exactly as docs/recovery.md documents it: its
# reference combiner recovers R from two plaintext shares, and hex(R) opens
# the escrow keyslot with cryptsetup alone.
sed -n '/<!-- recover-without-keyd: begin -->/,/<!-- recover-without-keyd: end -->/p' \
	"${KEYD_SRC:?}/docs/recovery.md" | sed '1,2d;$d' | sed '$d' >combine.py
python3 combine.py alice.plain carol.plain | tr -d '\n' >r.hex || fail "documented combiner"
[ "$(wc -c <r.hex)" -eq 64 ] || fail "documented combiner output: $(cat r.hex)"
cryptsetup open --test-passphrase --key-slot 1 --key-file r.hex img || fail "hex(R) does not open the escrow keyslot"
rm -f ./*.plain r.hex
# A wrong admin key cannot open a share; the wrong volume is refused.
expect_refused "cannot decrypt the share" R B decrypt-share shares/share-2.der --key mallory.key \
	--cert mallory.crt --to op.crt --out x.der
expect_refused "does not belong to the certificate" R B decrypt-share shares/share-2.der \
	--key alice.key --cert bob.crt --to op.crt --out x.der
expect_refused "not 00000000" R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt \
	--to op.crt --out x.der --volume 00000000-0000-0000-0000-000000000000
# A passphrase-protected admin key asks on the terminal; without one it is
# refused in words that say so (setsid: no controlling terminal).
openssl pkey -in bob.key -aes256 -passout pass:secret -out bob-enc.key
expect_refused "passphrase on a tty" setsid -w env KEYD_SIM="unix:$T/B.sock" "$B/keyd-recover" \
	decrypt-share shares/share-2.der --key bob-enc.key --cert bob.crt --to op.crt --out x.der </dev/null
[ ! -e x.der ] || fail "refused decrypt-share wrote a file"
# One share is not enough; writes nothing.
sum=$(sha256sum <img)
# A mistyped share path is a usage error naming it, never a mapping name.
expect_usage() { # PATTERN CMD...
	local pat=$1 rc; shift
	set +e; "$@" >out 2>err; rc=$?; set -e
	[ $rc -eq 2 ] || fail "'$*': exit $rc, want 2 ($(cat err))"
	grep -q -- "$pat" err || fail "'$*': message '$(cat err)' lacks '$pat'"
}
expect_usage "typo.der: No such file" R B unlock img --share op1.der --share op3.der --share typo.der \
	--key op.key --cert op.crt --dry-run
expect_usage "typo.der: No such file" R B unlock img --share typo.der --key op.key --cert op.crt --check
# Files after one --share are not swallowed: the second is refused as a NAME.
expect_usage "op3.der is a file" R B unlock img --share op1.der op3.der --key op.key --cert op.crt
expect_usage "exactly one of NAME" R B unlock img --share op1.der op3.der --key op.key --cert op.crt --dry-run
expect_usage "usage" R B escrow add img --admin alice.crt bob.crt --threshold 1
expect_usage "typo.crt: No such file" R B escrow add img --admin alice.crt --admin typo.crt --threshold 1
[ "$(sha256sum <img)" = "$sum" ] || fail "a usage error wrote"
expect_refused "needs 2 of 3" R B unlock img --share op1.der --key op.key --cert op.crt --dry-run
# Two shares: --check writes nothing.
R B unlock img --share op1.der --share op3.der --key op.key --cert op.crt --check >out || fail "--check"
[ "$(sha256sum <img)" = "$sum" ] || fail "--check wrote"

# Re-enroll for chip B without activation (no device-mapper on the host).
R B unlock img --share op1.der --share op3.der --key op.key --cert op.crt --label recovered-B --dry-run \
	>out || fail "recover unlock: $(cat err 2>/dev/null)"
grep -q "enrolled keyslot 2 (active, label recovered-B)" out || fail "unlock output: $(cat out)"
grep -q "pin verified" out || fail "unlock did not verify the new slot"
K B unlock img --dry-run >out || fail "chip B still cannot unlock after recovery"
grep -q "pin verified" out || fail "chip B unlock output"
K A unlock img --dry-run >/dev/null || fail "chip A lost access"
# Data intact: same UUID, same segment, same data area, same volume key
# (the new keyd slot's pin is an HMAC over the volume key, verified above,
# and LUKS2 has one digest: every keyslot opens the one volume key).
[ "$(cryptsetup luksUUID img)" = "$UUID" ] || fail "UUID changed"
[ "$(cryptsetup luksDump img | sed -n '/^Data segments:/,/^Keyslots:/p')" = "$seg_before" ] || fail "segment changed"
[ "$(tail -c +$((16 * 1024 * 1024 + 1)) img | sha256sum)" = "$sum_data" ] || fail "data area changed"
[ "$(cryptsetup luksDump img | grep -c '^  [0-9]*: luks2')" -eq 3 ] || fail "keyslot count"

# Tampered token: a flipped share digest is detected, not mis-combined.
cp img tampered.img
tok=$(cryptsetup luksDump tampered.img | awk '/^  [0-9]+: keyd-escrow/{sub(":","",$1); print $1}')
cryptsetup token export --token-id "$tok" tampered.img >tok.json
python3 - tok.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
d = t["shares"][0]["digest"]
t["shares"][0]["digest"] = ("0" if d[0] != "0" else "1") + d[1:]
json.dump(t, open(sys.argv[1], "w"))
PY
cryptsetup token remove --token-id "$tok" tampered.img
cryptsetup token import --token-id "$tok" tampered.img <tok.json
expect_refused "does not match its digest" R B unlock tampered.img --share op1.der --share op3.der \
	--key op.key --cert op.crt --check

# Rotation: the seen shares become void, new ones work.
R B unlock img --share op1.der --share op3.der --key op.key --cert op.crt --dry-run --rotate-escrow \
	--admin alice.crt --admin bob.crt --admin carol.crt >out || fail "rotate: $(cat out)"
grep -q "escrow rotated: 2-of-3" out || fail "rotate output"
NEWCOMMIT=$(sed -n 's/^  commitment \([0-9a-f]\{96\}\)$/\1/p' out)
[ -n "$NEWCOMMIT" ] && [ "$NEWCOMMIT" != "$COMMIT" ] || fail "rotation does not print the new commitment"
[ "$(R B status img --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["escrow"]["commitment"])')" = "$NEWCOMMIT" ] \
	|| fail "printed commitment is not the escrow's"
# After the recovery, Next: says to retire the lost chip's slot (slot 0, chip A).
R B status img >st.txt
grep -q "keyslot 0 (label guestos-1.4) is sealed to another chip .*retire it: keyd-recover retire .* 0" st.txt \
	|| fail "status after recovery does not say to retire the lost chip's slot: $(cat st.txt)"
! grep -q "nothing to do" st.txt || fail "status says nothing to do after a recovery"
! grep -q "escrow, escrow" st.txt || fail "keyslot line repeats escrow"
expect_refused "op1.der: share 1 is from an older escrow of this volume" R B unlock img \
	--share op1.der --share op3.der --key op.key --cert op.crt --check
rm -rf shares && R B export-shares img --out shares >/dev/null
R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt --to op.crt --out n2.der >/dev/null
R B decrypt-share shares/share-3.der --key carol.key --cert carol.crt --to op.crt --out n3.der >/dev/null
# A share of the old escrow among new ones is named, by file, as older.
expect_refused "op3.der: share 3 is from an older escrow" R B unlock img --share n2.der \
	--share op3.der --key op.key --cert op.crt --check
# A share of another volume is named as such (not "altered").
truncate -s 32M img2
K A enroll img2 --format --label other --escrow alice.crt --escrow bob.crt --escrow carol.crt \
	--threshold 2 >/dev/null
R A export-shares img2 --out shares2/ >out
grep -q "shares2/share-1.der " out && ! grep -q "//" out || fail "export-shares --out dir/: $(cat out)"
R A decrypt-share shares2/share-3.der --key carol.key --cert carol.crt --to op.crt --out other3.der >/dev/null
expect_refused "other3.der: share 3 belongs to another volume" R B unlock img --share n2.der \
	--share other3.der --key op.key --cert op.crt --check
R B unlock img --share n2.der --share n3.der --key op.key --cert op.crt --check >/dev/null || fail "new shares"
[ "$(cryptsetup luksDump img | grep -c 'keyd-escrow')" -eq 1 ] || fail "old escrow left behind"

# retire on the recovered volume (slot 0 sealed to the lost chip A, the
# escrow, slot 2 this chip B): the lost chip's slot is not "another way in".
ESC=$(R B status img --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["escrow"]["keyslot"])')
cp img r1.img
R B retire r1.img "$ESC" >out 2>err || fail "retire the escrow while this chip's slot works: $(cat err)"
grep -q "this launch still opens the volume through keyslot 2" out || fail "retire consequence: $(cat out)"
sum=$(sha256sum <r1.img)
expect_refused "last slot that opens this volume now" R B retire r1.img 2
[ "$(sha256sum <r1.img)" = "$sum" ] || fail "refused retire wrote"
! grep -q "retiring keyslot\|destroyed" out || fail "retire announced a retire it then refused"
cp img r2.img
R B retire r2.img 2 >out || fail "retire this chip's slot while the escrow remains"
grep -q "afterwards only the escrow (keyslot $ESC) opens the volume" out || fail "retire consequence: $(cat out)"
expect_refused "holds the escrow, the only way into this volume that works now" R B retire r2.img "$ESC"
# The lost chip's slot goes, as status says; this chip's slot is untouched.
cp img r3.img
R B retire r3.img 0 >/dev/null || fail "retire the lost chip's slot"
K B unlock r3.img --dry-run >/dev/null || fail "chip B lost access after retiring chip A's slot"
R B status r3.img >st.txt
! grep -q "sealed to another chip" st.txt || fail "status still names a lost chip: $(cat st.txt)"
# unlock --json, for scripts: chip B already has its slot, nothing enrolled.
R B unlock r3.img --share n2.der --share n3.der --key op.key --cert op.crt --dry-run --json >out \
	|| fail "unlock --json"
python3 -c '
import json; d = json.load(open("out"))
assert d["enrolled"] is None and d["verified"] == 2 and d["escrow"] is None and d["activated"] is False, d
' || fail "unlock --json: $(cat out)"
# escrow add from k shares (no keyd slot needed): a rotation, old shares spent.
R B escrow add r3.img --admin alice.crt --admin bob.crt --threshold 2 --share n2.der --share n3.der \
	--key op.key --cert op.crt >out || fail "escrow add --share: $(cat out)"
grep -q "any previous escrow destroyed" out && grep -q "^  commitment [0-9a-f]\{96\}$" out \
	|| fail "escrow add --share output: $(cat out)"
expect_refused "n2.der: share 2 is from an older escrow" R B unlock r3.img --share n2.der \
	--share n3.der --key op.key --cert op.crt --check
echo ok
