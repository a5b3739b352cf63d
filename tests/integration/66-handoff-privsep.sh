#!/bin/bash
# Privilege separation of the peer verification (make FP=1 build): a
# verifier child that breaks its seccomp filter is killed and the handoff
# refused; a verifier child that lies ("accept") is overruled by the
# key-holding parent, which re-verifies the peer with this chip's own VCEK
# and re-applies every policy check. O's volume is unchanged by both.
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

FP=${KEYD_BUILD_FP:-${KEYD_SRC:-.}/build-fp}/keyd
[ -x "$FP" ] || { echo "SKIP: no failpoint build (make FP=1)"; exit 77; }
grep -qa handoff.child-escape "$FP" || { echo "SKIP: $FP lacks the verifier-child test hooks"; exit 77; }

setup_world
SHA0=$(img_sha)

# The child opens a socket after its sandbox is up: SIGSYS, O refuses N.
KEYD=$FP KEYD_FAILPOINT=handoff.child-escape O_TIMEOUT=4 serve_bg
receive
wait_o
[ "$ORC" = 1 ] && grep -q "verifier child broke its seccomp filter and was killed" "$T/o.err" ||
	fail "child escape: O exit $ORC: $(cat "$T/o.err")"
[ "$NRC" = 1 ] && grep -q "peer refused" "$T/n.err" || fail "child escape: N: $(cat "$T/n.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "child escape: volume changed"
echo "ok: a verifier child that breaks its seccomp filter is killed; O refuses"

# The child accepts a debug-policy N without looking: the parent refuses it.
launch dbg "$T/chip" "$MN" --policy 0xB0000
KEYD=$FP KEYD_FAILPOINT=handoff.child-lies O_TIMEOUT=4 serve_bg
N_LAUNCH=dbg receive
wait_o
[ "$ORC" = 1 ] && grep -q "parent re-check: peer N rejected: .*debug" "$T/o.err" ||
	fail "lying child, debug N: O exit $ORC: $(cat "$T/o.err")"
[ "$(img_sha)" = "$SHA0" ] || fail "lying child, debug N: volume changed"
echo "ok: a lying verifier child is overruled (debug-policy N)"

# ... and an N on another chip (its own root, so N itself goes ahead).
"$SIMFW" --state "$T/chip2" init --product milan >/dev/null 2>&1
"$SIMFW" --state "$T/chip2" certs --out "$T/certs2" >/dev/null
launch other "$T/chip2" "$MN"
KEYD=$FP KEYD_FAILPOINT=handoff.child-lies O_TIMEOUT=4 serve_bg
rc=0
"$KEYD" handoff receive --connect "127.0.0.1:$PORT" --manifest "$T/mn.json" \
	--release-keys "$T/keys.json" --ark "$T/certs2/ark.pem" --backend sim --sim "unix:$T/other.sock" --timeout 6 \
	>"$T/n.out" 2>"$T/n.err" || rc=$?
wait_o
[ "$ORC" = 1 ] && grep -q "parent re-check: peer N rejected" "$T/o.err" ||
	fail "lying child, other chip: O exit $ORC: $(cat "$T/o.err")"
[ "$rc" = 1 ] || fail "lying child, other chip: N exit $rc"
[ "$(img_sha)" = "$SHA0" ] || fail "lying child, other chip: volume changed"
echo "ok: a lying verifier child is overruled (N on another chip)"

# The parent's own checks accept a genuine N (the lie changes nothing).
KEYD=$FP KEYD_FAILPOINT=handoff.child-lies serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "genuine N: O $ORC N $NRC: $(cat "$T/o.err" "$T/n.err")"
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "genuine N cannot unlock"
echo "PASS: handoff privilege separation"
