#!/bin/bash
# Scenario 15: the GuestOS of scenario 12 (a Debian 12 systemd root with keyd
# from its .deb packages, a dm-verity root from the measured command line, a
# keyd-sealed state volume that systemd mounts at /var/lib/keyd-state), but
# its initramfs is built by dracut (Debian 12's dracut-core, run inside the
# image) with the module of the keyd-dracut package: a systemd initramfs in
# which keyd's initqueue job maps the root and unlocks the state.
#   15a  first boot: provisions the state, systemd reaches multi-user.target
#   15b  reboot: the state reopens, the marker is intact
#   15c  one changed byte in the root image, booted by a release whose
#        command line also asks for the full check (keyd.verity_check=full):
#        refused before any state key exists, dracut's die stops the boot in
#        the initramfs (it halts the guest), the state disk unchanged
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/guestos-lib.sh
. "$(dirname "$0")/guestos-lib.sh"
vm_setup

GUESTOS_INITRAMFS=dracut
G=$VM_WORK/guestos-dracut
guestos_build "$G" "keyd-guestos v1" || fail "cannot build the dracut GuestOS image"
hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$G/verity.txt")
disk=$VM_WORK/guestos-dracut-state.img
vm_blank_disk "$disk" 64

# The initramfs is dracut's, with keyd's packaged module as it ships.
lst=$VM_WORK/guestos-dracut-initrd.list
zcat "$G/initrd.img" >"$lst.cpio"
cpio -it --quiet <"$lst.cpio" >"$lst"
for f in usr/lib/dracut/hooks/initqueue/settled/50-keyd-unlock-hook.sh \
	usr/lib/dracut/hooks/initqueue/finished/50-keyd-finished.sh usr/lib/keyd/keyd-unlock.sh \
	usr/sbin/keyd usr/lib/systemd/system/dracut-initqueue.service; do
	grep -x "$f" "$lst" >/dev/null || fail "the dracut initramfs lacks $f"
done
if grep -x 'scripts/local-top/keyd' "$lst" >/dev/null; then fail "the initramfs is initramfs-tools'"; fi
cpio -i --quiet --to-stdout usr/lib/dracut/hooks/initqueue/settled/50-keyd-unlock-hook.sh \
	<"$lst.cpio" >"$lst.hook"
cmp "$lst.hook" "$KEYD_SRC/initramfs/dracut/keyd-unlock-hook.sh" ||
	fail "the initramfs's keyd hook is not the packaged one"
rm -f "$lst.cpio" "$lst.hook"

guestos_launch 15a-dracut-provision "$G" "$disk" || fail "15a: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "15a: the state was not provisioned"
grep -a "KEYD-TEST: SYSTEMD target=multi-user.target:active root=/dev/mapper/root" "$VM_LOG" >/dev/null ||
	fail "15a: systemd did not reach multi-user.target on the verity root"
grep -a "root: /dev/mapper/root is dm-verity with the measured root hash ${hash:0:16}" "$VM_LOG" >/dev/null ||
	fail "15a: the initramfs did not check the verity root"
marker=$(vm_field "$VM_LOG" marker)

guestos_launch 15b-dracut-reopen "$G" "$disk" || fail "15b: boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "15b: the state was not unlocked"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "15b: marker lost"
sealed=$(vm_sha "$disk")

# guestos_launch for a boot that dracut's die ends: die halts the guest
# (no power-off), so the VM is ended here once the kernel says "System
# halted" (or by GUESTOS_TIMEOUT).
launch_until_halt() { # NAME DIR DISK APPEND ROOT_IMG
	local log=$VM_WORK/$1.console pid
	rm -f "$log"
	(
		VM_PIDS=()
		vm_traps
		guestos_launch "$@"
	) &
	pid=$!
	vm_track "$pid"
	while kill -0 "$pid" 2>/dev/null; do
		if grep -a "reboot: System halted" "$log" >/dev/null 2>&1; then
			kill "$pid"
			break
		fi
		sleep 2
	done
	wait "$pid" || true
	vm_untrack "$pid"
	VM_LOG=$log
	grep -a "reboot: System halted" "$log" >/dev/null
}

# 15c: the host changes one byte of a file in the root image.
cp "$G/root.img" "$VM_WORK/guestos-dracut-bad.img"
off=$(grep -obUa 'keyd-guestos v1' "$VM_WORK/guestos-dracut-bad.img" | cut -d: -f1 | tail -n 1)
[ -n "$off" ] || fail "15c: image-version not found in the root image"
printf '2' | dd of="$VM_WORK/guestos-dracut-bad.img" bs=1 seek=$((off + 14)) conv=notrunc status=none
launch_until_halt 15c-dracut-changed-root "$G" "$disk" "$(cat "$G/cmdline") keyd.verity_check=full" \
	"$VM_WORK/guestos-dracut-bad.img" || fail "15c: the guest did not halt"
grep -a "does not match the measured roothash" "$VM_LOG" >/dev/null ||
	fail "15c: the changed root was not refused by the verity check"
grep -a "FATAL: keyd: the root is not the one the measured command line names; not booting it" "$VM_LOG" >/dev/null ||
	fail "15c: the dracut module did not stop the boot"
if grep -a "KEYD-TEST: SYSTEMD" "$VM_LOG" >/dev/null; then fail "15c: systemd started on the changed root"; fi
if grep -a "KEYD-TEST: RESULT=ok" "$VM_LOG" >/dev/null; then fail "15c: the changed root booted with its state"; fi
[ "$(vm_sha "$disk")" = "$sealed" ] || fail "15c: the state disk changed"
rm -f "$VM_WORK/guestos-dracut-bad.img"
echo "systemd GuestOS with a dracut initramfs on a verity root (${hash:0:12}...): provisioned at multi-user.target, reopened, a changed root byte refused with the state untouched"
