#!/bin/bash
# Scenario 6: the host rebuilds the header with cipher_null (same UUID and
# offset, the keyd token copied over, a key the host knows). keyd refuses it
# at boot and nothing is written to the disk.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
[ -s "$VM_WORK/marker" ] || fail "scenario 01 did not leave a provisioned disk"

evil=$VM_WORK/evil.img
cp "$VM_DISK" "$evil"
head -c 32 /dev/urandom >"$VM_WORK/host.key"
vm_cipher_null_rebuild "$evil" "$VM_WORK/host.key" || fail "could not build the cipher_null header"
cryptsetup luksDump "$evil" | kd_has 'cipher_null' || fail "rebuilt header has no cipher_null"
before=$(vm_sha "$evil")

vm_launch 06-cipher-null "$VM_ORIG" "$VM_APPEND_BASE" "$evil" || fail "boot did not power off"
expect_result "$VM_LOG" refused
grep -aqi 'cipher' "$VM_LOG" || fail "refusal does not name the cipher check"
[ "$(vm_sha "$evil")" = "$before" ] || fail "disk changed during the refused boot"
echo "cipher_null header refused: $(grep -a 'keyd: ERROR: ' "$VM_LOG" | grep -av '^\[' | sed -n 2p | sed 's/^keyd: ERROR: *//')"
