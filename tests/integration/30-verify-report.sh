#!/bin/bash
# keyd verify-report at the CLI: every real vector verifies with only --vcek
# (built-in AMD roots), refusals exit 1 with one stderr line naming the check,
# usage errors exit 2, --json lists every check; the simulator's reports
# verify with its ARK and fail against the built-in roots.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
: "${KEYD_BUILD:?}" "${KEYD_VECTORS:=$(cd "$(dirname "$0")/../vectors" && pwd)}"
K=$KEYD_BUILD/keyd
V=$KEYD_VECTORS/snp
[ -x "$K" ] || { echo "no $K"; exit 1; }
[ -d "$V" ] || { echo "FAIL: no vectors at $V"; exit 1; }

T=$(mktemp -d)
SIMPID=
cleanup() {
	[ -n "$SIMPID" ] && kill "$SIMPID" 2>/dev/null && { wait "$SIMPID" 2>/dev/null || true; }
	rm -rf "$T"
}
trap cleanup EXIT

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect RC NEEDLE -- CMD...: exit code, and for rc 1/2 exactly one stderr
# line containing NEEDLE (for rc 0, stdout contains it).
expect() {
	local want=$1 needle=$2 rc=0
	shift 3
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		fail "rc $rc != $want: $* ($(head -c 300 "$T/err"))"
		return
	fi
	if [ "$want" = 0 ]; then
		grep -qF -- "$needle" "$T/out" || fail "stdout lacks '$needle': $*: $(cat "$T/out")"
		[ ! -s "$T/err" ] || fail "stderr not empty on success: $*"
	else
		[ "$(wc -l <"$T/err")" = 1 ] || fail "stderr is not one line: $*: $(cat "$T/err")"
		grep -qF -- "$needle" "$T/err" || fail "stderr lacks '$needle': $*: $(cat "$T/err")"
	fi
}

vr() { "$K" verify-report "$@"; }
VLEK_AT=2025-06-01T00:00:00Z

# ---- every vector with a certificate verifies with only --vcek
expect 0 "report verifies: product Milan, chip d49554ec717f4e5b..., measurement 7a1e5c26" -- \
	vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 0 "product Milan, chip 3ac3fe21e13fb099" -- \
	vr "$V/go-sev-guest-milan/report.bin" --vcek "$V/go-sev-guest-milan/vcek.pem" --allow-debug
expect 0 "tcb 0300000000000873 (bl=3 tee=0 snp=8 ucode=115)" -- \
	vr "$V/trustee-milan-vcek/report.bin" --vcek "$V/trustee-milan-vcek/vcek.der"
expect 0 "product Milan, chip 0000000000000000" -- \
	vr "$V/trustee-milan-vlek/report.bin" --vcek "$V/trustee-milan-vlek/vlek.der" --max-vmpl 1 --at "$VLEK_AT"
expect 0 "product Genoa" -- vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der"
# The later vectors (their sources' own expectations: tests/vectors/README.md)
expect 0 "product Milan, chip 4ffb5cb4fd594f3f" -- vr "$V/msft-milan/report.bin" --vcek "$V/msft-milan/vcek.pem"
expect 0 "product Genoa, chip b1e24a27bbc3a4d5" -- vr "$V/msft-genoa/report.bin" --vcek "$V/msft-genoa/vcek.pem" \
	--ask "$V/msft-genoa/ask.pem"
expect 0 "product Turin, chip 59790fb1c39f35c1" -- vr "$V/msft-turin/report.bin" --vcek "$V/msft-turin/vcek.pem"
expect 0 "product Genoa, chip 0506ffba875e939c" -- \
	vr "$V/trustee-azure-genoa/report.bin" --vcek "$V/trustee-azure-genoa/vcek.pem"
AK=87ab7caf510e1b3520dc3cceb64ee44128e10976fb0d3fc5e274699d8aaf506154af4c1de0a026b49fdf861e9ac75551551b3534d1c61369a3b08f5baed0db2f
expect 0 "product Milan, chip 0000000000000000" -- vr "$V/constellation-aws-vlek/report.bin" \
	--vcek "$V/constellation-aws-vlek/vlek.pem" --chain "$V/constellation-aws-vlek/cert_chain.pem" \
	--at "$VLEK_AT" --expect-report-data "$AK"
