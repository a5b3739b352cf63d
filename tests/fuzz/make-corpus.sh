#!/bin/bash
# Regenerate the committed seed corpora tests/fuzz/corpus/<target>/ from the
# real vectors (tests/vectors), the simulator and the tools' own outputs.
# Needs `make all`, cryptsetup and python3. Seeds are named by content hash.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
cd "$(dirname "$0")/../.."
B=${KEYD_BUILD:-$PWD/build}
V=${KEYD_VECTORS:-$PWD/tests/vectors}
C=tests/fuzz/corpus
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT

# seed TARGET FILE: add one seed, named by its SHA-1.
seed() { mkdir -p "$C/$1"; cp "$2" "$C/$1/$(sha1sum <"$2" | cut -c1-16)"; }
# seedp TARGET PREFIXHEX FILE: seed with control bytes in front.
seedp() { { printf "$2"; cat "$3"; } >"$T/p"; seed "$1" "$T/p"; }

# ---- simulator artefacts: a chip, a launch, a report, its cert table, a key response
"$B/keyd-simfw" --state "$T/chip" init >/dev/null
M=$(printf 'a1f3%.0s' $(seq 24))
"$B/keyd-simfw" --state "$T/chip" serve --listen "unix:$T/sim.sock" --measurement "$M" \
	2>"$T/sim.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$T/sim.sock" ] && break; sleep 0.1; done

# ---- a signed manifest and release keys (the handoff's inputs)
K="$B/keyd"
for i in 1 2; do "$K" manifest keygen -o "$T/k$i.pem" --pub "$T/k$i.pub" >/dev/null; done
"$K" manifest keys --threshold 2 -o "$T/keys.json" "$T/k1.pub" "$T/k2.pub" >/dev/null
"$K" manifest create --version-label guestos-1.4 --svn 3 --measurement "$M" \
	--measurement "$(printf '9b2c%.0s' $(seq 24))" --not-after 2030-01-01T00:00:00Z \
	-o "$T/m.json" >/dev/null
"$K" manifest sign "$T/m.json" --key "$T/k1.pem" >/dev/null
"$K" manifest sign "$T/m.json" --key "$T/k2.pem" >/dev/null

# ---- a sealed LUKS2 volume enrolled by keyd: its header and token
truncate -s 32M "$T/img"
KEYD_SIM="unix:$T/sim.sock" "$K" enroll "$T/img" --format --label guestos-1.4 >/dev/null
cryptsetup token export --token-id 0 "$T/img" >"$T/token.json"
truncate -s 32M "$T/plain"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file <(printf pw) "$T/plain"

python3 - "$T" "$V" "$C" <<'PY'
import hashlib, os, socket, struct, sys, glob
T, V, C = sys.argv[1:4]
def seed(t, b):
    os.makedirs(f"{C}/{t}", exist_ok=True)
    open(f"{C}/{t}/{hashlib.sha1(b).hexdigest()[:16]}", "wb").write(b)

GUID = {"vcek": "63da758d-e664-4564-adc5-f4b93be8accd", "vlek": "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
        "ask": "4ab7b379-bbac-4fe4-a02f-05aef327c782", "ark": "c0b406a4-a803-4952-9743-3fb6014cd0ae",
        "crl": "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"}
def table(entries, pad=0):
    hdr = b""; body = b""; off = 24 * (len(entries) + 1)
    for kind, der in entries:
        hdr += bytes.fromhex(GUID[kind].replace("-", "")) + struct.pack("<II", off + len(body), len(der))
        body += der
    return hdr + bytes(24) + body + bytes(pad)

# --- simulator wire: talk to the live simulator for real responses
s = socket.socket(socket.AF_UNIX); s.connect(f"{T}/sim.sock")
def frame(typ, payload, ident=1):
    return struct.pack("<IHHII", 0x4d53444b, 1, typ, len(payload), ident) + payload
def rpc(typ, payload):
    s.sendall(frame(typ, payload))
    h = b""
    while len(h) < 16: h += s.recv(16 - len(h))
    n = struct.unpack("<I", h[8:12])[0]; p = b""
    while len(p) < n: p += s.recv(n - len(p))
    return p
keyreq = struct.pack("<IIQIIQ", 1 << 1, 0, 0x29, 0, 0, 0)        # VCEK, policy|measurement|tcb
keyreq_bad = struct.pack("<IIQIIQ", 0, 0, 0x40, 0, 0, 0)          # bit 6: refused
report_req = bytes(range(64)) + struct.pack("<I", 0)
rsp = rpc(1, keyreq); rsp_bad = rpc(1, keyreq_bad)
rep_rsp = rpc(2, report_req); certs = rpc(3, b"")
report = rep_rsp[0x20:0x20 + 1184]
# The derived key is not committed: zero it in the MSG_KEY_RSP seed.
rsp = rsp[:0x20] + bytes(32)
seed("keyrsp", rsp); seed("keyrsp", rsp_bad); seed("keyrsp", keyreq); seed("keyrsp", keyreq_bad)
seed("sim", b"\x00" + frame(1, keyreq) + frame(2, report_req, 2) + frame(3, b"", 3))
seed("sim", b"\x01" + b"junk" + frame(1, keyreq_bad) + frame(2, bytes(64) + struct.pack("<I", 5)))
seed("sim", b"\x01" + frame(1, keyreq)[:20] + frame(3, b""))
seed("report", report)
seed("certtable", certs)

# --- real reports and certificates
reports = [report]
for f in sorted(glob.glob(f"{V}/snp/*/report.bin")):
    b = open(f, "rb").read(); seed("report", b); reports.append(b)
