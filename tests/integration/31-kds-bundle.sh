#!/bin/bash
# Certificates without the host's help: `keyd kds fetch` builds the KDS URLs
# from a report (product, hwID, TCB SPLs), fetches from a KDS stub on
# loopback, verifies and caches the bundle by chip ID and TCB; verify-report
# then uses the bundle when no certificate (or an empty table) is given, and
# a wrong or foreign bundle is refused. `keyd selftest` runs against the
# simulator.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
: "${KEYD_BUILD:?}" "${KEYD_VECTORS:=$(cd "$(dirname "$0")/../vectors" && pwd)}"
K=$KEYD_BUILD/keyd
SIMFW=$KEYD_BUILD/keyd-simfw
V=$KEYD_VECTORS/snp
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$K" ] || { echo "no $K"; exit 1; }
[ -d "$V" ] || { echo "no vectors at $V"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# stub NAME ROUTE...: start a KDS stub, set $URL
stub() {
	local name=$1
	shift
	python3 "$HERE/kds-stub.py" "$T/$name.port" "$T/$name.log" "$@" &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$T/$name.port" ] && break
		sleep 0.05
	done
	[ -s "$T/$name.port" ] || { echo "FAIL: stub did not start"; exit 1; }
	URL="http://127.0.0.1:$(cat "$T/$name.port")"
}

MILAN=$V/virtee-sev-milan
CHIP=d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6
VPATH="/vcek/v1/Milan/$CHIP?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"
stub kds "$VPATH=$MILAN/vcek.der" "/vcek/v1/Milan/cert_chain=$MILAN/cert_chain.pem"

# ---- fetch: the exact KDS URLs, one bundle named by chip ID and TCB
out=$("$K" kds fetch --report "$MILAN/report.bin" --product Milan --url "$URL" --cache "$T/cache" 2>"$T/err") ||
	fail "kds fetch: $(cat "$T/err")"
BUNDLE="$T/cache/$CHIP-0300000000000873.pem"
[ "$out" = "$BUNDLE" ] || fail "kds fetch printed '$out', expected $BUNDLE"
[ -s "$BUNDLE" ] || fail "no bundle at $BUNDLE"
[ "$(grep -c 'BEGIN CERTIFICATE' "$BUNDLE")" = 3 ] || fail "bundle does not hold VCEK, ASK and ARK"
grep -qxF "$VPATH" "$T/kds.log" || fail "VCEK not requested at $VPATH: $(cat "$T/kds.log")"
grep -qxF "/vcek/v1/Milan/cert_chain" "$T/kds.log" || fail "cert_chain not requested"

# A v2 report does not name its product.
if "$K" kds fetch --report "$MILAN/report.bin" --url "$URL" --cache "$T/c2" 2>"$T/err"; then
	fail "kds fetch without a product for a v2 report"
fi
grep -q "give --product" "$T/err" || fail "no-product refusal: $(cat "$T/err")"

# ---- verify-report with no certificate: the cached bundle
out=$("$K" verify-report "$MILAN/report.bin" --cert-dir "$T/cache" 2>"$T/err") ||
	fail "verify-report with the bundle: $(cat "$T/err")"
case $out in *"certificates from $BUNDLE"*) ;; *) fail "verify-report did not name the bundle: $out" ;; esac
KEYD_CERT_DIR="$T/cache" "$K" verify-report "$MILAN/report.bin" >/dev/null 2>"$T/err" ||
	fail "verify-report with \$KEYD_CERT_DIR: $(cat "$T/err")"
# An empty certificate table (the zero page stock KVM leaves) also falls back to it.
head -c 16384 /dev/zero >"$T/empty-table.bin"
"$K" verify-report "$MILAN/report.bin" --cert-table "$T/empty-table.bin" --cert-dir "$T/cache" \
	>/dev/null 2>"$T/err" || fail "empty table + bundle: $(cat "$T/err")"
# The bundle still has to prove the report: a flipped report byte fails.
cp "$MILAN/report.bin" "$T/flipped.bin"
printf '\x55' | dd of="$T/flipped.bin" bs=1 seek=$((0x90)) conv=notrunc 2>/dev/null
if "$K" verify-report "$T/flipped.bin" --cert-dir "$T/cache" 2>"$T/err"; then
	fail "a tampered report verified with the bundle"
fi
grep -q "report signature does not verify" "$T/err" || fail "tampered report: $(cat "$T/err")"

# ---- a lying host: another chip's VCEK in the bundle, or a foreign root
cat "$V/go-sev-guest-milan/vcek.pem" "$MILAN/cert_chain.pem" >"$BUNDLE"
if "$K" verify-report "$MILAN/report.bin" --cert-dir "$T/cache" 2>"$T/err"; then
	fail "a bundle with another chip's VCEK verified"
fi
grep -q "does not verify\|hwID" "$T/err" || fail "wrong-chip bundle: $(cat "$T/err")"
cat "$MILAN/vcek.pem" "$V/amd-roots/genoa_chain.pem" >"$BUNDLE"
if "$K" verify-report "$MILAN/report.bin" --cert-dir "$T/cache" 2>"$T/err"; then
	fail "a bundle with a Genoa chain verified a Milan VCEK"
fi
# A KDS that serves another chip's VCEK: nothing is cached.
stub bad "$VPATH=$V/go-sev-guest-milan/vcek.der" "/vcek/v1/Milan/cert_chain=$MILAN/cert_chain.pem"
if "$K" kds fetch --report "$MILAN/report.bin" --product Milan --url "$URL" --cache "$T/c3" 2>"$T/err"; then
	fail "kds fetch cached another chip's VCEK"
