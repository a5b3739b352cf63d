#!/bin/bash
# Scenario 17: the guest driver's ioctl ABI through the real CUSE path in
# the guest. tests/vm/sevguest-probe.c runs raw ioctls against the emulated
# /dev/sev-guest (msg_version, exitinfo2 copy-back, the 16 KiB certificate
# cap, INVALID_LEN, many processes at once) and last makes a request fail,
# which wipes the VMPCK: keyd must then refuse, naming the failed request.
# Booted twice: with the running kernel's behaviour, and with v6.1.0's
# (INVALID_LEN with ioctl status 0).
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
probe=$KEYD_BUILD/tests/sevguest-probe
[ -x "$probe" ] || fail "$probe is missing (make $probe)"

hook=$VM_WORK/probe-hook.sh
cat >"$hook" <<'HOOK'
test_hook_pre_unlock() {
	abi=6.12
	case $(uname -r) in 6.1.*) abi=6.1.y ;; esac
	[ -r /etc/keyd/test-sevguest-abi ] && read -r abi </etc/keyd/test-sevguest-abi
	/usr/lib/keyd/sevguest-probe /dev/sev-guest "$abi"
}
HOOK
echo "state /dev/vda ext4 /state defaults" >"$VM_WORK/probe.volumes"
echo "6.1.0" >"$VM_WORK/abi-6.1.0"
for variant in running 6.1.0; do
	img=$VM_WORK/probe-$variant.cpio.gz
	extra=()
	[ "$variant" = 6.1.0 ] && extra=(--add "$VM_WORK/abi-6.1.0=/etc/keyd/test-sevguest-abi")
	# shellcheck disable=SC2046 # option list without spaces, split on purpose
	vm_initramfs "$img" --volumes "$VM_WORK/probe.volumes" --add "$hook=/etc/keyd/test-hook.sh" \
		--add "$probe=/usr/lib/keyd/sevguest-probe" "${extra[@]}" $(vm_release_adds) ||
		fail "cannot build the probe initramfs"
	disk=$VM_WORK/probe-$variant.img
	vm_blank_disk "$disk" 64
	vm_launch "17-sevguest-abi-$variant" "$img" "$VM_APPEND_BASE" "$disk" || fail "probe boot did not power off"
	if grep -a 'SEVGUEST-PROBE: case=.* result=FAIL' "$VM_LOG" >&2; then
		fail "ABI cases failed ($variant)"
	fi
	grep -aq 'SEVGUEST-PROBE: DONE failed=0' "$VM_LOG" || fail "the probe did not finish ($variant)"
	[ "$variant" = running ] || grep -aq 'kernel ABI 6.1.0' "$VM_LOG" || fail "the device did not take ABI 6.1.0"
	# The VMPCK is gone: keyd refuses and says why; the blank disk stays blank.
	expect_result "$VM_LOG" refused
	grep -aq 'VMPCK' "$VM_LOG" || fail "keyd's refusal does not name the disabled VMPCK"
	cmp -s "$disk" <(head -c $((64 << 20)) /dev/zero) || fail "disk written after the VMPCK was disabled"
done
echo "ABI cases ok on kernel $VM_KVER (its own behaviour and v6.1.0's); keyd refuses once the VMPCK is gone"
