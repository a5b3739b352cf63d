#!/usr/bin/env python3
# Patch the LUKS2 header of an image the way a hostile host can: rewrite the
# JSON area of one or both copies, or its framing, and fix the checksums, so
# that only the parsers under test can refuse it.
#
#   luks2-patch.py IMG json 'PYTHON' [both|primary|secondary]
#       run PYTHON with `m` bound to the parsed metadata (a dict), then write
#       it back (compact JSON) to the given copies (default both)
#   luks2-patch.py IMG raw 'PYTHON' [both|primary|secondary]
#       PYTHON gets `t`, the JSON text (bytes), and sets `area`: the bytes of
#       the whole JSON area (padded with NUL to its size); framing defects
#   luks2-patch.py IMG damage primary|secondary
#       flip one byte of that copy's JSON area (checksum left wrong)
#   luks2-patch.py IMG seqid primary|secondary
#       bump that copy's seqid by one (checksum fixed): the other is older
#   luks2-patch.py IMG lvm2
#       put an LVM2 PV label in sector 1 (inside the primary's binary
#       header padding; checksum fixed): a second device signature
import hashlib
import json
import struct
import sys

img, mode = sys.argv[1], sys.argv[2]
f = open(img, 'r+b')
hdr_size = struct.unpack('>Q', f.read(16)[8:16])[0]


def read(off):
    f.seek(off)
    return bytearray(f.read(hdr_size))


def write(off, a):
    a[448:512] = b'\0' * 64
    a[448:480] = hashlib.sha256(bytes(a)).digest()
    f.seek(off)
    f.write(a)


def copies(which):
    return {'both': [0, hdr_size], 'primary': [0], 'secondary': [hdr_size]}[which]


if mode in ('json', 'raw'):
    code, which = sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else 'both'
    for off in copies(which):
        a = read(off)
        t = bytes(a[4096:]).split(b'\0')[0]
        if mode == 'json':
            m = json.loads(t)
            exec(code, {'m': m})
            area = json.dumps(m, separators=(',', ':')).encode()
        else:
            env = {'t': t}
            exec(code, env)
            area = env['area']
        area = area + b'\0' * (hdr_size - 4096 - len(area))
        assert len(area) == hdr_size - 4096
        a[4096:] = area
        write(off, a)
elif mode == 'damage':
    off = copies(sys.argv[3])[0]
    a = read(off)
    a[4096 + 10] ^= 0x20
    f.seek(off)
    f.write(a)
elif mode == 'seqid':
    off = copies(sys.argv[3])[0]
    a = read(off)
    a[16:24] = struct.pack('>Q', struct.unpack('>Q', a[16:24])[0] + 1)
    write(off, a)
elif mode == 'lvm2':
    tab = [0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
           0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
           0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c]

    def lvm_crc(b):
        c = 0xf597a6cf
        for x in b:
            c ^= x
            c = (c >> 4) ^ tab[c & 0xf]
            c = (c >> 4) ^ tab[c & 0xf]
        return c
    a = read(0)
    lab = bytearray(512)
    lab[0:8] = b'LABELONE'
    lab[8:16] = struct.pack('<Q', 1)
    lab[20:24] = struct.pack('<I', 32)
    lab[24:32] = b'LVM2 001'
    lab[32:64] = b'keydHostileLvmPvUuidXXXXXXXXXXXX'
    lab[64:72] = struct.pack('<Q', 1 << 30)
    lab[16:20] = struct.pack('<I', lvm_crc(lab[20:]))
    a[512:1024] = lab
    write(0, a)
else:
    sys.exit('unknown mode ' + mode)
