#!/bin/bash
# make bench: every benchmark piece, side by side with its alternative, in one run.
# Each piece prints its own comparison lines; this prints a summary at the end.
set -u
cd "$(dirname "$0")/../.." || exit 1
summary=()
for piece in verify measure unlock handoff boot integrity rotate rotate-guest guestos; do
	script=tests/bench/$piece.sh
	[ -x "$script" ] || continue
	echo "== bench: $piece"
	out=$("$script" 2>&1)
	rc=$?
	echo "$out"
	if [ $rc -ne 0 ]; then
		summary+=("$piece: FAILED (rc $rc)")
	else
		summary+=("$(echo "$out" | grep -E '^(RESULT|ratio|[a-z-]+:)' | tail -n 3)")
	fi
done
echo
echo "== bench summary"
printf '%s\n' "${summary[@]}"
