#!/bin/bash
# O keeps serving until a verified peer completes or its deadline passes:
# stray connections (silent, more than O holds, not TLS, TLS that then
# stalls) made before and during a handoff cost only their own timeout.
# N retries connection failures until its deadline; refusals are final.
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

setup_world
SPID=

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -subj /CN=stray \
	-days 1 -keyout "$T/stray.key" -out "$T/stray.crt" 2>/dev/null
cat >"$T/strays.py" <<'EOF'
import socket, ssl, sys, time
port, mode, count, crt, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
held = []
def connect():
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except ConnectionRefusedError:
            time.sleep(0.05)
    sys.exit(1)
for _ in range(count):
    s = connect()
    if mode == "garbage":
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    elif mode == "tls-stall":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(crt, key)
        s = ctx.wrap_socket(s)
    held.append(s)
time.sleep(60)
EOF

# strays MODE COUNT: silent|garbage|tls-stall connections to O, held in the
# background (pid in SPID) until killed.
strays() {
	python3 "$T/strays.py" "$PORT" "$1" "$2" "$T/stray.crt" "$T/stray.key" &
	SPID=$!
	PIDS+=("$SPID")
}

ok_handoff() { # what
	wait_o
	[ "$ORC" = 0 ] && [ "$NRC" = 0 ] ||
		fail "$1: O exit $ORC, N exit $NRC: $(cat "$T/o.err" "$T/n.err")"
	if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; fi
	SPID=
	"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "$1: N cannot unlock"
	echo "ok: $1"
}

# A silent connection made before N's: O holds it and serves N.
serve_bg --read-timeout 2
strays silent 1
sleep 0.3
receive
ok_handoff "a silent connection before N's"

# More silent connections than O holds (8): the oldest make room.
serve_bg --read-timeout 5
strays silent 12
sleep 0.5
receive
ok_handoff "12 silent connections before N's"

# A non-TLS client before N's: refused at the handshake, O goes on.
serve_bg --read-timeout 2
strays garbage 2
sleep 0.3
receive
ok_handoff "non-TLS connections before N's"

# A TLS client that never sends HELLO holds O for one read timeout (2 s)
# while N arrives during it; N waits in the backlog and is then served.
serve_bg --read-timeout 2
strays tls-stall 1
sleep 0.5
receive
ok_handoff "a stalling TLS peer while N connects"
grep -q "handoff complete" "$T/o.out" || fail "O output: $(cat "$T/o.out")"

# Strays keep arriving during N's handoff.
serve_bg --read-timeout 2
receive_bg_strays() {
	for _ in 1 2 3 4 5; do
		python3 -c 'import socket,sys,time; s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); time.sleep(3)' \
			"$PORT" 2>/dev/null &
		PIDS+=($!)
		sleep 0.05
	done
}
receive_bg_strays
receive
ok_handoff "stray connections during the handoff"

# N starts before O listens: it retries (connection refused) until O is up.
PORT=$(free_port)
receive_later() {
	sleep 2
	"$KEYD" handoff serve --listen "127.0.0.1:$PORT" --device "$T/disk.img" \
		--manifest "$T/mo.json" "${COMMON[@]}" --backend sim --sim "unix:$T/o.sock" --timeout 20 >"$T/o.out" 2>"$T/o.err"
}
receive_later &
OPID=$!
PIDS+=("$OPID")
receive --read-timeout 0.5
ok_handoff "N retries until O listens"

# A refusal is final: O refuses N (debug policy) and N does not retry.
SHA0=$(img_sha)
launch dbg "$T/chip" "$MN" --policy 0xB0000
O_TIMEOUT=4 serve_bg
N_LAUNCH=dbg receive
wait_o
[ "$NRC" = 1 ] && grep -q "peer refused" "$T/n.err" || fail "refusal: N said $(cat "$T/n.err")"
if grep -q "attempts" "$T/n.err"; then fail "N retried after a refusal: $(cat "$T/n.err")"; fi
[ "$ORC" = 1 ] && grep -q "peer N rejected: .*debug" "$T/o.err" || fail "refusal: O said $(cat "$T/o.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "refusal: volume changed"
echo "ok: refusals are final for N; O serves on until its deadline"

# A refused peer does not end O's serving: the genuine N after it succeeds.
serve_bg
N_LAUNCH=dbg receive
[ "$NRC" = 1 ] || fail "debug N accepted"
receive
ok_handoff "O serves the genuine N after refusing another"
echo "PASS: handoff serving"
