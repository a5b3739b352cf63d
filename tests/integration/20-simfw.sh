#!/bin/bash
# keyd-simfw and `keyd derive` over the sim backend: key separation by
# measurement, stability across restarts, the guest-SVN and TCB firmware
# rules (status 0x16), and the certs subcommand.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud

B=${KEYD_BUILD:?}
SIMFW=$B/keyd-simfw
KEYD=$B/keyd
[ -x "$SIMFW" ] && [ -x "$KEYD" ] || { echo "SKIP: binaries not built"; exit 77; }

T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

M1=$(printf 'a1%.0s' $(seq 48))
M2=$(printf 'b2%.0s' $(seq 48))

# Start one launch; waits until the socket accepts.
serve() { # name measurement [extra serve options...]
	local name=$1 meas=$2
	shift 2
	"$SIMFW" --state "$T/chip" serve --listen "unix:$T/$name.sock" --measurement "$meas" \
		--guest-svn 2 "$@" 2>"$T/$name.log" &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -S "$T/$name.sock" ] && return 0
		sleep 0.05
	done
	cat "$T/$name.log" >&2
	fail "serve $name did not start"
}
stop_all() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	PIDS=()
}
derive() { # sock out [options...]
	local sock=$1 out=$2
	shift 2
	"$KEYD" derive --purpose test-disk --backend sim --sim "unix:$T/$sock.sock" -o "$out" "$@"
}

# RSA-4096 generation is slow: one chip for the whole script.
"$SIMFW" --state "$T/chip" init --product milan --tcb 0300000000000873
[ "$(stat -c %a "$T/chip/chip-secret")" = 600 ] || fail "chip secret is not 0600"
"$SIMFW" --state "$T/chip" show | kd_has '^product *Milan' || fail "show: product"
if "$SIMFW" --state "$T/chip" init 2>"$T/err"; then fail "init over an existing chip"; fi
grep -q "already holds a simulated chip" "$T/err" || fail "init refusal message: $(cat "$T/err")"

# Two launches, different measurements: different keys.
serve a "$M1"
serve b "$M2"
derive a "$T/ka"
derive b "$T/kb"
[ "$(stat -c %s "$T/ka")" = 32 ] || fail "purpose key is not 32 bytes"
[ "$(stat -c %a "$T/ka")" = 600 ] || fail "purpose key is not mode 0600"
if cmp -s "$T/ka" "$T/kb"; then fail "different measurements derived the same key"; fi
grep -q "DERIVE status 0x00" "$T/a.log" || fail "serve did not log the request"

# --root vcek sends KEY_SEL 1, as tokens do (KEY_SEL 0 would pick a VLEK if one were installed).
derive a "$T/ka-json" --json >"$T/derive.json"
grep -q '"root_key_select": *2,' "$T/derive.json" || fail "derive default root is not KEY_SEL 1: $(cat "$T/derive.json")"
derive a "$T/ka-vcek" --root vcek --json >"$T/derive.json"
grep -q '"root_key_select": *2,' "$T/derive.json" || fail "--root vcek is not KEY_SEL 1"
cmp -s "$T/ka" "$T/ka-vcek" || fail "--root vcek is not the default root"
set +e
derive a "$T/ka-vlek" --root vlek 2>"$T/err"
rc=$?
set -e
[ $rc = 1 ] || fail "--root vlek on a chip without a VLEK: exit $rc, expected 1"
grep -q "INVALID_KEY\|0x27" "$T/err" || fail "--root vlek refusal: $(cat "$T/err")"

# Another purpose label: another key.
"$KEYD" derive --purpose other --backend sim --sim "unix:$T/a.sock" -o "$T/ka-other"
if cmp -s "$T/ka" "$T/ka-other"; then fail "purpose label does not separate keys"; fi

# KEYD_SIM is an explicit choice of the simulator, like --backend sim.
KEYD_SIM="unix:$T/a.sock" "$KEYD" derive --purpose test-disk -o "$T/ka-env"
cmp -s "$T/ka" "$T/ka-env" || fail "KEYD_SIM did not reach the same simulator"

# guest_svn above the launch SVN: firmware status 0x16, exit 1, one line.
set +e
derive a "$T/kx" --guest-svn 3 2>"$T/err"
rc=$?
set -e
[ $rc = 1 ] || fail "guest-svn too high: exit $rc, expected 1"
grep -q "status 0x16" "$T/err" || fail "guest-svn refusal does not name status 0x16: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" = 1 ] || fail "refusal is not one line"
[ ! -e "$T/kx" ] || fail "a refused derive wrote a key file"
grep -q "DERIVE status 0x16 (guest_svn above the launch SVN)" "$T/a.log" ||
	fail "serve log does not name the broken rule"
