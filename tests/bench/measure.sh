#!/bin/bash
# Bench: `keyd measure` on the real 3.6 MB Debian OVMF (no kernel) next to the
# raw SHA-384 of the same bytes, in the same run; medians of RUNS runs each,
# interleaved. Two views:
#   - whole processes: `keyd measure` vs `openssl dgst -sha384` (both read the
#     file and start up OpenSSL);
#   - in-process: kd_measure() vs one EVP SHA-384 pass over bytes in memory.
# The target (issue 3) is a ratio within 2x.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
B=${KEYD_BUILD:-build}
OVMF=${OVMF:-/usr/share/OVMF/OVMF_CODE_4M.fd}
RUNS=${RUNS:-15}

[ -x "$B/keyd" ] || { echo "measure: no $B/keyd (make all)"; exit 1; }
[ -r "$OVMF" ] || { echo "measure: no $OVMF (apt-get install ovmf)"; exit 1; }
cat "$OVMF" >/dev/null # warm the page cache for both sides

ms() { # run the command once, print its wall time in microseconds
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}
median() { sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }

m=() r=()
for _ in $(seq "$RUNS"); do
	m+=("$(ms "$B/keyd" measure --ovmf "$OVMF" --vcpus 1 --vcpu-type EPYC-v4)")
	r+=("$(ms openssl dgst -sha384 "$OVMF")")
done
mm=$(printf '%s\n' "${m[@]}" | median)
rm_=$(printf '%s\n' "${r[@]}" | median)

if [ -x "$B/bench/measure-bench" ]; then
	"$B/bench/measure-bench" "$OVMF" "$RUNS"
fi
ratio=$(awk -v a="$mm" -v b="$rm_" 'BEGIN {printf "%.2f", a / b}')
echo "measure: $mm ms, raw sha384 $rm_ ms, ratio $ratio (processes, $(stat -c %s "$OVMF") bytes, median of $RUNS; target <= 2)"
