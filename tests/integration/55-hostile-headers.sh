#!/bin/bash
# Hostile LUKS2 headers against every keyd and keyd-recover command that
# takes a device. Each class of tests/hostile/gen.py is applied to two
# volumes: one made by `keyd enroll --format` (with a 2-of-2 escrow) and one
# made by cryptsetup (two keyslots, a copy of a keyd token, a foreign token).
# For every (class, volume, command), under `timeout`:
#
#   crash     exit status >= 128, or a sanitizer / json-c assertion report
#   hang      the timeout fired
#   exit      an exit status other than 0, 1 (usage errors are bugs here)
#   wrote     a read-only command changed the image, or a refusal changed it
#   lines     a refusal (exit 1) printed other than exactly one line on stderr
#   accepted  libcryptsetup rejects the header (luksDump, or for the keyd
#             volume `open --test-passphrase` with its keyd passphrase, both
#             on a private copy) but a command opened, handed out a key,
#             changed the volume or reported it openable
#   restore   header-restore reported success but left a header
#             libcryptsetup rejects
#
# KNOWN_BROKEN lists the failures expected on this branch, as glob patterns
# "CLASS VOLUME COMMAND CHECK". A case that matches is reported as XFAIL; one
# that no longer fails is reported as XPASS and fails the test, so the list
# can only shrink. It must end up empty.
#
#   HOSTILE_ONLY=REGEX   run only the classes whose name matches
#   HOSTILE_TIMEOUT=S    per-command timeout (default 60)
#   HOSTILE_JOBS=N       parallel workers (default 2)
#   HOSTILE_SEEDS=DIR    only write DIR/CLASS-VOLUME (the header area of every
#                        hostile image: seeds for fuzz_volume and fuzz_admin,
#                        see tests/fuzz/make-image-seeds.sh) and exit
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
S=${KEYD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
GEN=$S/tests/hostile/gen.py
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
command -v python3 >/dev/null && command -v openssl >/dev/null || { echo "SKIP: python3/openssl missing"; exit 77; }
TMO=${HOSTILE_TIMEOUT:-60}
# A crash is reported by its exit status; no core dumps of hostile runs.
ulimit -c 0

# KNOWN_BROKEN: failures expected on a branch whose library fix is still to
# land ("CLASS CMD VOLUME FAILURE" globs). A line that matches nothing fails
# the test, so the list only shrinks; on main it is empty.
KNOWN_BROKEN=(
)

T=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---------------------------------------------------------------- the two volumes
M=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M" 2>sim.log &
pid=$!
for _ in $(seq 100); do [ -S sim.sock ] && break; sleep 0.05; done
[ -S sim.sock ] || fail "keyd-simfw did not start: $(cat sim.log)"
export KEYD_SIM=unix:$T/sim.sock
for a in alice bob op; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout $a.key \
		-out $a.crt -subj "/CN=$a" -days 2 2>/dev/null
done

truncate -s 20M keyd.img
"$B/keyd" enroll keyd.img --format --label hostile-1 --escrow alice.crt --escrow bob.crt \
	--threshold 2 >/dev/null
"$B/keyd" passphrase keyd.img >keyd.pass
mkdir shares
"$B/keyd-recover" export-shares keyd.img --out shares >/dev/null
i=0
for f in shares/share-*.der; do
	i=$((i + 1))
	who=alice
	[ $i -eq 2 ] && who=bob
	"$B/keyd-recover" decrypt-share "$f" --key $who.key --cert $who.crt --to op.crt \
		--out "op-share-$i.der" >/dev/null
done
"$B/keyd-recover" unlock keyd.img --share op-share-1.der --share op-share-2.der --key op.key \
	--cert op.crt --check >/dev/null || fail "escrow shares do not check on the healthy volume"

truncate -s 20M cs.img
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >cs.pass
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--sector-size 4096 --key-file cs.pass cs.img
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >cs2.pass
cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file cs.pass \
	--new-keyfile cs2.pass cs.img
cryptsetup token export --token-id 0 keyd.img >keyd-token.json
cryptsetup token import --token-id 0 --json-file keyd-token.json cs.img
echo '{"type":"systemd-recovery","keyslots":["1"]}' | cryptsetup token import --token-id 1 --json-file - cs.img

"$B/keyd-recover" header-backup keyd.img keyd.backup >/dev/null
"$B/keyd-recover" header-backup cs.img cs.backup >/dev/null 2>&1 || cryptsetup luksHeaderBackup cs.img --header-backup-file cs.backup

# ---------------------------------------------------------------- commands
# cmd_argv NAME IMG: sets ARGV to the command line of NAME on IMG.
RO_CMDS=(status status-json unlock-dry unlock-dry-json passphrase r-status r-status-json
	r-header-backup r-unlock-check r-export-shares)
RW_CMDS=(enroll rekey commit r-rekey r-retire r-escrow-add r-header-restore r-wipe)
cmd_argv() {
	local n=$1 img=$2
	case $n in
	status) ARGV=("$B/keyd" status "$img") ;;
	status-json) ARGV=("$B/keyd" status "$img" --json) ;;
	unlock-dry) ARGV=("$B/keyd" unlock "$img" --dry-run) ;;
	unlock-dry-json) ARGV=("$B/keyd" unlock "$img" --dry-run --json) ;;
	passphrase) ARGV=("$B/keyd" passphrase "$img") ;;
	r-status) ARGV=("$B/keyd-recover" status "$img") ;;
	r-status-json) ARGV=("$B/keyd-recover" status "$img" --json) ;;
	r-header-backup) rm -f "$W/hb"; ARGV=("$B/keyd-recover" header-backup "$img" "$W/hb") ;;
	r-unlock-check) ARGV=("$B/keyd-recover" unlock "$img" --share op-share-1.der --share op-share-2.der
		--key op.key --cert op.crt --check) ;;
	r-export-shares) rm -rf "$W/ex"; mkdir "$W/ex"; ARGV=("$B/keyd-recover" export-shares "$img" --out "$W/ex") ;;
	enroll) ARGV=("$B/keyd" enroll "$img" --format) ;;
	rekey) ARGV=("$B/keyd" rekey "$img") ;;
	commit) ARGV=("$B/keyd" commit "$img") ;;
	r-rekey) ARGV=("$B/keyd-recover" rekey "$img") ;;
	r-retire) ARGV=("$B/keyd-recover" retire "$img" 1) ;;
	r-escrow-add) ARGV=("$B/keyd-recover" escrow add "$img" --admin alice.crt --admin bob.crt --threshold 2) ;;
	r-header-restore) ARGV=("$B/keyd-recover" header-restore "$img" "$T/$BASE.backup" --yes) ;;
	r-wipe) ARGV=("$B/keyd-recover" wipe "$img" --yes) ;;
	*) fail "no command $n" ;;
	esac
}
# Commands whose success means "opened / handed out a key / changed the volume".
accepts() {
	case $1 in
	unlock-dry | unlock-dry-json | passphrase | r-unlock-check | enroll | rekey | commit | r-rekey | \
		r-retire | r-escrow-add | r-wipe) return 0 ;;
	esac
	return 1
}

