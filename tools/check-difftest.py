#!/usr/bin/env python3
"""Differential test of qc-check against qemu-img check.

Makes a set of base images with qemu-img / qemu-io, damages copies of them at
random (structured pokes into header, L1/L2 tables, refcount table and blocks,
snapshot table, bitmaps, truncation, random bytes) and compares, on each:

  * qemu-img check IMG            vs  qc-check IMG             (exit status,
    stdout and stderr byte for byte)
  * qemu-img check --output=json  vs  qc-check --output=json   (exit status
    and the fields corruptions, leaks, check-errors, allocated-clusters,
    total-clusters, fragmented-clusters, compressed-clusters,
    image-end-offset)

    check-difftest.py --bin DIR [--seed N] [--count N] [--work DIR]
                      [--keep DIR] [--jobs N] [--timeout S] [--quiet]

Exits 0 when every compared image agreed (and qc-check never crashed).
Images where qemu-img itself dies or times out are not compared, but
qc-check must still finish cleanly on them.
"""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

FIELDS = ['corruptions', 'leaks', 'check-errors', 'allocated-clusters',
          'total-clusters', 'fragmented-clusters', 'compressed-clusters',
          'image-end-offset']

# --- base images ---------------------------------------------------------------

def sh(cmd, cwd):
    # qemu-img's LUKS key setup times a PBKDF run and now and then fails
    # with "Unable to get accurate CPU usage": such a run is tried again
    for _ in range(5):
        r = subprocess.run(cmd, cwd=cwd, shell=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        if r.returncode == 0 or b'accurate CPU usage' not in r.stderr:
            break
    if r.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (cmd, r.returncode,
                                                r.stderr.decode(errors='replace').strip()))


def io(img, cmds, extra=''):
    return 'qemu-io %s %s %s' % (extra, ' '.join("-c '%s'" % c for c in cmds), img)


def writes(n, step, size, pat=1):
    return ['write -P %d %d %d' % ((pat + i) % 250 + 1, i * step, size) for i in range(n)]


