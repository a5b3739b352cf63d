#!/bin/bash
# Scenario 20 (issue 18, item 2): after a chip-loss recovery, keyd-recover
# retire never removes the running launch's only working slot.
#
# Chip A provisions the volume with a 2-of-3 escrow and writes the marker
# (20a); chip A is lost and two admins recover the volume in a chip B guest
# (20b, as in scenario 09). The volume now has chip A's slot (it opens
# nothing that runs), the rotated escrow, and chip B's "recovered" slot.
# 20c is the same image and command line on chip B with a recovery disk
# that selects the hook's retire mode (unmeasured: the disk, not the command
# line, chooses it); in the guest the admin runs the real keyd-recover:
#   retire ESCROW  allowed: this launch still opens through its own slot;
#   retire THIS    refused in one line, the device unchanged: only chip A's
#                  slot would remain, and a lost chip's slot is no way in.
# That boot unlocks through chip B's slot, and 20d, a normal chip B boot,
# opens it again and reads the marker chip A wrote.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/recovery-lib.sh
. "$(dirname "$0")/recovery-lib.sh"
vm_setup

R=$VM_WORK/recover-retire
img=$VM_WORK/recover-retire.cpio.gz
rec_setup "$R" "keyd-test-image v1 recover-retire" "$img"
disk=$R/state.img
vm_blank_disk "$disk" 64
chip_a=$VM_CHIP
chip_b=$VM_WORK/chip-b-retire
rm -rf "$chip_b"
sim_init "$chip_b" || fail "cannot create chip B"

# slots DISK -> "LOST THIS ESCROW KEYSLOTS": the keyslot of the keyd token
# made on chip A, of the one the recovery made (label "recovered"), of the
# escrow ("-" for none), and every keyslot of the header, comma-separated.
slots() {
	cryptsetup luksDump --dump-json-metadata "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin)
lost = this = esc = "-"
for t in m["tokens"].values():
    ks = ",".join(t["keyslots"])
    if t["type"] == "keyd-escrow":
        esc = ks
    elif t["type"] == "keyd" and t.get("label") == "recovered":
        this = ks
    elif t["type"] == "keyd":
        lost = ks
print(lost, this, esc, ",".join(sorted(m["keyslots"], key=int)))'
}
# attempt LOG SLOT KEY -> the value of KEY on the RETIRE line of SLOT.
attempt() {
	tr -d '\r' <"$1" | sed -n "s/.*KEYD-TEST: RETIRE slot=$2 /x /p" | tail -n 1 | tr ' ' '\n' |
		sed -n "s/^$3=//p"
}
# said LOG OUT|ERR SLOT -> the lines keyd-recover printed for SLOT.
said() {
	tr -d '\r' <"$1" | sed -n "s/.*KEYD-TEST: RETIRE-$2 slot=$3 //p"
}

# 20a, 20b: provision on chip A; chip A is lost; 2 of 3 admins recover on chip B.
rec_provision 20a-retire-chip-a-provision "$img" "$disk"
marker=$REC_MARKER
rec_share_disk "$R" "$disk"
VM_CHIP=$chip_b
rec_recover 20b-retire-chip-b-recover "$img" "$disk" "$R/recovery-disk.tar"
s=$(slots "$disk") || fail "cannot read the recovered header"
read -r lost this esc keyslots <<<"$s"
[ -n "$keyslots" ] && [ "$lost" != - ] && [ "$this" != - ] && [ "$esc" != - ] ||
	fail "recovered volume lacks chip A's slot, chip B's slot or the escrow (lost=$lost this=$this escrow=$esc)"
[ "$keyslots" = "$(printf '%s\n' "$lost" "$this" "$esc" | sort -n | paste -sd,)" ] ||
	fail "recovered volume has keyslots $keyslots, expected chip A's $lost, chip B's $this, escrow $esc"

