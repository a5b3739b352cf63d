# Shared setup of the handoff integration tests (60-*.sh .. 69-*.sh); sourced, not run.
# One simulated chip, 3 release keys (2 of 3 pinned), manifests for O (1.0, svn 1)
# and N (2.0, svn 2), an O launch and an N launch, and a volume enrolled by O.

B=${KEYD_BUILD:?}
KEYD_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KEYD=${KEYD:-$B/keyd}
SIMFW=$B/keyd-simfw
[ -x "$SIMFW" ] && [ -x "$KEYD" ] || { echo "SKIP: binaries not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
# An interrupt ends the test through cleanup: no simulator or peer left running.
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=tests/lib.bash
. "$KEYD_SRC_DIR/tests/lib.bash"
kd_loud

MO=$(printf 'a1%.0s' $(seq 48))
MN=$(printf 'b2%.0s' $(seq 48))
# shellcheck disable=SC2034 # a measurement no manifest lists, for the tests
MX=$(printf 'c3%.0s' $(seq 48))
FUTURE=2099-01-01T00:00:00Z

# A free loopback port (bind to 0, report, release).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Start one launch on a chip; waits until the socket exists.
launch() { # name chipdir measurement [serve options...]
	local name=$1 chip=$2 meas=$3
	shift 3
	"$SIMFW" --state "$chip" serve --listen "unix:$T/$name.sock" --measurement "$meas" "$@" \
		2>"$T/$name.simlog" &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -S "$T/$name.sock" ] && return 0
		sleep 0.05
	done
	fail "simfw launch $name did not start"
}

# Backend options of the launches o, n and m (arrays: no word splitting).
# shellcheck disable=SC2034 # each test uses some of them
SIM_o=(--backend sim --sim "unix:$T/o.sock")
# shellcheck disable=SC2034
SIM_n=(--backend sim --sim "unix:$T/n.sock")
# shellcheck disable=SC2034
SIM_m=(--backend sim --sim "unix:$T/m.sock")

# manifest FILE LABEL SVN MEAS [signing key numbers...]; every release carries
# the chip's TCB as its floor (MIN_TCB, set by setup_world) and, when
# MANIFEST_EXTRA is set, those extra `manifest create` options.
manifest() {
	local f=$1 label=$2 svn=$3 meas=$4
	shift 4
	# shellcheck disable=SC2086 # option list, split on purpose
	"$KEYD" manifest create --version-label "$label" --svn "$svn" --measurement "$meas" \
		--not-before "${NOT_BEFORE:-2020-01-01T00:00:00Z}" --not-after "${NOT_AFTER:-$FUTURE}" \
		${MIN_TCB:+--min-tcb "milan:$MIN_TCB"} ${MANIFEST_EXTRA:-} -o "$f"
	for k in "$@"; do "$KEYD" manifest sign "$f" --key "$T/k$k.pem"; done
}

setup_world() {
	"$SIMFW" --state "$T/chip" init --product milan >/dev/null 2>&1
	"$SIMFW" --state "$T/chip" certs --out "$T/certs" >/dev/null
	MIN_TCB=$("$SIMFW" --state "$T/chip" show | sed -n 's/^current_tcb *\([0-9a-f]*\).*/\1/p')
	[ ${#MIN_TCB} = 16 ] || fail "cannot read the simulated chip's TCB"
	for i in 1 2 3 4; do "$KEYD" manifest keygen -o "$T/k$i.pem" --pub "$T/k$i.pub"; done
	# Key 4 is not pinned: its signatures count for nothing.
	"$KEYD" manifest keys --threshold 2 -o "$T/keys.json" "$T/k1.pub" "$T/k2.pub" "$T/k3.pub"
	manifest "$T/mo.json" 1.0 1 "$MO" 1 2
	manifest "$T/mn.json" 2.0 2 "$MN" 1 3
	launch o "$T/chip" "$MO"
	launch n "$T/chip" "$MN"
	truncate -s 32M "$T/disk.img"
	"$KEYD" enroll "$T/disk.img" --format --label 1.0 "${SIM_o[@]}" >/dev/null
}

COMMON=(--release-keys "$T/keys.json" --ark "$T/certs/ark.pem")
# What N's unlock and commit judge a pending slot's evidence with: the
# image's pinned keys and revocation floor (/etc/keyd/release-keys.json and
# /etc/keyd/peer-svn-floor in a real image). O's release 1.0 has svn 1.
# shellcheck disable=SC2034 # used by the tests that source this file
RK=(--release-keys "$T/keys.json" --peer-svn-floor 1)

# serve_bg [extra serve options...]: O in the background on $PORT; pid in OPID.
serve_bg() {
	PORT=$(free_port)
	"$KEYD" handoff serve --listen "127.0.0.1:$PORT" --device "$T/disk.img" \
		--manifest "${O_MANIFEST:-$T/mo.json}" "${COMMON[@]}" --backend sim --sim "unix:$T/${O_LAUNCH:-o}.sock" \
		--timeout "${O_TIMEOUT:-20}" "$@" >"$T/o.out" 2>"$T/o.err" &
	OPID=$!
	PIDS+=("$OPID")
}

# receive [extra options...]: N in the foreground; exit code in NRC.
receive() {
	NRC=0
	"$KEYD" handoff receive --connect "127.0.0.1:$PORT" --manifest "${N_MANIFEST:-$T/mn.json}" \
		"${COMMON[@]}" --backend sim --sim "unix:$T/${N_LAUNCH:-n}.sock" --timeout "${N_TIMEOUT:-20}" "$@" \
		>"$T/n.out" 2>"$T/n.err" || NRC=$?
}

wait_o() { ORC=0; wait "$OPID" || ORC=$?; }

img_sha() { sha256sum "$T/disk.img" | cut -d' ' -f1; }

# expect_refused WHAT PATTERN_O PATTERN_N: both exit 1, messages, image unchanged.
expect_refused() {
	local what=$1 po=$2 pn=$3
	[ "$ORC" = 1 ] || { cat "$T/o.err"; fail "$what: O exit $ORC, want 1"; }
	[ "$NRC" = 1 ] || { cat "$T/n.err"; fail "$what: N exit $NRC, want 1"; }
	grep -Eq "$po" "$T/o.err" || fail "$what: O said: $(cat "$T/o.err")"
	grep -Eq "$pn" "$T/n.err" || fail "$what: N said: $(cat "$T/n.err")"
	[ "$(img_sha)" = "$SHA0" ] || fail "$what: O's volume changed"
	[ "$(wc -l <"$T/o.err")" = 1 ] || fail "$what: O printed more than one line"
	echo "ok: refused: $what"
}
