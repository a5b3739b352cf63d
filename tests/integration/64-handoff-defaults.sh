#!/bin/bash
# Secure defaults of the handoff: each side judges its own release before it
# listens or connects (signatures, its own measurement, svn), refuses a
# masked (all-zero) CHIP_ID and a missing TCB floor unless told to opt out,
# and the revocation floor a release ships refuses an older peer whatever
# the clock says. O's volume stays byte-for-byte unchanged in every refusal.
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

setup_world
# shellcheck disable=SC2034 # read by serve_bg
O_TIMEOUT=4
SHA0=$(img_sha)

# O refuses to serve with a bad own manifest: it exits at once, never
# listens (nothing answers on its port) and writes nothing.
o_self_refused() { # what pattern
	serve_bg
	wait_o
	[ "$ORC" = 1 ] || fail "$1: O exit $ORC, want 1: $(cat "$T/o.err")"
	grep -Eq "$2" "$T/o.err" || fail "$1: O said: $(cat "$T/o.err")"
	if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
		"$PORT" 2>/dev/null; then
		fail "$1: something listens on O's port"
	fi
	[ "$(img_sha)" = "$SHA0" ] || fail "$1: O's volume changed"
	echo "ok: O refused to serve: $1"
}

# N refuses to connect with a bad own release (nobody listens on PORT).
n_self_refused() { # what pattern (N_EXTRA: more receive options)
	PORT=$(free_port)
	# shellcheck disable=SC2086 # option list, split on purpose
	receive ${N_EXTRA:-}
	[ "$NRC" = 1 ] || fail "$1: N exit $NRC, want 1"
	grep -Eq "$2" "$T/n.err" || fail "$1: N said: $(cat "$T/n.err")"
	if grep -q "cannot connect" "$T/n.err"; then fail "$1: N tried to connect"; fi
	echo "ok: N refused to connect: $1"
}

# The review's case: O served with an unsigned own manifest of SVN 0.
"$KEYD" manifest create --version-label 0.0 --svn 0 --measurement "$MO" \
	--not-before 2020-01-01T00:00:00Z --not-after "$FUTURE" --min-tcb "milan:$MIN_TCB" \
	-o "$T/unsigned.json"
O_MANIFEST=$T/unsigned.json o_self_refused "unsigned own manifest of SVN 0" \
	"own manifest: manifest 0.0: 0 valid signature\(s\)"
# A foreign manifest: validly signed, but for N's measurement, not O's.
O_MANIFEST=$T/mn.json o_self_refused "own manifest of another release" \
	"own manifest: measurement .* not in manifest for version 2.0"
# A release below its own revocation floor.
MANIFEST_EXTRA="--min-peer-svn 5" manifest "$T/below.json" 1.0 1 "$MO" 1 2
O_MANIFEST=$T/below.json o_self_refused "own svn below own floor" "below its own revocation floor 5"

# No TCB floor anywhere: refused by each side for itself.
MIN_TCB='' manifest "$T/mo-nofloor.json" 1.0 1 "$MO" 1 2
MIN_TCB='' manifest "$T/mn-nofloor.json" 2.0 2 "$MN" 1 3
O_MANIFEST=$T/mo-nofloor.json o_self_refused "no TCB floor (O)" "no TCB floor: manifest 1.0 gives none for Milan"
N_MANIFEST=$T/mn-nofloor.json n_self_refused "no TCB floor (N)" "no TCB floor: manifest 2.0 gives none for Milan"
# A floor pinned on the command line stands in for the manifest's.
O_MANIFEST=$T/mo-nofloor.json serve_bg --tcb-floor "$MIN_TCB"
N_MANIFEST=$T/mn-nofloor.json receive --no-tcb-floor
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "pinned floor / explicit opt-out: $(cat "$T/o.err" "$T/n.err")"
echo "ok: --tcb-floor and an explicit --no-tcb-floor work without a manifest floor"
SHA0=$(img_sha)
# A manifest floor above the chip's TCB refuses the peer.
MIN_TCB=ff00000000000000 manifest "$T/mn-high.json" 2.0 2 "$MN" 1 3
serve_bg
N_MANIFEST=$T/mn-high.json receive
wait_o
[ "$NRC" = 1 ] && grep -q "peer O rejected: .*TCB" "$T/n.err" || fail "manifest floor: $(cat "$T/n.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "manifest floor: volume changed"
echo "ok: refused: peer below the manifest's TCB floor"

