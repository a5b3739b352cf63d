#!/bin/bash
# Volume-key rotation (keyd rotate) on LUKS2 image files: the data survives
# under the new key, a pre-rotation header backup restored onto the disk
# yields only the old key, which decrypts nothing any more (revocation);
# refusals (escrow without certificates, integrity); and crash safety: the
# failpoint build is SIGKILLed at every rotation step, after which this
# launch still opens the volume and a rerun finishes with every byte intact.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
SRC=${KEYD_SRC:-.}
[ -x "$B/keyd-simfw" ] || exit 77
command -v cc >/dev/null && command -v python3 >/dev/null || { echo "SKIP: needs cc and python3"; exit 77; }
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
cc -O2 -o xts "$SRC/tests/integration/xts-sector.c" -lcrypto || { echo "SKIP: cannot build the XTS helper"; exit 77; }
M1=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M1" 2>sim.log &
pid=$!
for _ in $(seq 50); do [ -S sim.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/sim.sock
K() { "$B/keyd" "$@"; }

meta() { cryptsetup luksDump --dump-json-metadata "$1"; }
seg_off() { meta "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])'; }
# The volume key, through this launch's checked passphrase (keyd passphrase).
vkhex() {
	K passphrase "$1" >pass
	cryptsetup luksDump -q --dump-volume-key --key-file pass "$1" |
		sed -n '/MK dump:/,$p' | sed 's/MK dump://' | tr -d ' \t\n:'
}
SIZE=$((48 * 1024 * 1024))
# A fresh volume whose whole data area holds plain.bin under its key.
mkvol() {
	rm -f "$1"
	truncate -s $SIZE "$1"
	K enroll "$1" --format --label guestos-1 "${@:2}" >/dev/null
	OFF=$(seg_off "$1")
	NSEC=$(((SIZE - OFF) / 4096))
	[ -f plain.bin ] || head -c $((NSEC * 4096)) /dev/urandom >plain.bin
	dd if=plain.bin of="$1" bs=4096 seek=$((OFF / 4096)) conv=notrunc status=none
	./xts enc "$(vkhex "$1")" "$1" "$OFF" "$NSEC"
}
# Does the data area of $1, decrypted with key $2, equal plain.bin?
data_is_plain() {
	cp "$1" chk.img
	./xts dec "$2" chk.img "$OFF" "$NSEC"
	dd if=chk.img bs=4096 skip=$((OFF / 4096)) count="$NSEC" status=none | cmp -s - plain.bin
}

# ---- rotation, data, and proof of revocation
mkvol img
K1=$(vkhex img)
data_is_plain img "$K1" || fail "test setup: plaintext not under the volume key"
cryptsetup luksHeaderBackup img --header-backup-file old.hdr
K status img --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["rotation"]["phase"]=="none"' ||
	fail "status of a plain volume"
K rotate img --json --hotzone 1M >out.json || fail "rotate"
python3 - out.json <<'EOF' || fail "rotate --json: $(cat out.json)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["rotated"] and not o["resumed"] and not o["online"], o
assert o["resilience"] == "journal" and o["bytes"] > 0 and o["tokens_dropped"] == 1, o
EOF
K2=$(vkhex img)
[ ${#K2} -eq 128 ] && [ "$K2" != "$K1" ] || fail "volume key did not change"
data_is_plain img "$K2" || fail "data not intact under the new key"
data_is_plain img "$K1" && fail "old key still decrypts the data"
K unlock img --dry-run >/dev/null || fail "this launch does not open the rotated volume"
meta img | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert len(m["keyslots"]) == 1 and len(m["digests"]) == 1 and len(m["tokens"]) == 1, m
assert "requirements" not in m["config"], m["config"]' || fail "header after rotation"
# The host restores the pre-rotation header: the old keyslot still opens and
# still yields the old key (its pin verifies: it is the genuine old header),
# but that key decrypts nothing of the data any more.
cp img rolled.img
cryptsetup luksHeaderRestore -q rolled.img --header-backup-file old.hdr
K unlock rolled.img --dry-run >/dev/null || fail "restored old header no longer opens (test premise)"
[ "$(vkhex rolled.img)" = "$K1" ] || fail "restored header does not yield the old key"
data_is_plain rolled.img "$K1" && fail "rolled-back header opens the rotated data"
cmp -s <(dd if=chk.img bs=4096 skip=$((OFF / 4096)) count=1 status=none) \
	<(dd if=plain.bin bs=4096 count=1 status=none) && fail "first sector readable under the old key"

# ---- --resume-only (the boot scripts run it after every unlock): on a plain
# header it starts nothing and writes nothing.
cp img before.img
K rotate img --resume-only --json >out.json || fail "rotate --resume-only on a plain volume"
grep -q '"rotated":false' out.json || fail "--resume-only started a rotation: $(cat out.json)"
cmp -s img before.img || fail "--resume-only wrote to a volume with no rotation in progress"
[ "$(K rotate img --resume-only)" = "img: no rotation in progress" ] || fail "--resume-only message"
rm -f before.img

# ---- progress to the kernel log when stderr is no terminal: a start line,
# one per tenth at most (plus one per 30 s), the end; 1 MiB hotzones give
# about 30 progress callbacks, so an unbounded log would show them all.
: >kmsg
KEYD_KMSG=$T/kmsg K rotate img --hotzone 1M >/dev/null 2>prog.err || fail "rotate with KEYD_KMSG"
[ -s kmsg ] || fail "no progress in the kernel log"
grep -q '^<14>keyd rotate: img: starting, 0.0 B of ' kmsg || fail "no start line in the kernel log: $(cat kmsg)"
grep -q '^<14>keyd rotate: img: .* re-encrypted (100%)' kmsg || fail "no end line in the kernel log: $(cat kmsg)"
n=$(wc -l <kmsg)
[ "$n" -ge 3 ] && [ "$n" -le 12 ] || fail "$n progress records in the kernel log (want 3..12): $(cat kmsg)"
cmp -s <(sed 's/^<14>//' kmsg) prog.err || fail "stderr and the kernel log disagree"
data_is_plain img "$(vkhex img)" || fail "data not intact after the logged rotation"
: >kmsg.quiet
KEYD_KMSG=$T/kmsg.quiet K rotate img --hotzone 1M --quiet >/dev/null 2>prog.err || fail "rotate --quiet"
[ -s prog.err ] && fail "--quiet printed progress: $(cat prog.err)"
[ -s kmsg.quiet ] && fail "--quiet logged progress: $(cat kmsg.quiet)"

# ---- keyd commit --rotate (this launch already active: commit is a no-op),
# throttled: the data moves under a new key again.
K commit img --rotate >/dev/null 2>err || fail "commit --rotate: $(cat err)"
grep -q "rotated: keyslot" err || fail "commit --rotate did not rotate: $(cat err)"
K3=$(vkhex img)
[ "$K3" != "$K2" ] || fail "commit --rotate kept the volume key"
data_is_plain img "$K3" || fail "data not intact after commit --rotate"
# ---- a release manifest that asks for a rotation ("rotate": true): the
# commit judges it (signed by k pinned keys, lists this launch) and rotates;
# without the flag it does not; a manifest that does not check out commits
# and rotates nothing.
K manifest keygen -o rk1.pem --pub rk1.pub >/dev/null
K manifest keys --threshold 1 -o rkeys.json rk1.pub >/dev/null
mkmanifest() { # OUT MEASUREMENT [--rotate]
	K manifest create --version-label 2.0 --svn 2 --measurement "$2" --not-before 2020-01-01T00:00:00Z \
		--not-after 2099-01-01T00:00:00Z "${@:3}" -o "$1" >/dev/null
	K manifest sign "$1" --key rk1.pem >/dev/null
}
mkmanifest mplain.json "$M1"
mkmanifest mrot.json "$M1" --rotate
shown=$(K manifest show mrot.json) || fail "manifest show failed"
grep -q "^rotate: *yes" <<<"$shown" || fail "manifest show does not show the rotate flag"
K4=$(vkhex img)
K commit img --manifest mplain.json --release-keys rkeys.json >/dev/null 2>err || fail "commit --manifest: $(cat err)"
[ "$(vkhex img)" = "$K4" ] || fail "a manifest without the rotate flag rotated"
grep -q "asks for a volume-key rotation" err && fail "a manifest without the flag asked for a rotation"
for bad in other unsigned badvalue; do
	case $bad in
	other) mkmanifest mbad.json "$(printf 'b2c4%.0s' $(seq 24))" --rotate ;;
	unsigned) K manifest create --version-label 2.0 --svn 2 --measurement "$M1" \
		--not-after 2099-01-01T00:00:00Z --rotate -o mbad.json >/dev/null ;;
	badvalue) python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["rotate"]="yes"; json.dump(m, open("mbad.json","w"))' mrot.json ;;
	esac
	sum=$(sha256sum <img)
	set +e; K commit img --manifest mbad.json --release-keys rkeys.json >/dev/null 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "commit with a $bad manifest: exit $rc ($(cat err))"
	[ "$(sha256sum <img)" = "$sum" ] || fail "commit with a $bad manifest wrote"
done
grep -q 'must be true or false' err || fail "bad rotate value not named: $(cat err)"
K commit img --manifest mrot.json --release-keys rkeys.json >/dev/null 2>err || fail "commit --manifest (rotate): $(cat err)"
grep -q "release 2.0 (svn 2) asks for a volume-key rotation" err || fail "the release's request not reported: $(cat err)"
grep -q "rotated: keyslot" err || fail "commit did not rotate for the release: $(cat err)"
[ "$(vkhex img)" != "$K4" ] || fail "the release's rotation kept the volume key"
data_is_plain img "$(vkhex img)" || fail "data not intact after the release's rotation"
K rotate img --max-rate 64M --resilience checksum --json >out.json 2>/dev/null || fail "rotate --max-rate --resilience checksum"
grep -q "\"resilience\":\"checksum\"" out.json || fail "checksum resilience not used: $(cat out.json)"
data_is_plain img "$(vkhex img)" || fail "data not intact after a throttled rotation"

# ---- refusals
mkvol esc.img
for a in alice bob; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout $a.key \
		-out $a.crt -subj "/CN=$a" -days 2 2>/dev/null
done
rm -f esc.img && truncate -s $SIZE esc.img
K enroll esc.img --format --label g --escrow alice.crt --escrow bob.crt --threshold 1 >/dev/null
set +e; K rotate esc.img 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "escrow whose shares would stop working" err || fail "escrow refusal: $rc $(cat err)"
[ "$(meta esc.img | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["digests"]))')" = 1 ] ||
	fail "refused rotation wrote to the header"
old_commit=$(meta esc.img | python3 -c 'import json,sys; print([t["commitment"] for t in json.load(sys.stdin)["tokens"].values() if t["type"]=="keyd-escrow"][0])')
K rotate esc.img --escrow alice.crt --escrow bob.crt --quiet >out || fail "rotate with escrow re-split"
grep -q "escrow re-split with fresh shares" out || fail "re-split not reported: $(cat out)"
meta esc.img | python3 -c '
import json, sys
m = json.load(sys.stdin); old = sys.argv[1]
e = [t for t in m["tokens"].values() if t["type"] == "keyd-escrow"]
assert len(e) == 1 and e[0]["commitment"] != old and e[0]["threshold"] == 1, e
assert len(m["keyslots"]) == 2 and len(m["digests"]) == 1, m["keyslots"].keys()' "$old_commit" ||
	fail "escrow after rotation"
K unlock esc.img --dry-run >/dev/null || fail "escrow volume does not open after rotation"
rm -f esc.img && truncate -s $SIZE esc.img
K enroll esc.img --format --label g --escrow alice.crt --threshold 1 >/dev/null
K rotate esc.img --drop-escrow --quiet >/dev/null || fail "rotate --drop-escrow"
meta esc.img | kd_has keyd-escrow && fail "escrow token survived --drop-escrow"
# A release that asks for a rotation, on a volume with an escrow, at boot
# (keyd commit --manifest, no admin certificates there): the commit stands,
# the rotation is refused before anything is written, and the volume opens
# under the unchanged key with its escrow.
rm -f esc.img && truncate -s $SIZE esc.img
K enroll esc.img --format --label g --escrow alice.crt --threshold 1 >/dev/null
Kesc=$(vkhex esc.img)
set +e; K commit esc.img --manifest mrot.json --release-keys rkeys.json >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] || fail "release rotation on an escrowed volume: exit $rc ($(cat out err))"
grep -q "asks for a volume-key rotation" err || fail "the release's request not reported: $(cat err)"
grep -q "committed, but the volume key was NOT rotated: .*escrow whose shares would stop working" err ||
	fail "release rotation on an escrowed volume: refusal not explicit: $(cat err)"
