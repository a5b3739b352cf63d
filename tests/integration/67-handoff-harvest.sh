#!/bin/bash
# The harvest attack on the handoff (threat-model/attacks.md): a rogue old
# version R -- a genuine, signed, older release on the same chip that holds
# no volume -- serves a handoff naming the UUID of a volume it does not hold
# (tests/tools/handoff-tool harvest, an O written against libkeyd). N checks
# R, which passes every check, and answers. Later the volume is handed to N
# for real and N commits. Nothing N sent R may open any keyslot of that
# volume, pending or committed. In handoff format 1, N answered with its
# keyslot passphrase for that UUID, which opened N's slot there.
#
# HARVEST_PROTO=v1 KEYD=<format-1 keyd> runs the same attack against a
# format-1 N (the test then fails, which is the point).
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

TOOL=$B/tests/tools/handoff-tool
[ -x "$TOOL" ] || { echo "SKIP: $TOOL not built"; exit 77; }
PROTO=${HARVEST_PROTO:-v2}
RKN=("${RK[@]}")
[ "$PROTO" = v2 ] || RKN=()

setup_world
UUID=$(cryptsetup luksUUID "$T/disk.img")

# R: release 1.1 (svn 1), signed by two pinned keys, its own measurement.
MR=$(printf 'e5%.0s' $(seq 48))
manifest "$T/mr.json" 1.1 1 "$MR" 1 2
launch r "$T/chip" "$MR"

# Tries every 64-byte window of FILE as a passphrase on every keyslot.
opens_any_slot() { # FILE -> prints the offset that opens, if any
	python3 - "$1" "$T/disk.img" <<'EOF'
import subprocess, sys
data = open(sys.argv[1], "rb").read()
for off in range(0, max(0, len(data) - 63)):
    r = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", "-",
                        sys.argv[2]], input=data[off:off + 64], capture_output=True)
    if r.returncode == 0:
        print(off)
        break
EOF
}

PORT=$(free_port)
"$TOOL" harvest --listen "127.0.0.1:$PORT" --sim "unix:$T/r.sock" --manifest "$T/mr.json" \
	--uuid "$UUID" --capture "$T/capture.bin" --proto "$PROTO" >"$T/h.out" 2>"$T/h.err" &
HPID=$!
PIDS+=("$HPID")
receive
HRC=0
wait "$HPID" || HRC=$?
[ "$HRC" = 0 ] || fail "rogue O did not get an answer: $(cat "$T/h.err" "$T/n.err")"
echo "ok: N answered a rogue signed older O for a volume it does not hold ($(cat "$T/h.out"))"

# Format 2 answers with the offered UUIDs and nothing else.
if [ "$PROTO" = v2 ]; then
	[ "$(stat -c %s "$T/capture.bin")" = 38 ] || fail "N sent $(stat -c %s "$T/capture.bin") bytes, not u16 + one UUID"
	[ "$(tail -c 36 "$T/capture.bin")" = "$UUID" ] || fail "ACCEPT is not the UUID"
fi

# The volume's real owner hands it to N.
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "legitimate handoff: $(cat "$T/o.err" "$T/n.err")"
off=$(opens_any_slot "$T/capture.bin")
[ -z "$off" ] || fail "bytes $off..$((off + 63)) of what N sent the rogue O open a keyslot (pending)"
echo "ok: nothing N sent the rogue O opens N's pending slot"

# N commits: its slot is now sealed to N. Still nothing opens.
# shellcheck disable=SC2086 # option list
"$KEYD" commit "$T/disk.img" ${RKN[@]+"${RKN[@]}"} --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "commit"
off=$(opens_any_slot "$T/capture.bin")
[ -z "$off" ] || fail "bytes $off..$((off + 63)) of what N sent the rogue O open a keyslot (committed)"
echo "ok: nothing N sent the rogue O opens N's committed slot"
echo "PASS: handoff harvest"