# An all-zero CHIP_ID (a host that masks the chip ID) is refused by both.
"$SIMFW" --state "$T/chip0" init --product milan --chip-id "$(printf '00%.0s' $(seq 64))" >/dev/null 2>&1
"$SIMFW" --state "$T/chip0" certs --out "$T/certs0" >/dev/null
launch o0 "$T/chip0" "$MO"
launch n0 "$T/chip0" "$MN"
truncate -s 32M "$T/disk0.img"
"$KEYD" enroll "$T/disk0.img" --format --label 1.0 --backend sim --sim "unix:$T/o0.sock" >/dev/null
rc=0
"$KEYD" handoff serve --listen "127.0.0.1:$(free_port)" --device "$T/disk0.img" \
	--manifest "$T/mo.json" --release-keys "$T/keys.json" --ark "$T/certs0/ark.pem" --backend sim --sim "unix:$T/o0.sock" \
	--timeout 4 >"$T/o.out" 2>"$T/o.err" || rc=$?
[ "$rc" = 1 ] && grep -q "all-zero CHIP_ID" "$T/o.err" || fail "zero chip id (O): $(cat "$T/o.err")"
rc=0
"$KEYD" handoff receive --connect "127.0.0.1:$(free_port)" --manifest "$T/mn.json" \
	--release-keys "$T/keys.json" --ark "$T/certs0/ark.pem" --backend sim --sim "unix:$T/n0.sock" --timeout 4 \
	>"$T/n.out" 2>"$T/n.err" || rc=$?
[ "$rc" = 1 ] && grep -q "all-zero CHIP_ID" "$T/n.err" || fail "zero chip id (N): $(cat "$T/n.err")"
if grep -q "cannot connect" "$T/n.err"; then fail "zero chip id: N tried to connect"; fi
echo "ok: refused: all-zero CHIP_ID on either side"

# Revocation without a clock: N ships min_peer_svn 2, O's release (svn 1)
# is validly signed and inside its window right now (a host that moves the
# guest clock back into an old release's window gains nothing).
MANIFEST_EXTRA="--min-peer-svn 2" manifest "$T/mn-floor.json" 2.0 2 "$MN" 1 3
NOW_WINDOW_O=$T/mo-now.json
NOT_BEFORE=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ) NOT_AFTER=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ) \
	manifest "$NOW_WINDOW_O" 1.0 1 "$MO" 1 2
O_MANIFEST=$NOW_WINDOW_O serve_bg
N_MANIFEST=$T/mn-floor.json receive
wait_o
[ "$NRC" = 1 ] && grep -q "peer O rejected: release 1.0 svn 1 is below the revocation floor 2" "$T/n.err" ||
	fail "revocation floor: N said $(cat "$T/n.err")"
if grep -q "attempts" "$T/n.err"; then fail "revocation floor: N retried a refusal"; fi
[ "$(img_sha)" = "$SHA0" ] || fail "revocation floor: volume changed"
echo "ok: refused: O below N's revocation floor, inside its validity window"

# The floor N's image pins (/etc/keyd/peer-svn-floor, what N's boot judges a
# pending slot's maker by) is applied in the handoff too; and an image that
# pins a lower floor than its own release ships refuses itself, since its
# boot would judge by the lower one.
serve_bg
receive --peer-svn-floor 2
wait_o
[ "$NRC" = 1 ] && grep -q "peer O rejected: release 1.0 svn 1 is below the revocation floor 2 this image pins" \
	"$T/n.err" || fail "pinned floor: N said $(cat "$T/n.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "pinned floor: volume changed"
echo "ok: refused: O below the revocation floor N's image pins"
N_MANIFEST=$T/mn-floor.json N_EXTRA="--peer-svn-floor 1" n_self_refused "image pins a lower floor than its release" \
	"own manifest: release 2.0 has revocation floor 2, above the floor 1 this image pins"

# The clock moved forward past N's window, or back before it: N refuses its
# own release (the window is a convenience; the floor above is the check).
NOT_BEFORE=$(date -u -d '-3 day' +%Y-%m-%dT%H:%M:%SZ) NOT_AFTER=$(date -u -d '-2 day' +%Y-%m-%dT%H:%M:%SZ) \
	manifest "$T/mn-past.json" 2.0 2 "$MN" 1 3
NOT_BEFORE=$(date -u -d '+2 day' +%Y-%m-%dT%H:%M:%SZ) NOT_AFTER=$(date -u -d '+3 day' +%Y-%m-%dT%H:%M:%SZ) \
	manifest "$T/mn-future.json" 2.0 2 "$MN" 1 3
N_MANIFEST=$T/mn-past.json n_self_refused "window already over" "own manifest: manifest 2.0 expired"
N_MANIFEST=$T/mn-future.json n_self_refused "window not yet open" "own manifest: manifest 2.0 is not valid before"

# Usage: --tcb-floor and --no-tcb-floor exclude each other.
rc=0
"$KEYD" handoff receive --connect 127.0.0.1:1 --manifest "$T/mn.json" --tcb-floor "$MIN_TCB" \
	--no-tcb-floor 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "--tcb-floor with --no-tcb-floor: exit $rc"
echo "PASS: handoff defaults"
