#!/bin/bash
# Build and run the libFuzzer targets (tests/fuzz/fuzz_*.c).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]    campaign: fuzz each target SECONDS (default 60)
#   tests/fuzz/run.sh --build [TARGET...]      build only
#   tests/fuzz/run.sh --replay [TARGET...]     deterministic replay (what CI runs)
#
# Library sources are compiled with clang -fsanitize=fuzzer-no-link,address,
# undefined into build-fuzz/ (kept apart from the gcc build), each target is
# linked with -fsanitize=fuzzer.
#
# --replay (make fuzz-replay, .ci/run) runs every target once over each file
# of its committed seed corpus tests/fuzz/corpus/<t>/ and its regression
# inputs tests/fuzz/regressions/<t>/: no mutation, no time limit, the same
# inputs on every run, nothing written to the tree.
#
# A campaign (make fuzz FUZZ_SECONDS=N) replays the regressions first, then
# fuzzes from a copy of the seeds in build-fuzz/corpus/<t>/, where new inputs
# accumulate, so the tree is never written. A crash, leak or broken property
# lands in build-fuzz/crashes/<t>/. The rule for such a finding: the change
# that fixes it also adds the input to tests/fuzz/regressions/<t>/ (named
# after what it exercises) and a unit test where the bug has a unit, so that
# the replay in CI keeps it fixed.
#
# Exit status: non-zero if any target crashed, leaked or broke a property.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
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

PKGS=(libcryptsetup openssl json-c devmapper blkid)
read -ra PKG_CFLAGS <<<"$(pkg-config --cflags "${PKGS[@]}")"
read -ra LIBS <<<"$(pkg-config --libs "${PKGS[@]}") -lgfshare"
CFLAGS=(-std=gnu11 -O1 -g -fno-omit-frame-pointer '-fsanitize=fuzzer-no-link,address,undefined'
	-fno-sanitize-recover=all -D_GNU_SOURCE '-DKEYD_VERSION="fuzz"' -Ikeyd/include
	-Ikeyd/lib -Ikeyd/sim/include -Ikeyd/sim/cuse -Itests/fuzz -Wall -Wextra -Wno-unused-parameter
	"${PKG_CFLAGS[@]}")

# ---------------------------------------------------------------- build
mkdir -p "$OUT/obj"
# The emulated /dev/sev-guest's ABI, not its CUSE front end (libfuse3).
objs=()
stale=()
for s in keyd/lib/*/*.c keyd/sim/*.c keyd/sim/cuse/sevguest.c; do
	o="$OUT/obj/${s//\//_}.o"
	objs+=("$o")
	# Rebuild when the source or any header is newer than the object.
	if [ ! -e "$o" ] || [ -n "$(find "$s" keyd/include keyd/sim keyd/lib \
		\( -name '*.h' -o -path "$s" \) -newer "$o" -print -quit 2>/dev/null)" ]; then
		stale+=("$s")
	fi
done
if [ ${#stale[@]} -gt 0 ]; then
	echo "fuzz: compiling ${#stale[@]} library sources with $CLANG"
	cc_pids=()
	for s in "${stale[@]}"; do
		while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
		"$CLANG" "${CFLAGS[@]}" -c "$s" -o "$OUT/obj/${s//\//_}.o" &
		cc_pids+=("$!")
	done
	for p in "${cc_pids[@]}"; do wait "$p"; done
	rm -f "$OUT/libkeyd-fuzz.a"
fi
[ -e "$OUT/libkeyd-fuzz.a" ] || ar rcs "$OUT/libkeyd-fuzz.a" "${objs[@]}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		t=${src#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi
for t in "${targets[@]}"; do
	src=tests/fuzz/fuzz_$t.c
	bin=$OUT/fuzz_$t
	[ -e "$src" ] || { echo "fuzz: no target $t" >&2; exit 2; }
	if [ ! -e "$bin" ] || [ "$src" -nt "$bin" ] || [ tests/fuzz/fuzz.h -nt "$bin" ] ||
		[ "$OUT/libkeyd-fuzz.a" -nt "$bin" ]; then
		echo "fuzz: linking fuzz_$t"
		"$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer "$src" "$OUT/libkeyd-fuzz.a" "${LIBS[@]}" -o "$bin"
	fi
done
[ "$mode" = build ] && exit 0

# ---------------------------------------------------------------- run
# Per-target input caps: whole-input formats get room for their real size.
max_len() {
	case $1 in
	report) echo 2048 ;;
	luks2_header | volume | admin) echo 70000 ;;
	luks2_json | manifest | token | vek | certtable | handoff) echo 16384 ;;
	ovmf) echo 16384 ;;
	sim | sevguest) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

# inputs DIR...: every regular file in the DIRs, in a stable order.
inputs() {
	local d f
	for d in "$@"; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do [ -f "$f" ] && printf '%s\n' "$f"; done
	done | LC_ALL=C sort
}

fail=0
summary=()
for t in "${targets[@]}"; do
	bin=$OUT/fuzz_$t
	seeds=tests/fuzz/corpus/$t
	regress=tests/fuzz/regressions/$t
	art=$OUT/crashes/$t/
	log=$OUT/$t.log
	mkdir -p "$art"
	dict=()
	[ -e "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	common=(-max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$art"
		-print_final_stats=1 "${dict[@]}")

	if [ "$mode" = replay ]; then
		# Files as arguments: libFuzzer runs each once and mutates nothing.
		mapfile -t files < <(inputs "$regress" "$seeds")
		if [ ${#files[@]} -eq 0 ]; then
			summary+=("$(printf '%-16s no inputs' "$t") FAIL")
			echo "FAIL fuzz_$t: no seed corpus or regression inputs to replay"
			fail=1
			continue
		fi
		rc=0
		"$bin" "${common[@]}" "${files[@]}" >"$log" 2>&1 || rc=$?
		line=$(printf '%-16s %5d inputs replayed' "$t" "${#files[@]}")
	else
		mapfile -t files < <(inputs "$regress")
		if [ ${#files[@]} -gt 0 ] &&
			! "$bin" "${common[@]}" "${files[@]}" >"$OUT/$t.regress.log" 2>&1; then
			echo "FAIL fuzz_$t: a regression input crashes again (see $OUT/$t.regress.log)"
			summary+=("$(printf '%-16s regression' "$t") FAIL")
			fail=1
			continue
		fi
		work=$OUT/corpus/$t
		mkdir -p "$work"
		[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
		rc=0
		"$bin" "${common[@]}" -max_total_time="$secs" "$work" >"$log" 2>&1 || rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
		cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
		ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
		corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
		line=$(printf '%-16s execs %-10s cov %-6s ft %-6s corpus %-5s' "$t" "${execs:-?}" \
			"${cov:-?}" "${ft:-?}" "${corp:-?}")
	fi
	if [ "$rc" -ne 0 ]; then
		summary+=("$line FAIL (rc $rc, $log)")
		echo "FAIL fuzz_$t (rc $rc):"
		grep -E 'ERROR|property broken|SUMMARY|Test unit written|^Running: ' "$log" | tail -n 8 || true
		fail=1
	else
		summary+=("$line ok")
		echo "ok   fuzz_$t"
	fi
done
if [ "$mode" = replay ]; then
	echo "fuzz replay (seed corpus + regressions, each input once):"
else
	echo "fuzz summary (${secs}s per target):"
fi
printf '  %s\n' "${summary[@]}"
exit $fail
