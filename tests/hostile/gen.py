#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile LUKS2 headers: one generator per class of defect.

    gen.py list                 the classes, one "NAME  what it does" per line
    gen.py make CLASS IMG       apply the defect CLASS to IMG, in place
    gen.py make-all IMG DIR     DIR/CLASS.img for every class (sparse copies of IMG)
    gen.py header IMG OUT       the header area of IMG (both copies), e.g. a fuzz seed

The host owns the disk and writes whatever header it likes. Each class makes
one kind of damage a host can forge: the binary header and its checksums, the
framing of the JSON area, the type and presence of every JSON member, the
references between tokens, keyslots, digests and segments, integer encodings,
and foreign signatures on the device. The classes follow the kinds of invalid
header that libcryptsetup's own test generators cover, plus the cases keyd
itself once crashed on or misjudged. Unless a class is about checksums or
about one copy, both header copies get the same JSON and valid SHA-256
checksums, so that only a parser or a validator can refuse the result.

IMG may be any LUKS2 image (made by cryptsetup or by keyd enroll); a class
that needs something IMG lacks (a keyd token, a second keyslot) adds it first.
"""
import copy
import hashlib
import json
import os
import struct
import sys

CSUM_OFF, CSUM_LEN = 448, 64


class Img:
    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as f:
            self.hdr0 = bytearray(f.read(4096))
        if self.hdr0[:6] != b'LUKS\xba\xbe':
            raise SystemExit('%s: not LUKS' % path)
        self.hdr_size = struct.unpack('>Q', self.hdr0[8:16])[0]
        with open(path, 'rb') as f:
            self.area = [bytearray(f.read(self.hdr_size)), bytearray(f.read(self.hdr_size))]
        text = bytes(self.area[0][4096:]).split(b'\0')[0]
        self.meta = json.loads(text)
        self.json_len = self.hdr_size - 4096

    # ------------------------------------------------------------ writing
    def set_text(self, text, copies=(0, 1), pad=b'\0'):
        """Put raw JSON area bytes TEXT into the copies (padded to the area)."""
        if len(text) > self.json_len:
            raise SystemExit('JSON of %d bytes does not fit %d' % (len(text), self.json_len))
        for c in copies:
            self.area[c][4096:] = text + pad * (self.json_len - len(text))

    def set_meta(self, meta, copies=(0, 1), **dump):
        dump.setdefault('separators', (',', ':'))
        self.set_text(json.dumps(meta, **dump).encode(), copies)

    def fix_csum(self, copies=(0, 1)):
        for c in copies:
            a = self.area[c]
            a[CSUM_OFF:CSUM_OFF + CSUM_LEN] = b'\0' * CSUM_LEN
            a[CSUM_OFF:CSUM_OFF + 32] = hashlib.sha256(bytes(a)).digest()

    def save(self, out):
        with open(out, 'r+b') as f:
            f.seek(0)
            f.write(self.area[0])
            f.write(self.area[1])

    # ------------------------------------------------------------ lookups
    def keyd_token(self, m):
        """Id of the first keyd token; adds one (a copy of a plausible keyd
        token naming keyslot 0) if the image has none."""
        for tid, t in m['tokens'].items():
            if isinstance(t, dict) and t.get('type') == 'keyd':
                return tid
        tid = str(len(m['tokens']))
        m['tokens'][tid] = {'type': 'keyd', 'keyslots': [first_keyslot(m)], 'v': 1,
                            'state': 'active', 'label': 'hostile',
                            'measurement': 'a1f3' * 24, 'policy': '0x30000'}
        return tid


def first_keyslot(m):
    return sorted(m['keyslots'], key=int)[0]


def add_foreign(m, **fields):
    """A token of a type keyd does not own (as another tool would write)."""
    tid = str(max([int(k) for k in m['tokens'] if k.isdigit()] + [-1]) + 1)
    tok = {'type': 'systemd-recovery', 'keyslots': [first_keyslot(m)]}
    tok.update(fields)
    for k, v in list(tok.items()):
        if v is DROP:
            del tok[k]
    m['tokens'][tid] = tok
    return tid


def copy_sparse(src, dst):
    """cp --sparse=always without a process: only the data extents of src."""
    with open(src, 'rb') as i, open(dst, 'wb') as o:
        size = os.fstat(i.fileno()).st_size
        o.truncate(size)
        off = 0
        while off < size:
            try:
                data = os.lseek(i.fileno(), off, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(i.fileno(), data, os.SEEK_HOLE)
            i.seek(data)
            o.seek(data)
            o.write(i.read(hole - data))
            off = hole


DROP = object()
CLASSES = {}


def cls(name, doc):
    def reg(fn):
        CLASSES[name] = (doc, fn)
        return fn
    return reg


def seg0(m):
    return m['segments'][sorted(m['segments'], key=int)[0]]


def ks0(m):
    return m['keyslots'][first_keyslot(m)]


def json_edit(fn):
    """A class that edits the parsed JSON and writes it to both copies."""
    def run(img):
        m = copy.deepcopy(img.meta)
        fn(m, img)
        img.set_meta(m)
        img.fix_csum()
    run.__doc__ = fn.__doc__
    return run


def reg_json(name, doc):
    def reg(fn):
        CLASSES[name] = (doc, json_edit(fn))
        return fn
    return reg


# ================================================================ control
@cls('control', 'no defect (the harness checks that healthy images pass)')
def _control(img):
    pass


# ================================================================ binary header and checksums
@cls('checksum-hdr0', 'primary checksum wrong, secondary intact')
def _(img):
    img.area[0][CSUM_OFF] ^= 0x01


@cls('checksum-hdr1', 'secondary checksum wrong, primary intact')
def _(img):
    img.area[1][CSUM_OFF] ^= 0x01


@cls('checksum-both', 'both checksums wrong')
def _(img):
    img.area[0][CSUM_OFF] ^= 0x01
    img.area[1][CSUM_OFF] ^= 0x01


@cls('hdr-size-invalid', 'primary hdr_size 0x5000, not a LUKS2 metadata size (checksum over it)')
def _(img):
    a = img.area[0]
    a[8:16] = struct.pack('>Q', 0x5000)
    a[CSUM_OFF:CSUM_OFF + CSUM_LEN] = b'\0' * CSUM_LEN
    with open(img.path, 'rb') as f:
        whole = bytearray(f.read(0x5000))
    whole[:len(a)] = a
    a[CSUM_OFF:CSUM_OFF + 32] = hashlib.sha256(bytes(whole[:0x5000])).digest()


@cls('hdr-size-mismatch', 'both copies valid alone but with different hdr_size')
def _(img):
    a = img.area[1]
    a[8:16] = struct.pack('>Q', img.hdr_size * 2)
    img.fix_csum((1,))


@cls('hdr-magic-hdr1', 'secondary magic wrong')
def _(img):
    img.area[1][0:6] = b'SKUL\xba\xbe'
    img.fix_csum((1,))


@cls('hdr-offset-wrong', 'primary hdr_offset names another place (checksum valid)')
def _(img):
    img.area[0][256:264] = struct.pack('>Q', 4096)
    img.fix_csum((0,))


@cls('seqid-diverge', 'secondary newer (seqid+1) and different: copies disagree, both valid')
def _(img):
    m = copy.deepcopy(img.meta)
    ks0(m)['priority'] = 2
    seq = struct.unpack('>Q', img.area[1][16:24])[0]
    img.area[1][16:24] = struct.pack('>Q', seq + 1)
    img.set_meta(m, copies=(1,))
    img.fix_csum((1,))


@cls('hdr0-corrupt-valid-csum', 'primary JSON damaged (cipher_null keyslot) with a valid checksum, same seqid')
def _(img):
    m = copy.deepcopy(img.meta)
    ks0(m)['area']['encryption'] = 'cipher_null-ecb'
    img.set_meta(m, copies=(0,))
    img.fix_csum((0,))


@cls('hdr1-corrupt-valid-csum', 'secondary JSON damaged (segment cipher_null) with a valid checksum, same seqid')
def _(img):
    m = copy.deepcopy(img.meta)
    seg0(m)['encryption'] = 'cipher_null-ecb'
    img.set_meta(m, copies=(1,))
    img.fix_csum((1,))


# ================================================================ JSON area framing
def raw_text(img):
    return json.dumps(img.meta, separators=(',', ':')).encode()


@cls('json-opening-char', 'JSON area starts with a byte that is not "{"')
def _(img):
    img.set_text(b'!' + raw_text(img)[1:])
    img.fix_csum()


@cls('json-leading-whitespace', 'a space before the JSON object')
def _(img):
    img.set_text(b' ' + raw_text(img))
    img.fix_csum()


@cls('json-no-terminator', 'JSON area filled to the end with spaces: no NUL terminator')
def _(img):
    img.set_text(raw_text(img), pad=b' ')
    img.fix_csum()


@cls('json-byte-after-terminator', 'one non-NUL byte after the NUL that ends the JSON')
def _(img):
    img.set_text(raw_text(img) + b'\0X')
    img.fix_csum()


@cls('json-bytes-after-terminator', 'a second JSON document after the NUL')
def _(img):
    t = raw_text(img)
    img.set_text(t + b'\0' + t[:min(len(t), img.json_len - len(t) - 1)])
    img.fix_csum()


@cls('json-non-compact', 'valid JSON with indentation and newlines')
def _(img):
    img.set_meta(img.meta, indent=2, separators=(', ', ': '))
    img.fix_csum()


@cls('json-top-array', 'the JSON document is an array')
def _(img):
    img.set_text(b'[' + raw_text(img) + b']')
    img.fix_csum()


@cls('json-duplicate-member', '"segments" twice; the first one empty')
def _(img):
    img.set_text(b'{"segments":{},' + raw_text(img)[1:])
    img.fix_csum()


@cls('json-deep-nesting', 'a foreign token nested 3000 arrays deep')
def _(img):
    t = raw_text(img)
    deep = b'"x":' + b'[' * 3000 + b']' * 3000
    tokens = b'"tokens":{'
    i = t.index(tokens) + len(tokens)
    ins = b'"9":{"type":"deep","keyslots":[],' + deep + b'}'
    if t[i:i + 1] != b'}':
        ins += b','
    img.set_text(t[:i] + ins + t[i:])
    img.fix_csum()


@cls('json-invalid-utf8', 'a foreign token string with invalid UTF-8 and a NUL escape')
def _(img):
    t = raw_text(img)
    tokens = b'"tokens":{'
    i = t.index(tokens) + len(tokens)
    ins = b'"9":{"type":"a\xff\xfe\\u0000b","keyslots":[]}'
    if t[i:i + 1] != b'}':
        ins += b','
    img.set_text(t[:i] + ins + t[i:])
    img.fix_csum()


# ================================================================ top-level objects
@reg_json('keyslots-array', '"keyslots" is an array')
def _(m, img):
    m['keyslots'] = list(m['keyslots'].values())


@reg_json('segments-string', '"segments" is a string')
def _(m, img):
    m['segments'] = 'crypt'


@reg_json('digests-missing', 'no "digests" object')
def _(m, img):
    del m['digests']


@reg_json('config-missing', 'no "config" object')
def _(m, img):
    del m['config']


@reg_json('tokens-array', '"tokens" is an array')
def _(m, img):
    m['tokens'] = list(m['tokens'].values())


@reg_json('tokens-string', '"tokens" is a string')
def _(m, img):
    m['tokens'] = 'keyd'


@reg_json('tokens-null', '"tokens" is null')
def _(m, img):
    m['tokens'] = None


@reg_json('top-unknown-member', 'an unknown top-level member')
def _(m, img):
    m['keyd'] = {'hint': 'unlock me'}


# ================================================================ tokens
@reg_json('token-type-null', 'the keyd token\'s "type" is null')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['type'] = None


@reg_json('token-type-missing', 'the keyd token has no "type"')
def _(m, img):
    del m['tokens'][img.keyd_token(m)]['type']


@reg_json('token-type-number', 'the keyd token\'s "type" is a number')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['type'] = 7


@reg_json('token-not-object', 'a token that is a string')
def _(m, img):
    m['tokens']['5'] = 'keyd'


@reg_json('token-id-invalid', 'a token id that is not a number')
def _(m, img):
    m['tokens']['x'] = {'type': 'systemd-recovery', 'keyslots': [first_keyslot(m)]}


@reg_json('token-id-out-of-range', 'a token id above the 32 LUKS2 tokens')
def _(m, img):
    m['tokens']['4096'] = {'type': 'systemd-recovery', 'keyslots': [first_keyslot(m)]}


@reg_json('foreign-token-keyslots-null', 'a foreign token whose "keyslots" is null')
def _(m, img):
    add_foreign(m, keyslots=None)


@reg_json('foreign-token-keyslots-missing', 'a foreign token without "keyslots"')
def _(m, img):
    add_foreign(m, keyslots=DROP)


@reg_json('foreign-token-keyslots-number', 'a foreign token whose keyslot ids are numbers')
def _(m, img):
    add_foreign(m, keyslots=[0])


@reg_json('foreign-token-missing-keyslot', 'a foreign token naming a keyslot that does not exist')
def _(m, img):
    add_foreign(m, keyslots=['7'])


@reg_json('keyd-token-keyslots-string', 'the keyd token\'s "keyslots" is a string')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['keyslots'] = first_keyslot(m)


@reg_json('keyd-token-keyslots-empty', 'the keyd token names no keyslot')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['keyslots'] = []


@reg_json('keyd-token-missing-keyslot', 'the keyd token names a keyslot that does not exist')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['keyslots'] = ['7']


@reg_json('keyd-token-two-keyslots', 'the keyd token names two keyslots')
def _(m, img):
    m['tokens'][img.keyd_token(m)]['keyslots'] = [first_keyslot(m), '7']


@reg_json('keyd-token-fields-wrong-type', 'every other member of the keyd token has the wrong type')
def _(m, img):
    t = m['tokens'][img.keyd_token(m)]
    for k in list(t):
        if k in ('type', 'keyslots'):
            continue
        v = t[k]
        t[k] = 1 if isinstance(v, str) else ('x' if not isinstance(v, dict) else [])


# ================================================================ keyslots
@reg_json('keyslot-af-invalid', 'keyslot anti-forensic splitter of an unknown type and 3999 stripes')
def _(m, img):
    ks0(m)['af'] = {'type': 'luks2x', 'stripes': 3999, 'hash': 'sha256'}


@reg_json('keyslot-area-size-invalid', 'keyslot area size not a multiple of 4096')
def _(m, img):
    ks0(m)['area']['size'] = str(int(ks0(m)['area']['size']) + 1)


@reg_json('keyslot-area-outside', 'keyslot area beyond the keyslots area')
def _(m, img):
    ks0(m)['area']['offset'] = str(int(m['config']['keyslots_size']) + 2 * img.hdr_size)


@reg_json('keyslot-area-in-json', 'keyslot area inside the JSON header space')
def _(m, img):
    ks0(m)['area']['offset'] = str(img.hdr_size)


@reg_json('keyslot-overlap', 'two keyslot areas overlap (adds a second keyslot if needed)')
def _(m, img):
    ids = sorted(m['keyslots'], key=int)
    if len(ids) < 2:
        m['keyslots'][str(int(ids[0]) + 1)] = copy.deepcopy(m['keyslots'][ids[0]])
        ids = sorted(m['keyslots'], key=int)
    m['keyslots'][ids[1]]['area']['offset'] = m['keyslots'][ids[0]]['area']['offset']


@reg_json('keyslot-missing-digest', 'no digest names the keyslot')
def _(m, img):
    k = first_keyslot(m)
    for d in m['digests'].values():
        d['keyslots'] = [x for x in d['keyslots'] if x != k]


@reg_json('keyslot-too-many-digests', 'two digests name the same keyslot')
def _(m, img):
    d = m['digests'][sorted(m['digests'], key=int)[0]]
    m['digests'][str(max(int(x) for x in m['digests']) + 1)] = copy.deepcopy(d)


@reg_json('keyslot-kdf-string', 'keyslot "kdf" is a string')
def _(m, img):
    ks0(m)['kdf'] = 'pbkdf2'


@reg_json('keyslot-pbkdf2-leftover', 'PBKDF2 keyslot with Argon2 members (memory, cpus)')
def _(m, img):
    ks0(m)['kdf'].update({'type': 'pbkdf2', 'memory': 1024, 'cpus': 1})


@reg_json('keyslot-argon2-leftover', 'Argon2id keyslot with PBKDF2 members (hash, iterations)')
def _(m, img):
    k = ks0(m)['kdf']
    k.update({'type': 'argon2id', 'time': 4, 'memory': 32, 'cpus': 1,
              'hash': 'sha256', 'iterations': 1000})


@reg_json('keyslot-id-invalid', 'a keyslot id that is not a number')
def _(m, img):
    m['keyslots']['x'] = m['keyslots'].pop(first_keyslot(m))


@reg_json('keyslot-priority-string', 'keyslot "priority" is a string')
def _(m, img):
    ks0(m)['priority'] = 'high'


@reg_json('keyslot-key-size-huge', 'keyslot key_size 2^31')
def _(m, img):
    ks0(m)['key_size'] = 2 ** 31


# ================================================================ digests
@reg_json('digest-missing-keyslot', 'a digest names a keyslot that does not exist')
def _(m, img):
    m['digests'][sorted(m['digests'], key=int)[0]]['keyslots'].append('9')


@reg_json('digest-missing-segment', 'a digest names a segment that does not exist')
def _(m, img):
    m['digests'][sorted(m['digests'], key=int)[0]]['segments'].append('5')


@reg_json('digest-segments-string', 'a digest whose "segments" is a string')
def _(m, img):
    m['digests'][sorted(m['digests'], key=int)[0]]['segments'] = '0'


# ================================================================ segments
def seg_class(name, doc, fn):
    def edit(m, img):
        fn(seg0(m))
    CLASSES[name] = (doc, json_edit(edit))


def _drop(key):
    return lambda s: s.pop(key)


def _set(key, value):
    return lambda s: s.__setitem__(key, value)


for _n, _d, _f in [
        ('segment-missing-encryption', 'crypt segment without "encryption"', _drop('encryption')),
        ('segment-empty-encryption', 'crypt segment with "encryption": ""', _set('encryption', '')),
        ('segment-wrong-encryption', 'crypt segment with "encryption" a number', _set('encryption', 1)),
        ('segment-cipher-null', 'crypt segment with cipher_null-ecb', _set('encryption', 'cipher_null-ecb')),
        ('segment-missing-iv-tweak', 'crypt segment without "iv_tweak"', _drop('iv_tweak')),
        ('segment-wrong-iv-tweak', 'crypt segment with "iv_tweak": "x"', _set('iv_tweak', 'x')),
        ('segment-missing-sector-size', 'crypt segment without "sector_size"', _drop('sector_size')),
        ('segment-wrong-sector-size', 'crypt segment with sector_size 1000', _set('sector_size', 1000)),
        ('segment-missing-offset', 'segment without "offset"', _drop('offset')),
        ('segment-missing-size', 'segment without "size"', _drop('size')),
        ('segment-missing-type', 'segment without "type"', _drop('type')),
        ('segment-unknown-type', 'segment of type "linear-x"', _set('type', 'linear-x')),
        ('segment-type-number', 'segment "type" is a number', _set('type', 2)),
        ('segment-flags-string', 'segment "flags" is a string', _set('flags', 'backup-previous')),
        ('segment-flags-element', 'segment "flags" holds a number', _set('flags', [1])),
        ('segment-offset-unaligned', 'segment offset not sector-aligned', lambda s: s.__setitem__('offset', str(int(s['offset']) + 1))),
        ('segment-offset-string', 'segment offset is not a number string', _set('offset', 'abc')),
        ('segment-offset-in-header', 'segment offset 0 (over the header)', _set('offset', '0')),
        ('segment-size-zero', 'segment size "0"', _set('size', '0')),
        ('segment-size-unaligned', 'segment size not a multiple of the sector', _set('size', '4097')),
        ('segment-size-uint64-max', 'segment size 2^64-1', _set('size', '18446744073709551615')),
        ('segment-size-uint64-overflow', 'segment size 2^64', _set('size', '18446744073709551616')),
        ('segment-size-signed', 'segment size -4096', _set('size', '-4096')),
        ('segment-size-number', 'segment size a JSON number', _set('size', 4096)),
]:
    seg_class(_n, _d, _f)


@reg_json('segment-two', 'a second crypt segment after the first')
def _(m, img):
    s = seg0(m)
    s2 = dict(s)
    s['size'] = '4096'
    s2['offset'] = str(int(s['offset']) + 4096)
    m['segments'][str(max(int(x) for x in m['segments']) + 1)] = s2


@reg_json('segment-backup-key', 'a segment id "backup-x" beside segment 0')
def _(m, img):
    m['segments']['backup-x'] = dict(seg0(m))


@reg_json('segment-id-huge', 'the only segment has id 2^40')
def _(m, img):
    k = sorted(m['segments'], key=int)[0]
    m['segments'][str(2 ** 40)] = m['segments'].pop(k)
    for d in m['digests'].values():
        d['segments'] = [str(2 ** 40) if x == k else x for x in d['segments']]


# ================================================================ config
@reg_json('config-flags-string', 'config "flags" is a string')
def _(m, img):
    m['config']['flags'] = 'allow-discards'


@reg_json('config-flags-element', 'config "flags" holds a number')
def _(m, img):
    m['config']['flags'] = [1]


@reg_json('config-json-size-mismatch', 'config json_size differs from the binary header')
def _(m, img):
    m['config']['json_size'] = str(img.json_len * 2)


@reg_json('config-keyslots-size-unaligned', 'config keyslots_size not a multiple of 4096')
def _(m, img):
    m['config']['keyslots_size'] = str(int(m['config']['keyslots_size']) + 1)


@reg_json('config-keyslots-size-huge', 'config keyslots_size past the data segment')
def _(m, img):
    m['config']['keyslots_size'] = str(2 ** 40)


@reg_json('config-requirements-unknown', 'an unknown mandatory requirement')
def _(m, img):
    m['config']['requirements'] = {'mandatory': ['keyd-unknown-requirement']}


@reg_json('config-requirements-string', 'config "requirements" is a string')
def _(m, img):
    m['config']['requirements'] = 'online-reencrypt'


# ================================================================ the device
@cls('lvm2-pv-signature', 'an LVM2 PV label in the header padding (second signature)')
def _(img):
    # An LVM2 label lives in one of the first four 512-byte sectors: sector 1
    # is inside the LUKS2 binary header's padding, covered by its checksum.
    lab = bytearray(512)
    lab[0:8] = b'LABELONE'
    lab[8:16] = struct.pack('<Q', 1)
    lab[20:24] = struct.pack('<I', 32)
    lab[24:32] = b'LVM2 001'
    lab[32:64] = b'keydHOSTILEpvUUIDkeydHOSTILEpv01'
    lab[64:72] = struct.pack('<Q', 1 << 30)
    crc = 0xf597a6cf
    for b in lab[20:512]:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xedb88320 if crc & 1 else 0)
    # LVM's own CRC: initial 0xf597a6cf, no final inversion.
    lab[16:20] = struct.pack('<I', crc & 0xffffffff)
    img.area[0][512:1024] = lab
    img.fix_csum((0,))


@cls('lvm2-pv-signature-damaged-hdr1', 'the LVM2 PV label and a damaged secondary: libcryptsetup refuses to recover')
def _(img):
    CLASSES['lvm2-pv-signature'][1](img)
    img.area[1][CSUM_OFF] ^= 0x01


# ================================================================ main
def main(argv):
    if len(argv) == 2 and argv[1] == 'list':
        for n, (doc, _f) in CLASSES.items():
            print('%-32s %s' % (n, doc))
        return 0
    if len(argv) == 4 and argv[1] == 'make':
        name, out = argv[2:4]
        if name not in CLASSES:
            print('gen.py: no class %s' % name, file=sys.stderr)
            return 2
        img = Img(out)
        CLASSES[name][1](img)
        img.save(out)
        return 0
    if len(argv) == 4 and argv[1] == 'make-all':
        src, out = argv[2:4]
        for name, (_doc, fn) in CLASSES.items():
            dst = '%s/%s.img' % (out, name)
            copy_sparse(src, dst)
            img = Img(dst)
            fn(img)
            img.save(dst)
        return 0
    if len(argv) == 4 and argv[1] == 'header':
        # Raw bytes: the JSON of a hostile image need not parse. The area is
        # twice the primary's hdr_size if that is a LUKS2 size, else 32 KiB.
        with open(argv[2], 'rb') as f:
            head = f.read(4096)
            size = struct.unpack('>Q', head[8:16])[0]
            if size not in [2 ** k * 16384 for k in range(9)]:
                size = 16384
            f.seek(0)
            data = f.read(2 * size)
        with open(argv[3], 'wb') as f:
            f.write(data)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
