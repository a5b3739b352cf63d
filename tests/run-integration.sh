#!/bin/bash
# Run every integration test (tests/integration/*.sh). Exit 77 means skip.
set -u
cd "$(dirname "$0")/.."
fail=0 pass=0 skip=0
for t in tests/integration/*.sh; do
	[ -e "$t" ] || continue
	start=$(date +%s)
	bash "$t" >"/tmp/keyd-it-$(basename "$t").log" 2>&1
	rc=$?
	end=$(date +%s)
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $t ($((end - start))s)" ;;
	77) skip=$((skip + 1)); echo "SKIP $t" ;;
	*) fail=$((fail + 1)); echo "FAIL $t (rc $rc)"; tail -n 30 "/tmp/keyd-it-$(basename "$t").log" ;;
	esac
done
echo "integration: $pass passed, $skip skipped, $fail failed"
[ "$fail" -eq 0 ]
