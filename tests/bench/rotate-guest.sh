#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Bench (issue 17): online volume-key rotation throughput inside a guest
# (QEMU TCG, -cpu max, one vCPU, 512 MiB), side by side in one boot, on
# three virtio disks of the same size (16 MiB of LUKS2 metadata + ROT_MB,
# default 64, MiB of data):
#   vda  keyd's state volume, provisioned by keyd at this boot, unlocked and
#        mounted (ext4); `keyd rotate /dev/vda` runs online against it
#   vdb  a plain LUKS2 volume of the same layout (aes-xts-plain64, 512-bit
#        key, 4096-byte sectors, 16 MiB data offset, PBKDF2-SHA512-1000 key
#        file), opened and mounted (ext4) in the guest; `cryptsetup
#        reencrypt --active-name` runs online against it
#   vdc  a raw disk: `dd` reads and writes its data area in place
#        (conv=fsync), the I/O ceiling of one pass
# Both tools use the same resilience mode (keyd's default, journal, then
# checksum; ROT_MODES), libcryptsetup's default hotzone size (keyd sets
# none) and PBKDF2-SHA512-1000 keyslots. The guest times each command with
# its monotonic clock (/proc/uptime), caches dropped before each, and checks
# a file on both volumes after each rotation (tests/bench/rotate-guest-hook.sh).
# ROT_RUNS (default 3) interleaved runs, the first tool alternating; medians.
# Under TCG every figure is CPU-bound (AES-XTS and SHA-256 are emulated): the
# tools reach about a tenth of the dd ceiling, and checksum mode (a SHA-256
# of every sector) is slower than journal mode, unlike on the host
# (tests/bench/rotate.sh), where journal's second write of every byte makes
# it the slower one. keyd's command time includes its start-up (launch
# report and key derivation through the test rig's /dev/sev-guest, new
# keyslot, token and pin, header checks), a fixed ~2 s under TCG; the
# re-encryption loop alone, by keyd's own clock, is printed too.
# Target: keyd within 10% of cryptsetup reencrypt in each mode.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
# TCG re-encrypts at a few MiB/s: the one boot takes minutes (lib.sh's
# default timeout is for scenario boots).
: "${VM_TIMEOUT:=2400}"
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
if ! vm_have_qemu || [ ! -x "$KEYD_BUILD/keyd-simfw" ]; then
	echo "rotate-guest: needs qemu, a kernel and keyd-simfw (make deps-vm all)" >&2
	exit 77
fi
runs=${ROT_RUNS:-3}
mb=${ROT_MB:-64}
modes=${ROT_MODES:-journal checksum}
fail() { echo "rotate-guest: $*" >&2; exit 1; }

VM_WORK=$(mktemp -d /tmp/keyd-bench-rotate-guest.XXXXXX)
vm_traps 'rm -rf "$VM_WORK"'
sim_init "$VM_WORK/chip" || fail "cannot make the simulated chip"
VM_CHIP=$VM_WORK/chip
T=$VM_WORK

echo "state /dev/vda ext4 /state label=1.0" >"$T/volumes"
echo "keyd-test-image v1 rotate-bench" >"$T/image-version"
echo "$runs" >"$T/bench-runs"
echo "$modes" >"$T/bench-modes"
head -c 64 /dev/urandom >"$T/bench-cs.key"
img=$T/rotate-bench.cpio.gz
vm_initramfs "$img" --volumes "$T/volumes" \
	--add "$T/image-version=/etc/keyd/image-version" \
	--add "$T/bench-runs=/etc/keyd/bench-runs" --add "$T/bench-modes=/etc/keyd/bench-modes" \
	--add "$T/bench-cs.key=/etc/keyd/bench-cs.key" \
	--add "$KEYD_SRC/tests/bench/rotate-guest-hook.sh=/etc/keyd/test-hook.sh" ||
	fail "cannot build the bench image"

# Three disks of one size; every data area holds random bytes (a sparse,
# never-written host file would read faster than a written one). keyd's
# disk keeps its first 16 MiB blank: the boot provisions it.
size=$((16 + mb))
for d in keyd cs dd; do
	vm_blank_disk "$T/$d.img" "$size"
	dd if=/dev/urandom of="$T/$d.img" bs=1M seek=16 count="$mb" conv=notrunc status=none
done
cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 \
	--offset 32768 --pbkdf pbkdf2 --hash sha512 --pbkdf-force-iterations 1000 \
	--key-file "$T/bench-cs.key" "$T/cs.img" || fail "luksFormat of the cryptsetup disk"

