#!/bin/bash
# Header tampering (docs/formats.md §6): each defect in its own fresh copy of an
# enrolled image. Every one is refused with a message naming the check, and
# the image stays byte-identical. A damaged primary with an intact secondary
# still opens, and status says it needs repair.
set -euo pipefail
B=${KEYD_BUILD:?}
S=${KEYD_SRC:?}
[ -x "$B/keyd-simfw" ] || exit 77
command -v python3 >/dev/null || exit 77
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M1=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M1" 2>sim.log &
pid=$!
for _ in $(seq 50); do [ -S sim.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/sim.sock
K() { "$B/keyd" "$@"; }

truncate -s 32M base.img
K enroll base.img --format --label guestos-1.4 >/dev/null
truncate -s 32M other.img
K enroll other.img --format --label guestos-1.4 >/dev/null
K passphrase base.img >pass
[ "$(wc -c <pass)" -eq 64 ] || fail "passphrase length"

# fresh NAME: a copy of the enrolled image
fresh() { cp base.img "$1"; }
expect_refused() { # IMG PATTERN
	local img=$1 pat=$2 sum rc
	sum=$(sha256sum <"$img")
	set +e; K unlock "$img" --dry-run >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "$img: exit $rc, want 1 ($(cat err))"
	grep -q -- "$pat" err || fail "$img: '$(cat err)' lacks '$pat'"
	[ "$(sha256sum <"$img")" = "$sum" ] || fail "$img: image changed by a refused unlock"
	set +e; K passphrase "$img" >/dev/null 2>&1; rc=$?; set -e
	[ $rc -eq 1 ] || fail "$img: passphrase handed out"
	[ "$(sha256sum <"$img")" = "$sum" ] || fail "$img: image changed by keyd passphrase"
	echo "refused as expected: $img: $(cat err)"
}
keyd_token() { cryptsetup token export --token-id 0 "$1"; }

# 1. cipher_null rebuild that hands out a known volume key (CVE-2025-59054
#    class): a new header whose keyslot takes any passphrase, the keyd token
#    copied over. Both the segment and the keyslot are cipher_null.
fresh null.img
keyd_token base.img >tok.json
# cryptsetup refuses cipher_null without dm here; a host just writes the
# JSON it wants (fixed checksums), as gen-bad-headers.sh does.
cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 \
	--uuid "$(cryptsetup luksUUID base.img)" null.img - <pass
cryptsetup token import --token-id 0 --json-file tok.json null.img
"$S/tests/data/gen-bad-headers.sh" null.img all-null
expect_refused null.img "cipher_null"
# The same rebuild with aes-xts but a volume key the host chose: only the pin
# can tell (the header is otherwise perfect).
fresh known.img
head -c 64 /dev/zero >known.key
cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 \
	--volume-key-file known.key --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 \
	--uuid "$(cryptsetup luksUUID base.img)" known.img - <pass
cryptsetup token import --token-id 0 --json-file tok.json known.img
expect_refused known.img "pin .* does not verify"

# 2. Another keyd volume's header (binary headers + JSON, 32 KiB) copied over.
fresh copy.img
dd if=other.img of=copy.img bs=16K count=2 conv=notrunc status=none
expect_refused copy.img "does not open with this launch's key"
# ... and its whole metadata area (keyslots too) when DEVICE names the UUID:
# the header no longer carries the volume's identity. (Loop devices needed.)

# 3. The keyd token edited to point at another keyslot.
fresh slot.img
cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 \
	--key-file pass slot.img pass
cryptsetup token export --token-id 0 slot.img | sed 's/"keyslots":\["0"\]/"keyslots":["1"]/' >t1.json
cryptsetup token remove --token-id 0 slot.img
cryptsetup token import --token-id 0 --json-file t1.json slot.img
expect_refused slot.img "pin .* does not verify"

# 4. The pin changed.
fresh pin.img
keyd_token pin.img | python3 -c 'import json,sys; t=json.load(sys.stdin); p=t["pin"]; t["pin"]=("0" if p[0]!="0" else "1")+p[1:]; print(json.dumps(t))' >t2.json
cryptsetup token remove --token-id 0 pin.img
cryptsetup token import --token-id 0 --json-file t2.json pin.img
expect_refused pin.img "pin .* does not verify"

# 5. The keyslot PBKDF downgraded (JSON edit with fixed checksums), and a
#    hash swap through cryptsetup itself.
fresh iter.img
"$S/tests/data/gen-bad-headers.sh" iter.img pbkdf-iterations
expect_refused iter.img "iterations below the floor"
fresh hash.img
cryptsetup luksConvertKey -q --key-file pass --pbkdf pbkdf2 --hash sha256 \
	--pbkdf-force-iterations 1000 hash.img 2>/dev/null || "$S/tests/data/gen-bad-headers.sh" hash.img pbkdf-hash
expect_refused hash.img "PBKDF is not PBKDF2-SHA512"

# 6. An extra keyslot (added outside keyd) or an extra segment.
fresh extra.img
cryptsetup luksAddKey -q --pbkdf-force-iterations 4 --pbkdf argon2id --pbkdf-memory 32 \
	--key-file pass extra.img pass
expect_refused extra.img "not described by any token"
fresh seg.img
"$S/tests/data/gen-bad-headers.sh" seg.img extra-segment
expect_refused seg.img "segments; exactly segment 0"
fresh nullseg.img
"$S/tests/data/gen-bad-headers.sh" nullseg.img segment-null
expect_refused nullseg.img "segment 0 cipher .*cipher_null"
fresh overlap.img
cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 \
	--key-file pass overlap.img pass
"$S/tests/data/gen-bad-headers.sh" overlap.img overlap
expect_refused overlap.img "overlap"

# 7. Damaged primary, intact secondary: status says so, it still opens.
fresh prim.img
"$S/tests/data/gen-bad-headers.sh" prim.img primary-corrupt
K status prim.img >st
grep -q "primary header damaged, secondary intact: needs keyd-recover repair" st || fail "status: $(cat st)"
grep -q "primary: *checksum mismatch" st || fail "status primary"
K unlock prim.img --dry-run >/dev/null || fail "damaged primary does not open"
K status prim.img --json | grep -q '"copies_agree":' || fail "status json"
echo ok
