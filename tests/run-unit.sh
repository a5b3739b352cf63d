#!/bin/bash
# Run every Check unit suite; fail if any fails. Check's own output is kept.
set -u
fail=0
total=0
for t in "$@"; do
	total=$((total + 1))
	if ! CK_VERBOSITY=${CK_VERBOSITY:-normal} "$t"; then
		echo "FAIL: $t" >&2
		fail=$((fail + 1))
	fi
done
echo "unit: $((total - fail))/$total suites passed"
[ "$fail" -eq 0 ]
