#!/bin/bash
# Scenario 3: a changed initramfs (one byte of a file) and a changed command
# line (one byte) are refused. The console names the measurement the volume is
# sealed to and the one of this launch, the disk stays byte-for-byte the same,
# and the original image still opens it afterwards.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
[ -s "$VM_WORK/marker" ] || fail "scenario 01 did not leave a provisioned disk"
sealed=$(cat "$VM_WORK/measurement")
before=$(vm_sha "$VM_DISK")

# 3a: one byte of one file in the image: image-version "v1" -> "v2".
changed=$VM_WORK/changed.cpio.gz
vm_image_variant "$changed" "keyd-test-image v2"
launch=$(vm_measure "$changed" "$VM_APPEND_BASE")
[ "$launch" != "$sealed" ] || fail "changed image has the same measurement"
vm_launch 03a-changed-file "$changed" "$VM_APPEND_BASE" "$VM_DISK" || fail "changed-image boot did not power off"
expect_result "$VM_LOG" refused
grep -aqi "$sealed" "$VM_LOG" || fail "console does not name the sealed measurement $sealed"
grep -aqi "$launch" "$VM_LOG" || fail "console does not name this launch's measurement $launch"
[ "$(vm_sha "$VM_DISK")" = "$before" ] || fail "disk changed during a refused boot (file)"

# 3b: one byte of the command line: "quiet" -> "quieT".
append_b=${VM_APPEND_BASE/quiet/quieT}
launch_b=$(vm_measure "$VM_ORIG" "$append_b")
[ "$launch_b" != "$sealed" ] || fail "changed command line has the same measurement"
vm_launch 03b-changed-cmdline "$VM_ORIG" "$append_b" "$VM_DISK" || fail "changed-cmdline boot did not power off"
expect_result "$VM_LOG" refused
grep -aqi "$sealed" "$VM_LOG" || fail "console does not name the sealed measurement $sealed"
grep -aqi "$launch_b" "$VM_LOG" || fail "console does not name this launch's measurement $launch_b"
[ "$(vm_sha "$VM_DISK")" = "$before" ] || fail "disk changed during a refused boot (cmdline)"

# 3c: the original still opens it.
vm_launch 03c-original-again "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || fail "original boot did not power off"
expect_result "$VM_LOG" ok
expect_snp "$VM_LOG"
[ "$(vm_field "$VM_LOG" marker)" = "$(cat "$VM_WORK/marker")" ] || fail "marker lost"
vm_sha "$VM_DISK" >"$VM_WORK/disk.sha256"
echo "changed file and changed cmdline refused (sealed ${sealed:0:12}..., launches ${launch:0:12}..., ${launch_b:0:12}...), disk unchanged, original reopens"
