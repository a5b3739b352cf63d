#!/bin/bash
# Crash safety of the handoff and of commit: O (or N's commit) is SIGKILLed
# at every failpoint around a header write (make FP=1 build). After each
# kill the volume still opens with O's key, and a rerun completes without
# piling up slots.
set -euo pipefail
# shellcheck source=tests/integration/handoff-lib.bash
. "$(dirname "$0")/handoff-lib.bash"

FP=${KEYD_BUILD_FP:-${KEYD_SRC:-.}/build-fp}/keyd
[ -x "$FP" ] || { echo "SKIP: no failpoint build (make FP=1)"; exit 77; }
grep -qa KEYD_FAILPOINT "$FP" || { echo "SKIP: $FP lacks failpoints"; exit 77; }

setup_world
O_TIMEOUT=10

n_tokens_for() { # measurement -> count of keyd tokens sealed to it
	"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
	python3 -c 'import json,sys; print(sum(t["measurement"]==sys.argv[2] for t in json.load(open(sys.argv[1]))["tokens"]))' \
		"$T/st.json" "$1"
}
n_keyslots() {
	cryptsetup luksDump --dump-json-metadata "$T/disk.img" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keyslots"]))'
}
o_opens() { "$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/o.sock" >/dev/null || fail "$1: O's key no longer opens"; }
n_opens() { "$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "$1: N's key does not open"; }

for fp in handoff.before-keyslot handoff.after-keyslot handoff.after-token; do
	KEYD=$FP KEYD_FAILPOINT=$fp serve_bg
	# N retries a dropped connection until its deadline: keep that short.
	N_TIMEOUT=3 receive
	wait_o
	[ "$ORC" = 137 ] || fail "$fp: O was not killed (exit $ORC): $(cat "$T/o.err")"
	[ "$NRC" = 1 ] || fail "$fp: N exit $NRC"
	o_opens "$fp"
	# Redo: completes, and leaves exactly one slot for N.
	serve_bg
	receive
	wait_o
	[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "$fp: rerun: O $ORC N $NRC: $(cat "$T/o.err" "$T/n.err")"
	o_opens "$fp rerun"
	n_opens "$fp rerun"
	[ "$(n_tokens_for "$MN")" = 1 ] || fail "$fp: N has $(n_tokens_for "$MN") tokens after rerun"
	echo "ok: O killed at $fp; volume opens with O's key; rerun completed ($(n_keyslots) keyslots)"
done
[ "$(n_keyslots)" = 2 ] || fail "keyslots left behind across reruns: $(n_keyslots)"

# A keyslot left without a token (O killed after the keyslot write; its
# one-time secrets died with O) is killed by the next handoff, and a kill
# right after that reclaim is safe too.
KEYD=$FP KEYD_FAILPOINT=handoff.after-keyslot serve_bg
receive
wait_o
[ "$ORC" = 137 ] || fail "orphan set-up: O exit $ORC"
# O's slot and the orphan; N's earlier pending slot was replaced.
[ "$(n_keyslots)" = 2 ] && [ "$(n_tokens_for "$MN")" = 0 ] ||
	fail "orphan set-up: $(n_keyslots) keyslots, $(n_tokens_for "$MN") N tokens"
KEYD=$FP KEYD_FAILPOINT=handoff.after-reclaim serve_bg
receive
wait_o
[ "$ORC" = 137 ] || fail "handoff.after-reclaim: O was not killed (exit $ORC): $(cat "$T/o.err")"
o_opens handoff.after-reclaim
serve_bg
receive
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "after-reclaim rerun: $(cat "$T/o.err" "$T/n.err")"
n_opens "handoff.after-reclaim rerun"
[ "$(n_keyslots)" = 2 ] || fail "orphaned keyslot not reclaimed: $(n_keyslots) keyslots"
echo "ok: O killed at handoff.after-reclaim; the orphaned keyslot is gone after the rerun"

# commit: killed at each failpoint, N still opens, a rerun finishes the job:
# N active with a slot sealed to N (no wrapped secrets left), O retired, and
# no pending slot or orphaned keyslot left behind.
n_wrapped() {
	"$KEYD" status "$T/disk.img" --json --backend sim --sim "unix:$T/n.sock" >"$T/st.json" || true
	python3 -c 'import json,sys; print(sum(1 for t in json.load(open(sys.argv[1]))["tokens"] if t["wrapped"]))' "$T/st.json"
}
reset_pending() { # back to "O active, N pending"
	truncate -s 0 "$T/disk.img"
	truncate -s 32M "$T/disk.img"
	"$KEYD" enroll "$T/disk.img" --format --force --label 1.0 --backend sim --sim "unix:$T/o.sock" >/dev/null
	serve_bg
	receive
	wait_o
	[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "re-setup failed: $(cat "$T/o.err" "$T/n.err")"
}
for fp in commit.before-activate commit.after-keyslot commit.after-token commit.before-kill \
	commit.after-kill commit.after-retire commit.after-reclaim; do
	if [ "$fp" = commit.after-reclaim ]; then
		# Needs an orphan: first a kill between N's keyslot and token writes.
		KEYD_FAILPOINT=commit.after-keyslot "$FP" commit "$T/disk.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null 2>&1 || true
	fi
	rc=0
	KEYD_FAILPOINT=$fp "$FP" commit "$T/disk.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null 2>&1 || rc=$?
	[ "$rc" = 137 ] || fail "$fp: commit was not killed (exit $rc)"
	n_opens "$fp"
	"$KEYD" commit "$T/disk.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock" >/dev/null || fail "$fp: commit rerun failed"
	n_opens "$fp rerun"
	"$KEYD" status "$T/disk.img" --json "${SIM_n[@]}" >"$T/st.json" || true
	python3 - "$T/st.json" "$MO" "$MN" <<'EOF' || fail "$fp: states after rerun: $(cat "$T/st.json")"
import json, sys
toks = json.load(open(sys.argv[1]))["tokens"]
by = {t["measurement"]: t["state"] for t in toks}
assert len(toks) == 2, toks
assert by[sys.argv[3]] == "active" and by[sys.argv[2]] == "retired", by
EOF
	[ "$(n_wrapped)" = 0 ] || fail "$fp: wrapped secrets left after commit"
	[ "$(n_keyslots)" = 2 ] || fail "$fp: $(n_keyslots) keyslots after the rerun"
	echo "ok: commit killed at $fp; rerun completed"
	[ "$fp" = commit.after-reclaim ] || reset_pending
done
echo "PASS: handoff crash safety"
