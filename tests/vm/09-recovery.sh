#!/bin/bash
# Scenario 9 (issue 7): a chip replacement recovered by 2 of 3 admins.
# Boot 1 on chip A provisions the volume with a 2-of-3 escrow (volumes
# options escrow=/etc/keyd/escrow,escrow-threshold=2; the admin certificates
# are in the measured image) and writes the marker. Chip A is then "lost":
# the same image on a new chip B is refused and the disk stays the same.
# The admins' side runs on the host (export-shares reads public ciphertext;
# decrypt-share re-encrypts a share to the operator), the recovery itself in
# a guest on chip B: the same image and command line with a second,
# unmeasured disk carrying the operator's shares (fixtures/recovery-hook.sh)
# runs keyd-recover unlock, which re-enrolls an active slot for this launch
# and rotates the escrow. A last normal boot on chip B unlocks and finds the
# marker.
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup
[ -x "$KEYD_BUILD/keyd-recover" ] || fail "$KEYD_BUILD/keyd-recover is missing (make all)"

R=$VM_WORK/recovery
rm -rf "$R"
mkdir -p "$R/escrow"
for a in alice bob carol operator; do
	openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$R/$a.key" \
		-out "$R/$a.crt" -subj "/CN=$a" -days 2 2>/dev/null || fail "cannot make the $a certificate"
done
for a in alice bob carol; do cp "$R/$a.crt" "$R/escrow/$a.pem"; done

img=$VM_WORK/recovery.cpio.gz
echo "state /dev/vda ext4 /state escrow=/etc/keyd/escrow,escrow-threshold=2" >"$R/volumes"
echo "keyd-test-image v1 recovery" >"$R/image-version"
vm_initramfs "$img" --volumes "$R/volumes" \
	--add "$R/image-version=/etc/keyd/image-version" \
	--add "$R/escrow/alice.pem=/etc/keyd/escrow/alice.pem" \
	--add "$R/escrow/bob.pem=/etc/keyd/escrow/bob.pem" \
	--add "$R/escrow/carol.pem=/etc/keyd/escrow/carol.pem" \
	--add "$KEYD_BUILD/keyd-recover=/sbin/keyd-recover" \
	--add "$KEYD_SRC/tests/vm/fixtures/recovery-hook.sh=/etc/keyd/test-hook.sh" ||
	fail "cannot build the recovery test image"
disk=$VM_WORK/recovery.img
vm_blank_disk "$disk" 64
chip_a=$VM_CHIP
chip_b=$VM_WORK/chip-b
rm -rf "$chip_b"
sim_init "$chip_b" || fail "cannot create chip B"

# 1: chip A provisions with escrow and writes the marker.
vm_launch 09a-chip-a-provision "$img" "$VM_APPEND_BASE" "$disk" || fail "provisioning boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
grep -aq '2-of-3 recovery escrow added' "$VM_LOG" || fail "enroll did not report the 2-of-3 escrow"
marker=$(vm_field "$VM_LOG" marker)
[ ${#marker} -eq 32 ] || fail "no marker on the console"
uuid=$(cryptsetup luksUUID "$disk")
cryptsetup luksDump "$disk" | kd_has 'keyd-escrow' || fail "no keyd-escrow token in the header"

# 2: chip A is gone. The same image on chip B is refused; the disk is unchanged.
before=$(vm_sha "$disk")
VM_CHIP=$chip_b
vm_launch 09b-chip-b-refused "$img" "$VM_APPEND_BASE" "$disk" || fail "chip B boot did not power off"
expect_result "$VM_LOG" refused
grep -aq 'sealed to another chip' "$VM_LOG" || fail "refusal on chip B does not say it is another chip"
[ "$(vm_sha "$disk")" = "$before" ] || fail "disk changed during the refused chip B boot"
why=$(grep -a 'keyd: ERROR: ' "$VM_LOG" | grep -av '^\[' | grep -a 'another chip' | sed -n 1p | sed 's/^keyd: ERROR: *//; s/^ *keyd: //')

# 3: the admins. The shares are public ciphertext: exported on the host from
# the image file; alice and carol each re-encrypt theirs to the operator.
"$KEYD_BUILD/keyd-recover" export-shares "$disk" --out "$R/shares" >"$R/export.out" ||
	fail "export-shares: $(cat "$R/export.out")"
[ "$(find "$R/shares" -name 'share-*.der' | wc -l)" -eq 3 ] || fail "export-shares did not write 3 shares"
mkdir -p "$R/disk/keyd-recovery"
for i in 1 3; do
	a=$([ $i = 1 ] && echo alice || echo carol)
	"$KEYD_BUILD/keyd-recover" decrypt-share "$R/shares/share-$i.der" --key "$R/$a.key" \
		--cert "$R/$a.crt" --to "$R/operator.crt" --out "$R/disk/keyd-recovery/share-$i.der" \
		--volume "$uuid" >/dev/null || fail "decrypt-share by $a"
done
cp "$R/operator.key" "$R/operator.crt" "$R/disk/keyd-recovery/"
tar --format=ustar --sort=name --owner=0 --group=0 -cf "$R/recovery-disk.tar" -C "$R/disk" keyd-recovery ||
	fail "cannot build the recovery disk"
[ "$(head -c 14 "$R/recovery-disk.tar")" = keyd-recovery/ ] || fail "recovery disk does not start with keyd-recovery/"

# 4: recovery in a guest on chip B: same image, same command line, plus the
# recovery disk (unmeasured).
VM_QEMU_EXTRA=(-drive "file=$R/recovery-disk.tar,if=virtio,format=raw,readonly=on")
vm_launch 09c-chip-b-recover "$img" "$VM_APPEND_BASE" "$disk" || fail "recovery boot did not power off"
VM_QEMU_EXTRA=()
grep -aq 'KEYD-TEST: RECOVERY result=ok' "$VM_LOG" || fail "keyd-recover unlock did not succeed in the guest"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" action)" = verify ] || fail "recovery boot did not read the marker"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker after recovery differs from chip A's"
meta=$(cryptsetup luksDump --dump-json-metadata "$disk")
grep -q '"label":"recovered"' <<<"$meta" || fail "no keyd token labelled 'recovered' in the header"
[ "$(cryptsetup luksUUID "$disk")" = "$uuid" ] || fail "volume UUID changed"
# The shares were seen: the escrow was rotated (fresh recovery key and shares).
"$KEYD_BUILD/keyd-recover" export-shares "$disk" --out "$R/shares-rotated" >/dev/null ||
	fail "no escrow after the rotation"
if cmp -s "$R/shares/share-1.der" "$R/shares-rotated/share-1.der"; then
	fail "escrow shares were not rotated after recovery"
fi

# 5: a normal boot on chip B (no recovery disk) unlocks through the new slot.
vm_launch 09d-chip-b-normal "$img" "$VM_APPEND_BASE" "$disk" || fail "normal chip B boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = unlocked ] || fail "volume was not simply unlocked on chip B"
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker differs after recovery"
grep -aq 'KEYD-TEST: RECOVERY' "$VM_LOG" && fail "normal boot ran the recovery without a recovery disk"
VM_CHIP=$chip_a
echo "chip B refused (${why:-refused}); 2 of 3 admins recovered it in a chip B guest, escrow rotated; normal chip B boot reads marker $marker"
