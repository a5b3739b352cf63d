#!/bin/bash
# Rewrite the LUKS2 JSON metadata of an image in place, with one defect, and
# fix both header checksums, so that only keyd's allow-list can refuse it
# (libcryptsetup itself would accept the header).
#
#   gen-bad-headers.sh IMG DEFECT
#
# DEFECT: pbkdf-iterations  keyd keyslot PBKDF2 iterations 1000 -> 10
#         pbkdf-hash        keyd keyslot PBKDF2 hash sha512 -> sha1
#         extra-segment     a second crypt segment
#         segment-null      segment 0 encryption -> cipher_null-ecb
#         keyslot-null      keyslot 0 area encryption -> cipher_null-ecb
#         all-null          segment 0 and every keyslot -> cipher_null-ecb
#         token-slot        keyd token references keyslot 1 (must exist)
#         overlap           keyslot 1 area moved onto keyslot 0's
#         primary-corrupt   flip a byte in the primary JSON area only
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/../lib.bash"
kd_loud
img=$1 defect=$2
command -v python3 >/dev/null || { echo "python3 needed" >&2; exit 77; }
python3 - "$img" "$defect" <<'PY'
import hashlib, json, struct, sys
img, defect = sys.argv[1], sys.argv[2]
f = open(img, 'r+b')
hdr = f.read(4096)
hdr_size = struct.unpack('>Q', hdr[8:16])[0]
def read(off):
    f.seek(off); return bytearray(f.read(hdr_size))
def write(off, area):
    area[448:512] = b'\0' * 64
    area[448:480] = hashlib.sha256(bytes(area)).digest()
    f.seek(off); f.write(area)
areas = [(0, read(0)), (hdr_size, read(hdr_size))]
if defect == 'primary-corrupt':
    a = areas[0][1]; a[4096 + 10] ^= 0x20; f.seek(0); f.write(a); sys.exit(0)
meta = json.loads(bytes(areas[0][1][4096:]).split(b'\0')[0])
ks0 = meta['keyslots']['0']
if defect == 'pbkdf-iterations':
    ks0['kdf']['iterations'] = 10
elif defect == 'pbkdf-hash':
    ks0['kdf']['hash'] = 'sha1'
elif defect == 'extra-segment':
    s = dict(meta['segments']['0']); meta['segments']['1'] = s
    meta['segments']['0']['size'] = '4096'
    s['offset'] = str(int(s['offset']) + 4096)
elif defect == 'segment-null':
    meta['segments']['0']['encryption'] = 'cipher_null-ecb'
elif defect == 'keyslot-null':
    ks0['area']['encryption'] = 'cipher_null-ecb'
elif defect == 'all-null':
    meta['segments']['0']['encryption'] = 'cipher_null-ecb'
    for k in meta['keyslots'].values(): k['area']['encryption'] = 'cipher_null-ecb'
elif defect == 'token-slot':
    for t in meta['tokens'].values():
        if t['type'] == 'keyd': t['keyslots'] = ['1']
elif defect == 'overlap':
    meta['keyslots']['1']['area']['offset'] = ks0['area']['offset']
else:
    sys.exit('unknown defect ' + defect)
text = json.dumps(meta, separators=(',', ':')).encode()
for off, a in areas:
    a[4096:] = text + b'\0' * (hdr_size - 4096 - len(text))
    write(off, a)
PY
