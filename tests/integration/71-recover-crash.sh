#!/bin/bash
# Crash safety of keyd-recover unlock --rotate-escrow: SIGKILL at each of its
# header writes (recover.after-keyslot, recover.after-token,
# escrow.after-keyslot, escrow.after-token, escrow.after-old-token) never
# leaves a volume that nothing opens: afterwards the recovered chip's slot or
# the escrow still works, status says the volume is openable, and the
# recovery can be finished. Needs the failpoint build (make FP=1 B=build-fp).
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
FPB=${KEYD_BUILD_FP:-${KEYD_SRC:-.}/build-fp}
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
[ -x "$FPB/keyd-recover" ] || { echo "SKIP: no failpoint build (make FP=1)"; exit 77; }
grep -qa KEYD_FAILPOINT "$FPB/keyd-recover" || { echo "SKIP: $FPB lacks failpoints"; exit 77; }
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
M=$(printf 'c0de%.0s' $(seq 24))
serve() {
	local n=$1
	"$B/keyd-simfw" --state "chip$n" init --tcb 0300000000000873 >/dev/null 2>&1
	"$B/keyd-simfw" --state "chip$n" serve --listen "unix:$T/$n.sock" --measurement "$M" 2>"$n.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -S "$T/$n.sock" ] && return 0; sleep 0.1; done
	fail "simulator $n did not start"
}
serve A
serve B
for a in alice bob op; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout $a.key -out $a.crt \
		-subj "/CN=$a" -days 2 2>/dev/null
done
truncate -s 32M base.img
KEYD_SIM=unix:$T/A.sock "$B/keyd" enroll base.img --format --escrow alice.crt --escrow bob.crt \
	--threshold 2 >/dev/null
KEYD_SIM=unix:$T/A.sock "$B/keyd-recover" export-shares base.img --out shares >/dev/null
for i in 1 2; do
	a=$([ $i = 1 ] && echo alice || echo bob)
	"$B/keyd-recover" decrypt-share shares/share-$i.der --key $a.key --cert $a.crt --to op.crt \
		--out op$i.der >/dev/null
done
export KEYD_SIM=unix:$T/B.sock
recover() { # BINARY IMAGE
	"$1" unlock "$2" --share op1.der --share op2.der --key op.key --cert op.crt --dry-run \
		--rotate-escrow --admin alice.crt --admin bob.crt
}

for fp in recover.after-keyslot recover.after-token escrow.after-keyslot escrow.after-token \
	escrow.after-old-token; do
	cp base.img img
	rc=0
	KEYD_FAILPOINT=$fp recover "$FPB/keyd-recover" img >/dev/null 2>&1 || rc=$?
	[ $rc -eq 137 ] || fail "$fp: expected SIGKILL (137), got $rc"
	# Some way in works now: chip B's own slot, or the old shares.
	if ! "$B/keyd" unlock img --dry-run >/dev/null 2>&1 &&
		! "$B/keyd-recover" unlock img --share op1.der --share op2.der --key op.key --cert op.crt \
			--check >/dev/null 2>&1; then
		fail "$fp: after the kill neither chip B nor the old shares open the volume"
	fi
	"$B/keyd-recover" status img --json >st.json 2>/dev/null || fail "$fp: status"
	python3 -c 'import json,sys; assert json.load(open("st.json"))["verdict"]["openable"]' \
		|| fail "$fp: status says not openable"
	# The recovery finishes: rerun it if the old shares still count, and
	# chip B unlocks through the normal path either way.
	if "$B/keyd-recover" unlock img --share op1.der --share op2.der --key op.key --cert op.crt \
		--check >/dev/null 2>&1; then
		recover "$B/keyd-recover" img >out 2>err || fail "$fp: rerun of the recovery: $(cat err)"
	fi
	"$B/keyd" unlock img --dry-run >/dev/null || fail "$fp: chip B cannot unlock after finishing"
	# A keyslot the kill left without a token is named, and retire removes it.
	"$B/keyd-recover" status img --json >st.json
	for s in $(python3 -c 'import json; print(*[k["keyslot"] for k in json.load(open("st.json"))["keyslots"] if k["kind"] == "untokened"])'); do
		python3 -c 'import json,sys; assert any("keyslot %s has no token" % sys.argv[1] in n for n in json.load(open("st.json"))["verdict"]["next"])' "$s" \
			|| fail "$fp: status does not name untokened keyslot $s"
		"$B/keyd-recover" retire img "$s" >/dev/null || fail "$fp: retire untokened keyslot $s"
	done
	"$B/keyd" unlock img --dry-run >/dev/null || fail "$fp: chip B cannot unlock after the clean-up"
	echo "ok: $fp"
done
echo ok