expect 1 "VLEK expired 2025-12-10" -- vr "$V/constellation-aws-vlek/report.bin" --vcek "$V/constellation-aws-vlek/vlek.pem"
expect 1 "chip ID is masked" -- vr "$V/constellation-aws-vlek/report.bin" --vcek "$V/constellation-aws-vlek/vlek.pem" \
	--at "$VLEK_AT" --expect-chip-id "$(printf '%0128d' 0)"
expect 1 "report signature does not verify under VLEK" -- vr "$V/constellation-vlek-refused/report.bin" \
	--vcek "$V/constellation-vlek-refused/vlek.pem" --chain "$V/constellation-vlek-refused/vlek_cert_chain.pem" \
	--at 2024-01-01T00:00:00Z
expect 1 "ASK (SEV-Genoa) signature does not verify" -- vr "$V/msft-milan/report.bin" --vcek "$V/msft-milan/vcek.pem" \
	--ask "$V/msft-genoa/ask.pem"
expect 0 "0x090 measurement                    7659528961bc689a" -- "$K" report show "$V/lit-milan-nocert/report.bin"
# ... and with explicit chains / files
expect 0 "report verifies" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.pem" \
	--chain "$V/virtee-sev-milan/cert_chain.pem"
expect 0 "report verifies" -- vr "$V/trustee-milan-vlek/report.bin" --vcek "$V/trustee-milan-vlek/vlek.der" \
	--chain "$V/trustee-milan-vlek/milan_ask_ark_asvk.pem" --max-vmpl 1 --at "$VLEK_AT"
expect 0 "report verifies" -- vr "$V/trustee-milan-vcek/report.bin" --vcek "$V/trustee-milan-vcek/vcek.der" \
	--ask "$V/amd-roots/milan_ask.pem" --ark "$V/amd-roots/milan_ark.pem"
M=$(sed -n 's/^ *0x090 measurement *//p' "$V/yaxi-genoa-v3/fields.txt")
C=$(sed -n 's/^ *0x1A0 chip_id *//p' "$V/yaxi-genoa-v3/fields.txt")
D=$(sed -n 's/^ *0x050 report_data *//p' "$V/yaxi-genoa-v3/fields.txt")
expect 0 "measurement $M" -- vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" \
	--expect-measurement "$(printf '%096d' 0)" --expect-measurement "$M" --expect-chip-id "$C" \
	--expect-report-data "$D" --min-tcb 0900000000001748

# ---- refusals: exit 1, one line naming the check
expect 1 "debug policy bit is set" -- vr "$V/go-sev-guest-milan/report.bin" --vcek "$V/go-sev-guest-milan/vcek.der"
expect 1 "VLEK expired 2025-12-10" -- vr "$V/trustee-milan-vlek/report.bin" --vcek "$V/trustee-milan-vlek/vlek.der" --max-vmpl 1
expect 1 "VMPL 1 above the allowed 0" -- vr "$V/trustee-milan-vlek/report.bin" --vcek "$V/trustee-milan-vlek/vlek.der" --at "$VLEK_AT"
expect 1 "reported TCB bl=9 tee=0 snp=23 ucode=72 is below the minimum bl=9 tee=0 snp=24 ucode=72" -- \
	vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" --min-tcb 0900000000001848
expect 1 "measurement b0f5d097b5c7" -- vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" \
	--expect-measurement "$(printf '%096d' 0)"
expect 1 "chip ID 9dc99962c063" -- vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" \
	--expect-chip-id "$(printf '%0128d' 0)"
expect 1 "report data ed6f6333fec8" -- vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" \
	--expect-report-data "$(printf '%0128d' 0)"
expect 1 "report signature does not verify under VCEK" -- \
	vr "$V/trustee-milan-vcek/report.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 1 "report is from Genoa, VCEK is for Milan" -- \
	vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 1 "VCEK signature does not verify under ASK (SEV-Milan)" -- \
	vr "$V/yaxi-genoa-v3/report.bin" --vcek "$V/yaxi-genoa-v3/vcek.der" --chain "$V/amd-roots/milan_chain.pem"
