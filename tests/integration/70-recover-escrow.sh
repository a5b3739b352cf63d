#!/bin/bash
# keyd-recover: 2-of-3 escrow at provisioning; stock `openssl cms -decrypt`
# opens a share exactly as keyd-recover does; a simulated chip replacement
# (a new keyd-simfw chip cannot unlock) is recovered by two admins, and the
# volume key, UUID, segment and data area are unchanged; wrong admin keys
# and tampered tokens are refused; status --json field by field.
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
python3 -c "
import json; s=json.load(open('st.json'))
assert s['launch']['verdict']=='cannot-unlock'
assert any('recover with 2 admins' in n for n in s['verdict']['next']), s['verdict']
" || fail "status on chip B"

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
R B decrypt-share shares/share-3.der --key carol.key --cert carol.crt --to op.crt --out op3.der \
	>/dev/null || fail "decrypt-share carol"
openssl cms -decrypt -inform DER -in op1.der -recip op.crt -inkey op.key -out op1.plain || fail "op share"
cmp -s op1.plain alice.plain || fail "operator share differs from the admin's"
openssl cms -decrypt -inform DER -in op3.der -recip op.crt -inkey op.key -out op3.plain
cmp -s op3.plain carol.plain || fail "operator share 3 differs"
rm -f ./*.plain
# A wrong admin key cannot open a share; the wrong volume is refused.
expect_refused "cannot decrypt the share" R B decrypt-share shares/share-2.der --key mallory.key \
	--cert mallory.crt --to op.crt --out x.der
expect_refused "does not belong to the certificate" R B decrypt-share shares/share-2.der \
	--key alice.key --cert bob.crt --to op.crt --out x.der
expect_refused "not 00000000" R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt \
	--to op.crt --out x.der --volume 00000000-0000-0000-0000-000000000000
[ ! -e x.der ] || fail "refused decrypt-share wrote a file"
# One share is not enough; writes nothing.
sum=$(sha256sum <img)
expect_refused "needs 2 of 3" R B unlock img --shares op1.der --key op.key --cert op.crt --dry-run
# Two shares: --check writes nothing.
R B unlock img --shares op1.der op3.der --key op.key --cert op.crt --check >out || fail "--check"
[ "$(sha256sum <img)" = "$sum" ] || fail "--check wrote"

# Re-enroll for chip B without activation (no device-mapper on the host).
R B unlock img --shares op1.der op3.der --key op.key --cert op.crt --label recovered-B --dry-run \
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
expect_refused "does not match its digest" R B unlock tampered.img --shares op1.der op3.der \
	--key op.key --cert op.crt --check

# Rotation: the seen shares become void, new ones work.
R B unlock img --shares op1.der op3.der --key op.key --cert op.crt --dry-run --rotate-escrow \
	--admin alice.crt bob.crt carol.crt >out || fail "rotate: $(cat out)"
grep -q "escrow rotated: 2-of-3" out || fail "rotate output"
expect_refused "no longer has" R B unlock img --shares op1.der op3.der --key op.key --cert op.crt --check
rm -rf shares && R B export-shares img --out shares >/dev/null
R B decrypt-share shares/share-2.der --key bob.key --cert bob.crt --to op.crt --out n2.der >/dev/null
R B decrypt-share shares/share-3.der --key carol.key --cert carol.crt --to op.crt --out n3.der >/dev/null
R B unlock img --shares n2.der n3.der --key op.key --cert op.crt --check >/dev/null || fail "new shares"
[ "$(cryptsetup luksDump img | grep -c 'keyd-escrow')" -eq 1 ] || fail "old escrow left behind"
echo ok
