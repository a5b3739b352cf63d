#!/bin/bash
# Read-only means read-only: every keyd and keyd-recover command that does
# not change a volume (status, unlock --dry-run, passphrase, keyd-recover
# status, unlock --check, header-backup, export-shares, decrypt-share) runs
# on healthy, damaged-copy and hostile images, and the image's sha256 must
# not change (libcryptsetup only ever sees a private copy). None may crash
# or hang. A real unlock on a damaged copy refuses and names the copy;
# keyd-recover repair saves both copies and then rewrites the bad one, and
# libcryptsetup then finds nothing to repair itself.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
S=${KEYD_SRC:?}
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
command -v python3 >/dev/null && command -v openssl >/dev/null || exit 77
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
PATCH=$S/tests/data/luks2-patch.py
M=$(printf 'b0b0%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M" 2>sim.log &
pid=$!
for _ in $(seq 50); do [ -S sim.sock ] && break; sleep 0.1; done
[ -S sim.sock ] || fail "simulator did not start"
export KEYD_SIM=unix:$T/sim.sock
K() { timeout 60 "$B/keyd" "$@"; }
R() { timeout 60 "$B/keyd-recover" "$@"; }

for a in alice bob op; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout $a.key \
		-out $a.crt -subj "/CN=$a" -days 2 2>/dev/null
done
truncate -s 32M base.img
K enroll base.img --format --label guestos-1.4 --escrow alice.crt --escrow bob.crt \
	--threshold 2 >/dev/null || fail "enroll"
UUID=$(cryptsetup luksUUID base.img)
R export-shares base.img --out shares >/dev/null || fail "export-shares"
R decrypt-share shares/share-1.der --key alice.key --cert alice.crt --to op.crt --out op1.der \
	>/dev/null || fail "decrypt-share alice"
R decrypt-share shares/share-2.der --key bob.key --cert bob.crt --to op.crt --out op2.der \
	>/dev/null || fail "decrypt-share bob"

# One image per case: NAME then the luks2-patch.py arguments (several
# patches separated by ';').
declare -A CASES=(
	[healthy]=''
	[damaged-primary]='damage primary'
	[damaged-secondary]='damage secondary'
	[older-secondary]='seqid primary'
	[type-null]='json m["tokens"]["0"]["type"]=None'
	[tokens-array]='json m["tokens"]=[]'
	[tokens-string]='json m["tokens"]="x"'
	[foreign-keyslots-null]='json m["tokens"]["9"]={"type":"x","keyslots":None}'
	[foreign-keyslots-missing]='json m["tokens"]["9"]={"type":"x"}'
	[foreign-keyslot-absent]='json m["tokens"]["9"]={"type":"x","keyslots":["7"]}'
	[keyd-keyslots-string]='json m["tokens"]["0"]["keyslots"]="0"'
	[escrow-type-null]='json m["tokens"]["1"]["type"]=None'
	[escrow-keyslots-string]='json m["tokens"]["1"]["keyslots"]="1"'
	[escrow-shares-object]='json m["tokens"]["1"]["shares"]={}'
	[segment-flags-string]='json m["segments"]["0"]["flags"]="x"'
	[config-flags-string]='json m["config"]["flags"]="x"'
	[leading-space]='raw area=b" "+t'
	[trailing-bytes]='raw area=t+b"\0x"'
	[primary-leading-space]='raw area=b" "+t primary'
	[lvm2-damaged-secondary]='lvm2;damage secondary'
)

patch_img() { # IMG SPEC
	local img=$1 spec=$2 part
	[ -n "$spec" ] || return 0
	IFS=';' read -ra parts <<<"$spec"
	for part in "${parts[@]}"; do
		read -r mode rest <<<"$part"
		case $mode in
		json | raw)
			# The code is one word; an optional trailing copy name.
			local code=${rest% primary} which=both
			[ "$code" != "$rest" ] && which=primary
			python3 "$PATCH" "$img" "$mode" "$code" "$which" ;;
		*) # shellcheck disable=SC2086 # mode arguments are words
			python3 "$PATCH" "$img" "$mode" $rest ;;
		esac
	done
}

# run NAME IMG CMD...: CMD must exit 0 or 1 (no crash, no hang, no usage
# error) and leave IMG byte-identical.
run() {
	local name=$1 img=$2 rc before after
	shift 2
	before=$(sha256sum <"$img")
	set +e
	"$@" >out 2>err </dev/null
	rc=$?
	set -e
	after=$(sha256sum <"$img")
	[ "$before" = "$after" ] || fail "$name: '$*' changed the image"
	[ $rc -le 1 ] || fail "$name: '$*' exit $rc ($(tail -n 3 err))"
	if grep -qi "restores it" out err; then
		fail "$name: '$*' claims a repair libcryptsetup does not do: $(cat out err)"
	fi
	return $rc
}