ders = {}
for f in sorted(glob.glob(f"{V}/snp/*/*.der")) + sorted(glob.glob(f"{V}/snp/*/vcek.pem")):
    b = open(f, "rb").read(); seed("vek", b); ders[f] = b
def der(name): return [b for f, b in ders.items() if f.endswith(name)]
def pem2der(path):
    import base64, re
    txt = open(path).read()
    return [base64.b64decode("".join(m.split())) for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END", txt, re.S)]
milan = pem2der(f"{V}/snp/amd-roots/milan_chain.pem")  # ASK, ARK
vcek = open(f"{V}/snp/virtee-sev-milan/vcek.der", "rb").read()
vlek = open(f"{V}/snp/trustee-milan-vlek/vlek.der", "rb").read()
seed("certtable", table([("vcek", vcek), ("ask", milan[0]), ("ark", milan[1])], 4096 - 1000))
seed("certtable", table([("vlek", vlek), ("ask", milan[0])]))
seed("certtable", table([("vcek", open(f"{V}/snp/virtee-sev-turin/vcek.der", "rb").read())]))
seed("certtable", b"")

# --- MSG_KEY_RSP shapes
seed("keyrsp", struct.pack("<I", 0x27) + bytes(60))

# --- tokens
tok = open(f"{T}/token.json", "rb").read().strip()
seed("token", tok)
seed("token", tok.replace(b'"active"', b'"pending"'))

# --- manifests (byte 0: 0 manifest, 1 release keys)
manifest = open(f"{T}/m.json", "rb").read()
seed("manifest", b"\x00" + manifest)
seed("manifest", b"\x01" + open(f"{T}/keys.json", "rb").read())

# --- LUKS2 headers (byte 0: fix primary/secondary checksums) and their JSON
for name in ("img", "plain"):
    dev = open(f"{T}/{name}", "rb").read(1 << 20)
    hs = int.from_bytes(dev[8:16], "big")
    seed("luks2_header", b"\x00" + dev[:2 * hs])
    seed("luks2_header", b"\x03" + dev[:2 * hs])
    seed("luks2_json", dev[4096:hs].split(b"\0")[0])

# --- handoff payloads (byte 0: 0 HELLO, 1 VOLUMES, 2 KEYS, 3 DONE) and frames
U = [b"0f6e2ad1-3c4b-4f5e-9a1b-2c3d4e5f6a7b", b"5d1a9c3e-7b2f-4e8d-a6c4-1f0e9d8c7b6a"]
def blob(b): return struct.pack("<I", len(b)) + b
hello = b"N\0\0\0" + blob(report) + blob(certs) + blob(manifest)
volumes = struct.pack("<H", 2) + U[0] + U[1]
keys = struct.pack("<H", 2) + b"".join(u + struct.pack("<H", 8) + bytes(8) + struct.pack("<H", 32) + bytes(32) for u in U)
done = struct.pack("<H", 2) + U[0] + struct.pack("<I", 1) + U[1] + struct.pack("<I", 2)
for i, p in enumerate((hello, volumes, keys, done)):
    seed("handoff", bytes([i]) + p)
    seed("frame", struct.pack("<IH", len(p), i + 1) + p)
seed("frame", struct.pack("<IH", 19, 5) + b"peer refused: \x1b[1mX")

# --- OVMF footer tables and SEV metadata
for f in sorted(glob.glob(f"{V}/measure/ovmf_*_suffix.bin")):
    seed("ovmf", open(f, "rb").read())
deb = "/usr/share/OVMF/OVMF_CODE_4M.fd"
if os.path.exists(deb):
    seed("ovmf", open(deb, "rb").read()[-16384:])
PY
du -sh "$C"
for d in "$C"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done

# ---- escrow: a share plaintext, its CMS to a throwaway admin, a keyd-escrow token
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=alice \
	-keyout "$T/admin.key" -out "$T/admin.crt" -days 1 2>/dev/null
python3 - "$T" <<'PY'
import hashlib, os, sys
T = sys.argv[1]
R = os.urandom(32)
uuid = b"0f6e2ad1-3c4b-4f5e-9a1b-2c3d4e5f6a7b"
commit = hashlib.sha384(b"keyd-escrow-v1" + R).digest()
share = b"KDSHARE1" + bytes([2, 3, 1, 32, len(uuid)]) + uuid + commit + os.urandom(32)
open(f"{T}/share", "wb").write(share)
open(f"{T}/commit", "w").write(commit.hex())
PY
openssl cms -encrypt -binary -aes256 -outform DER -in "$T/share" -out "$T/share.cms" "$T/admin.crt"
fp=$(openssl x509 -in "$T/admin.crt" -outform DER | sha256sum | cut -c1-64)
dg=$(sha256sum <"$T/share" | cut -c1-64)
printf '{"type":"keyd-escrow","keyslots":["2"],"version":1,"threshold":2,"commitment":"%s","created":"2026-01-01T00:00:00Z","shares":[{"index":1,"admin":"%s","subject":"CN=alice","digest":"%s","cms":"%s"},{"index":2,"admin":"%s","subject":"CN=bob","digest":"%s","cms":"%s"}]}' \
	"$(cat "$T/commit")" "$fp" "$dg" "$(base64 -w0 <"$T/share.cms")" "$fp" "$dg" \
	"$(base64 -w0 <"$T/share.cms")" >"$T/escrow.json"
seedp escrow '\x00' "$T/escrow.json"
seedp escrow '\x01' "$T/share"
seedp escrow '\x02' "$T/share.cms"
