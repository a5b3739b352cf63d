#!/bin/bash
# keyd measure: sev-snp-measure vectors through the CLI, options, exit codes
# and one-line refusals, the real Debian OVMF, and real-size kernel/initrd.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud

: "${KEYD_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEYD_BUILD:=$KEYD_SRC/build}"
: "${KEYD_VECTORS:=$(cd "$(dirname "$0")/../vectors" && pwd)}"
KEYD=$KEYD_BUILD/keyd
V=$KEYD_VECTORS/measure
AMDSEV=$V/ovmf_AmdSev_suffix.bin
X64=$V/ovmf_OvmfX64_suffix.bin
REAL=/usr/share/OVMF/OVMF_CODE_4M.fd

[ -x "$KEYD" ] || { echo "no $KEYD"; exit 77; }
[ -r "$V/cases.json" ] || { echo "FAIL: no measure vectors at $V"; exit 1; }

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
	[ ! -s "$tmp/out" ] || fail "$* -> printed a digest on failure"
}

# 1. every vector of cases.json, through the CLI
python3 - "$V/cases.json" >"$tmp/cases" <<'EOF'
import json, shlex, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    args = ["--ovmf", c["ovmf_file"], "--vcpus", str(c["vcpus"]), "--vcpu-sig", c["vcpu_sig"],
            "--guest-features", c["guest_features"]]
    for k in ("kernel", "initrd", "append"):
        if c[k] is not None:
            args += ["--" + k, c[k]]
    print(c["expected"] + " " + " ".join(shlex.quote(a) for a in args))
EOF
n=0
while read -r want rest; do
	# shlex-quoted by the generator above, so an empty --append survives
	eval "args=($rest)"
	# the OVMF fixture name is relative to the vectors directory
	args[1]=$V/${args[1]}
	got=$("$KEYD" measure "${args[@]}")
	[ "$got" = "$want" ] || fail "vector $n: got $got want $want"
	n=$((n + 1))
done <"$tmp/cases"
[ "$n" -ge 3 ] || fail "only $n vectors"
echo "ok: $n vectors"

# 2. --vcpu-type gives the same digest as the signature; --json carries it
d1=$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 4 --vcpu-sig 800f12 --guest-features 0x21 \
	--kernel /dev/null --initrd /dev/null --append "")
d2=$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 4 --vcpu-type EPYC-v4 --guest-features 21 \
	--kernel /dev/null --initrd /dev/null --append "")
[ "$d1" = "$d2" ] && [ "$d1" = 4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942 ] ||
	fail "vcpu-type EPYC-v4 differs from --vcpu-sig 0x800f12"
[[ "$d1" =~ ^[0-9a-f]{96}$ ]] || fail "not 96 hex digits: $d1"
j=$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 4 --vcpu-type EPYC-v4 --guest-features 21 \
	--kernel /dev/null --initrd /dev/null --append "" --json)
[ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["measurement"])' <<<"$j")" = "$d1" ] ||
	fail "--json measurement differs: $j"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["vcpu_sig"]=="0x800f12" and d["vcpus"]==4 and d["vmm_type"]=="qemu"' <<<"$j" ||
	fail "--json fields: $j"
echo "ok: vcpu-type and json"

# 3. the default guest features are 0x1, and they change the digest
base=(--ovmf "$AMDSEV" --vcpus 2 --vcpu-type EPYC-Milan)
g1=$("$KEYD" measure "${base[@]}")
[ "$g1" = "$("$KEYD" measure "${base[@]}" --guest-features 0x1)" ] || fail "default guest features is not 0x1"
[ "$g1" != "$("$KEYD" measure "${base[@]}" --guest-features 0x21)" ] || fail "guest features ignored"
e=$("$KEYD" measure "${base[@]}" --vmm-type ec2)
g=$("$KEYD" measure "${base[@]}" --vmm-type gce)
[ "$e" != "$g1" ] && [ "$g" != "$g1" ] && [ "$e" != "$g" ] || fail "VMM types do not change the digest"
# EC2/GCE fix RDX at 0x600 whatever the vCPU type
[ "$e" = "$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 2 --vcpu-type EPYC-Turin --vmm-type ec2)" ] ||
	fail "ec2 digest depends on the vCPU type"
echo "ok: guest features and VMM types"

# 4. --snp-ovmf-hash gives the same digest as the full computation
h=$("$KEYD" measure --ovmf "$AMDSEV" --ovmf-hash-only)
[ "$h" = 086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74 ] ||
	fail "ovmf hash $h is not the trace's first step"
for vmm in qemu ec2 gce; do
	a=$("$KEYD" measure "${base[@]}" --vmm-type $vmm --kernel /dev/null --append "x y")
	b=$("$KEYD" measure "${base[@]}" --vmm-type $vmm --kernel /dev/null --append "x y" --snp-ovmf-hash "$h")
	[ "$a" = "$b" ] || fail "--snp-ovmf-hash differs for $vmm"
done
echo "ok: --snp-ovmf-hash"

# 5. usage errors: exit 2 with a clear line
expect 2 'unknown --vcpu-type' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-type EPYC-Nope
expect 2 'exactly one of --vcpu-type and --vcpu-sig' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1
expect 2 'exactly one of --vcpu-type and --vcpu-sig' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 \
	--vcpu-type EPYC --vcpu-sig 800f12
expect 2 '--vcpus is required' "$KEYD" measure --ovmf "$AMDSEV" --vcpu-type EPYC
expect 2 '--vcpus must be' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 0 --vcpu-type EPYC
expect 2 '--ovmf is required' "$KEYD" measure --vcpus 1 --vcpu-type EPYC
expect 2 '--vcpu-sig must be' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-sig 1ffffffff
expect 2 '--guest-features must be hex' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-sig 1 \
	--guest-features 0xzz