# name -> (create options, size, shell steps after create, side files)
BASES = {
    'v3': ('', '16M', [io('{img}', writes(6, 1 << 20, 65536) + ['write -z 8M 128k'])], []),
    'v2': ('compat=0.10', '16M', [io('{img}', writes(5, 1 << 20, 65536))], []),
    'c512': ('cluster_size=512', '4M', [io('{img}', writes(8, 100000, 3000) + ['discard 100000 1024'])], []),
    'c4k': ('cluster_size=4096', '8M', [io('{img}', writes(10, 500000, 10000))], []),
    'c2m': ('cluster_size=2M', '64M', [io('{img}', writes(3, 8 << 20, 1 << 20))], []),
    'rc1': ('refcount_bits=1', '16M', [io('{img}', writes(4, 1 << 20, 65536))], []),
    'rc2': ('refcount_bits=2', '16M', [io('{img}', writes(4, 1 << 20, 65536)),
                                       'qemu-img snapshot -c s1 {img}',
                                       'qemu-img snapshot -c s2 {img}'], []),
    'rc4': ('refcount_bits=4', '16M', [io('{img}', writes(4, 1 << 20, 65536))], []),
    'rc8': ('refcount_bits=8', '16M', [io('{img}', writes(4, 1 << 20, 65536))], []),
    'rc32': ('refcount_bits=32', '16M', [io('{img}', writes(4, 1 << 20, 65536))], []),
    'rc64': ('refcount_bits=64', '16M', [io('{img}', writes(4, 1 << 20, 65536))], []),
    'extl2': ('extended_l2=on', '16M', [io('{img}', ['write -P 1 0 4k', 'write -z 8k 4k',
                                                      'write -P 2 1M 64k', 'write -P 3 2M 100k',
                                                      'discard 2M 16k'])], []),
    'zlib': ('', '16M', [io('{img}', ['write -c -P 1 0 64k', 'write -c -P 2 64k 64k',
                                       'write -P 3 1M 64k', 'write -c -P 4 2M 128k'])], []),
    'zstd': ('compression_type=zstd', '16M', [io('{img}', ['write -c -P 1 0 64k', 'write -c -P 7 128k 64k',
                                                            'write -P 3 1M 64k'])], []),
    'snap': ('', '16M', [io('{img}', writes(4, 1 << 20, 65536)),
                         'qemu-img snapshot -c one {img}',
                         io('{img}', ['write -P 9 0 64k', 'write -P 9 3M 64k']),
                         'qemu-img snapshot -c two {img}',
                         io('{img}', ['write -P 10 1M 64k'])], []),
    'snapv2': ('compat=0.10', '16M', [io('{img}', writes(3, 1 << 20, 65536)),
                                      'qemu-img snapshot -c a {img}',
                                      io('{img}', ['write -P 9 0 64k'])], []),
    'bitmap': ('', '16M', ['qemu-img bitmap --add {img} b0',
                           'qemu-img bitmap --add -g 65536 {img} b1',
                           io('{img}', writes(3, 1 << 20, 65536)),
                           'qemu-img bitmap --disable {img} b1'], []),
    'lazy': ('lazy_refcounts=on,cluster_size=4096', '8M',
             [io('{img}', writes(6, 700000, 5000) + ['abort'])], []),
    'lazy64k': ('lazy_refcounts=on', '16M', [io('{img}', ['write -P 0x5a 0 512', 'abort'])], []),
    'backing': ('backing_file={base}.base.qcow2,backing_fmt=qcow2', '16M',
                [io('{img}', ['write -P 5 1M 64k'])], ['base']),
    'datafile': ('data_file={base}.data', '16M', [io('{img}', writes(3, 1 << 20, 65536))], ['data']),
    'prealloc': ('preallocation=metadata', '8M', [io('{img}', ['write -P 1 0 64k'])], []),
    'multi': ('cluster_size=1024', '8M', [io('{img}', writes(12, 600000, 5000)),
                                          'qemu-img snapshot -c a {img}',
                                          io('{img}', writes(5, 900000, 3000, 7) + ['write -c -P 3 7M 1k']),
                                          'qemu-img snapshot -c b {img}',
                                          io('{img}', ['write -P 4 0 2k', 'write -z 1M 8k'])], []),
    'dfcomp': ('data_file={base}.data,cluster_size=4096', '8M', [io('{img}', writes(4, 1 << 20, 8192))], ['data']),
    'rc1snap': ('refcount_bits=1,cluster_size=4096', '4M',
                [io('{img}', writes(3, 1 << 20, 8192)), 'qemu-img snapshot -c x {img}'], []),
    'luks': ('encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', '16M', [], []),
    'qcow1': (None, '16M', ["qemu-io -f qcow -c 'write -P 1 0 64k' -c 'write -P 2 1M 4k' {img}"], []),
    'snap3': ('cluster_size=4096,refcount_bits=8', '8M',
              [io('{img}', writes(3, 1 << 20, 8192)), 'qemu-img snapshot -c x {img}',
               io('{img}', ['write -P 9 0 4k']), 'qemu-img snapshot -c y {img}',
               io('{img}', ['write -P 8 1M 4k']), 'qemu-img snapshot -c z {img}',
               'qemu-img snapshot -d y {img}'], []),
}


def corpus_bases(work, corpus):
    """Images of a directory of NAME.qcow2[.gz] files (with side files
    NAME.*) as further bases."""
    import gzip
    made = {}
    for fn in sorted(os.listdir(corpus)):
        base = fn[:-3] if fn.endswith('.gz') else fn
        if not base.endswith('.qcow2') or '.' in base[:-6]:
            continue
        name = base[:-6]
        d = os.path.join(work, 'base-' + name)
        os.makedirs(d, exist_ok=True)
        stem = base[:-6]
        for g in os.listdir(corpus):
            if not g.startswith(stem + '.'):
                continue
            out = g[:-3] if g.endswith('.gz') else g
            opener = gzip.open if g.endswith('.gz') else open
            with opener(os.path.join(corpus, g), 'rb') as src, open(os.path.join(d, out), 'wb') as dst:
                shutil.copyfileobj(src, dst)
        made[name] = d
    return made


