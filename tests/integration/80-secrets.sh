#!/bin/bash
# Secrets hygiene, end to end (issue 8): enroll, dry-run unlock, status,
# a firmware update + rekey, an attested handoff O -> N and N's unlock, all
# against simulated launches that print every key they derive
# (keyd-simfw --debug-print-keys, test only). From those derived keys the
# test computes every purpose key (keyslot passphrase, pin key; docs/formats.md §3)
# and, through cryptsetup with a computed passphrase, the volume key; then
# it proves that no byte string of any of them -- raw, hex in either case,
# base64 -- appears in any stdout, stderr, simulator log or file the run
# wrote, nor in the LUKS2 header area of the image. The computation is
# cross-checked (a computed passphrase opens the volume, and equals what
# `keyd passphrase` prints), so a search for the wrong bytes cannot pass.
# Also: the long-running processes (simfw, handoff serve) run without core
# dumps (RLIMIT_CORE 0 in /proc/PID/limits).
set -euo pipefail
# shellcheck source=tests/integration/handoff-lib.bash
. "$(dirname "$0")/handoff-lib.bash"
command -v openssl >/dev/null || { echo "SKIP: openssl CLI missing"; exit 77; }

KN=$(mktemp -d)   # the known secrets: outside $T, never scanned
O=$T/out          # every command's stdout/stderr
mkdir -p "$O"
trap 'cleanup; rm -rf "$KN"' EXIT

# run NAME CMD...: stdout/stderr to $O/NAME.{out,err}; fails the test on error.
run() {
	local n=$1
	shift
	"$@" >"$O/$n.out" 2>"$O/$n.err" || fail "$n: exit $?: $(cat "$O/$n.err")"
}

# The shell's own default is soft 0 / hard unlimited; keyd sets both to 0
# first thing in main(), so give a just-started process a moment.
core_limit_zero() { # PID WHAT
	for _ in $(seq 100); do
		grep -Eq '^Max core file size +0 +0 ' "/proc/$1/limits" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$2 may dump core: $(grep 'core file' "/proc/$1/limits")"
}

# ---- world: a chip, release keys, manifests, two launches printing their keys
"$SIMFW" --state "$T/chip" init --product milan --tcb 0300000000000873 >"$O/init.out" 2>&1
"$SIMFW" --state "$T/chip" certs --out "$T/certs" >"$O/certs.out" 2>&1
for i in 1 2 3; do "$KEYD" manifest keygen -o "$T/k$i.pem" --pub "$T/k$i.pub" >/dev/null; done
"$KEYD" manifest keys --threshold 2 -o "$T/keys.json" "$T/k1.pub" "$T/k2.pub" "$T/k3.pub"
# The releases' TCB floor: the chip's TCB before the firmware update below.
MIN_TCB=0300000000000873
manifest "$T/mo.json" 1.0 1 "$MO" 1 2 >/dev/null
manifest "$T/mn.json" 2.0 2 "$MN" 1 3 >/dev/null
launch o "$T/chip" "$MO" --debug-print-keys "$KN/o.keys"
core_limit_zero "${PIDS[-1]}" "keyd-simfw serve"
launch n "$T/chip" "$MN" --debug-print-keys "$KN/n.keys"

# ---- enroll, unlock --dry-run, status
truncate -s 32M "$T/disk.img"
run enroll "$KEYD" enroll "$T/disk.img" --format --label 1.0 "${SIM_o[@]}"
run unlock "$KEYD" unlock "$T/disk.img" --dry-run "${SIM_o[@]}"
run unlock-json "$KEYD" unlock "$T/disk.img" --dry-run --json "${SIM_o[@]}"
run status "$KEYD" status "$T/disk.img" "${SIM_o[@]}"
run status-json "$KEYD" status "$T/disk.img" --json "${SIM_o[@]}"
grep -q "pin verified" "$O/unlock.out" || fail "dry-run unlock did not verify the pin"

# ---- firmware update, rekey
"$SIMFW" --state "$T/chip" tcb --current 0300000000000973 --committed 0300000000000973 \
	>"$O/tcb.out" 2>&1
run rekey "$KEYD" rekey "$T/disk.img" "${SIM_o[@]}"
grep -q "re-keyed" "$O/rekey.out" || fail "rekey output: $(cat "$O/rekey.out")"
run unlock-rekeyed "$KEYD" unlock "$T/disk.img" --dry-run "${SIM_o[@]}"

# ---- handoff O -> N (O still core-less while it waits), N unlocks
serve_bg --timings
core_limit_zero "$OPID" "keyd handoff serve"
receive --timings
wait_o
[ "$ORC" = 0 ] && [ "$NRC" = 0 ] || fail "handoff: O $ORC N $NRC: $(cat "$T/o.err" "$T/n.err")"
run unlock-n "$KEYD" unlock "$T/disk.img" --dry-run "${RK[@]}" --backend sim --sim "unix:$T/n.sock"
run commit-n "$KEYD" commit "$T/disk.img" "${RK[@]}" --backend sim --sim "unix:$T/n.sock"
run unlock-n2 "$KEYD" unlock "$T/disk.img" --dry-run --json "${RK[@]}" --backend sim --sim "unix:$T/n.sock"
# keyd-recover (escrow) is exercised here once it exists.
if [ -x "$B/keyd-recover" ]; then echo "note: keyd-recover present but not yet covered"; fi