expect 2 '--vmm-type must be' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-sig 1 --vmm-type kvm
expect 2 '--snp-ovmf-hash must be 96 hex' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-sig 1 \
	--snp-ovmf-hash abcd
expect 2 '--initrd and --append need --kernel' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 \
	--vcpu-sig 1 --initrd /dev/null
"$KEYD" measure --help | kd_has -- '--vcpu-type NAME' || fail "--help"
echo "ok: usage errors"

# 6. refusals of bad input: exit 1 with a distinct one-line reason
expect 1 'SNP_KERNEL_HASHES' "$KEYD" measure --ovmf "$X64" --vcpus 1 --vcpu-type EPYC --kernel /dev/null
"$KEYD" measure --ovmf "$X64" --vcpus 1 --vcpu-type EPYC >/dev/null || fail "OvmfX64 without kernel"
expect 1 'cannot open' "$KEYD" measure --ovmf "$tmp/nope.fd" --vcpus 1 --vcpu-type EPYC
expect 1 'cannot open' "$KEYD" measure --ovmf "$AMDSEV" --vcpus 1 --vcpu-type EPYC --kernel "$tmp/nope"

head -c 100 "$AMDSEV" >"$tmp/trunc.fd"
expect 1 'OVMF image size 100 is not a multiple of 4 KiB' \
	"$KEYD" measure --ovmf "$tmp/trunc.fd" --vcpus 1 --vcpu-type EPYC

# patch FILE OFFSET HEXBYTES: copy the AmdSev fixture with bytes replaced
patch() {
	cp "$AMDSEV" "$tmp/$1"
	chmod u+w "$tmp/$1"
	printf '%s' "$3" | xxd -r -p | dd of="$tmp/$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
# footer GUID at size-48
patch guid.fd $((4096 - 48)) 00
expect 1 'OVMF footer table GUID not found' "$KEYD" measure --ovmf "$tmp/guid.fd" --vcpus 1 --vcpu-type EPYC
# the SEV metadata footer entry's data (offset from the end) sits at 0xf6e
patch off.fd 0xf6e 00200000
expect 1 'SEV metadata offset 0x2000 points outside the OVMF image' \
	"$KEYD" measure --ovmf "$tmp/off.fd" --vcpus 1 --vcpu-type EPYC
# the metadata header is at 4096 - 0x554 = 0xaac; item count at +12
patch count.fd $((0xaac + 12)) ffffff7f
expect 1 'SEV metadata item count 2147483647 does not fit its size' \
	"$KEYD" measure --ovmf "$tmp/count.fd" --vcpus 1 --vcpu-type EPYC
patch sig.fd $((0xaac)) 58534556
expect 1 'SEV metadata signature is not "ASEV"' "$KEYD" measure --ovmf "$tmp/sig.fd" --vcpus 1 --vcpu-type EPYC
# footer table length beyond the image start
patch len.fd $((4096 - 50)) ffff
expect 1 'runs before the start of the image' "$KEYD" measure --ovmf "$tmp/len.fd" --vcpus 1 --vcpu-type EPYC
echo "ok: garbled OVMF refusals"

# 7. real-size kernel and initrd, streamed; a one-byte change moves the digest
head -c $((7 << 20)) /dev/urandom >"$tmp/vmlinuz"
head -c $((30 << 20)) /dev/urandom >"$tmp/initrd"
start=$(date +%s%N)
k1=$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 2 --vcpu-type EPYC-v4 --kernel "$tmp/vmlinuz" \
	--initrd "$tmp/initrd" --append "console=ttyS0 root=/dev/vda")
ms=$((($(date +%s%N) - start) / 1000000))
printf '\x5a' | dd of="$tmp/initrd" bs=1 seek=$(((30 << 20) - 1)) conv=notrunc status=none
k2=$("$KEYD" measure --ovmf "$AMDSEV" --vcpus 2 --vcpu-type EPYC-v4 --kernel "$tmp/vmlinuz" \
	--initrd "$tmp/initrd" --append "console=ttyS0 root=/dev/vda")
[ "$k1" != "$k2" ] || fail "initrd's last byte is not measured"
[ "$ms" -lt 5000 ] || fail "7 MB kernel + 30 MB initrd took $ms ms"
echo "ok: 37 MB of kernel+initrd in $ms ms"

# 8. the real Debian OVMF (no kernel-hashes section)
if [ -r "$REAL" ]; then
	r=$("$KEYD" measure --ovmf "$REAL" --vcpus 4 --vcpu-type EPYC-Genoa)
	[[ "$r" =~ ^[0-9a-f]{96}$ ]] || fail "real OVMF: $r"
	rh=$("$KEYD" measure --ovmf "$REAL" --ovmf-hash-only)
	[ "$r" = "$("$KEYD" measure --ovmf "$REAL" --vcpus 4 --vcpu-type EPYC-Genoa --snp-ovmf-hash "$rh")" ] ||
		fail "real OVMF: --snp-ovmf-hash differs"
	expect 1 'SNP_KERNEL_HASHES' "$KEYD" measure --ovmf "$REAL" --vcpus 1 --vcpu-type EPYC --kernel "$tmp/vmlinuz"
	echo "ok: real OVMF $REAL"
else
	echo "note: $REAL absent (package ovmf); real-OVMF checks skipped"
fi
echo "PASS 40-measure"