for name in "${!CASES[@]}"; do
	img=$name.img
	cp base.img "$img"
	patch_img "$img" "${CASES[$name]}"
	rm -rf bk.hdr ex
	run "$name" "$img" K status "$img" || true
	run "$name" "$img" K status "$img" --json || true
	drc=0
	run "$name" "$img" K unlock "$img" --dry-run || drc=$?
	run "$name" "$img" K passphrase "$img" || true
	run "$name" "$img" R status "$img" || true
	run "$name" "$img" R status "$img" --json || true
	run "$name" "$img" R unlock "$img" --share op1.der --share op2.der --key op.key --cert op.crt \
		--check || true
	run "$name" "$img" R header-backup "$img" bk.hdr || true
	run "$name" "$img" R export-shares "$img" --out ex || true
	run "$name" "$img" R decrypt-share shares/share-1.der --key alice.key --cert alice.crt \
		--to op.crt --out "op1-$name.der" --volume "$UUID" || true
	case $name in
	# A malformed keyd-escrow token body is token content libcryptsetup
	# ignores: keyd's own unlock is unaffected (status reports the escrow).
	healthy | damaged-* | older-secondary | primary-leading-space | escrow-shares-object)
		[ $drc -eq 0 ] || fail "$name: dry-run unlock refused: $(cat err)" ;;
	*)
		[ $drc -eq 1 ] || fail "$name: hostile header not refused by unlock --dry-run" ;;
	esac
	echo "read-only: $name"
done

# The status of a damaged copy says what libcryptsetup would do, and that
# keyd waits for repair; with a second signature, that libcryptsetup refuses.
K status damaged-secondary.img >st
grep -q "secondary header damaged, primary intact: needs keyd-recover repair" st ||
	fail "status: $(cat st)"
# The key would derive, but the unlock refuses: status must not say it can.
grep -q "cannot-unlock: keyslot 0 (label guestos-1.4) matches this launch, but the header copies" st ||
	fail "status launch verdict: $(cat st)"
R status damaged-secondary.img >st
grep -q "VERDICT: NOT openable" st || fail "recover status verdict: $(cat st)"
K status lvm2-damaged-secondary.img >st
grep -q "libcryptsetup refuses to load it (ambiguous signatures)" st || fail "lvm2 status: $(cat st)"
cp lvm2-damaged-secondary.img probe.img
if cryptsetup luksDump probe.img >/dev/null 2>&1; then
	fail "libcryptsetup loaded the ambiguous device, status text is wrong"
fi
K status primary-leading-space.img >st
grep -q "primary: *JSON area does not start with '{'" st || fail "framing status: $(cat st)"

# A real unlock on a damaged copy refuses, names the copy, writes nothing.
for c in primary secondary; do
	img=damaged-$c.img
	before=$(sha256sum <"$img")
	set +e; K unlock "$img" vol-$c >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "unlock on a damaged $c copy: exit $rc"
	grep -q "the $c copy is damaged" err || fail "unlock refusal: $(cat err)"
	[ "$(sha256sum <"$img")" = "$before" ] || fail "refused unlock changed the image"
done
set +e; K unlock older-secondary.img vol >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "the secondary copy is older" err || fail "older copy: $(cat err)"

# repair: not without confirmation, not when nothing is wrong, not from a
# copy the allow-list refuses.
img=damaged-secondary.img
before=$(sha256sum <"$img")
set +e; echo wrong | R repair "$img" rp >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && [ ! -e rp.primary ] || fail "repair without confirmation"
[ "$(sha256sum <"$img")" = "$before" ] || fail "unconfirmed repair wrote"
set +e; R repair healthy.img rh --yes >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "nothing to repair" err || fail "repair of a healthy image: $(cat err)"
cp type-null.img hostile.img
python3 "$PATCH" hostile.img damage secondary
set +e; R repair hostile.img rx --yes >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "fails the allow-list" err || fail "repair from a hostile copy: $(cat err)"

# repair, confirmed by the UUID: both copies saved as they were, the
# damaged one rewritten; libcryptsetup then has nothing to repair.
dd if="$img" of=orig.primary bs=16384 count=1 status=none
dd if="$img" of=orig.secondary bs=16384 skip=1 count=1 status=none
echo "$UUID" | R repair "$img" rp >out 2>err || fail "repair: $(cat err)"
grep -q "secondary header copy rewritten" out || fail "repair output: $(cat out)"
cmp -s rp.primary orig.primary && cmp -s rp.secondary orig.secondary || fail "repair backups"
K status "$img" >st
grep -q "both header copies valid and identical" st || fail "not repaired: $(cat st)"
before=$(sha256sum <"$img")
cryptsetup luksDump "$img" >/dev/null || fail "libcryptsetup cannot load the repaired header"
[ "$(sha256sum <"$img")" = "$before" ] || fail "libcryptsetup still repaired something"
K unlock "$img" --dry-run >/dev/null || fail "repaired volume does not open"
# And a damaged primary is rewritten from the secondary.
R repair damaged-primary.img rq --yes >out || fail "repair primary"
grep -q "primary header copy rewritten" out || fail "repair primary output: $(cat out)"
K status damaged-primary.img >st
grep -q "valid and identical" st || fail "primary not repaired: $(cat st)"
echo ok
