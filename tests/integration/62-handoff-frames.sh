#!/bin/bash
# Handoff robustness: a raw TLS 1.3 peer (python3) sending oversized,
# garbage and truncated frames, and keyd peers that stop talking at each
# step (short --read-timeout). O's volume must stay unchanged, or gain only
# a harmless pending slot, and every refusal names what went wrong.
set -euo pipefail
# shellcheck source=tests/integration/handoff-lib.bash
. "$(dirname "$0")/handoff-lib.bash"

setup_world
# O keeps serving after a bad peer until its deadline, then names the last.
O_TIMEOUT=4
SHA0=$(img_sha)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -subj /CN=raw \
	-days 1 -keyout "$T/raw.key" -out "$T/raw.crt" 2>/dev/null

# raw_peer MODE: connect to O as N would, then misbehave.
raw_peer() {
	python3 - "$PORT" "$T/raw.crt" "$T/raw.key" "$1" <<'EOF'
import socket, ssl, struct, sys, time
port, crt, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(crt, key)
for _ in range(100):
    try:
        raw = socket.create_connection(("127.0.0.1", port))
        break
    except ConnectionRefusedError:
        time.sleep(0.05)
s = ctx.wrap_socket(raw)
if mode == "oversized":
    s.sendall(struct.pack("<IH", 65536, 1) + b"x" * 100)
elif mode == "garbage":
    s.sendall(b"\xde\xad\xbe\xef\x99\x99" + b"garbage" * 10)
elif mode == "truncated":
    s.sendall(struct.pack("<IH", 5000, 1) + b"y" * 100)
    s.close()
    sys.exit(0)
elif mode == "bad-hello":
    body = b"N\0\0\0" + struct.pack("<I", 1184) + b"\0" * 1184 + struct.pack("<I", 0) \
        + struct.pack("<I", 2) + b"{}" + struct.pack("<I", 32) + b"\0" * 32 + b"trailing"
    s.sendall(struct.pack("<IH", len(body), 1) + body)
elif mode == "wrong-type":
    s.sendall(struct.pack("<IH", 2, 3) + b"\0\0")
try:
    s.settimeout(5)
    while s.recv(65536):
        pass
except Exception:
    pass
EOF
}

frame_case() { # mode pattern
	serve_bg --read-timeout 2
	raw_peer "$1" || true
	wait_o
	[ "$ORC" = 1 ] || fail "$1: O exit $ORC: $(cat "$T/o.err")"
	grep -Eq "$2" "$T/o.err" || fail "$1: O said: $(cat "$T/o.err")"
	[ "$(img_sha)" = "$SHA0" ] || fail "$1: O's volume changed"
	echo "ok: $1 frame refused: $(cat "$T/o.err")"
}

frame_case oversized "exceeds the 65530-byte cap"
frame_case garbage "exceeds the|not a handoff message"
frame_case truncated "truncated|closed"
frame_case bad-hello "trailing"
frame_case wrong-type "peer sent ACCEPT where HELLO was expected"

# A client that is not even TLS.
serve_bg --read-timeout 2
python3 -c '
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); break
    except ConnectionRefusedError: time.sleep(0.05)
s.sendall(b"GET / HTTP/1.0\r\n\r\n"); time.sleep(0.5)' "$PORT"
wait_o
[ "$ORC" = 1 ] && grep -q "TLS 1.3 handshake failed" "$T/o.err" || fail "plain TCP peer: $(cat "$T/o.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "plain TCP peer: volume changed"
echo "ok: non-TLS peer refused"

# N stops at each step: O gives up within its read timeout, volume unchanged.
for step in tls hello volumes; do
	O_TIMEOUT=3 serve_bg --read-timeout 0.5
	start=$(date +%s)
	receive --stall-after "$step" --timeout 1.5
	wait_o
	[ "$ORC" = 1 ] && grep -q "timed out" "$T/o.err" || fail "N stalls after $step: O: $(cat "$T/o.err")"
	[ $(($(date +%s) - start)) -le 8 ] || fail "N stalls after $step: O took too long"
	[ "$(img_sha)" = "$SHA0" ] || fail "N stalls after $step: volume changed"
	echo "ok: N stalls after $step: $(cat "$T/o.err")"
done

# O stops at each step: N gives up within its read timeout.
for step in tls hello volumes accept; do
	serve_bg --stall-after "$step" --timeout 1.5
	receive --read-timeout 0.5 --timeout 2
	wait_o
	[ "$NRC" = 1 ] && grep -q "timed out" "$T/n.err" || fail "O stalls after $step: N: $(cat "$T/n.err")"
	[ "$(img_sha)" = "$SHA0" ] || fail "O stalls after $step: volume changed"
	echo "ok: O stalls after $step: $(cat "$T/n.err")"
done

# N stops after sending ACCEPT: O enrolls (a pending slot only N's image can use),
# O's own slot still opens, and a rerun replaces the pending slot.
serve_bg --read-timeout 2
receive --stall-after accept --timeout 2
wait_o
[ "$ORC" = 0 ] || fail "N stalls after accept: O: $(cat "$T/o.err")"
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/o.sock" >/dev/null || fail "O lost access"
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "rerun after stalled N failed"
"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tokens"]; assert len(t)==2, t' "$T/st.json" ||
	fail "pending slot duplicated"
echo "PASS: handoff frames and timeouts"
