#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Boot benchmark: boot-to-mounted time of the keyd test initramfs (sealed key
# from the simulated AMD-SP through the emulated /dev/sev-guest, header
# checks, pin) against
# the same initramfs unlocking a plain LUKS2 volume with a PBKDF2-1000 key
# file. "Boot-to-mounted" is the guest's uptime when the state volume is
# mounted (kernel start -> mounted; identical firmware/QEMU start-up is left
# out), minus the start-up of the test rig's emulated /dev/sev-guest, which
# hardware does not have (RIG-START..RIG-UP on the console). Median of BOOT_RUNS (default 3) boots each, after one provisioning
# boot each, interleaved so that host noise hits both sides alike.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh

runs=${BOOT_RUNS:-3}
[ "$runs" -ge 3 ] || runs=3
if ! vm_have_qemu || [ ! -x "$KEYD_BUILD/keyd-simfw" ]; then
	echo "boot: needs qemu, a kernel and keyd-simfw (make deps-vm all)" >&2
	exit 77
fi

VM_WORK=$(mktemp -d /tmp/keyd-bench-boot.XXXXXX)
vm_traps 'rm -rf "$VM_WORK"'
vm_setup
keyd_img=$VM_ORIG

# Baseline: the same builder, the same /init and keyd-unlock.sh, no
# simulator, and the benchmark's test hook (tests/bench/keyfile-hook.sh)
# opening the volume with a plain LUKS2 key file instead of keyd.
head -c 64 /dev/urandom >"$VM_WORK/plain.key"
echo "state /dev/vda ext4 /state defaults" >"$VM_WORK/plain.volumes"
echo "# no simulated AMD-SP for the key-file baseline" >"$VM_WORK/plain.boot.conf"
plain_img=$VM_WORK/plain.cpio.gz
vm_initramfs "$plain_img" --volumes "$VM_WORK/plain.volumes" --boot-conf "$VM_WORK/plain.boot.conf" \
	--add "$VM_WORK/plain.key=/etc/keyd/plain.key" --add "tests/bench/keyfile-hook.sh=/etc/keyd/test-hook.sh" --add "$VM_WORK/image-version=/etc/keyd/image-version"

keyd_disk=$VM_WORK/keyd.img
plain_disk=$VM_WORK/plain.img
vm_blank_disk "$keyd_disk" 64
vm_blank_disk "$plain_disk" 64

boot_keyd() { vm_launch "keyd-$1" "$keyd_img" "$VM_APPEND_BASE" "$keyd_disk"; }
boot_plain() {
	VM_LOG=$VM_WORK/plain-$1.console
	vm_boot "$VM_LOG" "$plain_disk" "$plain_img" "$VM_APPEND_BASE"
}
# rig_time LOG -> seconds the test rig took to bring up /dev/sev-guest (0 without it).
rig_time() {
	local a b
	a=$(vm_uptime "$1" RIG-START)
	b=$(vm_uptime "$1" RIG-UP)
	awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.2f", b - a}'
}
check() { # LOG WANT_STATE -> prints mounted time, rig start-up left out
	[ "$(vm_result "$1")" = ok ] || { echo "boot: run failed, see $1" >&2; grep -a keyd "$1" >&2; exit 1; }
	[ "$(vm_field "$1" state)" = "$2" ] || { echo "boot: unexpected state in $1" >&2; exit 1; }
	awk -v m="$(vm_uptime "$1" MOUNTED)" -v r="$(rig_time "$1")" 'BEGIN {printf "%.2f", m - r}'
}
# /init start -> mounted: the part keyd changes, without kernel start-up.
unlock_time() {
	awk -v a="$(vm_uptime "$1" INIT)" -v b="$(vm_uptime "$1" MOUNTED)" -v r="$(rig_time "$1")" \
		'BEGIN {printf "%.2f", b - a - r}'
}

boot_keyd provision && check "$VM_LOG" provisioned >/dev/null
boot_plain provision && check "$VM_LOG" provisioned >/dev/null

keyd_t=() plain_t=() keyd_wall=() plain_wall=() keyd_u=() plain_u=() rig_t=()
for i in $(seq 1 "$runs"); do
	s=$(date +%s.%N); boot_keyd "$i"; e=$(date +%s.%N)
	keyd_t+=("$(check "$VM_LOG" unlocked)"); keyd_u+=("$(unlock_time "$VM_LOG")")
	rig_t+=("$(rig_time "$VM_LOG")")
	keyd_wall+=("$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.2f", e - s}')")
	s=$(date +%s.%N); boot_plain "$i"; e=$(date +%s.%N)
	plain_t+=("$(check "$VM_LOG" unlocked)"); plain_u+=("$(unlock_time "$VM_LOG")")
	plain_wall+=("$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.2f", e - s}')")
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
km=$(median "${keyd_t[@]}")
pm=$(median "${plain_t[@]}")
kw=$(median "${keyd_wall[@]}")
pw=$(median "${plain_wall[@]}")
echo "boot-to-mounted, guest uptime, median of $runs (TCG, 1 vCPU, 512 MiB):"
echo "  keyd (simulated AMD-SP, sealed key, header checks): ${km} s   [runs: ${keyd_t[*]}]"
echo "  plain PBKDF2-1000 key file (same initramfs):         ${pm} s   [runs: ${plain_t[*]}]"
echo "  /init start -> mounted, median: keyd $(median "${keyd_u[@]}") s, key file $(median "${plain_u[@]}") s"
echo "  whole VM wall time, median: keyd ${kw} s, key file ${pw} s"
echo "  (keyd's times leave out the test rig's /dev/sev-guest start-up, median $(median "${rig_t[@]}") s)"
ratio=$(awk -v a="$km" -v b="$pm" 'BEGIN {printf "%.3f", a / b}')
overhead=$(awk -v a="$km" -v b="$pm" 'BEGIN {printf "%+.1f%%", (a / b - 1) * 100}')
echo "ratio: keyd/keyfile boot-to-mounted = $ratio ($overhead; target < +10%)"
