#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# make check-vm: boot the VM scenarios (tests/vm/NN-*.sh) under QEMU TCG with
# the simulated AMD-SP. Scenario 05 (Debian's mkinitramfs) has its own disk
# and runs in parallel with the chain of the others, which run in order (01-03
# and 08 share one state disk; 08 itself boots two VMs at once for the upgrade
# handoff; 09 recovery and 10 integrity-tamper have their own disks, and 09 a
# second chip).
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

pass=0 failn=0
for s in "${scripts[@]}"; do
	name=$(basename "$s" .sh)
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
