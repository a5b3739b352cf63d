#!/bin/bash
# keyd report show: every real report decodes (text and --json) to the values
# of its fields.txt; malformed reports are refused with one line; usage errors
# exit 2.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud

: "${KEYD_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEYD_BUILD:=$KEYD_SRC/build}"
: "${KEYD_VECTORS:=$(cd "$(dirname "$0")/../vectors" && pwd)}"
KEYD=$KEYD_BUILD/keyd
S=$KEYD_VECTORS/snp

[ -x "$KEYD" ] || { echo "no $KEYD"; exit 77; }
[ -r "$S/yaxi-genoa-v3/report.bin" ] || { echo "FAIL: no SNP vectors at $S"; exit 1; }
command -v python3 >/dev/null || { echo "no python3"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect RC PATTERN CMD...: exit code RC and one stderr line matching PATTERN
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$* -> rc $rc, want $want: $(cat "$tmp/err")"
	grep -q -- "$pat" "$tmp/err" || fail "$* -> stderr lacks '$pat': $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$* -> stderr is not one line: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || fail "$* -> printed on stdout while failing"
}

# value of one fields.txt line, by its offset token
field() { awk -v o="$2" '$1 == o { sub(/^ *[^ ]+ +[^ ].*[^ ]  +/, ""); print; exit }' "$1/fields.txt"; }