# ---------------------------------------------------------------- libcryptsetup's view
# cs_view IMG: CS_LOAD=1 if libcryptsetup loads the header, CS_KEY=1 if it
# also opens the volume's passphrase keyslot. On copies: libcryptsetup
# repairs a damaged copy in place when it loads a header.
cs_view() {
	cp --sparse=always "$1" "$W/csv.img"
	CS_LOAD=0 CS_KEY=0
	cryptsetup luksDump "$W/csv.img" >/dev/null 2>&1 && CS_LOAD=1
	cp --sparse=always "$1" "$W/csv.img"
	cryptsetup open --test-passphrase --key-file "$T/$BASE.pass" "$W/csv.img" >/dev/null 2>&1 && CS_KEY=1
	rm -f "$W/csv.img"
	return 0
}

# ---------------------------------------------------------------- results
# Each worker appends to $W/results: "F<TAB>KEY: DETAIL" for a failure,
# "X<TAB>PATTERN<TAB>KEY: DETAIL" for a known-broken one, "N<TAB>RUNS".
record() { # CLASS CMD CHECK DETAIL
	local key="$1 $BASE $2 $3" pat
	set -- "$1" "$2" "$3" "${4//$'\n'/ | }"
	for pat in ${KNOWN_BROKEN[@]+"${KNOWN_BROKEN[@]}"}; do
		# shellcheck disable=SC2053 # the pattern is a glob on purpose
		if [[ $key == $pat ]]; then
			printf 'X\t%s\t%s: %s\n' "$pat" "$key" "$4" >>"$W/results"
			echo "XFAIL $key: $4"
			return 0
		fi
	done
	printf 'F\t%s: %s\n' "$key" "$4" >>"$W/results"
	echo "FAIL  $key: $4"
}

