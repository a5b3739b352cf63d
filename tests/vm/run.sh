#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# make check-vm: boot the VM scenarios (tests/vm/NN-*.sh) under QEMU TCG with
# the simulated AMD-SP behind an emulated /dev/sev-guest: keyd in the guest
# runs its production snp backend. The scenarios that touch the guest
# interface (VM_KERNEL2_SCENARIOS, default 01-03, 17 and 18) boot a second time on
# Debian 12's 6.12 kernel (tests/vm/fetch-kernel.sh; VM_KERNEL2=none skips). Scenario 05 (Debian's mkinitramfs) has its own disk
# and runs in parallel with the chain of the others, which run in order (01-03
# and 08 share one state disk; 08 itself boots two VMs at once for the upgrade
# handoff; 09 recovery, 10 integrity-tamper, 20 retire-after-recovery and 21
# upgrade-with-rotation have their own disks, and 09 and 20 a second chip; 21
# boots two VMs at once for its handoff, as 08 does).
# Prints PASS/FAIL per scenario with times; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh

if ! vm_have_qemu; then
	echo "check-vm: qemu-system-x86_64 or a kernel with modules is missing (make deps-vm)" >&2
	exit 1
fi
for b in keyd keyd-simfw; do
	if [ ! -x "$KEYD_BUILD/$b" ]; then
		echo "check-vm: $KEYD_BUILD/$b is missing (make all)" >&2
		exit 1
	fi
done

VM_WORK=$(mktemp -d /tmp/keyd-vm.XXXXXX)
export VM_WORK
# lib.sh's traps kill every scenario still running on exit, INT or TERM, and
# each scenario kills its own QEMU and simulators in turn.

t0=$(date +%s)
echo "check-vm: kernel $VM_KVER, work dir $VM_WORK"
if ! vm_setup >"$VM_WORK/setup.log" 2>&1; then
	echo "FAIL setup"
	cat "$VM_WORK/setup.log"
	exit 1
fi

run_one() { # SCRIPT -> writes $VM_WORK/NAME.result
	local s=$1 name start end rc pid
	name=$(basename "$s" .sh)
	start=$(date +%s)
	rc=0
	bash "$s" >"$VM_WORK/$name.log" 2>&1 &
	pid=$!
	vm_track "$pid"
	wait "$pid" || rc=$?
	vm_untrack "$pid"
	end=$(date +%s)
	echo "$rc $((end - start))" >"$VM_WORK/$name.result"
}

only=${VM_ONLY:-}
scripts=()
for s in tests/vm/[0-9][0-9]-*.sh; do
	[ -z "$only" ] || [[ " $only " == *" $(basename "$s" .sh | cut -c1-2) "* ]] || continue
	scripts+=("$s")
done

parallel=()
for s in "${scripts[@]}"; do
	case $(basename "$s") in
	05-*)
		(
			VM_PIDS=()
			vm_traps
			run_one "$s"
		) &
		parallel+=("$!")
		vm_track "$!"
		;;
	esac
done
for s in "${scripts[@]}"; do
	case $(basename "$s") in 05-*) ;; *) run_one "$s" ;; esac
done
for p in ${parallel[@]+"${parallel[@]}"}; do
	wait "$p" || true
	vm_untrack "$p"
done

# The same scenarios on the second kernel, in their own work dir (another
# kernel is another initramfs, hence another measurement and another disk)
# with the same chip and release keys.
names=()
for s in "${scripts[@]}"; do names+=("$(basename "$s" .sh)"); done
if [ "${VM_KERNEL2:-}" != none ]; then
	k2_work=$VM_WORK/k2
	mkdir -p "$k2_work"
	ln -s "$VM_WORK/chip" "$k2_work/chip"
	ln -s "$VM_WORK/release" "$k2_work/release"
	k2_root=$(tests/vm/fetch-kernel.sh "$KEYD_BUILD/vm-kernels" "${VM_KERNEL2:-linux-image-6.12-amd64}" 2>"$VM_WORK/k2.log")
	k2_ver=$(VM_KROOT=$k2_root bash -c '. tests/vm/lib.sh; echo "$VM_KVER"' 2>/dev/null)
	for s in "${scripts[@]}"; do
		n=$(basename "$s" .sh)
		[[ " ${VM_KERNEL2_SCENARIOS:-01 02 03 17 18} " == *" ${n:0:2} "* ]] || continue
		name="$n@${k2_ver:-kernel2}"
		names+=("$name")
		if [ -z "$k2_root" ]; then
			echo "1 0" >"$VM_WORK/$name.result"
			cp "$VM_WORK/k2.log" "$VM_WORK/$name.log"
			continue
		fi
		start=$(date +%s)
		VM_WORK=$k2_work VM_KROOT=$k2_root VM_KVER=$k2_ver bash "$s" >"$VM_WORK/$name.log" 2>&1
		rc=$?
		echo "$rc $(($(date +%s) - start))" >"$VM_WORK/$name.result"
	done
fi

pass=0 failn=0
for name in "${names[@]}"; do
	read -r rc secs <"$VM_WORK/$name.result" 2>/dev/null || { rc=99 secs='?'; }
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-28s %4ss  %s\n' "$name" "$secs" "$(tail -n 1 "$VM_WORK/$name.log")"
	else
		failn=$((failn + 1))
		printf 'FAIL %-28s %4ss (rc %s)\n' "$name" "$secs" "$rc"
		sed 's/^/    /' "$VM_WORK/$name.log" | tail -n 40
	fi
done
echo "check-vm: $pass passed, $failn failed in $(($(date +%s) - t0))s (logs: $VM_WORK)"
[ "$failn" -eq 0 ] && [ "$pass" -gt 0 ] && rm -rf "$VM_WORK"
[ "$failn" -eq 0 ]
