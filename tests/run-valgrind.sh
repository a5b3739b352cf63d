#!/bin/bash
# Run unit suites under valgrind memcheck: any memory error or definite leak
# fails. Check runs in-process (CK_FORK=no) so valgrind sees every test.
#   tests/run-valgrind.sh build/tests/test_*      (make check-valgrind)
# Logs: $VG_LOGDIR (default build/valgrind/<suite>.log). VG_JOBS parallel suites.
set -u
cd "$(dirname "$0")/.." || exit 1
command -v valgrind >/dev/null || { echo "check-valgrind: valgrind missing (make deps-valgrind)" >&2; exit 1; }
logdir=${VG_LOGDIR:-build/valgrind}
mkdir -p "$logdir"
supp=()
[ -f tests/valgrind.supp ] && supp=(--suppressions=tests/valgrind.supp)
export logdir
# Tests skip speed bounds and sample exhaustive loops under valgrind
# (tests/unit/helpers/vg.h); fixture chips come from $KEYD_BUILD/keyd-simfw.
export KEYD_UNDER_VALGRIND=1
export KEYD_BUILD=${KEYD_BUILD:-$PWD/build}
# --trace-children=no (the default, pinned here): a suite may exec keyd-simfw
# to make its fixture chips natively (tests/unit/helpers/chip.h).
VG=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --error-exitcode=99 --track-fds=no
	--trace-children=no --num-callers=30 "${supp[@]}")

run_one() {
	local t=$1 name start rc
	name=$(basename "$t")
	start=$(date +%s)
	CK_FORK=no CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} CK_VERBOSITY=silent \
		"${VG[@]}" --log-file="$logdir/$name.log" "$t" >"$logdir/$name.out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "PASS $name ($(( $(date +%s) - start ))s)"
	else
		echo "FAIL $name (rc $rc, $(( $(date +%s) - start ))s): $logdir/$name.log"
		head -n 40 "$logdir/$name.log"
		tail -n 5 "$logdir/$name.out"
	fi
	return $rc
}

start=$(date +%s)
fail=0
pids=()
jobs=${VG_JOBS:-$(nproc)}
results=$(mktemp)
for t in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.2; done
	{ run_one "$t" >"$results.$(basename "$t")" 2>&1; echo $? >>"$results"; } &
	pids+=($!)
done
wait
for t in "$@"; do cat "$results.$(basename "$t")"; rm -f "$results.$(basename "$t")"; done
fail=$(grep -cv '^0$' "$results" || true)
rm -f "$results"
echo "valgrind: $(( $# - fail ))/$# suites clean in $(( $(date +%s) - start ))s"
[ "$fail" -eq 0 ]