fi
grep -q "not cached" "$T/err" || fail "bad KDS refusal: $(cat "$T/err")"
[ ! -e "$T/c3/$CHIP-0300000000000873.pem" ] || fail "a refused bundle was cached"
# A KDS that has nothing for this chip (404).
stub none "/vcek/v1/Milan/cert_chain=$MILAN/cert_chain.pem"
if "$K" kds fetch --report "$MILAN/report.bin" --product Milan --url "$URL" --cache "$T/c4" 2>"$T/err"; then
	fail "kds fetch succeeded on a 404"
fi
grep -q "GET http://127.0.0.1" "$T/err" || fail "404 refusal: $(cat "$T/err")"

# ---- Genoa v3: the product comes from the report's CPUID
GENOA=$V/yaxi-genoa-v3
GCHIP=$(sed -n 's/^ *0x1A0 chip_id *\([0-9a-f]*\).*/\1/p' "$GENOA/fields.txt")
read -r bl tee snp uc < <(sed -n 's/^ *0x180 reported_tcb .*bl=\([0-9]*\) tee=\([0-9]*\) snp=\([0-9]*\) ucode=\([0-9]*\).*/\1 \2 \3 \4/p' "$GENOA/fields.txt")
GPATH="/vcek/v1/Genoa/$GCHIP?blSPL=$bl&teeSPL=$tee&snpSPL=$snp&ucodeSPL=$uc"
openssl x509 -in "$V/amd-roots/genoa_ask.pem" >"$T/genoa_chain.pem"
openssl x509 -in "$V/amd-roots/genoa_ark.pem" >>"$T/genoa_chain.pem"
stub genoa "$GPATH=$GENOA/vcek.der" "/vcek/v1/Genoa/cert_chain=$T/genoa_chain.pem"
"$K" kds fetch --report "$GENOA/report.bin" --url "$URL" --cache "$T/cache" >/dev/null 2>"$T/err" ||
	fail "kds fetch Genoa: $(cat "$T/err") $(cat "$T/genoa.log")"
"$K" verify-report "$GENOA/report.bin" --cert-dir "$T/cache" >/dev/null 2>"$T/err" ||
	fail "Genoa with the bundle: $(cat "$T/err")"

# ---- VLEK (AWS): the VLEK comes from the host's provisioning, only its chain from KDS
AWS=$V/constellation-aws-vlek
stub vlek "/vlek/v1/Milan/cert_chain=$AWS/cert_chain.pem"
if "$K" kds fetch --report "$AWS/report.bin" --product Milan --url "$URL" --cache "$T/vcache" 2>"$T/err"; then
	fail "kds fetch of a VLEK-signed report without --vlek"
fi
grep -q "give the provisioned one with --vlek" "$T/err" || fail "VLEK refusal: $(cat "$T/err")"
out=$("$K" kds fetch --report "$AWS/report.bin" --product Milan --vlek "$AWS/vlek.pem" --url "$URL" \
	--cache "$T/vcache" --at 2025-06-01T00:00:00Z 2>"$T/err") || fail "kds fetch --vlek: $(cat "$T/err")"
[ "$out" = "$T/vcache/vlek-04000000000018d9.pem" ] || fail "VLEK bundle at '$out'"
grep -qxF "/vlek/v1/Milan/cert_chain" "$T/vlek.log" || fail "VLEK chain not requested at /vlek/v1/Milan/cert_chain"
"$K" verify-report "$AWS/report.bin" --cert-dir "$T/vcache" --at 2025-06-01T00:00:00Z >/dev/null 2>"$T/err" ||
	fail "VLEK report with its bundle: $(cat "$T/err")"

# ---- keyd selftest against the simulator
"$SIMFW" --state "$T/chip" init --product milan --tcb 0300000000000873 2>/dev/null
"$SIMFW" --state "$T/chip" certs --out "$T/simcerts" >/dev/null 2>&1
"$SIMFW" --state "$T/chip" serve --listen "unix:$T/sim.sock" --measurement "$(printf 'a1%.0s' $(seq 48))" \
	2>"$T/sim.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$T/sim.sock" ] && break; sleep 0.05; done
"$K" selftest --backend sim --sim "unix:$T/sim.sock" --ark "$T/simcerts/ark.pem" >"$T/st" 2>"$T/err" ||
	fail "selftest: $(cat "$T/st" "$T/err")"
for want in "backend *sim" "vmpl *0" "report *version 5, product Milan, vmpl 0, signed by the VCEK" \
	"report-data *echoed" "plain-report *ok" "certificates *certificate table" "report-verifies *yes" \
	"derived-key *KEY_SEL 1, fields policy,measurement,tcb, vmpl 0: stable: yes, fingerprint [0-9a-f]\{16\}$" \
	"key-sel-0 *"; do
	grep -q "^$want" "$T/st" || fail "selftest lacks '$want': $(cat "$T/st")"
done
# No key bytes: nothing longer than the 16-digit fingerprint but the chip ID.
if grep -v '^chip-id' "$T/st" | kd_has -E '[0-9a-f]{32}'; then fail "selftest printed a long hex string"; fi
# Without the simulator's ARK the report does not verify against AMD's roots: exit 1, and says so.
if "$K" selftest --backend sim --sim "unix:$T/sim.sock" >"$T/st" 2>&1; then
	fail "selftest passed with a simulator chain against the AMD roots"
fi
grep -q "^report-verifies *NO: " "$T/st" || fail "selftest did not say why: $(cat "$T/st")"

[ "$fails" = 0 ] || exit 1
echo "31-kds-bundle: ok"