def make_bases(work, names):
    made = {}
    for name in names:
        d = os.path.join(work, 'base-' + name)
        img = os.path.join(d, name + '.qcow2')
        if not os.path.exists(img):
            os.makedirs(d, exist_ok=True)
            opts, size, steps, side = BASES[name]
            if 'base' in side:
                sh('qemu-img create -f qcow2 %s.base.qcow2 16M' % name, d)
                sh(io('%s.base.qcow2' % name, writes(4, 1 << 20, 65536, 40)), d)
            if opts is None:      # the legacy qcow format
                sh('qemu-img create -f qcow %s.qcow2 %s' % (name, size), d)
            elif 'encrypt' in opts:
                sh('qemu-img create -f qcow2 --object secret,id=sec0,data=abc -o %s %s.qcow2 %s'
                   % (opts, name, size), d)
            else:
                o = opts.replace('{base}', name)
                sh('qemu-img create -f qcow2 %s %s.qcow2 %s' % (('-o ' + o) if o else '', name, size), d)
            for s in steps:
                subprocess.run(s.replace('{img}', name + '.qcow2'), cwd=d, shell=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        made[name] = d
    return made

# --- image layout -----------------------------------------------------------------

def be(b, off, n):
    if off + n > len(b):
        return 0
    return int.from_bytes(b[off:off + n], 'big')


class Layout:
    """Where the metadata of an (undamaged) image lives."""

    def __init__(self, b):
        self.b = b
        self.version = be(b, 4, 4)
        self.cb = be(b, 20, 4)
        self.cs = 1 << self.cb
        self.l1_size = be(b, 36, 4)
        self.l1_off = be(b, 40, 8)
        self.rt_off = be(b, 48, 8)
        self.rt_clusters = be(b, 56, 4)
        self.nb_snap = be(b, 60, 4)
        self.snap_off = be(b, 64, 8)
        self.incompat = be(b, 72, 8) if self.version >= 3 else 0
        self.order = be(b, 96, 4) if self.version >= 3 else 4
        self.extl2 = bool(self.incompat & 16)
        self.esize = 16 if self.extl2 else 8
        self.l1e = [self.l1_off + 8 * i for i in range(self.l1_size)]
        self.l2s = []            # (table offset)
        for a in self.l1e:
            o = be(b, a, 8) & 0x00fffffffffffe00
            if o and o not in self.l2s:
                self.l2s.append(o)
        self.snaps = []          # (entry offset, l1 offset, l1 size)
        p = self.snap_off
        for _ in range(min(self.nb_snap, 100)):
            p = (p + 7) & ~7
            if p + 40 > len(b):
                break
            l1o, l1s = be(b, p, 8), be(b, p + 8, 4)
            ids, ns, ex = be(b, p + 12, 2), be(b, p + 14, 2), be(b, p + 36, 4)
            self.snaps.append((p, l1o, l1s))
            for i in range(min(l1s, 4096)):
                o = be(b, l1o + 8 * i, 8) & 0x00fffffffffffe00
                if o and o not in self.l2s:
                    self.l2s.append(o)
            p += 40 + ex + ids + ns
        self.rte = [self.rt_off + 8 * i for i in range(self.rt_clusters * self.cs // 8)
                    if be(b, self.rt_off + 8 * i, 8)]
        self.rbs = [be(b, a, 8) & ~0x1ff for a in self.rte]
        self.l2e = []            # L2 entry offsets that are non-zero
        for t in self.l2s:
            for i in range(self.cs // self.esize):
                a = t + i * self.esize
                if be(b, a, 8):
                    self.l2e.append(a)
        self.bitmap_dir = None
        self.exts = []
        hl = be(b, 100, 4) if self.version >= 3 else 72
        p = hl
        while p + 8 <= min(len(b), self.cs):
            m, n = be(b, p, 4), be(b, p + 4, 4)
            if m == 0:
                break
            self.exts.append((p, m, n))
            if m == 0x23852875 and n == 24:
                self.bitmap_dir = (be(b, p + 24, 8), be(b, p + 16, 8))
            p += 8 + ((n + 7) & ~7)


# --- damage -----------------------------------------------------------------------

def put(b, off, n, v):
    if off < 0 or off + n > len(b):
        return
    b[off:off + n] = (v & ((1 << (8 * n)) - 1)).to_bytes(n, 'big')


def interesting(rnd, L, flen):
    cs = L.cs
    return rnd.choice([
        0, 1, cs, 2 * cs, cs // 2, 0x200, flen, flen - cs, flen + cs, flen + 4 * cs,
        (flen // cs) * cs, 1 << 40, (1 << 56) - cs, 1 << 62, 1 << 63, (1 << 64) - cs,
        (1 << 64) - 512, 0x7fffffffc0000000, 0x7fffffffbfff0000, 0xffffffff, 0x80000000,
        rnd.getrandbits(64), rnd.getrandbits(32), rnd.getrandbits(16), rnd.randrange(0, flen + 1)])


def mut_header(rnd, b, L):
    flen = len(b)
    f = rnd.choice([
        (4, 4, [1, 2, 3, 4, 0]), (20, 4, [9, 12, 16, 21, 22, 8, 0]),
        (24, 8, None), (32, 4, [0, 1, 2, 3, 0x80000000]), (36, 4, None), (40, 8, None),
        (48, 8, None), (56, 4, [0, 1, 2, 128, 129, 16385]), (60, 4, [0, 1, 2, 3, 65536, 65537]),
        (64, 8, None), (72, 8, [0, 1, 2, 4, 8, 16, 32, 1 << 63]), (80, 8, [0, 1, 2, 1 << 63]),
        (88, 8, [0, 1, 2, 3, 1 << 63]), (96, 4, [0, 1, 3, 4, 5, 6, 7]), (100, 4, [72, 100, 104, 108, 112, 120, 4096]),
        (104, 1, [0, 1, 2]), (8, 8, [0, 0x70, 0x1000, cs_of(L) + 1]), (16, 4, [0, 5, 1024, 2000])])
    off, n, vals = f
    v = rnd.choice(vals) if vals else interesting(rnd, L, flen)
    if off == 72 and rnd.random() < 0.5:
        v = be(b, 72, 8) ^ rnd.choice([1, 2, 4, 8, 16, 32, 1 << 63])
    put(b, off, n, v)


def cs_of(L):
    return L.cs


def entry_value(rnd, b, L, old, kind):
    flen, cs = len(b), L.cs
    mask = 0x00fffffffffffe00
    off = old & mask
    choices = [
        lambda: 0,
        lambda: old ^ (1 << 63),
        lambda: old | (1 << rnd.choice([1, 2, 8, 56, 60, 61])),
        lambda: old + 0x200,
        lambda: (old & ~mask) | ((flen + cs) & mask),
        lambda: (old & ~mask) | (((flen + rnd.randrange(0, 8) * cs)) & mask),
        lambda: (old & ~mask),
        lambda: (old & ~mask) | (rnd.choice([0, L.l1_off, L.rt_off, L.snap_off] + L.l2s[:4] + L.rbs[:4]) & mask),
        lambda: interesting(rnd, L, flen),
        lambda: old | 1,
        lambda: old ^ (1 << 62),
        lambda: (old & ~mask) | (((off // cs) + rnd.choice([-2, -1, 1, 2])) * cs & mask),
    ]
    return rnd.choice(choices)()


def mut_l1(rnd, b, L):
    if not L.l1e:
        return mut_random(rnd, b, L)
    a = rnd.choice(L.l1e)
    if rnd.random() < 0.2 and len(L.l1e) > 1:
        put(b, a, 8, be(b, rnd.choice(L.l1e), 8))
    else:
        put(b, a, 8, entry_value(rnd, b, L, be(b, a, 8), 'l1'))


def mut_l2(rnd, b, L):
    if not L.l2e:
        if L.l2s:
            t = rnd.choice(L.l2s)
            a = t + L.esize * rnd.randrange(0, L.cs // L.esize)
            put(b, a, 8, entry_value(rnd, b, L, 0, 'l2'))
            return
        return mut_random(rnd, b, L)
    a = rnd.choice(L.l2e)
    r = rnd.random()
    if r < 0.15:
        put(b, a, 8, be(b, rnd.choice(L.l2e), 8))
    elif r < 0.25 and L.extl2:
        put(b, a + 8, 8, rnd.choice([0, 1, 1 << 32, (1 << 32) | 1, 0xffffffff, 0xffffffff00000000, rnd.getrandbits(64)]))
    elif r < 0.35:
        # a compressed descriptor
        sh = 62 - (L.cb - 8)
        put(b, a, 8, (1 << 62) | (rnd.randrange(0, 4) << sh) | rnd.choice([be(b, a, 8) & ((1 << sh) - 1), len(b) - 100, len(b) + L.cs, 0x1234]))
    else:
        put(b, a, 8, entry_value(rnd, b, L, be(b, a, 8), 'l2'))


def mut_reftable(rnd, b, L):
    if not L.rte:
        return mut_random(rnd, b, L)
    a = rnd.choice(L.rte)
    old = be(b, a, 8)
    put(b, a, 8, rnd.choice([0, old | 1, old + 0x200, old + L.cs * rnd.randrange(1, 4), len(b) + L.cs,
                             (1 << 63), 0x7fffffffc0000000, 0x7fffffffbfff0000, L.l1_off, 0,
                             be(b, rnd.choice(L.rte), 8), interesting(rnd, L, len(b)) & ~0x1ff,
                             L.rt_off]))
    if rnd.random() < 0.2:
        put(b, L.rt_off + 8 * rnd.randrange(0, L.rt_clusters * L.cs // 8), 8, rnd.choice(L.rbs + [len(b)]))


def mut_refblock(rnd, b, L):
    if not L.rbs:
        return mut_random(rnd, b, L)
    rb = rnd.choice(L.rbs)
    bits = 1 << L.order
    nent = L.cs * 8 // bits
    i = rnd.randrange(0, min(nent, max(1, (len(b) // L.cs) + 4)))
    if bits >= 8:
        n = bits // 8
        a = rb + i * n
        old = be(b, a, n)
        put(b, a, n, rnd.choice([0, old + 1, max(0, old - 1), (1 << bits) - 1, 2, rnd.getrandbits(bits)]))
    else:
        a = rb + (i * bits) // 8
        sh_ = (i * bits) % 8
        v = rnd.getrandbits(bits)
        if 0 <= a < len(b):
            b[a] = (b[a] & ~(((1 << bits) - 1) << sh_)) | (v << sh_)


def mut_snapshot(rnd, b, L):
    if not L.snaps:
        put(b, 60, 4, rnd.choice([1, 2, 65537]))
        put(b, 64, 8, rnd.choice([0, L.cs, len(b), L.l1_off, L.cs + 8]))
        return
    p, l1o, l1s = rnd.choice(L.snaps)
    f = rnd.choice(['l1o', 'l1s', 'extra', 'ids', 'nb', 'l1e', 'rand'])
    if f == 'l1o':
        put(b, p, 8, rnd.choice([l1o + 0x200, 0, len(b) + L.cs, 1 << 63, (1 << 64) - L.cs, (1 << 64) - 512, L.l1_off, interesting(rnd, L, len(b))]))
    elif f == 'l1s':
        put(b, p + 8, 4, rnd.choice([0, 1, 4194304, 4194305, l1s + 1, 0xffffffff, 100000]))
    elif f == 'extra':
        put(b, p + 36, 4, rnd.choice([0, 8, 15, 16, 1024, 1025, 0xffffffff]))
    elif f == 'ids':
        put(b, p + rnd.choice([12, 14]), 2, rnd.choice([0, 1, 0xffff, 200]))
    elif f == 'nb':
        put(b, 60, 4, L.nb_snap + rnd.choice([1, 2, -1]))
    elif f == 'l1e' and l1s:
        a = l1o + 8 * rnd.randrange(0, l1s)
        put(b, a, 8, entry_value(rnd, b, L, be(b, a, 8), 'l1'))
    else:
        a = p + rnd.randrange(0, 64)
        if a < len(b):
            b[a] = rnd.getrandbits(8)


def mut_bitmap(rnd, b, L):
    if not L.bitmap_dir:
        return mut_header(rnd, b, L)
    doff, dsize = L.bitmap_dir
    r = rnd.random()
    if r < 0.3:
        a = doff + 12
        put(b, a + 3, 1, be(b, a + 3, 1) ^ 1)       # in_use flag of the first bitmap
    elif r < 0.5:
        t = be(b, doff, 8)
        put(b, t, 8, rnd.choice([1, 0x200, len(b) + L.cs, L.cs * 3 + 1, 1 << 60, 0]))
        put(b, doff + 15, 1, 1)                       # make it in use so the open accepts it
    elif r < 0.7:
        put(b, 88, 8, be(b, 88, 8) ^ 1)               # autoclear bitmaps bit
    else:
        a = doff + rnd.randrange(0, max(1, dsize))
        if a < len(b):
            b[a] = rnd.getrandbits(8)


def mut_truncate(rnd, b, L):
    flen = len(b)
    cut = rnd.choice([flen - 1, flen - 512, flen - L.cs, flen - L.cs + 8, (flen // L.cs) * L.cs,
                      L.l1_off + 8, L.rt_off, L.rt_off + 8, 104, 72, 20, 8, rnd.randrange(0, flen + 1),
                      flen - rnd.randrange(1, 3 * L.cs)])
    cut = max(0, min(flen, cut))
    del b[cut:]


def mut_extend(rnd, b, L):
    b.extend(bytes(rnd.choice([1, 512, L.cs, L.cs + 7])))


def mut_random(rnd, b, L):
    regions = [(0, min(len(b), 512))]
    for t in L.l2s[:8] + L.rbs[:4] + [L.l1_off, L.rt_off, L.snap_off]:
        if t and t < len(b):
            regions.append((t, min(len(b), t + L.cs)))
    s, e = rnd.choice(regions)
    if e <= s:
        return
    for _ in range(rnd.randrange(1, 4)):
        a = rnd.randrange(s, e)
        b[a] = rnd.getrandbits(8)


def mut_ext(rnd, b, L):
    if not L.exts:
        return mut_header(rnd, b, L)
    p, m, n = rnd.choice(L.exts)
    r = rnd.random()
    if r < 0.4:
        put(b, p + 4, 4, rnd.choice([0, 1, n + 8, 0xffff, 24, 16, 23]))
    elif r < 0.6:
        put(b, p, 4, rnd.choice([0, 0x12345678, 0x23852875, 0x0537BE77, 0x44415441]))
    else:
        a = p + 8 + rnd.randrange(0, max(1, n))
        if a < len(b):
            b[a] = rnd.getrandbits(8)


def mut_hostile_header(rnd, b, L):
    flen = len(b)
    for _ in range(rnd.randrange(1, 4)):
        off, n = rnd.choice([(36, 4), (40, 8), (48, 8), (56, 4), (60, 4), (64, 8), (24, 8)])
        put(b, off, n, rnd.choice([0, 1, 2, 4194304, 4194305, 0x7fffffff, interesting(rnd, L, flen),
                                  rnd.randrange(0, max(1, flen // max(1, L.cs) + 2)) * L.cs]))


def mut_odd_length(rnd, b, L):
    n = rnd.choice([1, 7, 8, 100, 511, 513, L.cs - 1])
    if rnd.random() < 0.5 and len(b) > n:
        del b[len(b) - n:]
    else:
        b.extend(bytes(n))


def mut_compressed(rnd, b, L):
    if not L.l2e:
        return mut_l2(rnd, b, L)
    a = rnd.choice(L.l2e)
    sh = 62 - (L.cb - 8)
    nsec = rnd.choice([0, 1, 2, (1 << (L.cb - 8)) - 1])
    off = rnd.choice([len(b) - 1, len(b) - 700, len(b) + 10, (len(b) // L.cs) * L.cs - 3,
                      rnd.randrange(0, len(b)), L.l1_off, 0, L.rt_off + 5])
    put(b, a, 8, (1 << 62) | (rnd.random() < 0.2 and (1 << 63) or 0) | (nsec << sh) | (max(0, off) & ((1 << sh) - 1)))


def mut_snapshot_table(rnd, b, L):
    if not L.snaps:
        return mut_snapshot(rnd, b, L)
    r = rnd.random()
    if r < 0.3:
        # move the table pointer to another place in the file
        put(b, 64, 8, rnd.choice([L.snap_off + L.cs, 0, L.l1_off, L.rt_off, len(b) - (len(b) % L.cs)]))
    elif r < 0.6:
        put(b, 60, 4, rnd.choice([0, 1, len(L.snaps) + 1, len(L.snaps) + 5, 1000]))
    else:
        p, l1o, l1s = rnd.choice(L.snaps)
        put(b, p + 36, 4, rnd.choice([0, 16, 24, 40, 1024, 1023]))
        put(b, p + 12, 2, rnd.choice([0, 1, 3]))


def mut_garbage_table(rnd, b, L):
    # a table full of mixed entries
    tabs = L.l2s + L.rbs + [L.l1_off]
    t = rnd.choice([x for x in tabs if x] or [0])
    n = rnd.choice([4, 16, 64])
    for i in range(n):
        a = t + 8 * rnd.randrange(0, max(1, L.cs // 8))
        put(b, a, 8, rnd.choice([rnd.getrandbits(64), entry_value(rnd, b, L, be(b, a, 8), 'x'),
                                 (1 << 63) | ((rnd.randrange(0, max(1, len(b) // L.cs + 2)) * L.cs)),
                                 (1 << 62) | rnd.getrandbits(40), 1, 0]))


def mut_l1_elsewhere(rnd, b, L):
    # the L1 table pointer moved onto other metadata or data, maybe grown
    put(b, 40, 8, rnd.choice([0, L.rt_off, L.snap_off] + L.l2s[:3] + L.rbs[:2] +
                             [(rnd.randrange(0, max(1, len(b) // L.cs + 1))) * L.cs]))
    if rnd.random() < 0.5:
        put(b, 36, 4, rnd.choice([L.l1_size, L.l1_size + 1, 64, 512, 8192, L.cs // 8]))


def mut_snap_shares(rnd, b, L):
    if not L.snaps:
        return mut_snapshot(rnd, b, L)
    p, l1o, l1s = rnd.choice(L.snaps)
    put(b, p, 8, rnd.choice([L.l1_off] + [s[1] for s in L.snaps] + L.l2s[:2] + [L.rt_off]))
    if rnd.random() < 0.5:
        put(b, p + 8, 4, rnd.choice([L.l1_size, 1, 2, L.cs // 8]))


def mut_header_storm(rnd, b, L):
    # several header fields at once, any value: QEMU's order of refusals
    fields = [(4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8),
              (56, 4), (60, 4), (64, 8), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4), (104, 1)]
    for off, n in rnd.sample(fields, rnd.randrange(2, 7)):
        v = rnd.choice([rnd.getrandbits(8 * n), rnd.randrange(0, 64), interesting(rnd, L, len(b)),
                        be(b, off, n) ^ (1 << rnd.randrange(0, 8 * n))])
        if off == 4 and rnd.random() < 0.8:
            v = rnd.choice([2, 3])
        put(b, off, n, v)


MUTATORS = [(mut_header_storm, 4), (mut_garbage_table, 5), (mut_l1_elsewhere, 3), (mut_snap_shares, 2), (mut_hostile_header, 4), (mut_odd_length, 3), (mut_compressed, 4), (mut_snapshot_table, 3), (mut_header, 10), (mut_l1, 12), (mut_l2, 22), (mut_reftable, 10), (mut_refblock, 14),
            (mut_snapshot, 8), (mut_bitmap, 4), (mut_truncate, 6), (mut_extend, 2),
            (mut_random, 8), (mut_ext, 4)]


def damage(rnd, data):
    b = bytearray(data)
    L = Layout(bytes(data))
    kinds = []
    for _ in range(rnd.choice([1, 1, 1, 2, 2, 3])):
        total = sum(w for _, w in MUTATORS)
        x = rnd.uniform(0, total)
        for fn, w in MUTATORS:
            x -= w
            if x <= 0:
                break
        fn(rnd, b, L)
        kinds.append(fn.__name__[4:])
    return bytes(b), kinds

# --- running -------------------------------------------------------------------------

def run(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout,
                           start_new_session=True)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, b'', b''


def encrypted(path):
    """a qcow2 (v2+) header with an encryption method"""
    try:
        with open(path, 'rb') as f:
            h = f.read(36)
    except OSError:
        return False
    return (len(h) == 36 and h[:4] == b'QFI\xfb' and struct.unpack('>I', h[4:8])[0] >= 2
            and struct.unpack('>I', h[32:36])[0] != 0)


def qemu_src(d, img):
    """qemu-img's arguments for IMG: an encrypted image with its key, since
    qc-check answers keyless what qemu-img answers with the key"""
    if encrypted(os.path.join(d, img)):
        return ['--object', 'secret,id=sec0,data=abc', '--image-opts',
                'driver=qcow2,file.filename=%s,encrypt.key-secret=sec0' % img]
    return [img]


def comparable(q, o, img):
    """qemu-img's result named as ours is, ours without the keyless note"""
    qerr = q[2].replace(b'driver=qcow2,file.filename=%s,encrypt.key-secret=sec0' % img.encode(),
                        img.encode())
    oerr = b''.join(l for l in o[2].splitlines(True)
                    if not (l.startswith(b'qc-check: note: ') and b'without the key' in l))
    return (q[0], q[1], qerr), (o[0], o[1], oerr)


def crashed(rc, err):
    return rc is None or rc < 0 or rc >= 128 or b'Sanitizer' in err or b'runtime error:' in err


def compare_case(args, i, base_dir, name, data, kinds):
    d = tempfile.mkdtemp(prefix='c%d-' % i, dir=args.work)
    try:
        for f in os.listdir(base_dir):
            if f != name + '.qcow2':
                shutil.copy(os.path.join(base_dir, f), d)
        img = name + '.qcow2'
        with open(os.path.join(d, img), 'wb') as f:
            f.write(data)
        qc = os.path.join(args.bin, 'qc-check')
        out = []
        # human
        q = run(['qemu-img', 'check'] + qemu_src(d, img), d, args.timeout)
        o = run([qc, img], d, args.timeout * 2)
        if crashed(o[0], o[2]):
            return ('crash', i, name, kinds, 'qc-check human rc=%s %s' % (o[0], o[2][-300:]), d)
        if q[0] is None or q[0] < 0 or q[0] >= 128:
            return ('skip', i, name, kinds, 'qemu-img rc=%s' % q[0], d)
        q, o = comparable(q, o, img)
        if q != o:
            why = []
            if q[0] != o[0]:
                why.append('rc %s vs %s' % (q[0], o[0]))
            if q[1] != o[1]:
                why.append('stdout differs')
            if q[2] != o[2]:
                why.append('stderr differs')
            out.append('human: ' + ', '.join(why))
        # json
        q = run(['qemu-img', 'check', '--output=json'] + qemu_src(d, img), d, args.timeout)
        o = run([qc, '--output=json', img], d, args.timeout * 2)
        if crashed(o[0], o[2]):
            return ('crash', i, name, kinds, 'qc-check json rc=%s %s' % (o[0], o[2][-300:]), d)
        if q[0] is None or q[0] < 0 or q[0] >= 128:
            return ('skip', i, name, kinds, 'qemu-img rc=%s' % q[0], d)
        if q[0] != o[0]:
            out.append('json rc %s vs %s' % (q[0], o[0]))
        try:
            qj = json.loads(q[1]) if q[1].strip() else None
        except ValueError:
            qj = None
        if isinstance(qj, dict):
            try:
                oj = json.loads(o[1])
            except ValueError:
                oj = None
            if not isinstance(oj, dict):
                out.append('json: not an object')
            else:
                for k in FIELDS:
                    if qj.get(k, 0) != oj.get(k, 0):
                        out.append('json %s %s vs %s' % (k, qj.get(k, 0), oj.get(k, 0)))
        if out:
            return ('diff', i, name, kinds, '; '.join(out), d)
        return ('ok', i, name, kinds, 'rc%s' % q[0], d)
    except Exception:  # a broken case must not stop the run
        import traceback
        return ('crash', i, name, kinds, 'harness: ' + traceback.format_exc(), d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--count', type=int, default=100)
    ap.add_argument('--work')
    ap.add_argument('--keep')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=float, default=20)
    ap.add_argument('--bases', default=','.join(BASES))
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--cases', help='only these case numbers (comma list)')
    ap.add_argument('--corpus', help='also damage the NAME.qcow2[.gz] images of this directory')
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    own_work = not args.work
    if own_work:
        args.work = tempfile.mkdtemp(prefix='qc-difftest-')
    os.makedirs(args.work, exist_ok=True)
    names = [n for n in args.bases.split(',') if n]
    bases = make_bases(args.work, names)
    if args.corpus:
        extra = corpus_bases(args.work, args.corpus)
        bases.update(extra)
        names += sorted(extra)
    def make_case(i):
        # each case from its own generator: cases are made when run
        rnd = random.Random('%d/%d' % (args.seed, i))
        name = rnd.choice(names)
        with open(os.path.join(bases[name], name + '.qcow2'), 'rb') as f:
            data = f.read()
        data, kinds = damage(rnd, data)
        return compare_case(args, i, bases[name], name, data, kinds)
    counts = {'ok': 0, 'diff': 0, 'crash': 0, 'skip': 0}
    rcs = {}
    todo = range(args.count)
    if args.cases:
        todo = [int(x) for x in args.cases.split(',')]
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for res in ex.map(make_case, todo):
            st, i, name, kinds, why, d = res
            counts[st] += 1
            if st == 'ok':
                rcs[why] = rcs.get(why, 0) + 1
            if st in ('diff', 'crash'):
                print('%s case %d (%s, %s): %s' % (st.upper(), i, name, '+'.join(kinds), why))
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    dest = os.path.join(args.keep, 'case%d-%s' % (i, name))
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(d, dest)
            elif not args.quiet and st == 'skip':
                print('skip case %d (%s, %s): %s' % (i, name, '+'.join(kinds), why))
            if d:
                shutil.rmtree(d, ignore_errors=True)
    print('difftest seed %d: %d images, %d agree, %d differ, %d crashes, %d not comparable'
          % (args.seed, len(todo), counts['ok'], counts['diff'], counts['crash'], counts['skip']))
    if not args.quiet or True:
        print('qemu-img exit statuses of agreeing images: %s' % ', '.join('%s: %d' % kv for kv in sorted(rcs.items())))
    if own_work:
        shutil.rmtree(args.work, ignore_errors=True)
    return 1 if counts['diff'] or counts['crash'] else 0


if __name__ == '__main__':
    sys.exit(main())
