#!/bin/bash
# Scenario 13: online volume-key rotation and proof of revocation (issue 17).
# Boot 1 provisions the volume and writes the marker; the host keeps a copy
# of that header. Boot 2 unlocks, reads the marker and runs `keyd rotate`
# online (the volume mounted). The host then restores the pre-rotation header
# onto a copy of the disk: its keyslot still opens for this launch (it is
# the genuine old header) but yields the old volume key, under which the data
# no longer decrypts: the mount fails. Boot 4, on the real disk, reads the
# marker intact under the new key.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

T=$VM_WORK/rotate
rm -rf "$T"
mkdir -p "$T"
img=$VM_WORK/rotate.cpio.gz
echo "state /dev/vda ext4 /state label=1.0" >"$T/volumes"
echo "keyd-test-image v1 rotate" >"$T/image-version"
vm_initramfs "$img" --volumes "$T/volumes" \
	--add "$T/image-version=/etc/keyd/image-version" \
	--add "$KEYD_SRC/tests/vm/fixtures/rotate-hook.sh=/etc/keyd/test-hook.sh" ||
	fail "cannot build the rotation test image"
disk=$T/state.img
vm_blank_disk "$disk" 64

rotate_result() { # LOG -> the ROTATE result word
	tr -d '\r' <"$1" | sed -n 's/.*KEYD-TEST: ROTATE name=state result=\([a-z]*\).*/\1/p' | tail -n 1
}
digest() { # DISK -> the volume-key digest of the header's single digest
	cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["digests"]; print(len(d), *[v["digest"] for v in d.values()])'
}

# 1: provision, marker.
vm_launch 13a-rotate-provision "$img" "$VM_APPEND_BASE" "$disk" || fail "provisioning boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
marker=$(vm_field "$VM_LOG" marker)
[ ${#marker} -eq 32 ] || fail "no marker on the console"
cryptsetup luksHeaderBackup "$disk" --header-backup-file "$T/old.hdr"
old_digest=$(digest "$disk")

# 2: unlock, read the marker, rotate online.
vm_launch 13b-rotate-online "$img" "$VM_APPEND_BASE" "$disk" || fail "rotation boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs before the rotation"
[ "$(rotate_result "$VM_LOG")" = ok ] || fail "keyd rotate did not succeed"
grep -aq 'KEYD-TEST: ROTATE name=state result=ok online=1' "$VM_LOG" || fail "rotation was not online"
new_digest=$(digest "$disk")
[ "${new_digest%% *}" = 1 ] || fail "header after rotation has ${new_digest%% *} digests"
[ "$new_digest" != "$old_digest" ] || fail "volume key digest unchanged: nothing was rotated"
cryptsetup luksDump --dump-json-metadata "$disk" | kd_has requirements && fail "reencryption not finished"

# 3: the host rolls the header back on a copy of the disk: the old keyslot
# opens (pin verifies), the data does not decrypt under the old key.
cp "$disk" "$T/rolled.img"
cryptsetup luksHeaderRestore -q "$T/rolled.img" --header-backup-file "$T/old.hdr"
vm_launch 13c-rotate-rolled-header "$img" "$VM_APPEND_BASE" "$T/rolled.img" || fail "rollback boot did not power off"
[ "$(vm_result "$VM_LOG")" != ok ] || fail "the pre-rotation header opened the rotated data"
grep -aq "marker=$marker" "$VM_LOG" && fail "marker readable through the pre-rotation header"

# 4: the real disk: the marker under the new key.
vm_launch 13d-rotate-after "$img" "$VM_APPEND_BASE" "$disk" || fail "boot after rotation did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after the rotation"
[ "$(rotate_result "$VM_LOG")" = skipped ] || fail "rotated twice"
echo "rotated online; the pre-rotation header opens nothing readable; marker $marker intact"
