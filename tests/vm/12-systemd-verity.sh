#!/bin/bash
# Scenario 12: a real GuestOS. A Debian 12 systemd root with keyd installed
# from its .deb packages, mapped with dm-verity from the measured command line
# by the packaged initramfs-tools hook and local-top script (Debian's
# mkinitramfs), and a keyd-sealed state volume that systemd mounts at
# /var/lib/keyd-state.
#   12a  first boot: provisions the state, systemd reaches multi-user.target
#   12b  reboot: the state reopens, the marker is intact
#   12c  one changed byte in the root image, booted by a release whose
#        command line also asks for the full check (keyd.verity_check=full):
#        refused before any state key exists, the boot stopped in the
#        initramfs (panic=-1: the VM ends), the state disk unchanged
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/guestos-lib.sh
. "$(dirname "$0")/guestos-lib.sh"
vm_setup
command -v mkinitramfs >/dev/null || fail "mkinitramfs missing (make deps-vm)"

G=$VM_WORK/guestos-v1
guestos_build "$G" "keyd-guestos v1" || fail "cannot build the GuestOS image"
hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$G/verity.txt")
disk=$VM_WORK/guestos-state.img
vm_blank_disk "$disk" 64

guestos_launch 12a-systemd-provision "$G" "$disk" || fail "12a: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "12a: the state was not provisioned"
grep -a "KEYD-TEST: SYSTEMD target=multi-user.target:active root=/dev/mapper/root" "$VM_LOG" >/dev/null ||
	fail "12a: systemd did not reach multi-user.target on the verity root"
grep -a "root: /dev/mapper/root is dm-verity with the measured root hash ${hash:0:16}" "$VM_LOG" >/dev/null ||
	fail "12a: the initramfs did not check the verity root"
marker=$(vm_field "$VM_LOG" marker)
sealed=$(vm_sha "$disk")

guestos_launch 12b-systemd-reopen "$G" "$disk" || fail "12b: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "12b: the state was not unlocked"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "12b: marker lost"
sealed=$(vm_sha "$disk")

# 12c: the host changes one byte of a file in the root image.
cp "$G/root.img" "$VM_WORK/guestos-bad.img"
off=$(grep -obUa 'keyd-guestos v1' "$VM_WORK/guestos-bad.img" | cut -d: -f1 | tail -n 1)
[ -n "$off" ] || fail "12c: image-version not found in the root image"
printf '2' | dd of="$VM_WORK/guestos-bad.img" bs=1 seek=$((off + 14)) conv=notrunc status=none
guestos_launch 12c-systemd-changed-root "$G" "$disk" "$(cat "$G/cmdline") keyd.verity_check=full" \
	"$VM_WORK/guestos-bad.img" ||
	fail "12c: boot did not end"
grep -a "does not match the measured roothash" "$VM_LOG" >/dev/null ||
	fail "12c: the changed root was not refused by the verity check"
grep -a "keyd: the root is not the one the measured command line names; not booting it" "$VM_LOG" >/dev/null ||
	fail "12c: the initramfs did not stop the boot"
if grep -a "KEYD-TEST: SYSTEMD" "$VM_LOG" >/dev/null; then fail "12c: systemd started on the changed root"; fi
if grep -a "KEYD-TEST: RESULT=ok" "$VM_LOG" >/dev/null; then fail "12c: the changed root booted with its state"; fi
[ "$(vm_sha "$disk")" = "$sealed" ] || fail "12c: the state disk changed"
rm -f "$VM_WORK/guestos-bad.img"
echo "systemd GuestOS on a verity root (${hash:0:12}...): provisioned at multi-user.target, reopened, a changed root byte refused with the state untouched"
