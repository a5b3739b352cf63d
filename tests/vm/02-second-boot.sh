#!/bin/bash
# Scenario 2: a second boot of the same image unlocks the volume and finds the
# marker of the first boot intact.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
[ -s "$VM_WORK/marker" ] || fail "scenario 01 did not leave a provisioned disk"

vm_launch 02-second-boot "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || fail "second boot did not power off"
expect_result "$VM_LOG" ok
expect_snp "$VM_LOG"
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked"
[ "$(vm_field "$VM_LOG" action)" = verify ] || fail "second boot did not read the marker"
[ "$(vm_field "$VM_LOG" marker)" = "$(cat "$VM_WORK/marker")" ] || fail "marker differs from the first boot's"
vm_sha "$VM_DISK" >"$VM_WORK/disk.sha256"
echo "reopened via /dev/sev-guest (kernel $VM_KVER), marker $(cat "$VM_WORK/marker") intact"
