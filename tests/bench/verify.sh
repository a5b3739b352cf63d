#!/bin/bash
# Bench: SEV-SNP reports verified per second with a cached chain, next to
# OpenSSL's raw P-384 verify rate in the same run (issue 3 target: >= 80%).
# Also the uncached CLI (`keyd verify-report`, whole process with the chain
# checks) for scale.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
B=${KEYD_BUILD:-build}
V=${KEYD_VECTORS:-$(pwd)/tests/vectors}

[ -x "$B/bench/bench-verify" ] || make -s B="$B" "$B/bench/bench-verify" >/dev/null
"$B/bench/bench-verify" "$V" "${VERIFY_SECONDS:-0.3}" "${VERIFY_ROUNDS:-8}"

if [ -x "$B/keyd" ]; then
	d=$V/snp/virtee-sev-milan
	n=20
	t0=$(date +%s%N)
	for _ in $(seq $n); do "$B/keyd" verify-report "$d/report.bin" --vcek "$d/vcek.der" >/dev/null; done
	t1=$(date +%s%N)
	echo "keyd verify-report (process, uncached chain): $(((t1 - t0) / n / 1000)) us per report"
fi
