#!/bin/bash
# The last step of `make check CHECK_BESIDE_VM="..."` (CI): check-vm, with the
# given make targets (check-asan fuzz-replay) run one after another beside it.
# A TCG guest keeps one core busy and the other mostly idle; the sanitizer
# build and the fuzz replay use that core instead of waiting their turn. Both
# sides always run to the end; the step fails if either side failed, and the
# side jobs' output follows check-vm's.
#
# They share nothing check-vm writes: the sanitizers build into build-asan/
# (and reuse the failpoint build check-integration made), the replay into
# build-fuzz/; the integration tests' TCP ports and the guests' UDP links are
# chosen free at run time.
set -uo pipefail

: "${KEYD_BUILD:?run from make}"
targets=${1:?usage: beside-vm.sh "TARGET..."}
log=$KEYD_BUILD/beside-vm.log
mkdir -p "$KEYD_BUILD"

side() {
	local t
	for t in $targets; do
		echo "== make $t (beside check-vm)"
		make --no-print-directory "$t" || { echo "== make $t FAILED"; return 1; }
	done
}

side >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 130' INT TERM

make --no-print-directory check-vm
vm=$?
wait "$pid"
sd=$?
trap - INT TERM

echo "== output of make $targets (run beside check-vm):"
cat "$log"
if [ "$vm" -ne 0 ]; then
	echo "beside-vm: check-vm failed (exit $vm)" >&2
fi
if [ "$sd" -ne 0 ]; then
	echo "beside-vm: make $targets failed (exit $sd): see the output above" >&2
fi
[ "$vm" -eq 0 ] && [ "$sd" -eq 0 ]
