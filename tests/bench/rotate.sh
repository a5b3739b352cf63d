#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Bench (issue 17): volume-key rotation throughput on LUKS2 image files of the
# same size and layout (aes-xts-plain64, 512-bit key, 4096-byte sectors), side
# by side in one run, with the same resilience mode on both sides:
#   keyd       `keyd rotate IMG` (journal, then checksum) against keyd-simfw
#   cryptsetup `cryptsetup reencrypt --force-offline-reencrypt` with the same
#              --resilience (journal, then checksum), PBKDF2-1000 keyslots
#   ceiling    plain `dd` read+write of the same data area in place
#              (conv=notrunc,fdatasync): the I/O ceiling of one pass
# Medians over RUNS (default 3) interleaved runs of SIZE_MB (default 128) of
# data. Journal mode writes every byte twice (journal, then data), so its
# fraction of the ceiling is expected to be about half of checksum's.
# Target: keyd within 10% of cryptsetup reencrypt in each mode.
# This host-level run is offline (no device-mapper) and runs the host's AES
# natively; tests/bench/rotate-guest.sh is the online variant in a TCG guest
# (both volumes mapped and mounted), whose emulated AES makes every figure
# there CPU-bound.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${KEYD_BUILD:-$PWD/build}
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-128}
[ -x "$B/keyd" ] && [ -x "$B/keyd-simfw" ] || { echo "rotate: build keyd first (make all)" >&2; exit 77; }
command -v cryptsetup >/dev/null || { echo "rotate: needs cryptsetup" >&2; exit 77; }

T=$(mktemp -d /tmp/keyd-bench-rotate.XXXXXX)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "rotate: $*" >&2; exit 1; }

"$B/keyd-simfw" --state "$T/chip" init >/dev/null 2>&1
"$B/keyd-simfw" --state "$T/chip" serve --listen "unix:$T/sim.sock" \
	--measurement "$(printf 'a1f3%.0s' $(seq 24))" 2>"$T/sim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -S "$T/sim.sock" ] && break; sleep 0.05; done
[ -S "$T/sim.sock" ] || fail "keyd-simfw did not start: $(cat "$T/sim.log")"
export KEYD_SIM=unix:$T/sim.sock

# 16 MiB of LUKS2 metadata (both tools' default) + SIZE_MB of data.
total=$(((16 + SIZE_MB) * 1024 * 1024))
truncate -s $total "$T/keyd.img"
"$B/keyd" enroll "$T/keyd.img" --format --label bench >/dev/null || fail "keyd enroll"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/key"
truncate -s $total "$T/cs.img"
cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 \
	--pbkdf pbkdf2 --hash sha512 --pbkdf-force-iterations 1000 --key-file "$T/key" "$T/cs.img" ||
	fail "luksFormat"
off=$(cryptsetup luksDump --dump-json-metadata "$T/keyd.img" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])')
off2=$(cryptsetup luksDump --dump-json-metadata "$T/cs.img" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"]["0"]["offset"])')
[ "$off" = "$off2" ] || fail "data offsets differ ($off, $off2): not the same layout"
# Random data in both data areas (ciphertext is random anyway).
for f in keyd cs; do
	dd if=/dev/urandom of="$T/$f.img" bs=1M seek=$((off / 1048576)) count="$SIZE_MB" conv=notrunc \
		status=none
done

python3 - "$T" "$RUNS" "$SIZE_MB" "$B/keyd" "$off" <<'EOF'
import json, os, statistics, subprocess, sys, time
T, runs, size_mb, keyd, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
J = lambda n: os.path.join(T, n)
mib = size_mb
def cs(mode):
    return ["cryptsetup", "reencrypt", "-q", "--force-offline-reencrypt", "--resilience", mode,
            "--key-file", J("key"), "--pbkdf", "pbkdf2", "--hash", "sha512",
            "--pbkdf-force-iterations", "1000", J("cs.img")]
cmds = {
    "keyd-journal": [keyd, "rotate", J("keyd.img"), "--quiet", "--json", "--resilience", "journal"],
    "cs-journal": cs("journal"),
    "keyd-checksum": [keyd, "rotate", J("keyd.img"), "--quiet", "--json", "--resilience", "checksum"],
    "cs-checksum": cs("checksum"),
    "dd": ["dd", "if=" + J("cs.img"), "of=" + J("cs.img"), "bs=1M", f"skip={off // 1048576}",
           f"seek={off // 1048576}", f"count={size_mb}", "conv=notrunc,fdatasync", "status=none"],
}
res = {k: [] for k in cmds}
for _ in range(runs):
    for k, c in cmds.items():
        t0 = time.perf_counter()
        p = subprocess.run(c, capture_output=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"rotate: {k} failed (exit {p.returncode}): {p.stderr.decode()[-300:]}")
        if k.startswith("keyd"):
            o = json.loads(p.stdout)
            if not o["rotated"] or o["bytes"] != size_mb * 1048576:
                sys.exit(f"rotate: keyd rotated {o['bytes']} bytes, not {size_mb} MiB")
        res[k].append(mib / wall)
med = {k: statistics.median(v) for k, v in res.items()}
ceil = med["dd"]
print(f"{'rotation of ' + str(size_mb) + ' MiB (offline, image file)':46s} {'MiB/s':>8s} {'of ceiling':>11s}")
names = [("keyd rotate, journal", "keyd-journal"), ("cryptsetup reencrypt, journal", "cs-journal"),
         ("keyd rotate, checksum", "keyd-checksum"), ("cryptsetup reencrypt, checksum", "cs-checksum"),
         ("dd read+write in place (ceiling)", "dd")]
for n, k in names:
    print(f"{n:46s} {med[k]:8.1f} {100 * med[k] / ceil:10.0f}%")
print(f"  medians of {runs} interleaved runs; wall time per process, start-up included")
for mode in ("journal", "checksum"):
    r = med["keyd-" + mode] / med["cs-" + mode]
    print(f"ratio: keyd / cryptsetup ({mode:8s}) {r:5.2f}x  target >= 0.90x {'met' if r >= 0.9 else 'MISSED'}")
print(f"rotate: keyd {med['keyd-journal']:.0f} MiB/s, cryptsetup {med['cs-journal']:.0f} MiB/s (journal); "
      f"keyd {med['keyd-checksum']:.0f}, cryptsetup {med['cs-checksum']:.0f} (checksum); ceiling {ceil:.0f} MiB/s")
EOF
