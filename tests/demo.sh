#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# make demo: keyd's main job, narrated. Boots a real Debian kernel under QEMU
# with keyd's initramfs, next to a simulated AMD Secure Processor, and shows:
# a blank disk provisioned, the volume reopened, a foreign image refused with
# the data left intact, then an attested upgrade handoff to a new release
# (and a refused one for an image no manifest lists).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
# shellcheck source=tests/vm/upgrade-lib.sh
. tests/vm/upgrade-lib.sh

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B='' G='' R='' N=''; fi
step() { # also names the step for the ERR trap (tests/lib.bash)
	KD_STEP=$*
	printf '\n%s== %s%s\n' "$B" "$*" "$N"
}
say() { fold -s -w 76 <<<"$*" | sed 's/^/   /'; }
hex() { printf '     %s\n' "$1"; } # measurements: one unbroken line
guest() { # show what keyd printed on the VM's serial console
	grep -a -E '^(keyd: |KEYD-TEST: RESULT)' "$1" | sed 's/^/   | /'
}
die() { printf '%sdemo failed: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

vm_have_qemu || die "QEMU or a kernel is missing (make deps-vm)"
[ -x "$KEYD_BUILD/keyd-simfw" ] || die "keyd-simfw was not built (make all)"
VM_WORK=$(mktemp -d /tmp/keyd-demo.XXXXXX)
vm_traps 'rm -rf "$VM_WORK"'
t0=$(date +%s)

step "What this shows"
say "A confidential VM keeps its state on an encrypted LUKS2 disk that the host stores but must never read. keyd derives the disk key inside the VM from the AMD Secure Processor. The chip mixes in the launch measurement - a hash of the exact firmware, kernel, initramfs and kernel command line it started - so only this very image on this very chip can get the key back."
say "Here the chip is keyd-simfw, a faithful simulator that runs on the host next to QEMU (TCG, no real SEV). Inside the guest it appears exactly where the real AMD-SP does, as /dev/sev-guest: a test-only character device that speaks the Linux guest driver's ioctl interface and forwards each request over a virtio-serial port. keyd is configured as on real hardware and runs the same code it runs there. The guest cannot choose its own measurement: the simulator computes it from the files QEMU boots."

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
[ "$(vm_backend "$VM_LOG")" = snp ] || die "keyd did not use /dev/sev-guest (backend '$(vm_backend "$VM_LOG")')"
say "keyd's backend detection found /dev/sev-guest and used its production snp backend."
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
foreign=$VM_WORK/foreign.cpio.gz
vm_image_variant "$foreign" "keyd-test-image v2"
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

upgrade_show() { # LABEL LOG: the keyd and result lines of one VM
	grep -a -E '^(keyd: |KEYD-TEST: (RESULT|UPGRADE|HANDOFF|COMMIT))' "$2" |
		sed -e 's/ t=[0-9.]*//' -e "s/^/   $1 | /"
}
tokens() {
	say "Keyd tokens in the header, as the host sees them:"
	vm_token_states "$VM_DISK" | awk -F: '{printf "   | label %-6s %-8s measurement %.24s...\n", $1, $2, $3}'
}

step "6. An upgrade: release 2.0, handed over by attestation"
say "The vendor now releases exactly the image that was refused in step 4 as GuestOS 2.0. Changing the measurement alone got it nothing; what it needs is the running version's consent, given only to a proven release. The vendor signs a release manifest - version, SVN, measurement, validity window - with 2 of its 3 release keys:"
vm_manifest "$VM_WORK/m1.json" 1.0 1 "$meas" || die "manifest 1.0"
vm_manifest "$VM_WORK/m2.json" 2.0 2 "$fmeas" || die "manifest 2.0"
"$KEYD_BUILD/keyd" manifest show "$VM_WORK/m2.json" | grep -v '^signed by' | sed 's/^/   | /'
say "The release public keys and the threshold (2 of 3) are inside every image, so they are part of every measurement: an image that trusted other keys would be another image. The manifests themselves come from the host: they are signed, and a manifest cannot list its own image's measurement from inside that image."
say "Two VMs start side by side on the same chip, linked by a virtual network: v1 (1.0) boots as usual, opens the volume and is asked by the host to serve an upgrade; v2 (2.0) boots in upgrade mode with no disk at all. The mode travels over QEMU fw_cfg, not the measured command line, so v2's upgrade launch has exactly the measurement of its later real boots."
say "They meet over TLS 1.3 with throwaway certificates, which proves nothing by itself. Each asks the chip for a report whose report_data is a hash of this TLS session's exporter, and each checks the other's: the AMD chain, the session binding (no replay), the same chip, no debug, no migration agent, VMPL 0, the TCB floor, the measurement listed in a manifest signed by 2 pinned release keys, and no downgrade (SVN 2 >= 1). Only then does v2 derive its own keyslot passphrase and pin key and send them; v1, which holds the volume key, adds a pending keyslot for v2. The volume key never leaves v1, and v2 never touches the disk."
vm_handoff demo-5 "$VM_ORIG" "$VM_WORK/m1.json" "$VM_DISK" "$foreign" "$VM_WORK/m2.json" ||
	die "a handoff VM did not finish"
upgrade_show v1 "$VM_LOG_O"
upgrade_show v2 "$VM_LOG_N"
{ [ "$(vm_handoff_result "$VM_LOG_O")" = ok ] && [ "$(vm_handoff_result "$VM_LOG_N")" = ok ]; } ||
	die "the handoff failed"
tokens
vm_token_states "$VM_DISK" | kd_has "^2.0:pending:$fmeas" || die "no pending slot for 2.0"
say "${G}Handed over: v2 has a pending slot; v1's slot is still active, so nothing is lost if v2 never boots.${N}"

step "7. v2 boots for real: unlock through the pending slot, commit"
say "The same v2 image now boots normally with the disk - the very image refused in step 4. Its key opens the pending slot, keyd verifies the volume-key pin before activating, the data is checked, and keyd commit makes 2.0 the active version; 1.0 is kept as retired for one rollback."
vm_launch demo-6 "$foreign" "$VM_APPEND_BASE" "$VM_DISK" || die "v2 boot failed"
upgrade_show v2 "$VM_LOG"
{ [ "$(vm_result "$VM_LOG")" = ok ] && [ "$(vm_field "$VM_LOG" marker)" = "$marker" ] &&
	[ "$(vm_commit_result "$VM_LOG")" = ok ]; } || die "v2 did not open, verify and commit"
tokens
say "${G}Upgraded: 2.0 opens the data written by 1.0 (marker $marker) and is committed.${N}"

step "8. v3, listed in no manifest, asks for a key"
v3=$VM_WORK/v3.cpio.gz
vm_image_variant "$v3" "keyd-test-image v3 (unreleased)"
m3=$(vm_measure "$v3" "$VM_APPEND_BASE")
say "An image nobody released - measurement ${m3:0:24}... - boots in upgrade mode and presents the genuine, signed 2.0 manifest. v2, now the running version, serves."
hsha=$(vm_header_sha "$VM_DISK")
vm_handoff demo-7 "$foreign" "$VM_WORK/m2.json" "$VM_DISK" "$v3" "$VM_WORK/m2.json" ||
	die "a handoff VM did not finish"
upgrade_show v2 "$VM_LOG_O"
upgrade_show v3 "$VM_LOG_N"
{ [ "$(vm_handoff_result "$VM_LOG_O")" = refused ] && [ "$(vm_handoff_result "$VM_LOG_N")" = refused ]; } ||
	die "v3 was not refused"
[ "$(vm_header_sha "$VM_DISK")" = "$hsha" ] || die "the header changed during a refused handoff"
say "${G}Refused: v3's attested measurement is not in the manifest it brought, and no signed manifest lists it. The LUKS2 header is byte-for-byte unchanged (sha256 ${hsha:0:16}...).${N}"

step "Summary"
cat <<SUMMARY
   measurement sealed to   ${meas:0:32}...
   provisioned             blank disk -> LUKS2 + keyd token + ext4, marker $marker
   reopened                same image, same key, marker intact
   foreign image refused   measurement ${fmeas:0:32}..., disk unchanged
   original again          opens, data intact
   upgrade 1.0 -> 2.0      mutual attestation on one chip, pending slot for 2.0,
                           volume key never left 1.0, 2.0 had no disk
   2.0 committed           opens through its pending slot, marker intact, 1.0 retired
   unreleased v3 refused   measurement ${m3:0:32}..., header unchanged
   9 VM boots in $(($(date +%s) - t0)) s (QEMU TCG, real Debian kernel $VM_KVER)
SUMMARY
