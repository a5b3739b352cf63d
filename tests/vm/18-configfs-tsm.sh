#!/bin/bash
# Scenario 18: keyd's attestation report through configfs-tsm in the guest.
# The image mounts the test rig's configfs-tsm tree (keyd-sevguest-tsm, FUSE)
# on /sys/kernel/config/tsm, whose reports go through the emulated
# /dev/sev-guest to keyd-simfw, as the kernel's sev_guest provider's do.
# In the guest:
#  - `keyd selftest --backend tsm` (keyd's production tsm backend, unchanged)
#    gets a report and the certificate table (auxblob) from the tree, and the
#    report verifies under the simulator's ARK;
#  - a report made by hand through the tree (mkdir, inblob, outblob,
#    auxblob, rmdir) is printed and verified on the host with
#    `keyd verify-report` against the simulator's chip: its ARK, its chip ID,
#    the launch measurement keyd-simfw computed for this boot and the nonce;
#  - the tree remounted with privlevel_floor 1, then with provider
#    tdx_guest: keyd refuses each in one line, naming the check, and leaves
#    no report directory behind;
#  - the volume is then provisioned through /dev/sev-guest as usual (the
#    shared VMPCK is intact).
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

hook=$VM_WORK/tsm-hook.sh
cat >"$hook" <<'HOOK'
tsm_selftest() { # TAG
	rc=0
	keyd selftest --backend tsm --ark /etc/keyd/ark.pem >/tmp/selftest.out 2>&1 || rc=$?
	sed "s/^/TSM-$1: /" /tmp/selftest.out
	say "TSM-$1-EXIT=$rc left=$(ls /sys/kernel/config/tsm/report | tr '\n' ' ')"
}
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# Blobs go out in short lines of 128 hex digits, the last one included,
# with their SHA-256, so that the host notices anything the console lost.
hexlines() { # TAG FILE
	{ hexof "$2"; echo; } | fold -w 128 | while read -r l; do say "$1 $l"; done
	say "$1-SHA $(sha256sum <"$2" | cut -d' ' -f1)"
}
test_hook_pre_unlock() {
	grep ' /sys/kernel/config/tsm ' /proc/mounts >/dev/null && say "TSM-MOUNTED"
	tsm_selftest OK
	d=/sys/kernel/config/tsm/report/by-hand
	mkdir "$d"
	head -c 64 /dev/urandom >/tmp/nonce
	cat /tmp/nonce >"$d/inblob"
	g1=$(cat "$d/generation")
	cat "$d/outblob" >/tmp/report.bin
	cat "$d/auxblob" >/tmp/certs.bin
	g2=$(cat "$d/generation")
	rmdir "$d"
	say "TSM-GENERATION $g1 $g2"
	say "TSM-NONCE $(hexof /tmp/nonce)"
	hexlines TSM-REPORT /tmp/report.bin
	hexlines TSM-CERTS /tmp/certs.bin
	keyd_test_tsm_stop
	keyd_test_tsm_start --privlevel-floor 1
	tsm_selftest FLOOR
	keyd_test_tsm_stop
	keyd_test_tsm_start --provider tdx_guest
	tsm_selftest PROVIDER
	keyd_test_tsm_stop
}
HOOK
echo "" >"$VM_WORK/tsm-options"
img=$VM_WORK/tsm.cpio.gz
vm_release_adds
vm_initramfs "$img" --add "$hook=/etc/keyd/test-hook.sh" --add "$VM_WORK/tsm-options=/etc/keyd/test-tsm" \
	"${VM_RELEASE_ADDS[@]}" || fail "cannot build the configfs-tsm initramfs"
disk=$VM_WORK/tsm.img
vm_blank_disk "$disk" 64
vm_launch 18-configfs-tsm "$img" "$VM_APPEND_BASE" "$disk" || fail "the configfs-tsm boot did not power off"
con=$VM_WORK/tsm.console.txt
tr -d '\r' <"$VM_LOG" >"$con"
line() { sed -n "s/.*KEYD-TEST: $1//p" "$con" | tail -n 1; }
blob() { sed -n "s/.*KEYD-TEST: $1 \([0-9a-f]*\)$/\1/p" "$con" | tr -d '\n' | xxd -r -p; }
has() { grep -aq -- "$1" "$con"; }

