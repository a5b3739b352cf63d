#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The chip-loss recovery shared by the escrow scenarios (09, 20): an image
# whose volume is provisioned with a 2-of-3 escrow, chip A that provisions
# it, and the admins' side on the host that turns two exported shares into
# a recovery disk for the operator (tests/vm/fixtures/recovery-hook.sh reads
# it in the guest). Source after lib.sh; every function fails the scenario
# on its own.

# rec_setup DIR VERSION_TEXT IMG: admin and operator certificates in DIR,
# the volume with a 2-of-3 escrow to alice, bob and carol, and the test
# image IMG carrying keyd-recover and the recovery hook. VERSION_TEXT
# gives the image its own measurement.
rec_setup() {
	local d=$1 version=$2 img=$3 a
	[ -x "$KEYD_BUILD/keyd-recover" ] || fail "$KEYD_BUILD/keyd-recover is missing (make all)"
	rm -rf "$d"
	mkdir -p "$d/escrow"
	for a in alice bob carol operator; do
		openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$d/$a.key" \
			-out "$d/$a.crt" -subj "/CN=$a" -days 2 2>/dev/null || fail "cannot make the $a certificate"
	done
	for a in alice bob carol; do cp "$d/$a.crt" "$d/escrow/$a.pem"; done
	echo "state /dev/vda ext4 /state escrow=/etc/keyd/escrow,escrow-threshold=2" >"$d/volumes"
	echo "$version" >"$d/image-version"
	vm_initramfs "$img" --volumes "$d/volumes" \
		--add "$d/image-version=/etc/keyd/image-version" \
		--add "$d/escrow/alice.pem=/etc/keyd/escrow/alice.pem" \
		--add "$d/escrow/bob.pem=/etc/keyd/escrow/bob.pem" \
		--add "$d/escrow/carol.pem=/etc/keyd/escrow/carol.pem" \
		--add "$KEYD_BUILD/keyd-recover=/sbin/keyd-recover" \
		--add "$KEYD_SRC/tests/vm/fixtures/recovery-hook.sh=/etc/keyd/test-hook.sh" ||
		fail "cannot build the recovery test image"
}

# rec_provision NAME IMG DISK: the first boot (on $VM_CHIP) provisions DISK
# with the escrow and writes the marker; sets REC_MARKER and REC_UUID.
rec_provision() {
	local name=$1 img=$2 disk=$3
	vm_launch "$name" "$img" "$VM_APPEND_BASE" "$disk" || fail "provisioning boot did not power off"
	expect_result "$VM_LOG" ok
	[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
	grep -aq '2-of-3 recovery escrow added' "$VM_LOG" || fail "enroll did not report the 2-of-3 escrow"
	REC_MARKER=$(vm_field "$VM_LOG" marker)
	[ ${#REC_MARKER} -eq 32 ] || fail "no marker on the console"
	REC_UUID=$(cryptsetup luksUUID "$disk")
	cryptsetup luksDump "$disk" | kd_has 'keyd-escrow' || fail "no keyd-escrow token in the header"
}

# rec_tar SRC OUT: a recovery disk, a tar archive of SRC/keyd-recovery whose
# first entry is keyd-recovery/ (what the hook looks for).
rec_tar() {
	tar --format=ustar --sort=name --owner=0 --group=0 -cf "$2" -C "$1" keyd-recovery ||
		fail "cannot build the recovery disk $2"
	[ "$(head -c 14 "$2")" = keyd-recovery/ ] || fail "recovery disk $2 does not start with keyd-recovery/"
}

# rec_share_disk DIR DISK: the admins. The shares are public ciphertext:
# exported on the host from the image file; alice and carol each re-encrypt
# theirs to the operator. Writes DIR/recovery-disk.tar (shares 1 and 3 and
# the operator's key and certificate); DIR/shares keeps the exported shares.
rec_share_disk() {
	local d=$1 disk=$2 i a
	rm -rf "$d/shares" "$d/disk"
	"$KEYD_BUILD/keyd-recover" export-shares "$disk" --out "$d/shares" >"$d/export.out" ||
		fail "export-shares: $(cat "$d/export.out")"
	[ "$(find "$d/shares" -name 'share-*.der' | wc -l)" -eq 3 ] || fail "export-shares did not write 3 shares"
	mkdir -p "$d/disk/keyd-recovery"
	for i in 1 3; do
		a=$([ $i = 1 ] && echo alice || echo carol)
		"$KEYD_BUILD/keyd-recover" decrypt-share "$d/shares/share-$i.der" --key "$d/$a.key" \
			--cert "$d/$a.crt" --to "$d/operator.crt" --out "$d/disk/keyd-recovery/share-$i.der" \
			--volume "$REC_UUID" >/dev/null || fail "decrypt-share by $a"
	done
	cp "$d/operator.key" "$d/operator.crt" "$d/disk/keyd-recovery/"
	rec_tar "$d/disk" "$d/recovery-disk.tar"
}

# rec_recover NAME IMG DISK TAR: the recovery in a guest on the current
# $VM_CHIP: same image, same command line, plus the recovery disk TAR
# (unmeasured). keyd-recover unlock enrolls a slot labelled "recovered" for
# this launch and rotates the escrow; the boot then reads the marker.
rec_recover() {
	local name=$1 img=$2 disk=$3 tar=$4
	VM_QEMU_EXTRA=(-drive "file=$tar,if=virtio,format=raw,readonly=on")
	vm_launch "$name" "$img" "$VM_APPEND_BASE" "$disk" || fail "recovery boot did not power off"
	# shellcheck disable=SC2034 # read by vm_boot (lib.sh)
	VM_QEMU_EXTRA=()
	grep -aq 'KEYD-TEST: RECOVERY result=ok' "$VM_LOG" || fail "keyd-recover unlock did not succeed in the guest"
	expect_result "$VM_LOG" ok
	[ "$(vm_field "$VM_LOG" action)" = verify ] || fail "recovery boot did not read the marker"
	[ "$(vm_field "$VM_LOG" marker)" = "$REC_MARKER" ] || fail "marker after recovery differs from chip A's"
	cryptsetup luksDump --dump-json-metadata "$disk" | kd_has '"label":"recovered"' ||
		fail "no keyd token labelled 'recovered' in the header"
	[ "$(cryptsetup luksUUID "$disk")" = "$REC_UUID" ] || fail "volume UUID changed"
}