VM_QEMU_EXTRA=(-drive "file=$T/cs.img,if=virtio,format=raw" -drive "file=$T/dd.img,if=virtio,format=raw")
rc=0
vm_launch rotate-bench "$img" "$VM_APPEND_BASE" "$T/keyd.img" || rc=$?
console=$(tr -d '\r' <"$VM_LOG")
if [ "$rc" -ne 0 ]; then
	grep -a -E 'KEYD-TEST|rotate-bench' <<<"$console" | tail -n 20 >&2 || true
	fail "the bench guest did not power off (rc $rc, VM_TIMEOUT $VM_TIMEOUT s)"
fi
done_line=$(grep -a 'KEYD-TEST: BENCH-ROT-DONE' <<<"$console" || true)
case $done_line in
*ok=1*) ;;
*)
	echo "rotate-guest: the guest did not finish the runs (${done_line:-no BENCH-ROT-DONE line}); console $VM_LOG:" >&2
	grep -a -E 'keyd|KEYD-TEST|rotate-bench' <<<"$console" | grep -av '^\[' | tail -n 20 >&2 || true
	exit 1
	;;
esac
[ "$(vm_field "$VM_LOG" state)" = provisioned ] || fail "keyd did not provision the state volume"

# Same layout on both sides, checked on the rotated headers.
layout() { # IMG -> "OFFSET SECTOR CIPHER KEYBITS"
	cryptsetup luksDump --dump-json-metadata "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin)
s = m["segments"]["0"]
ks = [k for k in m["keyslots"].values() if k["type"] == "luks2"]
print(s["offset"], s["sector_size"], s["encryption"], ks[0]["key_size"] * 8, len(m["segments"]))'
}
kl=$(layout "$T/keyd.img") || fail "cannot read keyd's header after the runs"
cl=$(layout "$T/cs.img") || fail "cannot read cryptsetup's header after the runs"
[ "$kl" = "$cl" ] || fail "layouts differ after the runs: keyd '$kl', cryptsetup '$cl'"
[ "${kl%% *}" = 16777216 ] || fail "data offset ${kl%% *}, not 16 MiB: the dd ceiling covers another area"

grep -a 'KEYD-TEST: BENCH-ROT ' <<<"$console" | sed 's/.*KEYD-TEST: BENCH-ROT //' >"$T/runs.txt"
python3 - "$T/runs.txt" "$mb" "$runs" "$modes" "$kl" <<'PY'
import statistics, sys
path, mb, runs, modes, layout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(), sys.argv[5]
rows = []
for line in open(path):
    f = dict(kv.split("=", 1) for kv in line.split())
    rows.append(f)
def med(tool, mode, key="s"):
    v = [float(r[key]) for r in rows if r["tool"] == tool and r["mode"] == mode and key in r]
    if len(v) != runs:
        sys.exit(f"rotate-guest: {len(v)} {tool} {mode} runs reported, not {runs}")
    return statistics.median(v), v
ceil_s, ceil_v = med("dd", "-")
ceil = mb / ceil_s
print(f"{'online rotation of ' + str(mb) + ' MiB in the guest (TCG)':46s} {'MiB/s':>8s} {'of ceiling':>11s}  runs (s)")
res = {}
for mode in modes:
    for tool, name in (("keyd", "keyd rotate"), ("cryptsetup", "cryptsetup reencrypt")):
        s, v = med(tool, mode)
        res[tool, mode] = mb / s
        print(f"{name + ', ' + mode:46s} {mb / s:8.2f} {100 * (mb / s) / ceil:10.1f}%  "
              + " ".join(f"{x:.2f}" for x in v))
print(f"{'dd read+write in place (ceiling)':46s} {ceil:8.2f} {100.0:10.1f}%  "
      + " ".join(f"{x:.2f}" for x in ceil_v))
for mode in modes:
    s, _ = med("keyd", mode, "run_s")
    print(f"  keyd {mode}: re-encryption loop alone (keyd's own clock) median {s:.2f} s, "
          f"{mb / s:.2f} MiB/s; the rest is start-up (launch key, pin, new keyslot)")
print(f"  medians of {runs} interleaved runs, guest monotonic clock around each command;"
      f" layout: offset {int(layout.split()[0]) >> 20} MiB, {layout.split()[1]}-byte sectors,"
      f" {layout.split()[2]}, {layout.split()[3]}-bit key")
for mode in modes:
    r = res["keyd", mode] / res["cryptsetup", mode]
    print(f"ratio: keyd / cryptsetup ({mode:8s}) {r:5.2f}x  target >= 0.90x {'met' if r >= 0.9 else 'MISSED'}")
parts = [f"keyd {res['keyd', m]:.1f} MiB/s ({100 * res['keyd', m] / ceil:.0f}%), cryptsetup "
         f"{res['cryptsetup', m]:.1f} ({100 * res['cryptsetup', m] / ceil:.0f}%) {m}" for m in modes]
print(f"rotate-guest: {mb} MiB online: " + "; ".join(parts) + f"; dd ceiling {ceil:.1f} MiB/s")
PY
