#!/bin/bash
# Build and run the libFuzzer targets (tests/fuzz/fuzz_*.c).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]    fuzz each target SECONDS (default 60)
#   tests/fuzz/run.sh --build                  build only
#   tests/fuzz/run.sh --replay [TARGET...]     run the seed corpus and regress/ once
#
# Library sources are compiled with clang -fsanitize=fuzzer-no-link,address,
# undefined into build-fuzz/ (kept apart from the gcc build), each target is
# linked with -fsanitize=fuzzer. The committed seeds in tests/fuzz/corpus/<t>/
# are copied to build-fuzz/corpus/<t>/, where new inputs accumulate, so the
# tree is never written. Every input in tests/fuzz/regress/<t>/ (inputs that
# once crashed) is replayed first. Exit status: non-zero if any target
# crashed, leaked or broke a property; artifacts land in build-fuzz/crashes/<t>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLANG=${CLANG:-$(command -v clang-14 || echo clang)}
OUT=build-fuzz
JOBS=${FUZZ_JOBS:-$(nproc)}
mode=fuzz
secs=60
case "${1:-}" in
--build) mode=build; shift ;;
--replay) mode=replay; shift ;;
'') [ $# -gt 0 ] && shift ;;
*[!0-9]*) echo "usage: $0 [SECONDS|--build|--replay] [TARGET...]" >&2; exit 2 ;;
*) secs=$1; shift ;;
esac

if ! echo 'int main(void){return 0;}' | $CLANG -x c -fsanitize=fuzzer-no-link -c -o /dev/null - 2>/dev/null; then
	echo "fuzz: $CLANG cannot build fuzzers; run 'make deps-fuzz'" >&2
	exit 1
fi

PKGS="libcryptsetup openssl json-c devmapper blkid"
CFLAGS="-std=gnu11 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
	-fno-sanitize-recover=all -D_GNU_SOURCE -DKEYD_VERSION=\"fuzz\" -Ikeyd/include
	-Ikeyd/lib -Ikeyd/sim/include -Ikeyd/sim/cuse -Itests/fuzz -Wall -Wextra -Wno-unused-parameter
	$(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lgfshare"

# ---------------------------------------------------------------- build
mkdir -p "$OUT/obj"
# The emulated /dev/sev-guest's ABI, not its CUSE front end (libfuse3).
srcs=$(ls keyd/lib/*/*.c keyd/sim/*.c keyd/sim/cuse/sevguest.c | sort)
objs=()
stale=()
for s in $srcs; do
	o="$OUT/obj/${s//\//_}.o"
	objs+=("$o")
	# Rebuild when the source or any header is newer than the object.
	if [ ! -e "$o" ] || [ -n "$(find "$s" keyd/include keyd/sim keyd/lib \
		-name '*.h' -newer "$o" -o -path "$s" -newer "$o" 2>/dev/null | head -1)" ]; then
		stale+=("$s")
	fi
done
if [ ${#stale[@]} -gt 0 ]; then
	echo "fuzz: compiling ${#stale[@]} library sources with $CLANG"
	export CLANG CFLAGS OUT
	printf '%s\n' "${stale[@]}" | xargs -P "$JOBS" -I{} bash -c \
		's={}; $CLANG $CFLAGS -c "$s" -o "$OUT/obj/${s//\//_}.o"'
	rm -f "$OUT/libkeyd-fuzz.a"
fi
[ -e "$OUT/libkeyd-fuzz.a" ] || ar rcs "$OUT/libkeyd-fuzz.a" "${objs[@]}"

all_targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||' | sort)
targets=${*:-$all_targets}
for t in $targets; do
	src=tests/fuzz/fuzz_$t.c
	bin=$OUT/fuzz_$t
	[ -e "$src" ] || { echo "fuzz: no target $t" >&2; exit 2; }
	if [ ! -e "$bin" ] || [ "$src" -nt "$bin" ] || [ tests/fuzz/fuzz.h -nt "$bin" ] ||
		[ "$OUT/libkeyd-fuzz.a" -nt "$bin" ]; then
		echo "fuzz: linking fuzz_$t"
		# shellcheck disable=SC2086
		$CLANG $CFLAGS -fsanitize=fuzzer "$src" "$OUT/libkeyd-fuzz.a" $LIBS -o "$bin"
	fi
done
[ "$mode" = build ] && exit 0

# ---------------------------------------------------------------- run
# Per-target input caps: whole-input formats get room for their real size.
max_len() {
	case $1 in
	report) echo 2048 ;;
	luks2_header) echo 70000 ;;
	luks2_json | manifest | token | vek | certtable | handoff) echo 16384 ;;
	ovmf) echo 16384 ;;
	sim | sevguest) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

fail=0
summary=()
for t in $targets; do
	bin=$OUT/fuzz_$t
	seeds=tests/fuzz/corpus/$t
	regress=tests/fuzz/regress/$t
	work=$OUT/corpus/$t
	art=$OUT/crashes/$t/
	mkdir -p "$work" "$art"
	[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
	dict=()
	[ -e "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	common=(-max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$art"
		-print_final_stats=1 "${dict[@]}")

	if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
		if ! "$bin" "${common[@]}" "$regress"/* >"$OUT/$t.regress.log" 2>&1; then
			echo "FAIL fuzz_$t: a regression input crashes again (see $OUT/$t.regress.log)"
			fail=1
			continue
		fi
	fi
	log=$OUT/$t.log
	if [ "$mode" = replay ]; then
		set +e
		"$bin" "${common[@]}" -runs=0 "$work" >"$log" 2>&1
		rc=$?
		set -e
	else
		set +e
		"$bin" "${common[@]}" -max_total_time="$secs" "$work" >"$log" 2>&1
		rc=$?
		set -e
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
	line=$(printf '%-14s execs %-10s cov %-6s ft %-6s corpus %-5s' "$t" "${execs:-?}" \
		"${cov:-?}" "${ft:-?}" "${corp:-?}")
	if [ $rc -ne 0 ]; then
		summary+=("$line FAIL (rc $rc, $log)")
		echo "FAIL fuzz_$t (rc $rc):"
		grep -E 'ERROR|property broken|SUMMARY|Test unit written' "$log" | head -8 || true
		fail=1
	else
		summary+=("$line ok")
		echo "ok   fuzz_$t"
	fi
done
echo "fuzz summary (${secs}s per target in fuzz mode):"
printf '  %s\n' "${summary[@]}"
exit $fail