n=0
for d in "$S"/*/; do
	d=${d%/}
	[ -r "$d/report.bin" ] || continue
	n=$((n + 1))
	name=$(basename "$d")
	if [ ! -e "$d/fields.txt" ]; then
		# Later vectors carry their source's own expected values (checked in
		# test_report and 30-verify-report.sh): here they must decode cleanly.
		"$KEYD" report show "$d/report.bin" >"$tmp/txt" 2>"$tmp/err" || fail "$name: text rc $?"
		[ ! -s "$tmp/err" ] || fail "$name: stderr not empty: $(cat "$tmp/err")"
		[ "$(grep -c '^  0x' "$tmp/txt")" -ge 27 ] || fail "$name: too few field lines"
		"$KEYD" report show --json "$d/report.bin" >"$tmp/json" || fail "$name: json rc $?"
		continue
	fi

	# --- text: one line per field, with the fields.txt values
	"$KEYD" report show "$d/report.bin" >"$tmp/txt" 2>"$tmp/err" || fail "$name: text rc $?"
	[ ! -s "$tmp/err" ] || fail "$name: stderr not empty: $(cat "$tmp/err")"
	for off in 0x000 0x004 0x030; do
		want=$(field "$d" $off)
		grep -Eq "^  $off [a-z_]+ +$want\$" "$tmp/txt" || fail "$name: $off != $want"
	done
	grep -Eq "^  0x034 signature_algo +$(field "$d" 0x034) \(ECDSA P-384 with SHA-384\)\$" \
		"$tmp/txt" || fail "$name: signature_algo"
	for off in 0x050 0x090 0x0C0 0x0E0 0x140 0x160 0x1A0; do
		want=$(field "$d" $off)
		[ ${#want} -ge 32 ] || fail "$name: fields.txt $off unreadable"
		grep -q "^  $off [a-z_]* *$want\$" "$tmp/txt" || fail "$name: $off != $want"
	done
	# TCBs: hex and decoded components, exactly as fields.txt prints them
	for off in 0x038 0x180 0x1E0 0x1F0; do
		want=$(field "$d" $off)
		grep "^  $off " "$tmp/txt" | kd_has -F -- " $want" ||
			fail "$name: TCB $off '$want' missing"
	done
	pol=$(field "$d" 0x008 | awk '{print $1}')
	grep -Eq "^  0x008 policy +$pol abi=[0-9]+\.[0-9]+ smt=[01] " "$tmp/txt" ||
		fail "$name: policy line"
	grep -q "^  0x1E8 current build/minor/major *$(field "$d" 0x1E8)\$" "$tmp/txt" ||
		fail "$name: firmware version"
	[ "$(grep -c '^  0x' "$tmp/txt")" -ge 27 ] || fail "$name: too few field lines"

	# --- JSON: one object; compare with fields.txt through python3
	"$KEYD" report show --json "$d/report.bin" >"$tmp/json" || fail "$name: json rc $?"
	python3 - "$tmp/json" "$d/fields.txt" "$name" <<'EOF' || fail "$name: JSON differs"
import json, re, sys
j = json.load(open(sys.argv[1]))
f = {}
for line in open(sys.argv[2]):
    m = re.match(r'\s+(0x[0-9A-Fa-f.]+)\s+(.*?)\s{2,}(.*)$', line)
    if m:
        f[m.group(1)] = m.group(3).strip()
def tcb(key, off):
    raw, rest = f[off].split(' ', 1)
    comp = dict(kv.split('=') for kv in rest.strip('()').split())
    t = j[key]
    assert t['raw'] == raw, (key, t['raw'], raw)
    assert t['bootloader'] == int(comp['bl']) and t['tee'] == int(comp['tee'])
    assert t['snp'] == int(comp['snp']) and t['microcode'] == int(comp['ucode'])
assert j['version'] == int(f['0x000'])
assert j['guest_svn'] == int(f['0x004'])
pol = f['0x008'].split()
assert int(j['policy']['raw'], 16) == int(pol[0], 16)
bits = dict(kv.split('=') for kv in pol[1:])
for k in ('smt', 'migrate_ma', 'debug', 'single_socket'):
    assert j['policy'][k] == (bits[k] == '1'), k
assert j['policy']['reserved_must_be_one'] == (bits['rsvd17'] == '1')
assert '%d.%d' % (j['policy']['abi_major'], j['policy']['abi_minor']) == bits['abi']
assert j['family_id'] == f['0x010'] and j['image_id'] == f['0x020']
assert j['vmpl'] == int(f['0x030'])
assert int(j['platform_info']['raw'], 16) == int(f['0x040'], 16)
si = f['0x048'].split()
assert int(j['signer_info']['raw'], 16) == int(si[0], 16)
assert 'signing_key=%d' % j['signer_info']['signing_key'] in si
for off, key in (('0x050', 'report_data'), ('0x090', 'measurement'), ('0x0C0', 'host_data'),
                 ('0x0E0', 'id_key_digest'), ('0x110', 'author_key_digest'),
                 ('0x140', 'report_id'), ('0x160', 'report_id_ma'), ('0x1A0', 'chip_id')):
    assert j[key] == f[off], key
for off, key in (('0x038', 'current_tcb'), ('0x180', 'reported_tcb'),
                 ('0x1E0', 'committed_tcb'), ('0x1F0', 'launch_tcb')):
    tcb(key, off)
fam, mod, step = (int(x, 16) for x in f['0x188'].split('/'))
if j['version'] >= 3:
    assert (j['cpuid']['family'], j['cpuid']['model'], j['cpuid']['stepping']) == (fam, mod, step)
else:
    assert 'cpuid' not in j and (fam, mod, step) == (0, 0, 0)
assert j['current_firmware']['version'] == f['0x1E8'].split('-> ')[1]
assert j['committed_firmware']['version'] == f['0x1EC'].split('-> ')[1]
# fields.txt prints R and S as big-endian integers; JSON keeps the report's LE bytes
for off, key in (('0x2A0', 'r'), ('0x2E8', 's')):
    le = bytes.fromhex(j['signature'][key])
    assert len(le) == 72 and int.from_bytes(le, 'little') == int(f[off], 16), key
assert j['product'] in ('Milan', 'Genoa', 'Turin', 'unknown')
EOF
done
[ "$n" -ge 6 ] || fail "only $n reports found under $S"

# Products: CPUID on v3, no guess on a full-CHIP_ID v2.
"$KEYD" report show --json "$S/yaxi-genoa-v3/report.bin" >"$tmp/j"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["product"]=="Genoa" and j["product_source"]=="cpuid"' "$tmp/j" ||
	fail "genoa product"
"$KEYD" report show "$S/trustee-milan-vlek/report.bin" >"$tmp/t"
grep -q "signing_key=1 (VLEK)" "$tmp/t" || fail "VLEK signer not decoded"
grep -q "^  product .*Milan (from CPUID)" "$tmp/t" || fail "Milan product line"
"$KEYD" report show "$S/go-sev-guest-milan/report.bin" >"$tmp/t"
grep -q " debug=1 " "$tmp/t" || fail "debug policy bit not shown"

# --- refusals: exit 1, one line on stderr, nothing on stdout
good=$S/yaxi-genoa-v3/report.bin
head -c 1000 "$good" >"$tmp/short.bin"
expect 1 "1000 bytes, expected 1184" "$KEYD" report show "$tmp/short.bin"
expect 1 "1000 bytes, expected 1184" "$KEYD" report show --json "$tmp/short.bin"
: >"$tmp/empty.bin"
expect 1 "0 bytes, expected 1184" "$KEYD" report show "$tmp/empty.bin"
{ cat "$good"; printf '\0'; } >"$tmp/long.bin"
expect 1 "trailing" "$KEYD" report show "$tmp/long.bin"
cp "$good" "$tmp/v6.bin"
printf '\x06' | dd of="$tmp/v6.bin" bs=1 seek=0 conv=notrunc status=none
expect 1 "version 6 is not supported" "$KEYD" report show "$tmp/v6.bin"
cp "$good" "$tmp/rsvd.bin"
printf '\x01' | dd of="$tmp/rsvd.bin" bs=1 seek=$((0x200)) conv=notrunc status=none
expect 1 "reserved bytes 0x1f8..0x207" "$KEYD" report show "$tmp/rsvd.bin"
cp "$good" "$tmp/pol.bin"
printf '\x01' | dd of="$tmp/pol.bin" bs=1 seek=$((0x008 + 2)) conv=notrunc status=none
expect 1 "bit 17" "$KEYD" report show "$tmp/pol.bin"
expect 1 "cannot open" "$KEYD" report show "$tmp/does-not-exist.bin"

# A v5 report (made from the v3 one) shows its mitigation vectors.
cp "$good" "$tmp/v5.bin"
printf '\x05' | dd of="$tmp/v5.bin" bs=1 seek=0 conv=notrunc status=none
printf '\x03' | dd of="$tmp/v5.bin" bs=1 seek=$((0x1F8)) conv=notrunc status=none
"$KEYD" report show "$tmp/v5.bin" >"$tmp/t"
grep -Eq "^  0x1F8 launch_mit_vector +0x3$" "$tmp/t" || fail "v5 launch_mit_vector"
grep -Eq "^  0x200 current_mit_vector +0x0$" "$tmp/t" || fail "v5 current_mit_vector"

# --- usage errors: exit 2
expect 2 "missing report FILE" "$KEYD" report show
expect 2 "missing report FILE" "$KEYD" report show --json
expect 2 "unknown option" "$KEYD" report show --bogus "$good"
expect 2 "unexpected argument" "$KEYD" report show "$good" "$good"
"$KEYD" report show --help >"$tmp/h" || fail "--help rc"
grep -q "^Usage: keyd report show FILE" "$tmp/h" || fail "--help text"

echo "report show: $n reports decoded, refusals and usage errors checked"