# ---- what must never leak: derived keys and everything computed from them
cat "$KN/o.keys" "$KN/n.keys" | grep -Eo '^[0-9a-f]{64}$' | sort -u >"$KN/derived"
nd=$(wc -l <"$KN/derived")
[ "$nd" -ge 3 ] || fail "only $nd derived keys printed by the simulator"
UUID=$(cryptsetup luksUUID "$T/disk.img")
hkdf() { # KEYHEX LEN INFO -> lowercase hex
	openssl kdf -keylen "$2" -kdfopt digest:SHA384 -kdfopt "hexkey:$1" -kdfopt "salt:$UUID" \
		 -kdfopt "info:$3" HKDF </dev/null | tr -d ':\n' | tr 'A-F' 'a-f'
}
: >"$KN/pass"
: >"$KN/pinkeys"
: >"$KN/kex"
while read -r d; do
	# The seed of N's handoff key-agreement key (no salt): private as well.
	openssl kdf -keylen 32 -kdfopt digest:SHA384 -kdfopt "hexkey:$d" \
		-kdfopt "info:keyd/v2/handoff-kex" HKDF </dev/null | tr -d ':\n' | tr 'A-F' 'a-f' >>"$KN/kex"
	echo >>"$KN/kex"
	hkdf "$d" 32 keyd/v1/keyslot >>"$KN/pass"
	echo >>"$KN/pass"
	hkdf "$d" 48 keyd/v1/pin >>"$KN/pinkeys"
	echo >>"$KN/pinkeys"
done <"$KN/derived"
# The volume key, through whichever computed passphrase opens a keyslot now.
opened=0
while read -r p; do
	printf %s "$p" >"$KN/pf"
	if cryptsetup luksDump -q --dump-volume-key --volume-key-file "$KN/vk.$opened" \
		--key-file "$KN/pf" "$T/disk.img" </dev/null >/dev/null 2>&1; then
		opened=$((opened + 1))
	fi
done <"$KN/pass"
[ "$opened" -ge 2 ] || fail "computed passphrases open $opened keyslots, want O's and N's"
[ "$(stat -c %s "$KN/vk.0")" = 64 ] || fail "volume key not dumped"
cmp -s "$KN/vk.0" "$KN/vk.1" || fail "O's and N's keyslots hold different volume keys"
mv "$KN/vk.0" "$KN/vk"
# The computation matches keyd's own (its passphrase command is the one
# place a passphrase is meant to be printed; its output stays in $KN).
"$KEYD" passphrase "$T/disk.img" "${SIM_n[@]}" >"$KN/keyd-pass" 2>"$O/passphrase.err" ||
	fail "keyd passphrase: $(cat "$O/passphrase.err")"
grep -qxF "$(cat "$KN/keyd-pass")" "$KN/pass" || fail "keyd's passphrase is not among the computed ones"
rm -f "$KN/pf"

# The simulator's stderr logs and the kernel log are outputs too.
cp "$T"/*.simlog "$O"/ 2>/dev/null || true
dmesg >"$O/dmesg.txt" 2>/dev/null || true

python3 - "$T" "$KN" "$T/disk.img" <<'PY' || fail "key material leaked (see above)"
import base64, os, re, sys
T, KN, img = sys.argv[1:4]

def forms(raw):
    h = raw.hex()
    b64 = base64.b64encode(raw)
    f = {"raw": raw, "hex": h.encode(), "HEX": h.upper().encode(), "base64": b64,
         "base64-nopad": b64.rstrip(b"="), "base64url": base64.urlsafe_b64encode(raw).rstrip(b"=")}
    # Half a key is a leak too: its first and last 16 bytes, raw and hex.
    for part, b in (("head16", raw[:16]), ("tail16", raw[-16:])):
        f[part] = b
        f[part + "-hex"] = b.hex().encode()
        f[part + "-HEX"] = b.hex().upper().encode()
    return f

secrets = {}
def add(kind, hexes, text=False):
    for i, h in enumerate(hexes):
        raw = bytes.fromhex(h)
        for f, b in forms(raw).items():
            secrets[f"{kind}#{i}/{f}"] = b
        if text:  # a passphrase is hex text: its ASCII form in any encoding too
            for f, b in forms(h.encode()).items():
                secrets[f"{kind}#{i}/ascii-{f}"] = b

lines = lambda p: [l.strip() for l in open(p) if l.strip()]
add("derived-key", lines(f"{KN}/derived"))
add("passphrase", lines(f"{KN}/pass"), text=True)
add("pin-key", lines(f"{KN}/pinkeys"))
add("handoff-kex-seed", lines(f"{KN}/kex"))
add("volume-key", [open(f"{KN}/vk", "rb").read().hex()])

# Files: everything written under T (outputs, logs, manifests, certs, sockets
# skipped), and the LUKS2 header and keyslot area of the image (everything
# before the data segment), which the host can read.
targets = []
for root, dirs, files in os.walk(T):
    for f in files:
        p = os.path.join(root, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        if p == img:
            continue
        targets.append((p, open(p, "rb").read()))
hdr = open(img, "rb").read(16 << 20)
targets.append((img + " (header+keyslots)", hdr))

leaks = 0
for p, data in targets:
    for name, needle in secrets.items():
        if needle in data:
            print(f"LEAK: {name} found in {p}")
            leaks += 1
print(f"scanned {len(targets)} files for {len(secrets)} byte strings "
      f"({len(lines(KN + '/derived'))} derived keys): {leaks} leaks")
sys.exit(1 if leaks else 0)
PY
echo ok
