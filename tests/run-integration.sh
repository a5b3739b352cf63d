#!/bin/bash
# Run every integration test (tests/integration/*.sh). Exit 77 means skip.
# Logs go to a fresh mktemp -d directory (named on failure), so concurrent
# runs (the normal and the ASan build) cannot overwrite each other's logs.
set -u
cd "$(dirname "$0")/.." || exit 1
logdir=$(mktemp -d /tmp/keyd-it.XXXXXX) || exit 1
fail=0 pass=0 skip=0
for t in tests/integration/*.sh; do
	[ -e "$t" ] || continue
	log="$logdir/$(basename "$t").log"
	start=$(date +%s)
	bash "$t" >"$log" 2>&1
	rc=$?
	end=$(date +%s)
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $t ($((end - start))s)" ;;
	77) skip=$((skip + 1)); why=$(tail -n 1 "$log"); echo "SKIP $t${why:+: $why}" ;;
	*) fail=$((fail + 1)); echo "FAIL $t (rc $rc, log $log)"; tail -n 30 "$log" ;;
	esac
done
echo "integration: $pass passed, $skip skipped, $fail failed"
if [ "$fail" -eq 0 ]; then
	rm -rf "$logdir"
else
	echo "integration: logs kept in $logdir"
fi
[ "$fail" -eq 0 ]
