#!/bin/bash
# Scenario 11: the root is part of the trust chain. The measured command line
# carries the dm-verity root hash of a root filesystem on a second disk
# (keyd root cmdline). keyd-unlock.sh maps it with veritysetup, `keyd root
# check` compares the live dm table with the measured hash, and only then are
# state keys released (keyd unlock/enroll --root-check).
#   11a  good root: first boot provisions, the console says the root is
#        dm-verity with the measured hash
#   11b  one changed byte in the root image (keyd.verity_check=full): refused
#        before any state key exists, state disk unchanged
#   11c  the host swaps in another root with its own (consistent) hash tree:
#        dm-verity refuses it against the measured hash, state disk unchanged
#   11d  the same image with no roothash= and no keyd.root=initramfs on the
#        command line: refused by keyd root check, state disk unchanged
#   11e  the good root again: the state reopens, the marker is intact
#   11f  without the full check, a block of the root changed after the
#        measurement reads as EIO (never silently other bytes)
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

W=$VM_WORK/verity
mkdir -p "$W/root" "$W/root2"
base=$VM_APPEND_KERNEL

# A small ext4 root with a recognisable payload, its hash tree on a third disk.
mkroot() { # DIR IMG TEXT
	head -c 1048576 /dev/zero | tr '\0' 'R' >"$1/payload"
	echo "$3" >"$1/os-release"
	rm -f "$2"
	truncate -s 16M "$2"
	mkfs.ext4 -q -b 4096 -d "$1" -L vroot "$2"
}
mkroot "$W/root" "$W/root.img" "keyd verity root 1"
mkroot "$W/root2" "$W/root2.img" "keyd verity root 2 (host's)"
truncate -s 1M "$W/root.hash" "$W/root2.hash"
veritysetup format "$W/root.img" "$W/root.hash" >"$W/vf.txt"
veritysetup format "$W/root2.img" "$W/root2.hash" >/dev/null
append=$("$KEYD_BUILD/keyd" root cmdline --verity-output "$W/vf.txt" \
	--append "$base keyd.verity_check=full" --data /dev/vdb --hash /dev/vdc)
hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$W/vf.txt")
[[ $append == *"roothash=$hash"* ]] || fail "keyd root cmdline: $append"

# The test action reads the payload through the verity mapping.
cat >"$W/hook.sh" <<'EOF'
test_hook_post_action() {
	mkdir -p /mnt/vroot
	if ! mount -t ext4 -o ro,noload /dev/mapper/root /mnt/vroot 2>/tmp/verity.err; then
		say "VERITY-READ result=nomount error=$(tr ' ' '_' </tmp/verity.err | cut -c1-120)"
		dmesg | tail -n 5
		return 0
	fi
	if cat /mnt/vroot/payload >/dev/null 2>/tmp/verity.err; then
		say "VERITY-READ result=ok"
	else
		say "VERITY-READ result=eio error=$(tr ' ' '_' </tmp/verity.err | cut -c1-80)"
	fi
	umount /mnt/vroot
}
EOF
img=$W/verity.cpio.gz
echo "state /dev/vda ext4 /state label=1.0" >"$W/volumes"
# shellcheck disable=SC2046 # option list without spaces, split on purpose
vm_initramfs "$img" --add "$W/hook.sh=/etc/keyd/test-hook.sh" --volumes "$W/volumes" \
	--add "$VM_WORK/image-version=/etc/keyd/image-version" $(vm_release_adds)

disk=$W/state.img
vm_blank_disk "$disk" 64
boot() { # NAME APPEND ROOT_IMG HASH_IMG
	VM_QEMU_EXTRA=(-drive "file=$3,if=virtio,format=raw,readonly=on"
		-drive "file=$4,if=virtio,format=raw,readonly=on")
	vm_launch "$1" "$img" "$2" "$disk" || fail "$1: boot did not power off"
	VM_QEMU_EXTRA=()
}
verity_read() { tr -d '\r' <"$VM_LOG" | sed -n 's/.*KEYD-TEST: VERITY-READ result=\([a-z]*\).*/\1/p' | tail -n 1; }

# 11a
boot 11a-verity-provision "$append" "$W/root.img" "$W/root.hash"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "11a: not provisioned"
grep -a "root: /dev/mapper/root is dm-verity with the measured root hash ${hash:0:16}" "$VM_LOG" >/dev/null ||
	fail "11a: the console does not say the root is verity-checked"
[ "$(verity_read)" = ok ] || fail "11a: the payload did not read through dm-verity"
marker=$(vm_field "$VM_LOG" marker)
sealed=$(vm_sha "$disk")

# 11b: one byte of the payload changed.
cp "$W/root.img" "$W/bad.img"
off=$(grep -obUa 'RRRRRRRRRRRRRRRR' "$W/bad.img" | sed -n '1000p' | cut -d: -f1)
[ -n "$off" ] || fail "11b: payload not found in the root image"
printf 'X' | dd of="$W/bad.img" bs=1 seek="$off" conv=notrunc status=none
boot 11b-verity-changed-byte "$append" "$W/bad.img" "$W/root.hash"
expect_result "$VM_LOG" refused
grep -a "does not match the measured roothash" "$VM_LOG" >/dev/null || fail "11b: no verity refusal on the console"
[ "$(vm_sha "$disk")" = "$sealed" ] || fail "11b: the state disk changed"

# 11c: another root with its own hash tree.
boot 11c-verity-swapped-root "$append" "$W/root2.img" "$W/root2.hash"
expect_result "$VM_LOG" refused
grep -a -E "does not match the measured roothash|dm-verity refused" "$VM_LOG" >/dev/null ||
	fail "11c: no verity refusal on the console"
[ "$(vm_sha "$disk")" = "$sealed" ] || fail "11c: the state disk changed"

# 11d: nothing on the command line covers the root.
boot 11d-no-roothash "$base" "$W/root.img" "$W/root.hash"
expect_result "$VM_LOG" refused
grep -a "no state volume is unlocked: root: the measured kernel command line has no roothash=" \
	"$VM_LOG" >/dev/null || fail "11d: keyd root check did not refuse"
[ "$(vm_sha "$disk")" = "$sealed" ] || fail "11d: the state disk changed"

# 11e
boot 11e-verity-reopen "$append" "$W/root.img" "$W/root.hash"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "11e: marker lost"

# 11f: without the full check (another command line: another measurement,
# so its own blank state disk), the changed block reads as EIO.
append_f=$("$KEYD_BUILD/keyd" root cmdline --verity-output "$W/vf.txt" --append "$base" \
	--data /dev/vdb --hash /dev/vdc)
vm_blank_disk "$disk" 64
boot 11f-verity-eio "$append_f" "$W/bad.img" "$W/root.hash"
expect_result "$VM_LOG" ok
[ "$(verity_read)" = eio ] || fail "11f: a changed root block read as '$(verity_read)', not EIO"
echo "verity root: measured hash ${hash:0:12}... unlocks; changed byte, swapped root and missing roothash= refused with the state untouched; a changed block reads as EIO"
