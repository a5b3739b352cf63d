#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Bench (issue 8): throughput cost of keyd enroll --integrity inside a VM
# (QEMU TCG, -cpu max, one vCPU). Two guests in one run, same kernel, same
# /init (tests/bench/integrity-init): one provisions a plain keyd volume,
# one an --integrity-no-wipe volume (aes-xts-plain64 + hmac(sha256) through
# dm-integrity, journalled); each then writes BENCH_MB MiB of zeros to
# /dev/mapper/state (fsync) and reads them back after dropping caches.
# One boot each: TCG makes every number slow, the ratio is the figure.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
if ! vm_have_qemu || [ ! -x "$KEYD_BUILD/keyd-simfw" ]; then
	echo "integrity: needs qemu, a kernel and keyd-simfw (make deps-vm all)" >&2
	exit 77
fi
VM_WORK=$(mktemp -d /tmp/keyd-bench-integrity.XXXXXX)
vm_traps 'rm -rf "$VM_WORK"'
sim_init "$VM_WORK/chip"
VM_CHIP=$VM_WORK/chip

declare -A write_s read_s
for kind in plain integrity; do
	opts=defaults
	[ $kind = integrity ] && opts=integrity-no-wipe
	echo "state /dev/vda none - $opts" >"$VM_WORK/$kind.volumes"
	vm_initramfs "$VM_WORK/$kind.cpio.gz" --volumes "$VM_WORK/$kind.volumes" \
		--add "$KEYD_SRC/tests/bench/integrity-init=/init"
	vm_blank_disk "$VM_WORK/$kind.img" 96
	vm_launch "$kind" "$VM_WORK/$kind.cpio.gz" "$VM_APPEND_BASE" "$VM_WORK/$kind.img" ||
		{ echo "integrity: $kind boot failed" >&2; exit 1; }
	line=$(tr -d '\r' <"$VM_LOG" | grep -a 'KEYD-TEST: BENCH' | tail -n 1)
	case $line in
	*write_s=*) ;;
	*)
		echo "integrity: $kind guest did not report (console $VM_LOG):" >&2
		tr -d '\r' <"$VM_LOG" | grep -a 'keyd' | grep -av '^\[' | tail -n 10 >&2
		exit 1
		;;
	esac
	mb=$(sed -n 's/.* mb=\([0-9]*\).*/\1/p' <<<"$line")
	write_s[$kind]=$(sed -n 's/.*write_s=\([0-9.]*\).*/\1/p' <<<"$line")
	read_s[$kind]=$(sed -n 's/.*read_s=\([0-9.]*\).*/\1/p' <<<"$line")
done
python3 - "$mb" "${write_s[plain]}" "${read_s[plain]}" "${write_s[integrity]}" "${read_s[integrity]}" <<'PY'
import sys
mb = float(sys.argv[1])
pw, pr, iw, ir = (max(float(x), 0.01) for x in sys.argv[2:6])
print(f"{'in-VM dm-crypt, ' + str(int(mb)) + ' MiB (TCG)':40s} {'write MiB/s':>12s} {'read MiB/s':>11s}")
print(f"{'plain (aes-xts-plain64)':40s} {mb / pw:12.1f} {mb / pr:11.1f}")
print(f"{'--integrity (+ hmac(sha256), journal)':40s} {mb / iw:12.1f} {mb / ir:11.1f}")
print(f"integrity: write {pw / iw * 100:.0f}% and read {pr / ir * 100:.0f}% of plain throughput "
      f"(write {iw / pw:.2f}x slower, read {ir / pr:.2f}x); one boot each, TCG")
PY
