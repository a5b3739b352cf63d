#!/bin/bash
# Handoff refusals: each is refused by the side that checks it, with a
# message naming the check, and O's volume stays byte-for-byte unchanged.
# A defect in N's own release (measurement, signatures, window, edits) is
# now refused by N itself before it connects; the peer-side check of the
# same defects, report replay, another chip's VCEK and reflection are
# covered at the verification-function level in tests/unit/test_handoff.c.
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

setup_world
# O serves until a verified peer completes or its deadline passes: a refused
# N does not end the serving, so each case waits for O's (short) deadline.
O_TIMEOUT=4
SHA0=$(img_sha)

run_case() { # what O-pattern N-pattern
	serve_bg
	receive
	wait_o
	expect_refused "$@"
}

# N judges its own release before it connects: nobody listens on PORT.
self_refused() { # what N-pattern
	PORT=$(free_port)
	receive
	[ "$NRC" = 1 ] || fail "$1: N exit $NRC, want 1"
	grep -Eq "$2" "$T/n.err" || fail "$1: N said: $(cat "$T/n.err")"
	if grep -q "cannot connect" "$T/n.err"; then fail "$1: N tried to connect"; fi
	[ "$(img_sha)" = "$SHA0" ] || fail "$1: O's volume changed"
	echo "ok: refused by N itself: $1"
}

# N's measurement is not in N's manifest.
launch x "$T/chip" "$MX"
N_LAUNCH=x self_refused "N measurement not in its manifest" "own manifest: measurement"

# N on another chip (its own simulated AMD-SP). With the first chip's root
# pinned, N cannot even verify its own VCEK and stops before connecting;
# with its own root pinned, it connects and each side refuses the other.
"$SIMFW" --state "$T/chip2" init --product milan >/dev/null 2>&1
"$SIMFW" --state "$T/chip2" certs --out "$T/certs2" >/dev/null
launch other "$T/chip2" "$MN"
N_LAUNCH=other self_refused "N on another chip, first chip's root pinned" "own VCEK"
run_other() { serve_bg; N_LAUNCH=other receive --ark "$T/certs2/ark.pem"; wait_o; expect_refused "$@"; }
run_other "N on another chip" "peer N rejected" "rejected|refused"

# N launched with a debug policy.
launch dbg "$T/chip" "$MN" --policy 0xB0000
N_LAUNCH=dbg run_case "N with debug policy" "peer N rejected: .*(debug|policy)" "peer refused"

# SVN downgrade: N's release is older than O's.
manifest "$T/old.json" 0.9 0 "$MN" 1 2
N_MANIFEST=$T/old.json run_case "SVN downgrade" "SVN downgrade" "SVN downgrade|refused"

# Manifest with k-1 signatures (one pinned key only).
manifest "$T/k1.json" 2.0 2 "$MN" 1
N_MANIFEST=$T/k1.json self_refused "manifest with k-1 signatures" "own manifest: .*1 valid signature\(s\).*2 required"

# k-1 pinned plus one by an unknown key: the unknown one counts for nothing.
manifest "$T/unk.json" 2.0 2 "$MN" 1 4
N_MANIFEST=$T/unk.json self_refused "signature by an unknown key" "1 valid signature\(s\)"

# The same pinned key twice counts once.
python3 - "$T/mn.json" "$T/dup.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["signatures"] = [d["signatures"][0], d["signatures"][0]]
json.dump(d, open(sys.argv[2], "w"))
EOF
N_MANIFEST=$T/dup.json self_refused "duplicate signature by one key" "1 valid signature\(s\)"

# Expired manifest (validly signed, window in the past).
"$KEYD" manifest create --version-label 2.0 --svn 2 --measurement "$MN" \
	--not-before 2020-01-01T00:00:00Z --not-after 2021-01-01T00:00:00Z -o "$T/exp.json"
"$KEYD" manifest sign "$T/exp.json" --key "$T/k1.pem"
"$KEYD" manifest sign "$T/exp.json" --key "$T/k2.pem"
N_MANIFEST=$T/exp.json self_refused "expired manifest" "own manifest: .*expired"

# A field edited after signing (svn raised in the JSON).
python3 - "$T/mn.json" "$T/edit.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["svn"] = 7
json.dump(d, open(sys.argv[2], "w"))
EOF
N_MANIFEST=$T/edit.json self_refused "manifest field edited after signing" "valid signature"
# A measurement added after signing.
python3 - "$T/mn.json" "$T/add.json" "$MX" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["measurements"].append(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
EOF
N_MANIFEST=$T/add.json self_refused "measurement added after signing" "valid signature"

# O impersonated: an O whose image is signed only by keys N does not pin.
# (It pins its own keys; N must verify O and refuse.)
"$KEYD" manifest keys --threshold 1 -o "$T/evil-keys.json" "$T/k4.pub"
manifest "$T/evil-o.json" 1.0 1 "$MO" 4
PORT=$(free_port)
"$KEYD" handoff serve --listen "127.0.0.1:$PORT" --device "$T/disk.img" --manifest "$T/evil-o.json" \
	--release-keys "$T/evil-keys.json" --ark "$T/certs/ark.pem" $(sim o) --timeout 4 \
	>"$T/o.out" 2>"$T/o.err" &
OPID=$!
PIDS+=($OPID)
receive
wait_o
[ "$NRC" = 1 ] || fail "impersonated O: N exit $NRC"
grep -q "peer O rejected: .*valid signature" "$T/n.err" || fail "impersonated O: N said $(cat "$T/n.err")"
[ "$ORC" = 1 ] || fail "impersonated O: O exit $ORC"
[ "$(img_sha)" = "$SHA0" ] || fail "impersonated O: volume changed"
echo "ok: refused: O impersonated (N verifies O)"

# An O whose TCB is below N's floor: N refuses O.
serve_bg
receive --tcb-floor ff000000000000ff
wait_o
expect_refused "TCB below the floor" "peer refused" "peer O rejected: .*TCB"

# Usage errors: exit 2.
rc=0; "$KEYD" handoff receive --manifest "$T/mn.json" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "receive without --connect: exit $rc"
rc=0; "$KEYD" handoff receive --connect 127.0.0.1:1 --device x --manifest "$T/mn.json" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "receive with --device: exit $rc"
rc=0; "$KEYD" handoff serve --listen 127.0.0.1:1 --manifest "$T/mo.json" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "serve without --device: exit $rc"
echo "PASS: handoff refusals"
