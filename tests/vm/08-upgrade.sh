#!/bin/bash
# Scenario 8: attested upgrade handoff between two VMs (issue 6).
#   a) v1 (the original image, volume unlocked) serves; v2 (a changed image,
#      release 2.0) boots in upgrade mode with no disk at all, and both run
#      the handoff over a QEMU network link: v1 enrolls a pending keyslot for
#      v2. Both use the same simulated chip, each with its own measurement.
#   b) v2 boots for real with the disk: it opens through its pending slot
#      (pin verified by keyd unlock), finds v1's marker and commits: v2
#      active, v1 retired.
#   c) v3, an image in no manifest, is given v2's manifest: it refuses itself
#      before it asks the now-current v2 for a keyslot, v2 hands nothing over
#      (refused on both consoles, v3's naming the check),
#      and the LUKS2 header is byte-for-byte unchanged; v3 cannot open the
#      disk either.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/upgrade-lib.sh
. "$(dirname "$0")/upgrade-lib.sh"
vm_setup

# Run alone (VM_ONLY=08): provision the state disk with v1 first.
if [ ! -s "$VM_WORK/marker" ]; then
	vm_blank_disk "$VM_DISK" 64
	vm_launch 08-provision "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || fail "provisioning boot failed"
	expect_result "$VM_LOG" ok
	vm_field "$VM_LOG" marker >"$VM_WORK/marker"
fi
marker=$(cat "$VM_WORK/marker")

v2=$VM_WORK/08-v2.cpio.gz
v3=$VM_WORK/08-v3.cpio.gz
vm_image_variant "$v2" "keyd-test-image v2 (release 2.0)" || fail "cannot build v2"
vm_image_variant "$v3" "keyd-test-image v3 (unreleased)" || fail "cannot build v3"
m1=$(vm_measure "$VM_ORIG" "$VM_APPEND_BASE")
m2=$(vm_measure "$v2" "$VM_APPEND_BASE")
m3=$(vm_measure "$v3" "$VM_APPEND_BASE")
if [ "$m1" = "$m2" ] || [ "$m2" = "$m3" ] || [ "$m1" = "$m3" ]; then fail "images share a measurement"; fi
vm_manifest "$VM_WORK/08-m1.json" 1.0 1 "$m1" || fail "manifest 1.0"
vm_manifest "$VM_WORK/08-m2.json" 2.0 2 "$m2" || fail "manifest 2.0"
"$KEYD_BUILD/keyd" manifest verify "$VM_WORK/08-m2.json" --release-keys "$VM_RELEASE/release-keys.json" \
	--measurement "$m2" >/dev/null || fail "manifest 2.0 does not verify"
if "$KEYD_BUILD/keyd" manifest verify "$VM_WORK/08-m2.json" --release-keys "$VM_RELEASE/release-keys.json" \
	--measurement "$m3" >/dev/null 2>&1; then fail "manifest 2.0 lists v3"; fi

# ---- a) v1 serves, v2 receives
vm_handoff 08a-handoff "$VM_ORIG" "$VM_WORK/08-m1.json" "$VM_DISK" "$v2" "$VM_WORK/08-m2.json" ||
	{ VM_LOG=$VM_LOG_O; fail "a handoff VM did not power off"; }
VM_LOG=$VM_LOG_O
[ "$(vm_result "$VM_LOG_O")" = ok ] || fail "v1 did not unlock before serving"
[ "$(vm_field "$VM_LOG_O" marker)" = "$marker" ] || fail "v1 did not find the marker"
[ "$(vm_handoff_result "$VM_LOG_O")" = ok ] || fail "v1 (O) handoff failed"
grep -aq 'enrolled for the new version (pending)' "$VM_LOG_O" || fail "O did not report the pending enrollment"
VM_LOG=$VM_LOG_N
[ "$(vm_handoff_result "$VM_LOG_N")" = ok ] || fail "v2 (N) handoff failed"
if grep -aq 'vda' "$VM_LOG_N"; then fail "N had a disk"; fi
states=$(vm_token_states "$VM_DISK")
grep -qx "1.0:active:$m1" <<<"$states" || fail "v1's slot is not active after the handoff: $states"
grep -qx "2.0:pending:$m2" <<<"$states" || fail "no pending slot for v2: $states"
[ "$(wc -l <<<"$states")" = 2 ] || fail "unexpected tokens: $states"

# ---- b) v2's first real boot: pending slot, marker, commit
vm_launch 08b-v2-boot "$v2" "$VM_APPEND_BASE" "$VM_DISK" || fail "v2 boot did not power off"
expect_result "$VM_LOG" ok
grep -aq 'with keyslot [0-9]* (label 2.0, pending)' "$VM_LOG" || fail "v2 did not open through its pending slot"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "v2 does not see v1's marker"
[ "$(vm_commit_result "$VM_LOG")" = ok ] || fail "keyd commit failed on v2"
states=$(vm_token_states "$VM_DISK")
grep -qx "2.0:active:$m2" <<<"$states" || fail "v2 not active after commit: $states"
grep -qx "1.0:retired:$m1" <<<"$states" || fail "v1 not kept as retired: $states"

# ---- c) v3 (in no manifest) is refused by v2
h0=$(vm_header_sha "$VM_DISK")
vm_handoff 08c-v3-refused "$v2" "$VM_WORK/08-m2.json" "$VM_DISK" "$v3" "$VM_WORK/08-m2.json" ||
	{ VM_LOG=$VM_LOG_O; fail "a handoff VM did not power off"; }
VM_LOG=$VM_LOG_O
[ "$(vm_result "$VM_LOG_O")" = ok ] || fail "v2 did not unlock before serving"
# v3 checks its own manifest first (k-of-n signed, its own measurement
# listed) and refuses before it connects: the manifest the host gave it is
# v2's. O then serves until its deadline and hands nothing over.
[ "$(vm_handoff_result "$VM_LOG_O")" = refused ] || fail "v2 (O) handed over to v3"
grep -a "no peer connected" "$VM_LOG_O" >/dev/null || fail "O's console does not say no peer completed"
VM_LOG=$VM_LOG_N
[ "$(vm_handoff_result "$VM_LOG_N")" = refused ] || fail "v3 (N) was not refused"
grep -a "own manifest: .*${m3:0:12}" "$VM_LOG_N" >/dev/null ||
	fail "v3's console does not say its own manifest does not list it"
[ "$(vm_header_sha "$VM_DISK")" = "$h0" ] || fail "the LUKS2 header changed during a refused handoff"
[ "$(vm_token_states "$VM_DISK")" = "$states" ] || fail "tokens changed during a refused handoff"

# v3 cannot open the volume either (host side, its own launch, dry run).
sock=$VM_WORK/08-v3-host.sock
sim_start "$VM_CHIP" "$sock" "$v3" "$VM_APPEND_BASE" || fail "simulator for v3"
rc=0
"$KEYD_BUILD/keyd" unlock "$VM_DISK" --dry-run --backend sim --sim "unix:$sock" >"$VM_WORK/08-v3-unlock.out" 2>&1 || rc=$?
sim_stop
[ "$rc" = 1 ] || fail "v3 unlock --dry-run exit $rc: $(cat "$VM_WORK/08-v3-unlock.out")"
vm_sha "$VM_DISK" >"$VM_WORK/disk.sha256"
echo "v1 -> v2 handed over (v2 pending, opened, committed, marker $marker intact); v3 (${m3:0:12}...) refused, header unchanged"