# run_case CLASS CMD IMG RO: one command on one image, every check. The
# image's sha256 is SUM; it is computed again only when the command wrote to
# the file at all (its mtime moved away from the stamp file's).
run_case() {
	local c=$1 n=$2 img=$3 ro=$4 after=$SUM rc=0 nl err='' out=''
	local -a lines
	NCASE=$((NCASE + 1))
	cmd_argv "$n" "$img"
	timeout -k 5 "$TMO" "${ARGV[@]}" >"$W/out" 2>"$W/err" </dev/null || rc=$?
	WROTE=0
	if [ "$img" -nt "$W/stamp" ] || [ "$img" -ot "$W/stamp" ]; then
		WROTE=1
		after=$(sha256sum <"$img")
	fi
	IFS= read -r -d '' err <"$W/err" || true
	IFS= read -r -d '' out <"$W/out" || true
	mapfile -t lines <"$W/err"
	nl=${#lines[@]}
	# wipe states what it destroys (two lines) before it acts or refuses.
	if [ "$n" = r-wipe ] && [ "$nl" -ge 2 ] && [[ ${lines[0]} == "This destroys EVERY keyslot"* ]]; then
		nl=$((nl - 2))
	fi
	local dead=1 # a crash, hang or odd exit: its output says nothing more
	chk() { record "$c" "$n" "$1" "$2"; }
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		chk hang "no answer within ${TMO}s"
	elif [ "$rc" -ge 128 ]; then
		chk crash "exit $rc (signal $((rc - 128))): ${err:0:200}"
	elif [[ $err =~ Sanitizer|runtime\ error:|Assertion\ .*\ failed|json_object_.*assert ]]; then
		chk crash "sanitizer/assertion report: ${BASH_REMATCH[0]}: ${err:0:200}"
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		chk exit "exit $rc: ${err:0:200}"
	else
		dead=0
	fi
	if [ "$SUM" != "$after" ] && { [ "$ro" = 1 ] || [ "$rc" -ne 0 ]; }; then
		chk wrote "image changed (exit $rc${err:+: ${err:0:160}})"
	fi
	if [ "$dead" = 0 ] && [ "$rc" -eq 1 ] && [ "$nl" -ne 1 ]; then
		chk lines "$nl lines on stderr: ${err:0:240}"
	fi
	if [ "$rc" -eq 0 ]; then
		if [ "$CS_LOAD" = 0 ] && accepts "$n"; then
			chk accepted "succeeded on a header libcryptsetup does not load"
		elif [ "$CS_KEY" = 0 ] && [ "$BASE" = keyd ] &&
			case $n in unlock-dry | unlock-dry-json | passphrase | rekey | commit) true ;; *) false ;; esac then
			chk accepted "succeeded where libcryptsetup opens no keyslot with the keyd passphrase"
		elif [ "$CS_LOAD" = 0 ] && case $n in status | status-json | r-status | r-status-json) true ;; *) false ;; esac &&
			[[ $out =~ can-unlock|VERDICT:\ openable|\"openable\":\ *true ]]; then
			chk accepted "reports the volume openable though libcryptsetup does not load it"
		fi
		if [ "$n" = r-header-restore ]; then
			cp --sparse=always "$img" "$W/rs.img"
			cryptsetup luksDump "$W/rs.img" >/dev/null 2>&1 ||
				chk restore "restored, but libcryptsetup rejects the result"
			rm -f "$W/rs.img"
		fi
	fi
	return 0
}

mapfile -t classes < <(python3 "$GEN" list | awk '{print $1}')
[ ${#classes[@]} -ge 90 ] || fail "gen.py lists only ${#classes[@]} classes"
mkdir gen-keyd gen-cs
python3 "$GEN" make-all keyd.img gen-keyd
python3 "$GEN" make-all cs.img gen-cs
if [ -n "${HOSTILE_SEEDS:-}" ]; then
	mkdir -p "$HOSTILE_SEEDS"
	for c in "${classes[@]}"; do
		for BASE in keyd cs; do
			python3 "$GEN" header "gen-$BASE/$c.img" "$HOSTILE_SEEDS/$c-$BASE"
		done
	done
	echo "hostile headers: $((2 * ${#classes[@]})) header images in $HOSTILE_SEEDS"
	exit 0
fi
run=()
for c in "${classes[@]}"; do
	if [ -z "${HOSTILE_ONLY:-}" ] || [[ $c =~ $HOSTILE_ONLY ]]; then run+=("$c"); fi
done

# worker I: the classes at positions I, I+JOBS, ... in its own directory.
worker() {
	local i=$1 k c h n ro
	W=$T/worker$i
	mkdir -p "$W"
	: >"$W/results"
	NCASE=0
	for ((k = i; k < ${#run[@]}; k += JOBS)); do
		c=${run[k]}
		for BASE in keyd cs; do
			h=gen-$BASE/$c.img
			[ -f "$h" ] || fail "gen.py made no $h"
			cs_view "$h"
			if [ "$c" = control ] && { [ "$CS_LOAD" = 0 ] || [ "$CS_KEY" = 0 ]; }; then
				fail "control image of $BASE is not healthy for libcryptsetup"
			fi
			SUM=$(sha256sum <"$h")
			touch -r "$h" "$W/stamp"
			# Every command runs on a working copy of h, made afresh only
			# after a command wrote to it.
			WROTE=1
			for n in "${RO_CMDS[@]}" "${RW_CMDS[@]}"; do
				if [ "$WROTE" = 1 ]; then
					cp --sparse=always "$h" "$W/w.img"
					touch -r "$W/stamp" "$W/w.img"
				fi
				ro=0
				case " ${RO_CMDS[*]} " in *" $n "*) ro=1 ;; esac
				run_case "$c" "$n" "$W/w.img" "$ro"
			done
			rm -f "$h" "$W/w.img"
		done
	done
	printf 'N\t%s\n' "$NCASE" >>"$W/results"
}

# Two workers by default: the runs are short processes, mostly waiting.
JOBS=${HOSTILE_JOBS:-2}
wpids=()
for ((i = 0; i < JOBS; i++)); do
	worker "$i" >"$T/worker$i.log" 2>&1 &
	wpids+=("$!")
done
wfail=0
for i in "${!wpids[@]}"; do
	wait "${wpids[i]}" || { wfail=1; echo "worker $i stopped:"; tail -n 5 "$T/worker$i.log"; }
done
[ "$wfail" = 0 ] || fail "a worker stopped before its end"

failures=()
declare -A kb_hit=()
xfail=0 ncase=0
for ((i = 0; i < JOBS; i++)); do
	cat "$T/worker$i.log"
	while IFS=$'\t' read -r kind a _; do
		case $kind in
		F) failures+=("$a") ;;
		X) kb_hit[$a]=1; xfail=$((xfail + 1)) ;;
		N) ncase=$((ncase + a)) ;;
		esac
	done <"$T/worker$i/results"
done
nclass=${#run[@]}

# A known-broken entry that matched nothing fails too: the list only shrinks.
xpass=()
if [ -z "${HOSTILE_ONLY:-}" ]; then
	for pat in ${KNOWN_BROKEN[@]+"${KNOWN_BROKEN[@]}"}; do
		[ -n "${kb_hit[$pat]:-}" ] || xpass+=("$pat")
	done
fi
for pat in ${xpass[@]+"${xpass[@]}"}; do
	failures+=("XPASS '$pat': fixed; remove it from KNOWN_BROKEN")
done
echo "hostile headers: $nclass classes x 2 volumes, $ncase command runs, ${#failures[@]} failures, $xfail known broken"
[ ${#failures[@]} -eq 0 ] || { printf 'FAIL %s\n' "${failures[@]}" >&2; exit 1; }
echo ok
