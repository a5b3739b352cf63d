#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# GuestOS benchmark (the systemd image of tests/vm/guestos-lib.sh), side by
# side:
#  - boot to multi-user.target (guest uptime when the report unit runs, after
#    the state volume is mounted) of the keyd image (state unlocked in the
#    initramfs by keyd, simulated AMD-SP behind the emulated /dev/sev-guest)
#    against the same root with a plain key-file crypttab (systemd-cryptsetup
#    opens the state volume with a PBKDF2-1000 key file from the root; keyd in
#    the initramfs only maps and checks the verity root). Median of BOOT_RUNS (default 3) boots each after one
#    provisioning boot each, interleaved.
#  - dm-verity's cost: the whole root read once with O_DIRECT, from the raw
#    disk and through /dev/mapper/root (every block hashed), in one guest.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
# shellcheck source=tests/vm/guestos-lib.sh
. tests/vm/guestos-lib.sh

runs=${BOOT_RUNS:-3}
[ "$runs" -ge 1 ] || runs=1
if ! vm_have_qemu || [ ! -x "$KEYD_BUILD/keyd-simfw" ] || ! command -v mkinitramfs >/dev/null ||
	! command -v mmdebstrap >/dev/null; then
	echo "guestos: needs qemu, a kernel, keyd-simfw, mkinitramfs and mmdebstrap (make deps-vm all)" >&2
	exit 77
fi
VM_WORK=$(mktemp -d /tmp/keyd-bench-guestos.XXXXXX)
trap 'sim_stop; rm -rf "$VM_WORK"' EXIT
vm_setup

# The baseline: the same root and initramfs flow (keyd still maps and checks
# the verity root: without it nothing maps /dev/mapper/root), no keyd
# volume, a key-file crypttab.
plain_root() { # ROOT
	echo "# no keyd volume: the state is opened by systemd-cryptsetup (/etc/crypttab)" >"$1/etc/keyd/volumes"
	cp "$VM_WORK/plain.key" "$1/etc/keyd/plain.key"
	chmod 0400 "$1/etc/keyd/plain.key"
	echo "state /dev/vda /etc/keyd/plain.key luks,headless=1" >"$1/etc/crypttab"
	guestos_mkfs_unit "$1" state
}
bench_root() { touch "$1/etc/keyd-test-bench-verity"; }
head -c 64 /dev/urandom >"$VM_WORK/plain.key"
K=$VM_WORK/keyd
P=$VM_WORK/plain
guestos_build "$K" "keyd-guestos bench" bench_root >/dev/null
guestos_build "$P" "keyd-guestos bench" plain_root >/dev/null
kdisk=$VM_WORK/keyd-state.img
pdisk=$VM_WORK/plain-state.img
vm_blank_disk "$kdisk" 64
vm_blank_disk "$pdisk" 64
# The plain LUKS2 volume is made on the host; its filesystem on its first
# (untimed) boot (guestos_mkfs_unit).
cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$VM_WORK/plain.key" "$pdisk"

boot_keyd() { guestos_launch "keyd-$1" "$K" "$kdisk"; }
boot_plain() { guestos_launch "plain-$1" "$P" "$pdisk"; }
# guest uptime at multi-user.target with the state mounted
reached() { # LOG
	[ "$(vm_result "$1")" = ok ] || { echo "guestos: run failed, see $1" >&2; grep -a -E 'keyd|KEYD' "$1" >&2; exit 1; }
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: SYSTEMD target=multi-user.target:active .*t=\([0-9.]*\).*/\1/p' | tail -n 1
}

boot_keyd provision && reached "$VM_LOG" >/dev/null
vc=$(tr -d '\r' <"$VM_LOG" | sed -n 's/.*KEYD-TEST: VERITY-COST //p' | tail -n 1)
boot_plain provision && reached "$VM_LOG" >/dev/null
kt=() pt=()
for i in $(seq 1 "$runs"); do
	boot_keyd "$i"
	kt+=("$(reached "$VM_LOG")")
	boot_plain "$i"
	pt+=("$(reached "$VM_LOG")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
km=$(median "${kt[@]}")
pm=$(median "${pt[@]}")
size=$(du -m --apparent-size "$K/root.img" | cut -f1)
echo "systemd GuestOS, boot to multi-user.target with the state mounted, guest uptime, median of $runs (TCG):"
echo "  keyd (initramfs unlock, simulated AMD-SP): ${km} s   [runs: ${kt[*]}]"
echo "  plain key-file crypttab (systemd-cryptsetup): ${pm} s   [runs: ${pt[*]}]"
echo "dm-verity, whole root (${size} MiB) read once with O_DIRECT: ${vc:-not measured} (seconds)"
ratio=$(awk -v a="$km" -v b="$pm" 'BEGIN {printf "%.3f", a / b}')
overhead=$(awk -v a="$km" -v b="$pm" 'BEGIN {printf "%+.1f%%", (a / b - 1) * 100}')
echo "ratio: keyd/keyfile boot-to-multi-user = $ratio ($overhead; target < +2%)"