cat "$V/amd-roots/milan_ark.pem" "$V/amd-roots/milan_ask.pem" >"$T/swapped.pem"
expect 1 "chain order" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" --chain "$T/swapped.pem"
expect 1 "is not validly self-signed" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" \
	--ask "$V/amd-roots/milan_ark.pem" --ark "$V/amd-roots/milan_ask.pem"
expect 1 "VCEK signature does not verify" -- \
	vr "$V/trustee-milan-vcek/report.bin" --vcek "$V/trustee-milan-vcek/vcek-invalid-new.der"
# one flipped byte in the signed area
cp "$V/virtee-sev-milan/report.bin" "$T/flip.bin"
printf '\x7b' | dd of="$T/flip.bin" bs=1 seek=$((0x90)) conv=notrunc status=none
expect 1 "report signature does not verify under VCEK" -- vr "$T/flip.bin" --vcek "$V/virtee-sev-milan/vcek.der"
head -c 1000 "$V/virtee-sev-milan/report.bin" >"$T/short.bin"
expect 1 "report" -- vr "$T/short.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 1 "cannot read report" -- vr "$T/nonexistent.bin" --vcek "$V/virtee-sev-milan/vcek.der"

# Unsigned reports (MASK_CHIP_KEY=1, or SIGNING_KEY=7) are refused as such, with or without a certificate.
cp "$V/virtee-sev-milan/report.bin" "$T/unsigned-mask.bin"
printf '\x02' | dd of="$T/unsigned-mask.bin" bs=1 seek=$((0x48)) conv=notrunc 2>/dev/null
cp "$V/virtee-sev-milan/report.bin" "$T/unsigned-none.bin"
printf '\x1c' | dd of="$T/unsigned-none.bin" bs=1 seek=$((0x48)) conv=notrunc 2>/dev/null
expect 1 "unsigned report (MASK_CHIP_KEY is set)" -- vr "$T/unsigned-mask.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 1 "unsigned report (SIGNING_KEY is none)" -- vr "$T/unsigned-none.bin" --vcek "$V/virtee-sev-milan/vcek.der"
expect 1 "unsigned report (MASK_CHIP_KEY is set)" -- env KEYD_CERT_DIR="$T/nonexistent" "$K" verify-report "$T/unsigned-mask.bin"

# No certificate given and no cached bundle: refused, naming where the bundle was looked for.
mkdir -p "$T/nocerts"
expect 1 "the certificate table is empty and there is no bundle $T/nocerts/" -- \
	env KEYD_CERT_DIR="$T/nocerts" "$K" verify-report "$V/virtee-sev-milan/report.bin"

# ---- usage errors: exit 2
expect 2 "exactly one REPORT" -- vr --vcek "$V/virtee-sev-milan/vcek.der"
expect 2 "unknown or incomplete option" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" --bogus
expect 2 "--expect-measurement needs 96 hex digits" -- vr "$V/virtee-sev-milan/report.bin" \
	--vcek "$V/virtee-sev-milan/vcek.der" --expect-measurement abc
expect 2 "--max-vmpl must be 0..3" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" --max-vmpl 4
expect 2 "RFC 3339" -- vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" --at 2025-01-01
"$K" verify-report --help | kd_has -- "--expect-measurement" || fail "--help"

# ---- --json: every check, also on refusal
vr "$V/virtee-sev-milan/report.bin" --vcek "$V/virtee-sev-milan/vcek.der" --json >"$T/ok.json"
python3 - "$T/ok.json" <<'EOF' || fail "json (success)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verified"] is True and o["product"] == "Milan", o
names = [c["name"] for c in o["checks"]]
for n in ("ark-pinned", "ark-self-signature", "ask-signature", "vek-signature", "x509-path", "vek-validity",
          "report-signature", "vek-tcb", "vek-chip-id", "debug", "vmpl"):
    assert n in names, n
