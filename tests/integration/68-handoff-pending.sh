#!/bin/bash
# Pending slots of handoff format 2 (docs/handoff-protocol.md):
#  - every handoff, and every volume in it, gets fresh, unrelated slot secrets;
#  - a pending slot wrapped to N's public key but without evidence from an
#    attested signed release is refused at unlock and at commit, whether its
#    evidence is copied from a genuine slot or is a report of the host's own
#    (unsigned) launch; only the evidence check stops it (the wrap itself is
#    valid, which the control shows);
#  - a pending slot made by a signed release that N's own image revokes (its
#    svn below the pinned floor, /etc/keyd/peer-svn-floor) is refused at
#    unlock and commit; no pinned floor refuses every pending slot unless
#    the image opts out; the pinned TCB floor judges the maker's TCB.
set -euo pipefail
. "$(dirname "$0")/handoff-lib.bash"

TOOL=$B/tests/tools/handoff-tool
[ -x "$TOOL" ] || { echo "SKIP: $TOOL not built"; exit 77; }

setup_world
reveal() { "$TOOL" reveal "$1" --sim "unix:$T/n.sock" --release-keys "$T/keys.json" "${@:2}"; }
opens_slot() { # DEV SLOT PASS
	printf '%s' "$3" | cryptsetup open --test-passphrase --key-slot "$2" --key-file - "$1" 2>/dev/null
}

# Handoff 1.
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "handoff 1: $(cat "$T/o.err" "$T/n.err")"
read -r S1 P1 < <(reveal "$T/disk.img") || fail "reveal 1"
opens_slot "$T/disk.img" "$S1" "$P1" || fail "revealed passphrase does not open slot $S1"

# Handoff 2 to the same N, now of two volumes.
truncate -s 32M "$T/disk2.img"
"$KEYD" enroll "$T/disk2.img" --format --label 1.0 --backend sim --sim "unix:$T/o.sock" >/dev/null
PORT=$(free_port)
"$KEYD" handoff serve --listen "127.0.0.1:$PORT" --device "$T/disk.img" --device "$T/disk2.img" \
	--manifest "$T/mo.json" "${COMMON[@]}" --backend sim --sim "unix:$T/o.sock" --timeout 20 >"$T/o.out" 2>"$T/o.err" &
OPID=$!
PIDS+=("$OPID")
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "handoff 2: $(cat "$T/o.err" "$T/n.err")"
read -r S2 P2 < <(reveal "$T/disk.img") || fail "reveal 2"
read -r S3 P3 < <(reveal "$T/disk2.img") || fail "reveal 3"
[ "$P1" != "$P2" ] && [ "$P2" != "$P3" ] && [ "$P1" != "$P3" ] || fail "slot secrets repeat"
if opens_slot "$T/disk.img" "$S2" "$P1"; then fail "handoff 1's secret opens handoff 2's slot"; fi
if opens_slot "$T/disk2.img" "$S3" "$P2"; then fail "one volume's secret opens the other's slot"; fi
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "N cannot unlock disk"
"$KEYD" unlock "$T/disk2.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "N cannot unlock disk2"
echo "ok: two handoffs and two volumes gave three unrelated slot secrets"

# The host's own launch X on the same chip makes a volume (so it knows the
# volume key) and adds a pending slot for N wrapped to N's public key.
MXX=$(printf 'f6%.0s' $(seq 48))
launch x "$T/chip" "$MXX"
forged() { # NAME EVIDENCE-OPTION...
	truncate -s 32M "$T/$1.img"
	"$KEYD" enroll "$T/$1.img" --format --label host --backend sim --sim "unix:$T/x.sock" >/dev/null
	"$TOOL" forge "$T/$1.img" --sim-x "unix:$T/x.sock" --sim-n "unix:$T/n.sock" \
		--manifest "$T/mo.json" --label 2.0 --svn 2 "${@:2}" >/dev/null ||
		fail "$1: forging failed"
	# Control: the wrap is valid; N's key unwraps a passphrase that opens it.
	read -r fs fp < <(reveal "$T/$1.img" --skip-evidence) || fail "$1: control unwrap"
	opens_slot "$T/$1.img" "$fs" "$fp" || fail "$1: control: forged slot does not open"
	local sha
	sha=$(sha256sum "$T/$1.img" | cut -d' ' -f1)
	if "$KEYD" unlock "$T/$1.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/out" 2>"$T/err"; then
		fail "$1: N unlocked a forged pending slot"
	fi
	grep -q "pending slot evidence" "$T/err" || fail "$1: refusal: $(cat "$T/err")"
	if "$KEYD" commit "$T/$1.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/out" 2>"$T/err"; then
		fail "$1: N committed a forged pending slot"
	fi
	[ "$(sha256sum "$T/$1.img" | cut -d' ' -f1)" = "$sha" ] || fail "$1: refused commit wrote"
	echo "ok: forged pending slot ($1) refused: $(cat "$T/err")"
}
forged copied --evidence-from "$T/disk.img"
forged self --evidence-self

