#!/bin/bash
# Scenario 21: a release that asks for a volume-key rotation ("rotate": true
# in its signed manifest, keyd manifest create --rotate), end to end in the
# guest (issue 17).
#   a) v1 provisions the volume and writes the marker.
#   b) v1 hands off to v2 (release 2.0, whose manifest asks for rotation);
#      the host keeps this header: v1 active, v2 pending.
#   c) v2's first real boot, handed its manifest over fw_cfg: keyd commit
#      --manifest (initramfs/keyd-upgrade.sh) judges the manifest, commits
#      and rotates online; the header has one new volume key and only v2's
#      token.
#   d) the host restores the kept pre-rotation header onto a copy of the
#      disk and boots v1: v1's keyslot opens (it is the genuine old header)
#      but yields the old volume key, under which nothing decrypts: no mount,
#      no marker.
#   e) v2 on the real disk reads the marker under the new key.
# A release's rotation on a volume with an escrow, at boot and without the
# admins' certificates, is refused with the volume left openable: see
# 57-rotate.sh (no VM boot needed to show it).
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/vm/upgrade-lib.sh
. "$(dirname "$0")/upgrade-lib.sh"
vm_setup

T=$VM_WORK/21-upgrade-rotate
rm -rf "$T"
mkdir -p "$T"
disk=$T/state.img
vm_blank_disk "$disk" 64
digest() { # DISK -> number of digests and their values
	cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["digests"]; print(len(d), *[v["digest"] for v in d.values()])'
}

# ---- a) v1 provisions
vm_launch 21a-provision "$VM_ORIG" "$VM_APPEND_BASE" "$disk" || fail "provisioning boot did not power off"
expect_result "$VM_LOG" ok
marker=$(vm_field "$VM_LOG" marker)
[ ${#marker} -eq 32 ] || fail "no marker on the console"

v2=$T/v2.cpio.gz
vm_image_variant "$v2" "keyd-test-image v2 (release 2.0, asks for rotation)" || fail "cannot build v2"
m1=$(vm_measure "$VM_ORIG" "$VM_APPEND_BASE")
m2=$(vm_measure "$v2" "$VM_APPEND_BASE")
[ "$m1" != "$m2" ] || fail "v1 and v2 share a measurement"
vm_manifest "$T/m1.json" 1.0 1 "$m1" || fail "manifest 1.0"
vm_manifest "$T/m2.json" 2.0 2 "$m2" --rotate || fail "manifest 2.0 --rotate"
show=$("$KEYD_BUILD/keyd" manifest show "$T/m2.json")
grep -q 'rotate' <<<"$show" || fail "manifest 2.0 does not carry the rotate flag: $show"

# ---- b) v1 serves, v2 receives a pending slot; the host keeps the header
vm_handoff 21b-handoff "$VM_ORIG" "$T/m1.json" "$disk" "$v2" "$T/m2.json" ||
	{ VM_LOG=$VM_LOG_O; fail "a handoff VM did not power off"; }
VM_LOG=$VM_LOG_O
[ "$(vm_handoff_result "$VM_LOG_O")" = ok ] || fail "v1 (O) handoff failed"
VM_LOG=$VM_LOG_N
[ "$(vm_handoff_result "$VM_LOG_N")" = ok ] || fail "v2 (N) handoff failed"
states=$(vm_token_states "$disk")
grep -qx "1.0:active:$m1" <<<"$states" || fail "v1's slot is not active after the handoff: $states"
grep -qx "2.0:pending:$m2" <<<"$states" || fail "no pending slot for v2: $states"
cryptsetup luksHeaderBackup "$disk" --header-backup-file "$T/pre-rotation.hdr"
old_digest=$(digest "$disk")

# ---- c) v2's first boot: commit with the manifest, which asks for rotation
VM_QEMU_EXTRA=(-fw_cfg "name=opt/org.keyd/manifest,file=$T/m2.json")
vm_launch 21c-v2-commit-rotate "$v2" "$VM_APPEND_BASE" "$disk" || fail "v2 boot did not power off"
VM_QEMU_EXTRA=()
expect_result "$VM_LOG" ok
grep -aq 'with keyslot [0-9]* (label 2.0, pending)' "$VM_LOG" || fail "v2 did not open through its pending slot"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "v2 does not see v1's marker"
[ "$(vm_commit_result "$VM_LOG")" = ok ] || fail "keyd commit failed on v2"
grep -aq 'release 2.0 (svn 2) asks for a volume-key rotation' "$VM_LOG" || fail "v2 did not read the release's request"
grep -aq 'rotated: keyslot [0-9]* opens the volume under a new volume key' "$VM_LOG" || fail "v2 did not rotate"
new_digest=$(digest "$disk")
[ "${new_digest%% *}" = 1 ] || fail "header after the rotation has ${new_digest%% *} digests"
[ "$new_digest" != "$old_digest" ] || fail "volume key digest unchanged: nothing was rotated"
cryptsetup luksDump --dump-json-metadata "$disk" | kd_has requirements && fail "reencryption not finished"
states=$(vm_token_states "$disk")
[ "$states" = "2.0:active:$m2" ] || fail "tokens after the release's rotation: $states"

# ---- d) the pre-rotation header restored onto a copy: v1 opens nothing
cp "$disk" "$T/rolled.img"
cryptsetup luksHeaderRestore -q "$T/rolled.img" --header-backup-file "$T/pre-rotation.hdr"
states=$(vm_token_states "$T/rolled.img")
grep -qx "1.0:active:$m1" <<<"$states" || fail "the restored header has no active v1 slot: $states"
vm_launch 21d-v1-rolled-header "$VM_ORIG" "$VM_APPEND_BASE" "$T/rolled.img" || fail "rollback boot did not power off"
grep -aq 'with keyslot [0-9]* (label 1.0, active)' "$VM_LOG" ||
	fail "v1's keyslot in the restored header did not open (the proof needs it to)"
[ "$(vm_result "$VM_LOG")" != ok ] || fail "the pre-rotation header opened the rotated data for v1"
grep -aq "marker=$marker" "$VM_LOG" && fail "marker readable through the pre-rotation header"
rm -f "$T/rolled.img"

# ---- e) v2 on the real disk
vm_launch 21e-v2-after "$v2" "$VM_APPEND_BASE" "$disk" || fail "v2 boot after the rotation did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after the release's rotation"
echo "release 2.0 asked for rotation; v2 committed and rotated at its first boot; the pre-rotation header opens nothing for v1; marker $marker intact"
