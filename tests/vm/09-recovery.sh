#!/bin/bash
# Scenario 9 (issue 7): a chip replacement recovered by 2 of 3 admins.
# Boot 1 on chip A provisions the volume with a 2-of-3 escrow (volumes
# options escrow=/etc/keyd/escrow,escrow-threshold=2; the admin certificates
# are in the measured image) and writes the marker. Chip A is then "lost":
# the same image on a new chip B is refused and the disk stays the same.
# The admins' side runs on the host (export-shares reads public ciphertext;
# decrypt-share re-encrypts a share to the operator), the recovery itself in
# a guest on chip B: the same image and command line with a second,
# unmeasured disk carrying the operator's shares (fixtures/recovery-hook.sh)
# runs keyd-recover unlock, which re-enrolls an active slot for this launch
# and rotates the escrow. A last normal boot on chip B unlocks and finds the
# marker.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/recovery-lib.sh
. "$(dirname "$0")/recovery-lib.sh"
vm_setup

R=$VM_WORK/recovery
img=$VM_WORK/recovery.cpio.gz
rec_setup "$R" "keyd-test-image v1 recovery" "$img"
disk=$VM_WORK/recovery.img
vm_blank_disk "$disk" 64
chip_a=$VM_CHIP
chip_b=$VM_WORK/chip-b
rm -rf "$chip_b"
sim_init "$chip_b" || fail "cannot create chip B"

# 1: chip A provisions with escrow and writes the marker.
rec_provision 09a-chip-a-provision "$img" "$disk"
marker=$REC_MARKER

# 2: chip A is gone. The same image on chip B is refused; the disk is unchanged.
before=$(vm_sha "$disk")
VM_CHIP=$chip_b
vm_launch 09b-chip-b-refused "$img" "$VM_APPEND_BASE" "$disk" || fail "chip B boot did not power off"
expect_result "$VM_LOG" refused
grep -aq 'sealed to another chip' "$VM_LOG" || fail "refusal on chip B does not say it is another chip"
[ "$(vm_sha "$disk")" = "$before" ] || fail "disk changed during the refused chip B boot"
why=$(grep -a 'keyd: ERROR: ' "$VM_LOG" | grep -av '^\[' | grep -a 'another chip' | sed -n 1p | sed 's/^keyd: ERROR: *//; s/^ *keyd: //')

# 3: the admins re-encrypt shares 1 and 3 to the operator.
rec_share_disk "$R" "$disk"

# 4: recovery in a guest on chip B: same image, same command line, plus the
# recovery disk (unmeasured).
rec_recover 09c-chip-b-recover "$img" "$disk" "$R/recovery-disk.tar"
# The shares were seen: the escrow was rotated (fresh recovery key and shares).
"$KEYD_BUILD/keyd-recover" export-shares "$disk" --out "$R/shares-rotated" >/dev/null ||
	fail "no escrow after the rotation"
if cmp -s "$R/shares/share-1.der" "$R/shares-rotated/share-1.der"; then
	fail "escrow shares were not rotated after recovery"
fi

# 5: a normal boot on chip B (no recovery disk) unlocks through the new slot.
vm_launch 09d-chip-b-normal "$img" "$VM_APPEND_BASE" "$disk" || fail "normal chip B boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked on chip B"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after recovery"
grep -aq 'KEYD-TEST: RECOVERY' "$VM_LOG" && fail "normal boot ran the recovery without a recovery disk"
VM_CHIP=$chip_a
echo "chip B refused (${why:-refused}); 2 of 3 admins recovered it in a chip B guest, escrow rotated; normal chip B boot reads marker $marker"