# A revoked but still signed release R (svn 0: at most N's svn 2, but below
# the revocation floor 1 that N's image pins) runs genuinely on this chip,
# makes a volume of its own and a pending slot for N on it, with evidence of
# its own that is valid in every other respect. N's unlock and commit judge
# that evidence by the floor of N's own image, without any clock: refused,
# header unchanged. Without a pinned floor (and without the opt-out) every
# pending slot is refused; the explicit opt-out, or a floor R meets, opens it.
MR=$(printf 'd4%.0s' $(seq 48))
manifest "$T/mr.json" 0.9 0 "$MR" 1 2
launch r "$T/chip" "$MR"
truncate -s 32M "$T/rev.img"
"$KEYD" enroll "$T/rev.img" --format --label 0.9 --backend sim --sim "unix:$T/r.sock" >/dev/null
"$TOOL" forge "$T/rev.img" --sim-x "unix:$T/r.sock" --sim-n "unix:$T/n.sock" \
	--manifest "$T/mr.json" --label 2.0 --svn 2 --evidence-self >/dev/null || fail "revoked: mint"
SHAR=$(sha256sum "$T/rev.img" | cut -d' ' -f1)
n_unlock() { # IMG OPTIONS...: N's dry-run unlock; stderr in $T/err
	"$KEYD" unlock "$1" --dry-run --release-keys "$T/keys.json" "${@:2}" --backend sim \
		--sim "unix:$T/n.sock" >"$T/out" 2>"$T/err"
}
if n_unlock "$T/rev.img" --peer-svn-floor 1; then fail "N opened a slot made by a revoked release"; fi
grep -q "O's release 0.9 svn 0 is below this image's revocation floor 1" "$T/err" ||
	fail "revoked: refusal: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" = 1 ] || fail "revoked: more than one line: $(cat "$T/err")"
if "$KEYD" commit "$T/rev.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/out" 2>"$T/err"; then
	fail "N committed a slot made by a revoked release"
fi
grep -q "below this image's revocation floor 1" "$T/err" || fail "revoked commit: $(cat "$T/err")"
[ "$(sha256sum "$T/rev.img" | cut -d' ' -f1)" = "$SHAR" ] || fail "revoked: refused unlock or commit wrote"
echo "ok: a pending slot made by a revoked signed release refused: $(cat "$T/err")"
if n_unlock "$T/rev.img"; then fail "N opened a pending slot with no floor pinned"; fi
grep -q "pins no revocation floor" "$T/err" || fail "no floor: $(cat "$T/err")"
if n_unlock "$T/disk.img"; then fail "N opened the genuine slot with no floor pinned"; fi
grep -q "pins no revocation floor" "$T/err" || fail "no floor (genuine): $(cat "$T/err")"
echo "ok: with no revocation floor pinned, pending slots are refused: $(cat "$T/err")"
n_unlock "$T/rev.img" --no-peer-svn-floor || fail "opt-out: $(cat "$T/err")"
n_unlock "$T/rev.img" --peer-svn-floor 0 || fail "floor 0: $(cat "$T/err")"
n_unlock "$T/disk.img" --peer-svn-floor 1 || fail "genuine O at the floor: $(cat "$T/err")"
if n_unlock "$T/disk.img" --peer-svn-floor 2; then fail "genuine O (svn 1) opened above the floor"; fi
echo "ok: the floor alone decides: the opt-out and a floor R meets open its slot; O (svn 1) opens at floor 1, not at 2"
# The TCB floor the image pins is applied to the maker's reported TCB too.
if n_unlock "$T/disk.img" --peer-svn-floor 1 --tcb-floor 7f00000000000000; then
	fail "N opened a slot whose maker's TCB is below the pinned floor"
fi
grep -q "O's reported TCB $MIN_TCB is below this image's floor 7f00000000000000" "$T/err" ||
	fail "TCB floor: $(cat "$T/err")"
n_unlock "$T/disk.img" --peer-svn-floor 1 --tcb-floor "$MIN_TCB" || fail "TCB at the floor: $(cat "$T/err")"
echo "ok: the pinned TCB floor judges the maker's reported TCB"

# O's report is judged under this chip's VCEK at its current reported TCB: a
# VCEK the AMD-SP really signs with (a fresh own report must verify under
# it). After a firmware update before N's first boot, O's report is from
# another TCB and no longer verifies: the pending slot is refused, and
# running the handoff again restores it.
SHA3=$(img_sha)
"$SIMFW" --state "$T/chip" tcb --current 0300000000000973 >/dev/null
if "$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >"$T/out" 2>"$T/err"; then
	fail "O's report verified under another TCB's VCEK"
fi
grep -q "does not verify under this chip's VCEK" "$T/err" || fail "TCB change: $(cat "$T/err")"
[ "$(img_sha)" = "$SHA3" ] || fail "refused unlock wrote"
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "handoff after the update: $(cat "$T/o.err" "$T/n.err")"
"$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "N after the new handoff"
echo "ok: O's evidence from another TCB refused; a new handoff restores N's slot"
echo "PASS: handoff pending slots"
