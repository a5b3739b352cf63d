#!/bin/bash
# Scenario 7: keyd enroll --integrity (issue 8). A blank disk is provisioned
# at first boot with LUKS2 authenticated encryption (aes-xts-plain64 +
# hmac(sha256) tags through dm-integrity, --integrity-no-wipe to keep it
# fast), gets ext4 and a marker file; the second boot of the same image
# unlocks it (allow-list accepts exactly that profile, the live dm table is
# checked: crypt over an integrity target over the disk) and reads the
# marker back.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

integ_img=$VM_WORK/integrity.cpio.gz
echo "state /dev/vda ext4 /state integrity-no-wipe" >"$VM_WORK/integrity.volumes"
echo "keyd-test-image v1 integrity" >"$VM_WORK/integrity-version"
vm_initramfs "$integ_img" --volumes "$VM_WORK/integrity.volumes" \
	--add "$VM_WORK/integrity-version=/etc/keyd/image-version" || fail "cannot build the integrity initramfs"
disk=$VM_WORK/integrity.img
vm_blank_disk "$disk" 64

vm_launch 07-integrity-first "$integ_img" "$VM_APPEND_BASE" "$disk" || fail "first boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
grep -aq 'integrity hmac(sha256), tags not initialised' "$VM_LOG" || fail "enroll did not report --integrity-no-wipe"
marker=$(vm_field "$VM_LOG" marker)
[ ${#marker} -eq 32 ] || fail "no marker on the console"

# From the host: authenticated encryption in the header, 96-byte volume key.
meta=$(cryptsetup luksDump --dump-json-metadata "$disk" | tr -d " \n")
grep -q '"integrity":{"type":"hmac(sha256)"' <<<"$meta" || fail "segment has no hmac(sha256) integrity: $meta"
grep -q '"key_size":96' <<<"$meta" || fail "keyslot key is not 64+32 bytes"
grep -q '"type":"keyd"' <<<"$meta" || fail "no keyd token"

vm_launch 07-integrity-second "$integ_img" "$VM_APPEND_BASE" "$disk" || fail "second boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs from the first boot's"

echo "integrity volume: provisioned with --integrity-no-wipe, reopened, marker $marker intact"