assert all(c["ok"] for c in o["checks"]), o["checks"]
assert o["report"]["measurement"].startswith("7a1e5c26"), o["report"]["measurement"]
EOF
rc=0
vr "$V/trustee-milan-vlek/report.bin" --vcek "$V/trustee-milan-vlek/vlek.der" --json >"$T/bad.json" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "json refusal rc $rc"
[ "$(wc -l <"$T/err")" = 1 ] || fail "json refusal: stderr not one line"
python3 - "$T/bad.json" <<'EOF' || fail "json (refusal)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verified"] is False
bad = {c["name"]: c["detail"] for c in o["checks"] if not c["ok"]}
assert "vek-validity" in bad and "expired" in bad["vek-validity"], bad
assert "vmpl" in bad, bad
assert o["error"] == bad["vek-validity"], o["error"]
assert any(c["name"] == "report-signature" and c["ok"] for c in o["checks"])
EOF

# ---- the simulated AMD-SP: its ARK verifies its reports; the AMD roots do not
SIMFW=$KEYD_BUILD/keyd-simfw
if [ ! -x "$SIMFW" ]; then
	echo "SKIP part: no $SIMFW (simulator not built): simulator reports not tested"
else
	S=$T/sim
	"$SIMFW" --state "$S" init --product milan --tcb 0300000000000873 >/dev/null
	"$SIMFW" --state "$S" certs --out "$T/simcerts" >/dev/null
	"$SIMFW" --state "$S" serve --listen "unix:$T/sim.sock" --measurement "$(printf 'ab%.0s' $(seq 48))" \
		2>"$T/sim.log" &
	SIMPID=$!
	for _ in $(seq 50); do [ -S "$T/sim.sock" ] && break; sleep 0.1; done
	python3 - "$T/sim.sock" "$T/sim-report.bin" "$T/sim-table.bin" <<'EOF' || fail "simulator exchange"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
def call(typ, payload, rid):
    s.sendall(struct.pack("<IHHII", 0x4d53444b, 1, typ, len(payload), rid) + payload)
    hdr = b""
    while len(hdr) < 16: hdr += s.recv(16 - len(hdr))
    magic, ver, rtyp, ln, rrid = struct.unpack("<IHHII", hdr)
    assert magic == 0x4d53444b and rtyp == typ | 0x80 and rrid == rid, (hex(rtyp), rrid)
    body = b""
    while len(body) < ln: body += s.recv(ln - len(body))
    return body
rsp = call(2, bytes(range(64)) + struct.pack("<I", 0), 7)
status, size = struct.unpack_from("<II", rsp)
assert status == 0 and size == 1184, (status, size)
open(sys.argv[2], "wb").write(rsp[0x20:0x20 + 1184])
open(sys.argv[3], "wb").write(call(3, b"", 8))
EOF
	RD=$(python3 -c 'print(bytes(range(64)).hex())')
	expect 0 "report verifies: product Milan" -- vr "$T/sim-report.bin" --vcek "$T/simcerts/vcek.der" \
		--ask "$T/simcerts/ask.pem" --ark "$T/simcerts/ark.pem" --expect-report-data "$RD" \
		--expect-measurement "$(printf 'ab%.0s' $(seq 48))"
	expect 0 "report verifies" -- vr "$T/sim-report.bin" --cert-table "$T/sim-table.bin" --ark "$T/simcerts/ark.pem"
	# Against the built-in AMD roots: refused, whichever way the certificates come.
	expect 1 "does not verify under ARK (ARK-Milan)" -- vr "$T/sim-report.bin" --vcek "$T/simcerts/vcek.der" \
		--ask "$T/simcerts/ask.pem"
	expect 1 "not a pinned AMD root" -- vr "$T/sim-report.bin" --cert-table "$T/sim-table.bin"
	expect 1 "VCEK signature does not verify under ASK (SEV-Milan)" -- vr "$T/sim-report.bin" --vcek "$T/simcerts/vcek.der"
	# A flipped report_data byte with the simulator's own ARK.
	cp "$T/sim-report.bin" "$T/sim-flip.bin"
	printf '\x00' | dd of="$T/sim-flip.bin" bs=1 seek=$((0x51)) conv=notrunc status=none
	expect 1 "report signature does not verify" -- vr "$T/sim-flip.bin" --vcek "$T/simcerts/vcek.der" \
		--ask "$T/simcerts/ask.pem" --ark "$T/simcerts/ark.pem"
fi

if [ "$fails" -ne 0 ]; then
	echo "30-verify-report: $fails failure(s)"
	exit 1
fi
echo "30-verify-report: ok"
