#!/bin/bash
# Seeds for the whole-image targets fuzz_volume and fuzz_admin: the header
# area of every hostile image of tests/hostile/gen.py (each class on a
# keyd-made and a cryptsetup-made volume), with a control byte in front
# (fuzz_image.h). Needs `make all`, cryptsetup, python3 and the fuzz build
# (tests/fuzz/run.sh --build volume admin).
#
# A seed that still crashes a target is a bug not yet fixed: it goes to
# tests/fuzz/known-broken/<target>/ instead of the corpus (the replay in CI
# would fail on it). When the fix lands, the same change moves it to
# tests/fuzz/regressions/<target>/; the directory must end up empty.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
export KEYD_BUILD=${KEYD_BUILD:-$PWD/build}
export KEYD_SRC=$PWD
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for t in volume admin; do
	[ -x "build-fuzz/fuzz_$t" ] || { echo "make-image-seeds: build-fuzz/fuzz_$t missing (tests/fuzz/run.sh --build volume admin)" >&2; exit 1; }
	rm -rf "tests/fuzz/corpus/$t" "tests/fuzz/known-broken/$t"
	mkdir -p "tests/fuzz/corpus/$t"
done
HOSTILE_SEEDS=$T/h bash tests/integration/55-hostile-headers.sh

# place TARGET NAME CONTROL_BYTE_OCTAL HEADER
place() {
	local t=$1 name=$2 dir=tests/fuzz/corpus/$1
	{ printf "\\$3"; cat "$4"; } >"$T/seed"
	if ! "build-fuzz/fuzz_$t" "$T/seed" >"$T/log" 2>&1; then
		dir=tests/fuzz/known-broken/$t
		mkdir -p "$dir"
	fi
	cp "$T/seed" "$dir/$name"
}
i=0
for h in "$T"/h/*; do
	name=$(basename "$h")
	place volume "$name" 000 "$h"
	# fuzz_admin, on the keyd-made volume only: operation i mod 8, keyslot
	# (i / 8) mod 4, never forced.
	case $name in
	*-keyd)
		ctl=$(((i % 8) << 2 | ((i / 8) % 4) << 5))
		place admin "$name" "$(printf '%03o' "$ctl")" "$h"
		i=$((i + 1))
		;;
	esac
done
for t in volume admin; do
	echo "fuzz_$t: $(find "tests/fuzz/corpus/$t" -type f | wc -l) seeds," \
		"$(find "tests/fuzz/known-broken/$t" -type f 2>/dev/null | wc -l) known broken"
done
