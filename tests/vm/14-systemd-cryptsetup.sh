#!/bin/bash
# Scenario 14: systemd-cryptsetup interop. The systemd GuestOS of scenario 12
# with a second keyd volume (/dev/vdd) named in the root's /etc/crypttab with
# no key file, and keyd's libcryptsetup token plugin installed in the root
# (libcryptsetup-token-keyd). systemd-cryptsetup (systemd 252) opens it at
# boot through the plugin (libcryptsetup's token activation); a test unit
# gives it a filesystem on its first opening (guestos_mkfs_unit).
#   14a  the data volume, enrolled for this launch's measurement on the host
#        (keyd enroll against the launch's simulator), opens at boot
#   14b  reboot: it opens again, the marker written in 14a is there
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/guestos-lib.sh
. "$(dirname "$0")/guestos-lib.sh"
vm_setup
command -v mkinitramfs >/dev/null || fail "mkinitramfs missing (make deps-vm)"

crypttab_root() { # ROOT
	echo "data /dev/vdd none headless=1" >"$1/etc/crypttab"
	mkdir -p "$1/var/lib/keyd-data"
	echo "/dev/mapper/data /var/lib/keyd-data ext4 defaults,nofail,x-systemd.device-timeout=120s 0 0" >>"$1/etc/fstab"
	guestos_mkfs_unit "$1" data
}
G=$VM_WORK/guestos-14
guestos_build "$G" "keyd-guestos crypttab" crypttab_root || fail "cannot build the GuestOS image"
state=$VM_WORK/guestos-14-state.img
data=$VM_WORK/guestos-14-data.img
vm_blank_disk "$state" 64
vm_blank_disk "$data" 64

# The data volume is sealed to exactly this launch (same chip, kernel,
# initrd and command line as the boots below).
sock=$VM_WORK/14-enroll.sock
sim_start "$VM_CHIP" "$sock" "$G/initrd.img" "$(cat "$G/cmdline")" || fail "simulator"
KEYD_SIM=unix:$sock "$KEYD_BUILD/keyd" enroll "$data" --format --label data >/dev/null ||
	{ sim_stop; fail "cannot enrol the data volume"; }
sim_stop

GUESTOS_QEMU_EXTRA=(-drive "file=$data,if=virtio,format=raw")
guestos_launch 14a-systemd-cryptsetup "$G" "$state" || fail "14a: boot did not power off"
expect_result "$VM_LOG" ok
line=$(tr -d '\r' <"$VM_LOG" | grep -a 'KEYD-TEST: CRYPTTAB name=data' | tail -n 1)
[[ $line == *"unit=active"* ]] || fail "14a: systemd-cryptsetup@data.service did not open the volume: $line"
marker=$(sed -n 's/.* marker=\([0-9a-f]*\) .*/\1/p' <<<"$line")
[ -n "$marker" ] && [ "$marker" != none ] || fail "14a: the data volume was not mounted: $line"

guestos_launch 14b-systemd-cryptsetup-reopen "$G" "$state" || fail "14b: boot did not power off"
expect_result "$VM_LOG" ok
line=$(tr -d '\r' <"$VM_LOG" | grep -a 'KEYD-TEST: CRYPTTAB name=data' | tail -n 1)
[[ $line == *"unit=active marker=$marker "* ]] || fail "14b: the data volume did not reopen with its marker: $line"
GUESTOS_QEMU_EXTRA=()
echo "systemd-cryptsetup (systemd 252) opened a keyd volume from /etc/crypttab through keyd's token plugin, twice"
