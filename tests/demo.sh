#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# make demo: keyd's main job, narrated. Boots a real Debian kernel under QEMU
# with keyd's initramfs, next to a simulated AMD Secure Processor, and shows:
# a blank disk provisioned, the volume reopened, a foreign image refused with
# the data left intact.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B='' G='' R='' N=''; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { fold -s -w 76 <<<"$*" | sed 's/^/   /'; }
hex() { printf '     %s\n' "$1"; } # measurements: one unbroken line
guest() { # show what keyd printed on the VM's serial console
	grep -a -E '^(keyd: |KEYD-TEST: RESULT)' "$1" | sed 's/^/   | /'
}
die() { printf '%sdemo failed: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

vm_have_qemu || die "QEMU or a kernel is missing (make deps-vm)"
[ -x "$KEYD_BUILD/keyd-simfw" ] || die "keyd-simfw was not built (make all)"
VM_WORK=$(mktemp -d /tmp/keyd-demo.XXXXXX)
trap 'sim_stop; rm -rf "$VM_WORK"' EXIT
t0=$(date +%s)

step "What this shows"
say "A confidential VM keeps its state on an encrypted LUKS2 disk that the host stores but must never read. keyd derives the disk key inside the VM from the AMD Secure Processor. The chip mixes in the launch measurement - a hash of the exact firmware, kernel, initramfs and kernel command line it started - so only this very image on this very chip can get the key back."
say "Here the chip is keyd-simfw, a faithful simulator that runs on the host next to QEMU (TCG, no real SEV), and talks to the guest over a virtio-serial port. The guest cannot choose its own measurement: the simulator computes it from the files QEMU boots."

step "1. A chip and a GuestOS image"
vm_setup
say "Simulated chip created in $VM_CHIP (its secret never leaves that folder)."
say "GuestOS image: kernel $VM_KERNEL, initramfs $(basename "$VM_ORIG") ($(stat -c %s "$VM_ORIG") bytes, built reproducibly with keyd inside), command line \"$VM_APPEND_BASE\"."
meas=$(vm_measure "$VM_ORIG" "$VM_APPEND_BASE")
say "keyd measure over exactly these files gives the launch measurement the chip will see:"
hex "$meas"

step "2. First boot on a blank disk: provisioning"
vm_blank_disk "$VM_DISK" 64
say "A blank 64 MiB disk. The initramfs finds it empty, asks the chip for a key bound to the measurement and the launch policy, formats LUKS2 with it, records in the header which measurement it is sealed to, creates ext4 and writes a random marker file."
vm_launch demo-1 "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || die "first boot failed"
guest "$VM_LOG"
[ "$(vm_result "$VM_LOG")" = ok ] || die "first boot did not provision the volume"
marker=$(vm_field "$VM_LOG" marker)
say "From the host, the disk is a LUKS2 volume with a keyd token:"
cryptsetup luksDump "$VM_DISK" | grep -E '^(Version|UUID)|cipher:|^  [0-9]+: keyd' | sed 's/^/   | /'
if grep -aq "$marker" "$VM_DISK"; then die "marker readable on the raw disk"; fi
say "The marker $marker does not appear anywhere in the raw disk image: the host sees ciphertext only."
sha=$(vm_sha "$VM_DISK")

step "3. Second boot of the same image: reopened"
say "Same kernel, initramfs and command line, so the same measurement and the same key. No passphrase is stored anywhere."
vm_launch demo-2 "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || die "second boot failed"
guest "$VM_LOG"
{ [ "$(vm_result "$VM_LOG")" = ok ] && [ "$(vm_field "$VM_LOG" marker)" = "$marker" ]; } ||
	die "second boot did not find the marker"
say "${G}Reopened: the marker written at first boot is intact.${N}"
sha=$(vm_sha "$VM_DISK")

step "4. A foreign image: one byte changed"
echo "keyd-test-image v2" >"$VM_WORK/image-version-v2"
foreign=$VM_WORK/foreign.cpio.gz
vm_initramfs "$foreign" --add "$VM_WORK/image-version-v2=/etc/keyd/image-version"
fmeas=$(vm_measure "$foreign" "$VM_APPEND_BASE")
say "Someone boots an initramfs in which a single byte differs (/etc/keyd/image-version says v2 instead of v1) - a modified or simply different GuestOS. The chip now measures:"
hex "$fmeas"
say "instead of"
hex "$meas"
vm_launch demo-3 "$foreign" "$VM_APPEND_BASE" "$VM_DISK" || die "foreign boot failed to finish"
guest "$VM_LOG"
[ "$(vm_result "$VM_LOG")" = refused ] || die "the foreign image was not refused"
[ "$(vm_sha "$VM_DISK")" = "$sha" ] || die "the disk changed during the refused boot"
say "${G}Refused: a different measurement gives a different key, which opens nothing. The disk is byte-for-byte unchanged (sha256 ${sha:0:16}...).${N}"

step "5. The original image again"
vm_launch demo-4 "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" || die "original boot failed"
guest "$VM_LOG"
{ [ "$(vm_result "$VM_LOG")" = ok ] && [ "$(vm_field "$VM_LOG" marker)" = "$marker" ]; } ||
	die "the original image no longer opens the volume"
say "${G}The data is intact and the original image still opens it.${N}"

step "Summary"
cat <<SUMMARY
   measurement sealed to   ${meas:0:32}...
   provisioned             blank disk -> LUKS2 + keyd token + ext4, marker $marker
   reopened                same image, same key, marker intact
   foreign image refused   measurement ${fmeas:0:32}..., disk unchanged
   original again          opens, data intact
   4 VM boots in $(($(date +%s) - t0)) s (QEMU TCG, real Debian kernel $VM_KVER)
SUMMARY
