#!/bin/bash
# Scenario 1: the first boot on a blank disk provisions a sealed volume,
# creates ext4, writes a marker file and powers off. keyd runs its production
# backend: the image configures no simulator, and keyd's detection finds the
# (emulated) /dev/sev-guest.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

expect_no_sim_config "$VM_ORIG"
vm_blank_disk "$VM_DISK" 64
append=$VM_APPEND_BASE
vm_launch 01-first-boot "$VM_ORIG" "$append" "$VM_DISK" || fail "first boot did not power off"
expect_result "$VM_LOG" ok
expect_snp "$VM_LOG"
[ "$(vm_field "$VM_LOG" action)" = write ] || fail "first boot did not write the marker"
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
marker=$(vm_field "$VM_LOG" marker)
[ ${#marker} -eq 32 ] || fail "no marker on the console"
echo "$marker" >"$VM_WORK/marker"

# From the host: a LUKS2 volume with a keyd token sealed to this launch.
cryptsetup isLuks --type luks2 "$VM_DISK" || fail "disk is not LUKS2 after provisioning"
meta=$(cryptsetup luksDump --dump-json-metadata "$VM_DISK")
grep -q '"type":"keyd"' <<<"$meta" || fail "no keyd token in the header"
meas=$(vm_measure "$VM_ORIG" "$append")
echo "$meas" >"$VM_WORK/measurement"
grep -qi "$meas" <<<"$meta" || fail "token does not record the launch measurement $meas"
vm_sha "$VM_DISK" >"$VM_WORK/disk.sha256"
echo "provisioned via /dev/sev-guest (kernel $VM_KVER), sealed to ${meas:0:16}..., marker $marker"