[ "$(grep -c 'NOT rotated' err)" = 1 ] || fail "refusal not one line: $(cat err)"
[ "$(vkhex esc.img)" = "$Kesc" ] || fail "the refused release rotation changed the volume key"
meta esc.img | kd_has keyd-escrow || fail "the refused release rotation lost the escrow"
meta esc.img | kd_has keyd-rotate-plan && fail "the refused release rotation left a plan"
K unlock esc.img --dry-run >/dev/null || fail "escrowed volume does not open after the refused rotation"
"$B/keyd-recover" status esc.img --json >st.json 2>/dev/null || true
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["rotation"]["phase"] == "none"' st.json ||
	fail "refused release rotation: status shows a rotation: $(cat st.json)"
set +e; K rotate esc.img --resilience none 2>err; rc=$?; set -e
[ $rc -eq 2 ] || fail "--resilience none accepted ($rc)"

# ---- crash safety: SIGKILL at every step, then the volume opens and a
# rerun finishes with the data intact.
FP=${KEYD_BUILD_FP:-$SRC/build-fp}/keyd
if [ -x "$FP" ] && grep -qa KEYD_FAILPOINT "$FP"; then
	for fp in rotate.after-keyslot rotate.after-token rotate.after-old-tokens rotate.before-init \
		rotate.after-init rotate.mid-run rotate.before-finalize rotate.after-finish; do
		mkvol fp.img
		set +e
		KEYD_FAILPOINT=$fp KEYD_FAILPOINT_BYTES=$((8 * 1024 * 1024)) "$FP" rotate fp.img \
			--hotzone 1M --quiet >/dev/null 2>err
		rc=$?
		set -e
		[ $rc -eq 137 ] || fail "$fp: not killed (exit $rc: $(cat err))"
		K unlock fp.img --dry-run >/dev/null || fail "$fp: this launch no longer opens the volume"
		K status fp.img --json >st.json || fail "$fp: status"
		phase=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rotation"]["phase"])' st.json)
		case $fp in
		rotate.after-init | rotate.mid-run | rotate.before-finalize)
			[ "$phase" = running ] || fail "$fp: status phase $phase"
			K status fp.img >st.txt
			grep -q "Run \`keyd rotate" st.txt || fail "$fp: status gives no advice"
			# The old key's keyslot is still needed: no advice to retire it.
			grep -q "keyd-recover retire" st.txt && fail "$fp: status advises retiring a keyslot mid-rotation"
			python3 -c 'import json,sys; k=[s["kind"] for s in json.load(open(sys.argv[1]))["keyslots"]]; assert "untokened" not in k and "rotation" in k, k' \
				st.json || fail "$fp: keyslot kinds mid-rotation: $(cat st.json)" ;;
		esac
		if [ $fp = rotate.mid-run ]; then
			python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rotation"]; assert 0 < r["bytes_done"] < r["bytes_total"], r' \
				st.json || fail "$fp: progress not shown: $(cat st.json)"
		fi
		# What the boot scripts run after the unlock (keyd_rotate_resume).
		K rotate fp.img --hotzone 1M --resume-only --json >out.json 2>err || fail "$fp: resume: $(cat err)"
		case $fp in
		rotate.after-finish) grep -q '"rotated":false' out.json || fail "$fp: resumed a finished rotation" ;;
		*) grep -q '"rotated":true,"resumed":true' out.json || fail "$fp: not resumed: $(cat out.json)" ;;
		esac
		K unlock fp.img --dry-run >/dev/null || fail "$fp: does not open after the rerun"
		data_is_plain fp.img "$(vkhex fp.img)" || fail "$fp: data lost"
		meta fp.img | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert len(m["keyslots"]) == 1 and len(m["digests"]) == 1 and len(m["tokens"]) == 1, m' ||
			fail "$fp: slots or tokens piled up"
		echo "ok $fp"
	done
	# keyd-recover finish-rotation: the admin's way to finish a rotation
	# stopped inside a hotzone (kill at rotate.mid-run, journal to replay).
	mkvol fin.img
	set +e
	KEYD_FAILPOINT=rotate.mid-run KEYD_FAILPOINT_BYTES=$((8 * 1024 * 1024)) "$FP" rotate fin.img \
		--hotzone 1M --quiet >/dev/null 2>err
	rc=$?
	set -e
	[ $rc -eq 137 ] || fail "finish-rotation setup: not killed (exit $rc: $(cat err))"
	"$B/keyd-recover" status fin.img >st.txt 2>&1 || true
	grep -q "keyd-recover finish-rotation" st.txt || fail "keyd-recover status does not name finish-rotation: $(cat st.txt)"
	"$B/keyd-recover" finish-rotation fin.img --json >out.json 2>err || fail "finish-rotation: $(cat err)"
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["finished"] and o["bytes"] > 0 and not o["online"], o' \
		out.json || fail "finish-rotation --json: $(cat out.json)"
	data_is_plain fin.img "$(vkhex fin.img)" || fail "finish-rotation: data lost"
	meta fin.img | kd_has requirements && fail "finish-rotation left the reencryption requirement"
	cp fin.img fin.before
	[ "$("$B/keyd-recover" finish-rotation fin.img)" = "fin.img: no rotation in progress; nothing to finish" ] ||
		fail "finish-rotation with nothing to finish"
	cmp -s fin.img fin.before || fail "finish-rotation with nothing to finish wrote"
	set +e; "$B/keyd-recover" finish-rotation fin.img --threshold 1 2>err; rc=$?; set -e
	[ $rc -eq 2 ] || fail "finish-rotation --threshold without --escrow accepted ($rc)"
	rm -f fin.img fin.before
	echo "ok keyd-recover finish-rotation"
	# Kills at arbitrary moments (inside a hotzone write, the journal, a
	# header write, the finish), not only at failpoints: the same rotation
	# is killed again and again while it resumes, until it completes.
	# A kill inside one of libcryptsetup's header writes leaves the two
	# copies disagreeing; keyd then writes nothing until the admin's
	# keyd-recover repair (both copies saved first). Where the kill lands
	# depends on the machine's speed, so every kill is followed by the same
	# check: repair when the copies disagree, and the data must survive.
	heal() {
		if ! "$B/keyd-recover" status "$1" --json 2>/dev/null |
			python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["header"]["copies_agree"] else 1)'; then
			n_repair=$((n_repair + 1))
			"$B/keyd-recover" repair "$1" "$T/repair-$n_repair" --yes >/dev/null ||
				fail "$2: repair of the interrupted header write failed"
		fi
	}
	n_repair=0
	mkvol kill.img
	for delay in 0.2 0.5 0.8 1.1 1.4 1.7 2.0 2.3; do
		"$B/keyd" rotate kill.img --hotzone 1M --quiet >/dev/null 2>&1 &
		rp=$!
		sleep $delay
		kill -KILL $rp 2>/dev/null || true
		wait $rp 2>/dev/null || true
		K unlock kill.img --dry-run >/dev/null || fail "kill after ${delay}s: does not open"
		heal kill.img "kill after ${delay}s"
	done
	K rotate kill.img --quiet >/dev/null || fail "kill: final resume"
	data_is_plain kill.img "$(vkhex kill.img)" || fail "kill: data lost"
else
	echo "failpoint build missing (make FP=1 B=build-fp): crash steps not run"
fi
echo ok
