#!/bin/bash
# Scenario 10 (issue 8): the host changes a few blocks in the middle of the
# data area. On a volume provisioned with integrity-no-wipe (aes-xts-plain64
# + hmac(sha256) tags through dm-integrity) reading the file that covers
# those blocks fails with an I/O error and the kernel names the failed tag
# check; on a plain keyd volume (second disk, same image, same change) the
# read succeeds and silently returns other bytes.
#
# Where a file lands cannot be read from the host (no device-mapper, and the
# data is encrypted), so the host compares the disk before and after the boot
# that writes a 12 MiB file of random data (fixtures/tamper-hook.sh): the
# longest run of changed 64 KiB chunks in the data segment is that file, and
# 16 KiB in its middle are overwritten. (noinit_itable keeps ext4 from
# zeroing inode tables in the background, which would also change blocks.)
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_setup

T=$VM_WORK/tamper
rm -rf "$T"
mkdir -p "$T"
img=$VM_WORK/tamper.cpio.gz
printf '%s\n' "state /dev/vda ext4 /state integrity-no-wipe,noinit_itable" \
	"plain /dev/vdb ext4 /plain noinit_itable" >"$T/volumes"
echo "keyd-test-image v1 tamper" >"$T/image-version"
vm_initramfs "$img" --volumes "$T/volumes" \
	--add "$T/image-version=/etc/keyd/image-version" \
	--add "$KEYD_SRC/tests/vm/fixtures/tamper-hook.sh=/etc/keyd/test-hook.sh" ||
	fail "cannot build the tamper test image"
integ=$T/integrity.img
plain=$T/plain.img
vm_blank_disk "$integ" 64
vm_blank_disk "$plain" 48
VM_QEMU_EXTRA=(-drive "file=$plain,if=virtio,format=raw")

fill() { # LOG NAME -> the FILL result word of volume NAME
	tr -d '\r' <"$1" | sed -n "s/.*KEYD-TEST: FILL name=$2 result=\([a-z-]*\).*/\1/p" | tail -n 1
}

# 1: provision both volumes and write the marker.
vm_launch 10a-tamper-provision "$img" "$VM_APPEND_BASE" "$integ" || fail "provisioning boot did not power off"
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "volume was not provisioned"
marker=$(vm_field "$VM_LOG" marker)
cryptsetup luksDump --dump-json-metadata "$integ" | tr -d ' \n' | kd_has '"integrity":{"type":"hmac(sha256)"' ||
	fail "state volume has no hmac(sha256) integrity"
cp "$integ" "$T/integrity.before"
cp "$plain" "$T/plain.before"

# 2: a 12 MiB file on each; the hook closes both volumes.
vm_launch 10b-tamper-fill "$img" "$VM_APPEND_BASE" "$integ" || fail "fill boot did not power off"
expect_result "$VM_LOG" ok
for v in state plain; do
	[ "$(fill "$VM_LOG" $v)" = written ] || fail "guest did not write the file on $v"
done
grep -aq 'result=close-failed' "$VM_LOG" && fail "guest could not close a volume"

# The host overwrites 16 KiB in the middle of each file's blocks.
tamper() { # IMG BEFORE -> prints "offset run_start run_len" (bytes)
	local off
	off=$(cryptsetup luksDump --dump-json-metadata "$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])')
	python3 - "$1" "$2" "$off" <<'PY'
import sys
path, before, seg = sys.argv[1], sys.argv[2], int(sys.argv[3])
chunk = 65536
with open(before, "rb") as f:
    old = f.read()
with open(path, "r+b") as f:
    new = f.read()
    best, start = (0, 0), None
    for pos in range(seg, len(new) + chunk, chunk):
        changed = pos < len(new) and new[pos:pos + chunk] != old[pos:pos + chunk]
        if changed and start is None:
            start = pos
        elif not changed and start is not None:
            if pos - start > best[1]:
                best = (start, pos - start)
            start = None
    if best[1] < 1048576:
        sys.exit("longest changed run is only %d bytes" % best[1])
    target = (best[0] + best[1] // 2) // 4096 * 4096
    f.seek(target)
    f.write(bytes(b ^ 0x5a for b in new[target:target + 16384]))
print(target, best[0], best[1])
PY
}
sum_integ=$(vm_sha "$integ")
sum_plain=$(vm_sha "$plain")
read -r t_integ r_integ l_integ < <(tamper "$integ" "$T/integrity.before") || fail "cannot tamper with the integrity disk"
read -r t_plain _ l_plain < <(tamper "$plain" "$T/plain.before") || fail "cannot tamper with the plain disk"
[ "$(vm_sha "$integ")" != "$sum_integ" ] || fail "tampering changed nothing on the integrity disk"
[ "$(vm_sha "$plain")" != "$sum_plain" ] || fail "tampering changed nothing on the plain disk"

# 3: boot again: the integrity volume refuses the changed blocks, the plain
# one returns them.
vm_launch 10c-tamper-read "$img" "$VM_APPEND_BASE" "$integ" || fail "read-back boot did not power off"
VM_QEMU_EXTRA=()
expect_result "$VM_LOG" ok
[ "$(vm_field "$VM_LOG" marker)" = "$marker" ] || fail "marker on the integrity volume differs"
[ "$(fill "$VM_LOG" state)" = eio ] ||
	fail "integrity volume: read of the tampered file gave '$(fill "$VM_LOG" state)', want eio"
grep -aqE 'INTEGRITY AEAD ERROR|[Cc]hecksum failed' "$VM_LOG" ||
	fail "kernel did not report the failed tag check on the console"
[ "$(fill "$VM_LOG" plain)" = mismatch ] ||
	fail "plain volume: read of the tampered file gave '$(fill "$VM_LOG" plain)', want mismatch"
kmsg=$(tr -d '\r' <"$VM_LOG" | grep -a -oE '(device-mapper|dm-integrity).*(INTEGRITY AEAD ERROR|[Cc]hecksum failed).*' | sed -n 1p || true)
echo "16 KiB changed at $t_integ (run $r_integ+$l_integ): integrity read -> EIO ('$kmsg'); plain (at $t_plain of $l_plain) -> silent mismatch"