# 20c: the admin, in the recovered launch on chip B, retires the escrow and
# then this chip's slot.
mkdir -p "$R/retire-disk/keyd-recovery"
printf '%s\n' "$esc" "$this" >"$R/retire-disk/keyd-recovery/retire"
rec_tar "$R/retire-disk" "$R/retire-disk.tar"
VM_QEMU_EXTRA=(-drive "file=$R/retire-disk.tar,if=virtio,format=raw,readonly=on")
vm_launch 20c-retire-chip-b-retire "$img" "$VM_APPEND_BASE" "$disk" || fail "retire boot did not power off"
VM_QEMU_EXTRA=()
grep -aq 'KEYD-TEST: RETIRE result=done' "$VM_LOG" || fail "the retire attempts did not run in the guest"
grep -aq 'KEYD-TEST: RECOVERY' "$VM_LOG" && fail "the retire disk ran a recovery"
# What the admin read first (keyd-recover list): whose slot is whose.
grep -aq "keyd:   $lost: keyd active .* (another chip) " "$VM_LOG" ||
	fail "keyd-recover list does not show keyslot $lost as another chip's"
grep -aq "keyd:   $this: keyd active \"recovered\" .* (this chip) " "$VM_LOG" ||
	fail "keyd-recover list does not show keyslot $this as this chip's"

# The escrow goes: this launch still opens the volume through its own slot.
[ "$(attempt "$VM_LOG" "$esc" rc)" = 0 ] ||
	fail "retire of the escrow (keyslot $esc) while chip B's slot works was refused: $(said "$VM_LOG" ERR "$esc")"
said "$VM_LOG" OUT "$esc" | kd_has -F "keyslot $esc destroyed (the escrow: all its shares are void); this launch still opens the volume through keyslot $this" ||
	fail "retire of the escrow does not name the way in that remains: $(said "$VM_LOG" OUT "$esc")"
[ "$(attempt "$VM_LOG" "$esc" before)" != "$(attempt "$VM_LOG" "$esc" after)" ] ||
	fail "retire of the escrow reported success but the device did not change"

# This chip's slot stays: chip A's slot is all that would be left.
[ "$(attempt "$VM_LOG" "$this" rc)" = 1 ] ||
	fail "retire of chip B's slot $this (only chip A's slot $lost left) was not refused: rc=$(attempt "$VM_LOG" "$this" rc) $(said "$VM_LOG" OUT "$this")"
[ "$(attempt "$VM_LOG" "$this" out)" = 0 ] && [ "$(attempt "$VM_LOG" "$this" err)" = 1 ] ||
	fail "refused retire did not say one line: $(said "$VM_LOG" OUT "$this") / $(said "$VM_LOG" ERR "$this")"
said "$VM_LOG" ERR "$this" | kd_has -F "keyd-recover: keyslot $this is the last slot that opens this volume now" ||
	fail "refusal does not say why: $(said "$VM_LOG" ERR "$this")"
[ -n "$(attempt "$VM_LOG" "$this" before)" ] &&
	[ "$(attempt "$VM_LOG" "$this" before)" = "$(attempt "$VM_LOG" "$this" after)" ] ||
	fail "refused retire changed the device"

# The same boot unlocks through chip B's slot; the header holds chip A's and
# chip B's slots, no escrow.
expect_result "$VM_LOG" ok
grep -aq "unlocked as /dev/mapper/state with keyslot $this (label recovered" "$VM_LOG" ||
	fail "retire boot did not unlock through chip B's keyslot $this"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after the retire attempts"
s=$(slots "$disk") || fail "cannot read the header after the retire boot"
read -r lost2 this2 esc2 keyslots2 <<<"$s"
[ "$lost2 $this2 $esc2" = "$lost $this -" ] ||
	fail "header after the retire boot: chip A $lost2, chip B $this2, escrow $esc2 (expected $lost $this -)"
[ "$keyslots2" = "$(printf '%s\n' "$lost" "$this" | sort -n | paste -sd,)" ] ||
	fail "header after the retire boot has keyslots $keyslots2"

# 20d: the next normal boot on chip B opens the volume through its slot and
# reads the data chip A wrote.
vm_launch 20d-retire-chip-b-normal "$img" "$VM_APPEND_BASE" "$disk" || fail "normal chip B boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked on chip B"
grep -aq "unlocked as /dev/mapper/state with keyslot $this (label recovered" "$VM_LOG" ||
	fail "normal boot did not unlock through chip B's keyslot $this"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs on the boot after the retire attempts"
grep -aq 'KEYD-TEST: RETIRE' "$VM_LOG" && fail "normal boot ran the retire mode without a disk"
VM_CHIP=$chip_a
echo "recovered on chip B (chip A slot $lost, chip B slot $this, escrow $esc): retire $esc allowed, retire $this refused, device unchanged; next boot opens slot $this, marker $marker"
