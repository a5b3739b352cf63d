#!/bin/bash
# Scenario 4: the same image launched with the debug policy bit
# (0x30000 | debug = 0xb0000) cannot unlock: the policy is part of the
# key derivation and keyd refuses debug launches.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
[ -s "$VM_WORK/marker" ] || fail "scenario 01 did not leave a provisioned disk"
before=$(vm_sha "$VM_DISK")

vm_launch 04-debug-policy "$VM_ORIG" "$VM_APPEND_BASE" "$VM_DISK" 0xb0000 || fail "debug launch did not power off"
expect_result "$VM_LOG" refused
grep -aqi 'debug\|policy' "$VM_LOG" || fail "refusal does not mention the debug policy"
[ "$(vm_sha "$VM_DISK")" = "$before" ] || fail "disk changed during the refused debug launch"
echo "debug launch refused: $(grep -a 'keyd: ERROR: ' "$VM_LOG" | grep -av '^\[' | sed -n 2p | sed 's/^keyd: ERROR: *//')"
