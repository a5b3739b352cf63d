#!/bin/bash
# The escrow plan of a volume-key rotation (keyd rotate --escrow): the
# failpoint build is SIGKILLed at the rotation's steps, from recording the
# plan to the re-split, and each way of resuming (the boot's
# `keyd rotate --resume-only`, `keyd rotate` again without certificates,
# `keyd-recover finish-rotation`) re-splits the escrow to the plan's admins:
# their new shares recover the volume key (documented combiner, cryptsetup
# alone) and the old shares open nothing. A plan the host changed (another
# admin's certificate swapped in, the threshold lowered) is refused: no
# share is written, the rotation's data part still finishes, and
# "escrow re-split pending" is said in one line and shown by both statuses.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
B=${KEYD_BUILD:?}
SRC=${KEYD_SRC:-.}
FP=${KEYD_BUILD_FP:-$SRC/build-fp}/keyd
[ -x "$B/keyd-simfw" ] && [ -x "$B/keyd-recover" ] || exit 77
command -v cc >/dev/null && command -v python3 >/dev/null && command -v openssl >/dev/null ||
	{ echo "SKIP: needs cc, python3 and openssl"; exit 77; }
[ -x "$FP" ] && grep -qa KEYD_FAILPOINT "$FP" || { echo "SKIP: failpoint build missing (make FP=1 B=build-fp)"; exit 77; }
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
cc -O2 -o xts "$SRC/tests/integration/xts-sector.c" -lcrypto || { echo "SKIP: cannot build the XTS helper"; exit 77; }
M1=$(printf 'b2e4%.0s' $(seq 24))
"$B/keyd-simfw" --state chip init --tcb 0300000000000873 >/dev/null 2>&1
"$B/keyd-simfw" --state chip serve --listen "unix:$T/sim.sock" --measurement "$M1" 2>sim.log &
pid=$!
for _ in $(seq 50); do [ -S sim.sock ] && break; sleep 0.1; done
export KEYD_SIM=unix:$T/sim.sock
K() { "$B/keyd" "$@"; }
R() { "$B/keyd-recover" "$@"; }
meta() { cryptsetup luksDump --dump-json-metadata "$1"; }
seg_off() { meta "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])'; }
vkhex() {
	K passphrase "$1" >pass
	cryptsetup luksDump -q --dump-volume-key --key-file pass "$1" |
		sed -n '/MK dump:/,$p' | sed 's/MK dump://' | tr -d ' \t\n:'
}
SIZE=$((32 * 1024 * 1024))
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
data_is_plain() {
	cp "$1" chk.img
	./xts dec "$2" chk.img "$OFF" "$NSEC"
	dd if=chk.img bs=4096 skip=$((OFF / 4096)) count="$NSEC" status=none | cmp -s - plain.bin
}
# Tokens of a type in the header: count.
ntok() { meta "$1" | python3 -c 'import json,sys; print(sum(t["type"]==sys.argv[1] for t in json.load(sys.stdin)["tokens"].values()))' "$2"; }
for a in alice bob carol mallory; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout $a.key \
		-out $a.crt -subj "/CN=$a" -days 2 2>/dev/null
done
# The reference combiner of docs/recovery.md (recovery without keyd).
sed -n '/<!-- recover-without-keyd: begin -->/,/<!-- recover-without-keyd: end -->/p' \
	"$SRC/docs/recovery.md" | sed '1,2d;$d' | sed '$d' >combine.py
# hex(R) of the escrow of $1 from the shares of admins $2 and $3 (export-shares,
# stock openssl cms, the combiner), into $4.
recover_r() {
	local img=$1 a1=$2 a2=$3 out=$4 i=0 f s r
	rm -rf sh && R export-shares "$img" --out sh >/dev/null || fail "export-shares $img"
	for f in sh/share-*.der; do
		for s in $a1 $a2; do
			if openssl cms -decrypt -inform DER -in "$f" -recip $s.crt -inkey $s.key \
				-out try.plain 2>/dev/null; then
				mv try.plain "$s.plain"
				i=$((i + 1))
			fi
			rm -f try.plain
		done
	done
	[ $i -eq 2 ] || fail "$img: $i shares for $a1 and $a2, want 2"
	r=$(python3 combine.py "$a1.plain" "$a2.plain")
	printf '%s' "$r" >"$out"
	rm -f ./*.plain
}
# Does key file $2 (hex R) open a keyslot of $1's header?
r_opens() { cryptsetup open --test-passphrase --key-file "$2" "$1" 2>/dev/null; }
# The escrow is alice+carol 2-of-2 for the current key and no plan is left.
check_resplit() { # IMG OLD_R_FILE WHAT
	[ "$(ntok "$1" keyd-rotate-plan)" = 0 ] || fail "$3: the escrow plan token stayed"
	[ "$(ntok "$1" keyd-escrow)" = 1 ] || fail "$3: not exactly one escrow after the resume"
	meta "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin)
e = [t for t in m["tokens"].values() if t["type"] == "keyd-escrow"][0]
assert e["threshold"] == 2 and sorted(s["subject"] for s in e["shares"]) == ["/CN=alice", "/CN=carol"], e
assert "requirements" not in m["config"] and len(m["digests"]) == 1, m' || fail "$3: escrow not re-split to the plan"
	recover_r "$1" alice carol new.r
	r_opens "$1" new.r || fail "$3: the new shares open nothing"
	cryptsetup luksDump -q --dump-volume-key --key-file new.r "$1" | sed -n '/MK dump:/,$p' |
		sed 's/MK dump://' | tr -d ' \t\n:' >new.vk
	[ "$(cat new.vk)" = "$(vkhex "$1")" ] || fail "$3: the new shares do not recover the volume key"
	data_is_plain "$1" "$(cat new.vk)" || fail "$3: data not intact under the recovered key"
	r_opens "$1" "$2" && fail "$3: the old shares still open the volume"
	return 0
}
# A volume with a 2-of-2 alice+bob escrow and data; old.r: its old shares' R.
fresh() {
	mkvol "$1" --escrow alice.crt --escrow bob.crt --threshold 2
	recover_r "$1" alice bob old.r
	r_opens "$1" old.r || fail "setup: the old shares do not open $1"
}
# Kill the rotation (re-split to alice+carol, 2-of-2) at failpoint $2.
kill_at() {
	local rc
	set +e
	KEYD_FAILPOINT=$2 KEYD_FAILPOINT_BYTES=$((4 * 1024 * 1024)) "$FP" rotate "$1" \
		--escrow alice.crt --escrow carol.crt --threshold 2 --hotzone 1M --quiet >/dev/null 2>err
	rc=$?
	set -e
	[ $rc -eq 137 ] || fail "$2: not killed (exit $rc: $(cat err))"
}

# ---- each kill point, each way of resuming
for case in rotate.after-plan:rotate rotate.mid-run:finish rotate.before-escrow:boot \
	rotate.after-escrow:boot rotate.before-escrow:refused rotate.after-finish:finish; do
	fp=${case%%:*} how=${case##*:}
	fresh p.img
	kill_at p.img "$fp"
	K unlock p.img --dry-run >/dev/null || fail "$fp: this launch no longer opens the volume"
	[ "$(ntok p.img keyd-rotate-plan)" = 1 ] || fail "$fp: no escrow plan in the header"
	K status p.img --json >st.json || fail "$fp: status"
	python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["rotation"]["escrow_resplit_pending"]
assert p["threshold"] == 2 and p["admins"] == 2 and p["advice"].startswith("escrow re-split pending"), p' \
		st.json || fail "$fp: status does not show the pending re-split: $(cat st.json)"
	R status p.img >st.txt 2>&1 || true
	grep -q "escrow re-split pending" st.txt || fail "$fp: keyd-recover status: $(cat st.txt)"
	if [ "$how" = refused ]; then
		# Only a resume completes a plan whose data is done: a rotation
		# asked for without certificates refuses, writing nothing.
		sum=$(sha256sum <p.img)
		set +e; K rotate p.img --hotzone 1M >out 2>err; rc=$?; set -e
		[ $rc -eq 1 ] && grep -q "an escrow re-split from an earlier rotation is pending" err ||
			fail "$fp: keyd rotate without certificates: $rc $(cat out err)"
		[ "$(sha256sum <p.img)" = "$sum" ] || fail "$fp: the refused rotate wrote"
		how=boot
	fi
	case $how in
	boot) K rotate p.img --resume-only --hotzone 1M --json >out.json 2>err ;;
	rotate) K rotate p.img --hotzone 1M --json >out.json 2>err ;;
	finish) R finish-rotation p.img --json >out.json 2>err ;;
	esac || fail "$fp: resume ($how): $(cat err)"
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["escrow_resplit"] and o["escrow_from_plan"], o' \
		out.json || fail "$fp: resume ($how) did not re-split from the plan: $(cat out.json)"
	# Killed after the data was done: the resume ran the escrow step only.
	case $fp in rotate.before-escrow | rotate.after-escrow | rotate.after-finish) want=True ;; *) want=False ;; esac
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert str(o["escrow_only"]) == sys.argv[2], o' \
		out.json "$want" || fail "$fp: escrow_only is not $want: $(cat out.json)"
	check_resplit p.img old.r "$fp then $how"
	K status p.img --json >st.json
	python3 -c 'import json,sys; assert "escrow_resplit_pending" not in json.load(open(sys.argv[1]))["rotation"]' \
		st.json || fail "$fp: status still shows a pending re-split"
	# Nothing left to resume.
	K rotate p.img --resume-only --json >out.json 2>err || fail "$fp: second resume: $(cat err)"
	grep -q '"rotated":false' out.json || fail "$fp: a finished rotation resumed again: $(cat out.json)"
	echo "ok $fp, resumed by $how"
done

# ---- a volume with an escrow: no rotation starts without a plan
fresh q.img
set +e; K rotate q.img --resume-only 2>err >out; rc=$?; set -e
[ $rc -eq 0 ] && grep -q "no rotation in progress" out || fail "resume-only on a plain header: $rc $(cat out err)"

# ---- the host changes the plan: refused, never used
forge() { # IMG WHAT: edit the plan token in place (cryptsetup, as a host could)
	local id
	id=$(meta "$1" | python3 -c 'import json,sys; print([i for i,t in json.load(sys.stdin)["tokens"].items() if t["type"]=="keyd-rotate-plan"][0])')
	cryptsetup token export --token-id "$id" "$1" >plan.json
	case $2 in
	cert) python3 -c '
import base64, json, subprocess, sys
p = json.load(open("plan.json"))
der = subprocess.run(["openssl", "x509", "-in", "mallory.crt", "-outform", "DER"], capture_output=True, check=True).stdout
p["certs"][1] = base64.b64encode(der).decode()
json.dump(p, open("plan.json", "w"))' ;;
	threshold) python3 -c '
import json
p = json.load(open("plan.json")); p["threshold"] = 1
json.dump(p, open("plan.json", "w"))' ;;
	esac
	cryptsetup token remove --token-id "$id" "$1"
	cryptsetup token import --json-file plan.json --token-id "$id" "$1"
}
for what in cert threshold; do
	fresh f.img
	kill_at f.img rotate.before-escrow
	forge f.img $what
	set +e; K rotate f.img --resume-only --hotzone 1M >out 2>err; rc=$?; set -e
	[ $rc -eq 1 ] || fail "forged plan ($what): resume exit $rc ($(cat out err))"
	grep -q "escrow re-split pending: escrow plan mac does not verify" err ||
		fail "forged plan ($what): not said loudly: $(cat err)"
	[ "$(grep -c 'escrow re-split pending' err)" = 1 ] || fail "forged plan ($what): not one line: $(cat err)"
	[ "$(ntok f.img keyd-escrow)" = 0 ] || fail "forged plan ($what): shares were written"
	[ "$(ntok f.img keyd-rotate-plan)" = 1 ] || fail "forged plan ($what): the plan was dropped"
	K unlock f.img --dry-run >/dev/null || fail "forged plan ($what): the volume does not open"
	data_is_plain f.img "$(vkhex f.img)" || fail "forged plan ($what): data"
	r_opens f.img old.r && fail "forged plan ($what): the old shares still open the volume"
	K status f.img >st.txt
	grep -q "escrow re-split pending" st.txt || fail "forged plan ($what): status: $(cat st.txt)"
	# Every way of resuming refuses the same plan.
	set +e; R finish-rotation f.img 2>err >/dev/null; rc=$?; set -e
	[ $rc -eq 1 ] && grep -q "escrow re-split pending" err || fail "forged plan ($what): finish-rotation: $rc $(cat err)"
	# The admins rotate again from this launch with their certificates: a
	# new volume key (never an escrow-only run on the forged plan).
	vk0=$(vkhex f.img)
	K rotate f.img --escrow alice.crt --escrow carol.crt --threshold 2 --json >out.json 2>err ||
		fail "forged plan ($what): re-split with certificates: $(cat err)"
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["escrow_resplit"] and not o["escrow_from_plan"] and not o["escrow_only"], o' \
		out.json || fail "forged plan ($what): $(cat out.json)"
	[ "$(vkhex f.img)" != "$vk0" ] || fail "forged plan ($what): keyd rotate made no new volume key"
	check_resplit f.img old.r "forged plan ($what), then re-split by the admins"
	echo "ok forged plan ($what) refused"
done

# ---- killed right after the plan, before the old escrow went: a resume
# without certificates drops that escrow only for a plan that verifies
fresh h.img
kill_at h.img rotate.after-plan
[ "$(ntok h.img keyd-escrow)" = 1 ] || fail "after-plan: the old escrow is already gone"
forge h.img threshold
sum=$(sha256sum <h.img)
set +e; K rotate h.img --hotzone 1M >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "the volume has an escrow and the rotation's escrow plan does not verify" err ||
	fail "after-plan, forged plan: keyd rotate: $rc $(cat out err)"
[ "$(sha256sum <h.img)" = "$sum" ] || fail "after-plan, forged plan: the refused resume wrote"
r_opens h.img old.r || fail "after-plan, forged plan: the old escrow no longer opens the volume"
echo "ok after-plan with a forged plan: the old escrow stays"

# ---- a plan token the host plants on a finished volume cannot turn a
# rotation into an escrow-only run
fresh g.img
K rotate g.img --escrow alice.crt --escrow bob.crt --threshold 2 --hotzone 1M --quiet >/dev/null 2>err ||
	fail "planted plan: setup rotation: $(cat err)"
printf '{"type":"keyd-rotate-plan","keyslots":[]}' >planted.json
cryptsetup token import --json-file planted.json g.img || fail "planted plan: cannot import"
vk0=$(vkhex g.img)
sum=$(sha256sum <g.img)
set +e; K rotate g.img --hotzone 1M >out 2>err; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "an escrow re-split from an earlier rotation is pending" err ||
	fail "planted plan: keyd rotate: $rc $(cat out err)"
[ "$(sha256sum <g.img)" = "$sum" ] || fail "planted plan: the refused rotate wrote"
K rotate g.img --escrow alice.crt --escrow carol.crt --threshold 2 --hotzone 1M --json >out.json 2>err ||
	fail "planted plan: rotate with certificates: $(cat err)"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert not o["escrow_only"] and o["bytes"] > 0, o' \
	out.json || fail "planted plan: not a full rotation: $(cat out.json)"
[ "$(vkhex g.img)" != "$vk0" ] || fail "planted plan: keyd rotate reported success without a new volume key"
check_resplit g.img old.r "planted plan, then a rotation"
echo "ok planted plan: a rotation asked for always makes a new volume key"
echo ok