derive a "$T/k-svn2" --guest-svn 2 # the launch SVN itself is fine

# Restart the first launch: the same measurement gives the same key.
stop_all
serve a2 "$M1"
derive a2 "$T/ka2"
cmp -s "$T/ka" "$T/ka2" || fail "same measurement after restart derived another key"

# VMRK keys belong to one launch.
derive a2 "$T/vmrk1" --root vmrk
stop_all
serve a3 "$M1"
derive a3 "$T/vmrk2" --root vmrk
if cmp -s "$T/vmrk1" "$T/vmrk2"; then fail "VMRK key survived a relaunch"; fi

# certs writes ark.pem, ask.pem and vcek.der, and they chain.
"$SIMFW" --state "$T/chip" certs --out "$T/certs"
for f in ark.pem ask.pem vcek.der; do [ -s "$T/certs/$f" ] || fail "certs: $f missing"; done
openssl x509 -inform der -in "$T/certs/vcek.der" -out "$T/certs/vcek.pem"
openssl verify -CAfile "$T/certs/ark.pem" -untrusted "$T/certs/ask.pem" "$T/certs/vcek.pem" \
	>/dev/null || fail "VCEK does not chain to the simulated ARK"
openssl x509 -in "$T/certs/vcek.pem" -noout -subject | kd_has "CN *= *SEV-VCEK" ||
	fail "VCEK subject"

# A firmware update: keys at the old TCB are still derivable...
"$SIMFW" --state "$T/chip" tcb --current 0300000000000973 --committed 0300000000000973 >/dev/null
derive a3 "$T/k-old" --tcb 0300000000000873
derive a3 "$T/k-new"
if cmp -s "$T/k-old" "$T/k-new"; then fail "TCB is not mixed into the default binding"; fi
# ...and after a rollback, a key bound to the newer TCB is not.
"$SIMFW" --state "$T/chip" tcb --current 0300000000000873 --committed 0300000000000873 >/dev/null
set +e
derive a3 "$T/k-gone" --tcb 0300000000000973 2>"$T/err"
rc=$?
set -e
[ $rc = 1 ] || fail "derive above the committed TCB after rollback: exit $rc"
grep -q "status 0x16" "$T/err" || fail "rollback refusal: $(cat "$T/err")"
derive a3 "$T/k-back"
cmp -s "$T/k-back" "$T/ka" || fail "the key at the original TCB changed"

# serial:PATH (the virtio-serial transport), over a relayed pty pair; the
# guest side first sees junk of an "abandoned exchange" and must resync.
if command -v python3 >/dev/null; then
	cat >"$T/relay.py" <<'PY'
import os, select, tty
ma, sa = os.openpty(); mb, sb = os.openpty()
for fd in (sa, sb): tty.setraw(fd)
print(os.ttyname(sa), os.ttyname(sb), flush=True)
while True:
    for fd in select.select([ma, mb], [], [])[0]:
        try: d = os.read(fd, 4096)
        except OSError: continue
        os.write(mb if fd == ma else ma, d)
PY
	python3 "$T/relay.py" >"$T/pty.txt" &
	PIDS+=($!)
	for _ in $(seq 50); do [ -s "$T/pty.txt" ] && break; sleep 0.05; done
	read -r HOSTPTY GUESTPTY <"$T/pty.txt"
	"$SIMFW" --state "$T/chip" serve --listen "serial:$HOSTPTY" --measurement "$M1" \
		--guest-svn 2 2>"$T/ser.log" &
	PIDS+=($!)
	sleep 0.3
	printf 'stale\x4b\x44\x53' >"$GUESTPTY"
	"$KEYD" derive --purpose test-disk --backend sim --sim "serial:$GUESTPTY" -o "$T/k-serial"
	cmp -s "$T/ka" "$T/k-serial" || fail "serial transport derived another key"
	stop_all
else
	echo "note: python3 missing, serial transport not tested"
fi

# Usage errors exit 2.
set +e
"$KEYD" derive --backend sim --sim "unix:$T/a3.sock" -o "$T/x" 2>/dev/null
rc=$?
set -e
[ $rc = 2 ] || fail "missing --purpose: exit $rc, expected 2"
echo "20-simfw: ok"
