#!/bin/bash
# Bench: host-level attested handoff latency on loopback with the simulator,
# median of RUNS runs, broken down by phase (from `--timings --json` of both
# sides): TLS (connect + handshake, N's view), own report, HELLO exchange,
# peer verification (chain, report, manifest), O's wait for N's ACCEPT,
# keyslot enrollment (O's header writes, wrap and evidence signature), N's
# total, O's start-up and N's process wall time. Each run starts from the
# same pristine volume (O active only). Target (issue 6): < 100 ms.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
export KEYD_BUILD=${KEYD_BUILD:-$PWD/build}
RUNS=${RUNS:-20}
. tests/integration/handoff-lib.bash

setup_world
cp "$T/disk.img" "$T/pristine.img"
: >"$T/rows"
for _ in $(seq "$RUNS"); do
	cp "$T/pristine.img" "$T/disk.img"
	t0=$(date +%s%N)
	serve_bg --timings --json
	# N starts once O listens, so TLS is the handshake, not O's start-up.
	for _ in $(seq 200); do
		ss -Hltn "sport = :$PORT" | kd_has . && break
		sleep 0.005
	done
	t1=$(date +%s%N)
	receive --timings --json
	wait_o
	t2=$(date +%s%N)
	[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "handoff failed: $(cat "$T/o.err" "$T/n.err")"
	python3 - "$T/o.out" "$T/n.out" "$(((t1 - t0) / 1000))" "$(((t2 - t1) / 1000))" >>"$T/rows" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))["timings"]
n = json.load(open(sys.argv[2]))["timings"]
print(n["tls_ms"], n["report_ms"], n["hello_ms"], max(o["verify_ms"], n["verify_ms"]),
      o["keys_ms"], o["enroll_ms"], n["total_ms"], int(sys.argv[3]) / 1000, int(sys.argv[4]) / 1000)
EOF
done
python3 - "$T/rows" "$RUNS" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
names = ["tls", "report", "hello", "verify", "accept (O waits)", "enroll (O writes)",
         "total (N)", "O start-up to listen", "N process wall"]
med = [statistics.median(c) for c in zip(*rows)]
for n, m in zip(names, med):
    print(f"  {n:20s} {m:8.2f} ms")
print(f"handoff: {med[6]:.2f} ms median total over {sys.argv[2]} runs "
      f"(tls {med[0]:.1f}, report {med[1]:.1f}, verify {med[3]:.1f}, accept {med[4]:.1f}, "
      f"enroll {med[5]:.1f}; target < 100 ms)")
EOF
