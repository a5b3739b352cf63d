#!/bin/bash
# The keyd token plugin through the stock cryptsetup CLI, and the crypttab
# keyscript. cryptsetup 2.6 has no --external-tokens-path, so the plugin is
# put into the system token directory for the test only (trap removes it).
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
S=${KEYD_SRC:?}
[ -x "$B/keyd-simfw" ] && [ -f "$B/libcryptsetup-token-keyd.so" ] || exit 77
TD=$(cryptsetup --help | sed -n 's/.*external token plugin path: \(.*\)\.$/\1/p')
[ -n "$TD" ] && [ -w "$TD" ] || exit 77
# An ASan-built plugin cannot load into the uninstrumented stock cryptsetup.
# (Not grep -q: it exits at the first match, nm dies of SIGPIPE and pipefail
# then hides the match, so the ASan run sometimes failed instead of skipping.)
if nm -D "$B/libcryptsetup-token-keyd.so" 2>/dev/null | grep -c __asan_init >/dev/null; then
	echo "ASan-built plugin: stock cryptsetup cannot load it"
	exit 77
fi
[ -e "$TD/libcryptsetup-token-keyd.so" ] && { echo "a keyd plugin is already installed" >&2; exit 77; }
T=$(mktemp -d)
pids=()
cleanup() { rm -f "$TD/libcryptsetup-token-keyd.so"; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$B/keyd-simfw" --state chip init >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$(printf 'a1%.0s' $(seq 48))" 2>sim.log &
pids+=($!)
"$B/keyd-simfw" --state chip serve --listen "unix:$T/other.sock" --measurement "$(printf 'b2%.0s' $(seq 48))" 2>other.log &
pids+=($!)
for _ in $(seq 50); do [ -S sim.sock ] && [ -S other.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/sim.sock
truncate -s 32M img
"$B/keyd" enroll img --format --label p >/dev/null
cp "$B/libcryptsetup-token-keyd.so" "$TD/"

cryptsetup open --test-passphrase --token-only --token-type keyd img || fail "plugin did not open"
cryptsetup luksDump img | kd_has "keyd state:  active" || fail "token dump"
# Another launch: the plugin hands out nothing.
KEYD_SIM=unix:$T/other.sock cryptsetup open --test-passphrase --token-only --token-type keyd img \
	2>err && fail "plugin opened for another launch"
grep -q "sealed to measurement" err || fail "plugin message: $(cat err)"
# A pin-tampered header: refused by the plugin too.
cryptsetup token export --token-id 0 img |
	python3 -c 'import json,sys; t=json.load(sys.stdin); p=t["pin"]; t["pin"]=("0" if p[0]!="0" else "1")+p[1:]; print(json.dumps(t))' >t.json
cp img bad.img
cryptsetup token remove --token-id 0 bad.img
cryptsetup token import --token-id 0 --json-file t.json bad.img
cryptsetup open --test-passphrase --token-only --token-type keyd bad.img 2>err && fail "tampered opened"
grep -q "pin .* does not verify" err || fail "plugin tamper message: $(cat err)"

# The keyscript prints exactly the passphrase that opens the keyslot.
CRYPTTAB_SOURCE=$T/img KEYD=$B/keyd sh "$S/luks-hooks/keyscript" >pass
cryptsetup open --test-passphrase --key-file pass img || fail "keyscript passphrase"
CRYPTTAB_SOURCE=$T/bad.img KEYD=$B/keyd sh "$S/luks-hooks/keyscript" >pass2 2>/dev/null &&
	fail "keyscript gave a passphrase for a tampered header"
[ ! -s pass2 ] || fail "keyscript printed something on refusal"
echo ok