has 'KEYD-TEST: TSM-MOUNTED' || fail "the configfs-tsm tree is not mounted at /sys/kernel/config/tsm"
# keyd's own report path through the tree.
has 'TSM-OK: backend *tsm ' || fail "keyd selftest did not use the tsm backend"
has 'TSM-OK: vmpl *0 (configfs-tsm privlevel_floor 0)' || fail "keyd did not read privlevel_floor"
has 'TSM-OK: report-data *echoed' || fail "the report does not echo keyd's report_data"
has 'TSM-OK: report-verifies *yes' || fail "keyd's report through configfs-tsm does not verify"
[ "$(line TSM-OK-EXIT=)" = "0 left=" ] || fail "keyd selftest --backend tsm: $(line TSM-OK-EXIT=)"

# The hand-made report, verified on the host against the simulator's chip.
read -r g1 g2 <<<"$(line 'TSM-GENERATION ')"
[ "$g1" = 1 ] && [ "$g2" = 1 ] || fail "generation around one inblob write: $g1 $g2"
nonce=$(line 'TSM-NONCE ')
blob TSM-REPORT >"$VM_WORK/tsm-report.bin"
blob TSM-CERTS >"$VM_WORK/tsm-certs.bin"
[ "$(vm_sha "$VM_WORK/tsm-report.bin")" = "$(line 'TSM-REPORT-SHA ')" ] &&
	[ "$(vm_sha "$VM_WORK/tsm-certs.bin")" = "$(line 'TSM-CERTS-SHA ')" ] ||
	fail "the report or certificate table did not reach the host's console intact"
[ "$(stat -c %s "$VM_WORK/tsm-report.bin")" = 1184 ] || fail "the outblob is not one 1184-byte report"
meas=$(sed -n 's/.*launch measurement \([0-9a-f]*\) .*/\1/p' "$VM_WORK/18-configfs-tsm.sock.log")
chip=$("$KEYD_BUILD/keyd-simfw" --state "$VM_CHIP" show | sed -n 's/^chip_id *\([0-9a-f]*\).*/\1/p')
[ -n "$meas" ] && [ -n "$chip" ] || fail "no launch measurement or chip ID on the host"
"$KEYD_BUILD/keyd" verify-report "$VM_WORK/tsm-report.bin" --cert-table "$VM_WORK/tsm-certs.bin" \
	--ark "$VM_RELEASE/certs/ark.pem" --expect-measurement "$meas" --expect-chip-id "$chip" \
	--expect-report-data "$nonce" || fail "the configfs-tsm outblob does not verify against the simulator's chip"

# Refusals: a floor above keyd's VMPL, a provider that is not sev_guest.
has 'TSM-FLOOR: report .*report for VMPL 0 refused: this guest runs at VMPL 1 (configfs-tsm privlevel_floor 1)' ||
	fail "keyd did not refuse privlevel_floor 1"
[ "$(line TSM-FLOOR-EXIT=)" = "1 left=" ] || fail "privlevel_floor 1: $(line TSM-FLOOR-EXIT=)"
has "TSM-PROVIDER: report .*configfs-tsm provider is 'tdx_guest', not sev_guest" ||
	fail "keyd did not refuse provider tdx_guest"
[ "$(line TSM-PROVIDER-EXIT=)" = "1 left=" ] || fail "provider tdx_guest: $(line TSM-PROVIDER-EXIT=)"

# /dev/sev-guest still works after the tree's requests: first boot provisions.
expect_result "$VM_LOG" ok
echo "configfs-tsm on kernel $VM_KVER: keyd's report verifies (selftest, and on the host against the chip); floor 1 and tdx_guest refused"
