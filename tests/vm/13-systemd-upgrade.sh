#!/bin/bash
# Scenario 13: the production upgrade path on the systemd GuestOS. Two
# releases, each its own verity root and command line (hence its own launch
# measurement), built from keyd's .deb packages (guestos-lib.sh):
#   13a  v1 provisions the state volume
#   13b  the host asks v1 to serve (fw_cfg mode serve-upgrade):
#        keyd-handoff-serve.service hands a pending keyslot to v2, which
#        boots with no disk in upgrade mode and receives it in its
#        initramfs (the packaged local-top script), then powers off
#   13c  v2's first real boot opens the state through its pending slot
#        (its maker judged by the revocation floor the image pins, in the
#        initramfs and in the root), finds v1's marker, and
#        keyd-commit.service commits: v2 active, v1's slot retired
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/upgrade-lib.sh
. "$(dirname "$0")/upgrade-lib.sh"
# shellcheck source=tests/vm/guestos-lib.sh
. "$(dirname "$0")/guestos-lib.sh"
vm_setup
command -v mkinitramfs >/dev/null || fail "mkinitramfs missing (make deps-vm)"

G1=$VM_WORK/guestos-13v1
G2=$VM_WORK/guestos-13v2
guestos_build "$G1" "keyd-guestos v1" || fail "cannot build GuestOS v1"
guestos_build "$G2" "keyd-guestos v2 (release 2.0)" || fail "cannot build GuestOS v2"
m1=$(vm_measure "$G1/initrd.img" "$(cat "$G1/cmdline")")
m2=$(vm_measure "$G2/initrd.img" "$(cat "$G2/cmdline")")
[ "$m1" != "$m2" ] || fail "the two releases share a measurement"
[ "$(cat "$G1/cmdline")" != "$(cat "$G2/cmdline")" ] || fail "the two releases share a root hash"
# The packaged hook puts the pinned revocation floor into the (measured)
# initramfs, which judges v2's pending slot at its first real boot.
lsinitramfs "$G2/initrd.img" >"$VM_WORK/13-v2-initrd.list" || fail "cannot list v2's initramfs"
grep -qx 'etc/keyd/peer-svn-floor' "$VM_WORK/13-v2-initrd.list" ||
	fail "the packaged hook left the revocation floor out of the initramfs"
vm_manifest "$VM_WORK/13-m1.json" 1.0 1 "$m1" || fail "manifest 1.0"
vm_manifest "$VM_WORK/13-m2.json" 2.0 2 "$m2" || fail "manifest 2.0"
disk=$VM_WORK/guestos-13-state.img
vm_blank_disk "$disk" 64

# 13a
guestos_launch 13a-systemd-v1-provision "$G1" "$disk" || fail "13a: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "13a: the state was not provisioned"
marker=$(vm_field "$VM_LOG" marker)

# 13b
guestos_handoff 13b-systemd-handoff "$G1" "$VM_WORK/13-m1.json" "$disk" "$G2" "$VM_WORK/13-m2.json" ||
	{ VM_LOG=$VM_LOG_O; fail "13b: a handoff VM did not power off"; }
VM_LOG=$VM_LOG_O
expect_result "$VM_LOG_O" ok
[ "$(vm_field "$VM_LOG_O" marker)" = "$marker" ] || fail "13b: v1 did not find its marker"
grep -a "keyd: upgrade: serving --device /dev/vda" "$VM_LOG_O" >/dev/null ||
	fail "13b: keyd-handoff-serve.service did not serve"
VM_LOG=$VM_LOG_N
grep -a "keyd: upgrade: keyslot received; powering off" "$VM_LOG_N" >/dev/null ||
	fail "13b: v2's initramfs did not receive a keyslot"
if grep -a "KEYD-TEST: SYSTEMD" "$VM_LOG_N" >/dev/null; then fail "13b: v2 left its initramfs in upgrade mode"; fi
states=$(vm_token_states "$disk")
grep -qx "state:active:$m1" <<<"$states" || fail "13b: v1's slot is not active: $states"
grep -qx "2.0:pending:$m2" <<<"$states" || fail "13b: no pending slot for v2: $states"

# 13c
guestos_launch 13c-systemd-v2-commit "$G2" "$disk" || fail "13c: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "13c: v2 does not see v1's marker"
grep -a 'keyd:   /dev/vda: unlocked as /dev/mapper/state with keyslot [0-9]* (label 2.0, pending)' "$VM_LOG" \
	>/dev/null || fail "13c: v2 did not open through its pending slot"
[ "$(vm_field "$VM_LOG" slot)" = active ] || fail "13c: keyd-commit.service did not commit"
states=$(vm_token_states "$disk")
grep -qx "2.0:active:$m2" <<<"$states" || fail "13c: v2 is not active after the commit: $states"
grep -qx "state:retired:$m1" <<<"$states" || fail "13c: v1's slot is not retired: $states"
echo "systemd GuestOS upgrade: v1 served through keyd-handoff-serve.service, v2 received in its initramfs, opened through its pending slot and keyd-commit.service committed it (v1 retired)"
