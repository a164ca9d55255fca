#!/usr/bin/env python3
"""Differential test: qc-dump --map --json / --raw against qemu-img.

Builds a set of qcow2 images with qemu-img and qemu-io (every creation
option, backing chains, external data files, compressed and zero clusters,
extended L2, metadata preallocation on sparse files, snapshots, bitmaps),
then damages copies of them with seeded, bounded mutations and compares,
on each one:

  map  qc-dump --map --json IMG      with  qemu-img map --output=json IMG
       (stdout byte for byte where qemu-img succeeds; where it fails,
        qc-dump must fail too; where qemu-img sees no qcow2, exit 63)
  raw  qc-dump --raw OUT IMG         with  qemu-img convert -O raw IMG OUT
       (same sha256 where qemu-img succeeds, failure where it fails)

and that qc-dump changed neither the image's bytes nor its mtime.

    tools/map-difftest.py [--seed S] [--count N] [--bin DIR] [--keep DIR]
                          [--bases PATTERN] [--quiet]

Exit status 0 when nothing differed.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

TIMEOUT = 30
MSGLOG = os.environ.get('DIFFTEST_MSGLOG')


def run(cmd, cwd, timeout=TIMEOUT):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 'hang', b'', b''


def sh(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


# --- base images -----------------------------------------------------------
# Each recipe runs in an empty directory and leaves img.qcow2 (and side files).

def io(cmds, img='img.qcow2', extra=''):
    return 'qemu-io %s %s %s' % (extra, ' '.join("-c '%s'" % c for c in cmds), img)


STD_WRITES = ['write -P 0x11 0 64k', 'write -P 0x22 128k 192k', 'write -z 512k 64k',
              'write -P 0x33 1M 4k', 'discard 1M 64k', 'write -P 0x44 2M 8k']

BASES = {
    'v3-64k': ['qemu-img create -f qcow2 img.qcow2 4M', io(STD_WRITES)],
    'v2-64k': ['qemu-img create -f qcow2 -o compat=0.10 img.qcow2 4M',
               io(['write -P 0x11 0 64k', 'write -P 0x22 200k 100k', 'write -P 0 1M 64k'])],
    'c512': ['qemu-img create -f qcow2 -o cluster_size=512 img.qcow2 1M',
             io(['write -P 0x11 0 3k', 'write -P 0x22 40k 33k', 'write -z 100k 2k',
                 'write -P 0x55 500k 1k'])],
    'c4k': ['qemu-img create -f qcow2 -o cluster_size=4k img.qcow2 4M',
            io(['write -P 0x11 0 12k', 'write -P 0x22 2M 8k', 'write -z 3M 4k'])],
    'c2m': ['qemu-img create -f qcow2 -o cluster_size=2M img.qcow2 12M',
            io(['write -P 0x11 0 64k', 'write -P 0x22 4M 2M', 'write -z 8M 2M'])],
    'rc1': ['qemu-img create -f qcow2 -o refcount_bits=1 img.qcow2 2M', io(STD_WRITES[:4])],
    'rc64': ['qemu-img create -f qcow2 -o refcount_bits=64 img.qcow2 2M', io(STD_WRITES[:4])],
    'lazy': ['qemu-img create -f qcow2 -o lazy_refcounts=on img.qcow2 4M', io(STD_WRITES)],
    'extl2': ['qemu-img create -f qcow2 -o extended_l2=on img.qcow2 4M',
              io(['write -P 0x11 0 4k', 'write -z 8k 4k', 'write -P 0x22 64k 64k',
                  'write -P 0x33 128k 2k', 'write -P 0x44 130k 2k', 'discard 64k 4k',
                  'write -z 1M 64k', 'write -P 0x55 2M 40k'])],
    'extl2-16k': ['qemu-img create -f qcow2 -o extended_l2=on,cluster_size=16k img.qcow2 2M',
                  io(['write -P 0x11 0 512', 'write -z 1k 512', 'write -P 0x22 16k 16k',
                      'write -P 0x33 40k 1k'])],
    'zlib': ['qemu-img create -f qcow2 img.qcow2 4M',
             io(['write -c -P 0x11 0 64k', 'write -c -P 0x22 64k 64k', 'write -P 0x33 128k 64k',
                 'write -c -P 0x44 1M 64k'])],
    'zlib-c4k': ['qemu-img create -f qcow2 -o cluster_size=4k img.qcow2 1M',
                 io(['write -c -P 0x11 0 4k', 'write -c -P 0x22 4k 4k', 'write -c -P 0x66 64k 4k'])],
    'zstd': ['qemu-img create -f qcow2 -o compression_type=zstd img.qcow2 4M',
             io(['write -c -P 0x11 0 64k', 'write -c -P 0x22 64k 64k', 'write -P 0x33 128k 64k'])],
    'extl2-comp': ['qemu-img create -f qcow2 -o extended_l2=on img.qcow2 2M',
                   io(['write -c -P 0x11 0 64k', 'write -P 0x22 64k 4k'])],
    'snap-bitmap-inuse': ['qemu-img create -f qcow2 img.qcow2 2M',
                          'qemu-img bitmap --add img.qcow2 b0', io(['write -P 0x11 0 64k']),
                          'qemu-img snapshot -c s1 img.qcow2',
                          'python3 -c "import struct,sys;f=open(\'img.qcow2\',\'r+b\')"'],
    'snap': ['qemu-img create -f qcow2 img.qcow2 4M', io(['write -P 0x11 0 128k']),
             'qemu-img snapshot -c s1 img.qcow2', io(['write -P 0x22 64k 64k']),
             'qemu-img snapshot -c s2 img.qcow2'],
    'bitmap': ['qemu-img create -f qcow2 img.qcow2 4M',
               'qemu-img bitmap --add img.qcow2 b0', 'qemu-img bitmap --add -g 65536 img.qcow2 b1',
               io(['write -P 0x11 0 128k'])],
    'backing': ['qemu-img create -f qcow2 base.qcow2 4M',
                io(['write -P 0xaa 0 1M', 'write -c -P 0xbb 2M 64k'], 'base.qcow2'),
                'qemu-img create -f qcow2 -b base.qcow2 -F qcow2 img.qcow2 4M',
                io(['write -P 0x11 64k 64k', 'write -z 256k 64k'])],
    'backing-short': ['qemu-img create -f qcow2 base.qcow2 1M', io(['write -P 0xaa 0 1M'], 'base.qcow2'),
                      'qemu-img create -f qcow2 -b base.qcow2 -F qcow2 img.qcow2 3M',
                      io(['write -P 0x11 64k 64k'])],
    'backing-odd': ['qemu-img create -f qcow2 base.qcow2 984576',
                    io(['write -P 0xaa 0 900k'], 'base.qcow2'),
                    'qemu-img create -f qcow2 -b base.qcow2 -F qcow2 img.qcow2 2M'],
    'chain3': ['qemu-img create -f qcow2 base.qcow2 1M', io(['write -P 0xaa 0 512k'], 'base.qcow2'),
               'qemu-img create -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 3M',
               io(['write -P 0xbb 256k 64k', 'write -P 0xcc 2M 64k'], 'mid.qcow2'),
               'qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 img.qcow2 4M',
               io(['write -P 0x11 0 64k'])],
    'raw-backing': ['head -c 700000 /dev/urandom > base.raw',
                    'qemu-img create -f qcow2 -b base.raw -F raw img.qcow2 2M',
                    io(['write -P 0x11 64k 64k'])],
    'raw-backing-sparse': ['truncate -s 1M base.raw', 'printf xyz | dd of=base.raw bs=1 seek=300000 conv=notrunc',
                           'qemu-img create -f qcow2 -b base.raw -F raw img.qcow2 2M'],
    'extl2-backing': ['qemu-img create -f qcow2 base.qcow2 2M', io(['write -P 0xaa 0 2M'], 'base.qcow2'),
                      'qemu-img create -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 img.qcow2 2M',
                      io(['write -P 0x11 4k 4k', 'write -z 64k 8k', 'discard 128k 2k'])],
    'datafile': ['qemu-img create -f qcow2 -o data_file=img.data img.qcow2 4M',
                 io(['write -P 0x11 0 64k', 'write -P 0x22 1M 128k', 'write -z 2M 64k'])],
    'datafile-raw': ['qemu-img create -f qcow2 -o data_file=img.data,data_file_raw=on img.qcow2 2M',
                     io(['write -P 0x11 0 64k'])],
    'prealloc': ['qemu-img create -f qcow2 -o preallocation=metadata img.qcow2 8M',
                 io(['write -P 0x11 0 64k', 'write -P 0x22 3M 4k'])],
    'prealloc-c4k': ['qemu-img create -f qcow2 -o preallocation=metadata,cluster_size=4k img.qcow2 2M',
                     io(['write -P 0x11 8k 4k'])],
    'prealloc-extl2': ['qemu-img create -f qcow2 -o preallocation=metadata,extended_l2=on img.qcow2 4M',
                       io(['write -P 0x11 0 4k'])],
    'empty': ['qemu-img create -f qcow2 img.qcow2 0'],
    'aes': ['qemu-img create --object secret,id=sec0,data=abc -f qcow2 '
            '-o encrypt.format=aes,encrypt.key-secret=sec0 img.qcow2 4M',
            'qemu-io --object secret,id=sec0,data=abc --image-opts '
            'driver=qcow2,file.filename=img.qcow2,encrypt.key-secret=sec0 '
            "-c 'write -P 0x11 0 64k' -c 'write -z 128k 64k'"],
    'odd-size': ['qemu-img create -f qcow2 img.qcow2 1049088', io(['write -P 0x11 1048576 512'])],
    'sparse-trunc': ['qemu-img create -f qcow2 img.qcow2 4M',
                     io(['write -P 0x11 0 64k', 'write -P 0x22 1M 64k']),
                     'truncate -s 300000 img.qcow2'],
    'big-l1': ['qemu-img create -f qcow2 -o cluster_size=512 img.qcow2 64M',
               io(['write -P 0x11 0 1k', 'write -P 0x22 33M 1k', 'write -P 0x33 63M 1k'])],
}


def random_writes(seed, size, n, align):
    """a fixed pseudo-random mix of qemu-io writes, zero writes, compressed
    writes and discards"""
    r = random.Random(seed)
    cmds = []
    for _ in range(n):
        off = r.randrange(size // align) * align
        ln = min(r.choice([align, 2 * align, 512, 4096, 3 * align]), size - off)
        ln -= ln % 512
        if ln <= 0:
            continue
        k = r.random()
        if k < 0.5:
            cmds.append('write -P 0x%02x %d %d' % (r.randrange(256), off, ln))
        elif k < 0.7:
            cmds.append('write -z %d %d' % (off, ln))
        elif k < 0.85:
            cmds.append('discard %d %d' % (off, ln))
        else:
            c = off - off % align
            cmds.append('write -c -P 0x%02x %d %d' % (r.randrange(256), c, align))
    return cmds


BASES['random-c512'] = ['qemu-img create -f qcow2 -o cluster_size=512 img.qcow2 2M',
                        io(random_writes(1, 2 << 20, 300, 512)) + ' || true']
BASES['random-extl2'] = ['qemu-img create -f qcow2 -o extended_l2=on,cluster_size=32k img.qcow2 8M',
                         io(random_writes(2, 8 << 20, 300, 32768)) + ' || true']
BASES['random-c4k-backing'] = ['qemu-img create -f qcow2 -o cluster_size=4k base.qcow2 4M',
                               io(random_writes(3, 4 << 20, 150, 4096), 'base.qcow2') + ' || true',
                               'qemu-img create -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 img.qcow2 5M',
                               io(random_writes(4, 5 << 20, 150, 4096)) + ' || true']


def build_bases(work, pattern):
    bases = {}
    for name, cmds in sorted(BASES.items()):
        if not fnmatch.fnmatch(name, pattern):
            continue
        d = os.path.join(work, 'base-' + name)
        os.makedirs(d)
        try:
            for c in cmds:
                sh(c, d)
        except subprocess.CalledProcessError as e:
            print('base %s failed: %s' % (name, e), file=sys.stderr)
            shutil.rmtree(d)
            continue
        bases[name] = d
    return bases


# --- qcow2 parsing for targeted mutations -------------------------------------

class Q:
    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as f:
            self.h = f.read(112).ljust(112, b'\0')
        self.size = os.path.getsize(path)
        h = self.h
        self.version = struct.unpack('>I', h[4:8])[0]
        self.cb = struct.unpack('>I', h[20:24])[0]
        self.cs = 1 << self.cb if 9 <= self.cb <= 21 else 65536
        self.l1_size = struct.unpack('>I', h[36:40])[0]
        self.l1_off = struct.unpack('>Q', h[40:48])[0]
        self.rt_off = struct.unpack('>Q', h[48:56])[0]
        self.rt_clusters = struct.unpack('>I', h[56:60])[0]
        self.incompat = struct.unpack('>Q', h[72:80])[0] if self.version >= 3 else 0
        self.extl2 = bool(self.incompat & 0x10)
        self.esz = 16 if self.extl2 else 8

    def read(self, off, n):
        with open(self.path, 'rb') as f:
            f.seek(off)
            return f.read(n)

    def l1(self):
        out = []
        for i in range(min(self.l1_size, 4096)):
            b = self.read(self.l1_off + 8 * i, 8)
            if len(b) < 8:
                break
            out.append((self.l1_off + 8 * i, struct.unpack('>Q', b)[0]))
        return out

    def l2_entries(self):
        """(file offset of entry, raw, bitmap) for entries of the tables the L1 names"""
        out = []
        for _, e in self.l1():
            t = e & 0x00fffffffffffe00
            if not t or t % self.cs or t >= self.size:
                continue
            data = self.read(t, self.cs)
            for i in range(len(data) // self.esz):
                raw = struct.unpack('>Q', data[i * self.esz:i * self.esz + 8])[0]
                bm = struct.unpack('>Q', data[i * self.esz + 8:i * self.esz + 16])[0] if self.extl2 else 0
                out.append((t + i * self.esz, raw, bm))
        return out

    def reftable(self):
        out = []
        for i in range(min(self.rt_clusters * self.cs // 8, 4096)):
            b = self.read(self.rt_off + 8 * i, 8)
            if len(b) < 8:
                break
            out.append((self.rt_off + 8 * i, struct.unpack('>Q', b)[0]))
        return out


def pwrite(path, off, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def put64(path, off, v):
    pwrite(path, off, struct.pack('>Q', v & (2 ** 64 - 1)))


def put32(path, off, v):
    pwrite(path, off, struct.pack('>I', v & (2 ** 32 - 1)))


def extensions(q):
    """(offset of the 8-byte ext header, magic, length) for each extension"""
    out = []
    hl = struct.unpack('>I', q.h[100:104])[0] if q.version >= 3 else 72
    end = struct.unpack('>Q', q.h[8:16])[0] or q.cs
    off = hl
    while off + 8 <= min(end, q.cs):
        b = q.read(off, 8)
        if len(b) < 8:
            break
        magic, ln = struct.unpack('>II', b)
        if magic == 0:
            break
        out.append((off, magic, ln))
        off += 8 + ((ln + 7) & ~7)
    return out


def mutate_tables(rng, path, q, log):
    """snapshot table, bitmap directory and tables, extensions, backing name"""
    k = rng.randrange(5)
    nb = struct.unpack('>I', q.h[60:64])[0]
    soff = struct.unpack('>Q', q.h[64:72])[0]
    exts = extensions(q)
    if k == 0 and nb and soff < q.size:
        off = soff
        for _ in range(rng.randrange(nb)):
            e = q.read(off, 40)
            if len(e) < 40:
                break
            ids, names, extra = struct.unpack('>HH', e[12:16]) + struct.unpack('>I', e[36:40])
            off = (off + 40 + extra + ids + names + 7) & ~7
        fld = rng.choice([(36, 4, [0, 8, 16, 1024, 1025, 0xffffffff, 100]), (12, 2, [0, 0xffff, 3]),
                          (14, 2, [0, 0xffff, 200]), (0, 8, [0, 0x200, q.size * 3]),
                          (8, 4, [0, 0xffffffff, 5])])
        v = rng.choice(fld[2])
        (put32 if fld[1] == 4 else put64 if fld[1] == 8 else
         (lambda p, o, x: pwrite(p, o, struct.pack('>H', x))))(path, off + fld[0], v)
        log.append('snapshot entry @%#x +%d -> %#x' % (off, fld[0], v))
        return True
    if k == 1:
        bm = [e for e in exts if e[1] == 0x23852875]
        if bm:
            b = q.read(bm[-1][0] + 8, 24)
            if len(b) == 24:
                dsize, doff = struct.unpack('>QQ', b[8:24])
                if rng.random() < 0.3:
                    f = rng.choice([(0, 4, [0, 1, 3, 70000]), (8, 8, [0, 8, dsize + 8, dsize - 8]),
                                    (16, 8, [doff + 512, 0, q.size + q.cs])])
                    (put32 if f[1] == 4 else put64)(path, bm[-1][0] + 8 + f[0], rng.choice(f[2]))
                    log.append('bitmaps ext +%d' % f[0])
                    return True
                d = q.read(doff, min(dsize, 4096))
                if len(d) >= 24:
                    f = rng.choice([(0, 8, None), (8, 4, [0, 1, 2, 0x8000001, 100]),
                                    (12, 4, [0, 1, 2, 3, 4, 0x80]), (16, 1, [0, 2]),
                                    (17, 1, [8, 9, 16, 31, 32]), (18, 2, [0, 1, 1024]),
                                    (20, 4, [0, 8, 0xfffffff8]), ('table', 0, None)])
                    if f[0] == 'table':
                        t = struct.unpack('>Q', d[0:8])[0]
                        put64(path, t + 8 * rng.randrange(2), rng.choice(
                            [1, 0x200, 0x201, q.size * 2, 1 << 60, q.cs * 3]))
                        log.append('bitmap table @%#x' % t)
                    elif f[0] == 0:
                        put64(path, doff, rng.choice([0, q.cs + 512, q.size * 2]))
                        log.append('bitmap dir table_offset')
                    else:
                        v = rng.choice(f[2])
                        pwrite(path, doff + f[0], v.to_bytes(f[1], 'big'))
                        log.append('bitmap dir +%d -> %#x' % (f[0], v))
                    return True
    if k == 2 and exts:
        off, magic, ln = rng.choice(exts)
        op = rng.randrange(4)
        if op == 0:
            put32(path, off, rng.choice([0x12345678, 0xE2792ACA, 0x44415441, 0x6803F857, 0]))
        elif op == 1:
            put32(path, off + 4, rng.choice([0, ln + 8, ln - 1 if ln else 0, 15, 16, 0xffff]))
        elif magic == 0xE2792ACA and ln:
            fmt = rng.choice([b'raw', b'qcow2', b'vmdk', b'', b'qcow'])
            pwrite(path, off + 8, fmt.ljust(ln, b'\0')[:ln])
        else:
            pwrite(path, off + 8 + rng.randrange(max(ln, 1)), bytes([rng.getrandbits(8)]))
        log.append('extension @%#x op %d' % (off, op))
        return True
    if k == 3:
        boff = struct.unpack('>Q', q.h[8:16])[0]
        bsz = struct.unpack('>I', q.h[16:20])[0]
        if boff and bsz:
            name = rng.choice([b'img.qcow2', b'nonexistent.qcow2', b'/nonexistent', b'x:y',
                               b'base.raw', b'mid.qcow2', b'base.qcow2'])
            pwrite(path, boff, name)
            put32(path, 16, len(name))
            log.append('backing name -> %s' % name.decode())
            return True
    if k == 4:
        d = os.path.dirname(path)
        side = [f for f in os.listdir(d) if not f.endswith('.qcow2') and not f.startswith('.')]
        if side:
            f = os.path.join(d, rng.choice(side))
            sz = os.path.getsize(f)
            op = rng.randrange(3)
            if op == 0:
                os.truncate(f, rng.randrange(sz + 1))
            elif op == 1:
                os.truncate(f, sz + rng.choice([1, 1000, 1 << 20]))
            else:
                os.unlink(f)
            log.append('side file %s op %d' % (os.path.basename(f), op))
            return True
    return False


def mutate(rng, path, log):
    q = Q(path)
    k = rng.random()
    if k < 0.12:
        if mutate_tables(rng, path, q, log):
            return
        k = rng.random()
    entries = None
    if k < 0.40:
        entries = q.l2_entries()
        used = [e for e in entries if e[1] or e[2]]
        pool = used if used and rng.random() < 0.8 else entries
        if not pool:
            return mutate_header(rng, path, q, log)
        off, raw, bm = rng.choice(pool)
        mask = 0x00fffffffffffe00
        op = rng.randrange(14)
        if op == 0:
            raw = raw + rng.choice([0x200, 0x400, q.cs // 2 if q.cs > 512 else 0x200])
        elif op == 1:
            raw = (raw & ~mask) | (((q.size // q.cs) + rng.randrange(1, 64)) * q.cs)
        elif op == 2:
            raw = (raw & ~mask) | rng.choice([0x00fffffffffe0000, 0x00ffffffffff0000, 1 << 40])
        elif op == 3:
            raw ^= 1
        elif op == 4:
            raw ^= 1 << 63
        elif op == 5:
            raw ^= 1 << 62
        elif op == 6:
            raw |= rng.choice([0x2, 0x100, 1 << 56, 1 << 61])
        elif op == 7:
            raw = rng.getrandbits(64)
        elif op == 8 and (raw >> 62) & 1:
            x = 62 - (q.cb - 8)
            nsec = (raw >> x) & ((1 << (q.cb - 8)) - 1)
            raw = (raw & ~(((1 << (q.cb - 8)) - 1) << x)) | (
                (rng.choice([0, nsec + 1, nsec * 2 + 3, (1 << (q.cb - 8)) - 1]) & ((1 << (q.cb - 8)) - 1)) << x)
        elif op == 9 and (raw >> 62) & 1:
            x = 62 - (q.cb - 8)
            co = raw & ((1 << x) - 1)
            raw = (raw & ~((1 << x) - 1)) | (rng.choice([co + rng.randrange(-600, 600), q.size + 1000,
                                                           co ^ 0x10, 0]) & ((1 << x) - 1))
        elif op == 10 and q.extl2:
            bm = rng.choice([rng.getrandbits(64), bm | (bm << 32), bm ^ (1 << rng.randrange(64)),
                             0xffffffff, 0xffffffff00000000, bm >> 32])
            pwrite(path, off + 8, struct.pack('>Q', bm & (2 ** 64 - 1)))
            log.append('l2 bitmap @%#x -> %#x' % (off + 8, bm))
            return
        elif op == 11:
            other = rng.choice(entries)
            raw = other[1]
        elif op == 12:
            raw = 0
        else:
            raw ^= 1 << rng.randrange(64)
        put64(path, off, raw)
        log.append('l2 @%#x -> %#x' % (off, raw & (2 ** 64 - 1)))
        return
    if k < 0.52:
        l1 = q.l1()
        if not l1:
            return mutate_header(rng, path, q, log)
        off, raw = rng.choice(l1)
        op = rng.randrange(7)
        if op == 0:
            raw += 0x200
        elif op == 1:
            raw = (q.size // q.cs + rng.randrange(1, 50)) * q.cs
        elif op == 2:
            raw = 0
        elif op == 3:
            raw = rng.choice([0, q.cs, 2 * q.cs, 3 * q.cs]) | (raw & (1 << 63))
        elif op == 4:
            raw |= rng.choice([0x1fe, 1 << 56, 0x7f00000000000000])
        elif op == 5:
            raw ^= 1 << 63
        else:
            raw = rng.getrandbits(64)
        put64(path, off, raw)
        log.append('l1 @%#x -> %#x' % (off, raw & (2 ** 64 - 1)))
        return
    if k < 0.62:
        return mutate_header(rng, path, q, log)
    if k < 0.70:
        rt = q.reftable()
        if not rt:
            return mutate_header(rng, path, q, log)
        off, raw = rng.choice(rt)
        if raw and rng.random() < 0.5:
            # damage the refcount block instead
            b = raw & ~0x1ff
            o = b + rng.randrange(q.cs)
            pwrite(path, o, bytes([rng.getrandbits(8)]))
            log.append('refblock byte @%#x' % o)
            return
        raw = rng.choice([0, raw + 0x200, raw | 1, (q.size // q.cs + 3) * q.cs, rng.getrandbits(64)])
        put64(path, off, raw)
        log.append('reftable @%#x -> %#x' % (off, raw & (2 ** 64 - 1)))
        return
    if k < 0.78:
        # damage compressed data or data clusters
        entries = q.l2_entries()
        comp = [e for e in entries if (e[1] >> 62) & 1]
        if comp:
            _, raw, _ = rng.choice(comp)
            x = 62 - (q.cb - 8)
            co = raw & ((1 << x) - 1)
            o = co + rng.randrange(0, 64)
            n = rng.choice([1, 2, 8, 64])
            pwrite(path, o, bytes(rng.getrandbits(8) for _ in range(n)))
            log.append('compressed data @%#x (%d bytes)' % (o, n))
            return
        o = rng.randrange(max(q.size, 1))
        pwrite(path, o, bytes([rng.getrandbits(8)]))
        log.append('byte @%#x' % o)
        return
    if k < 0.86:
        cut = rng.choice([rng.randrange(q.size + 1), (rng.randrange(q.size + 1) // q.cs) * q.cs,
                          q.size - rng.randrange(1, 4096) if q.size > 4096 else 0,
                          rng.choice([8, 50, 72, 100, 104, 120, 512])])
        cut = max(0, min(cut, q.size))
        os.truncate(path, cut)
        log.append('truncate to %d' % cut)
        return
    if k < 0.90:
        os.truncate(path, q.size + rng.choice([1, 511, 4096, q.cs * 3]))
        log.append('extend')
        return
    # random bytes in the first clusters (header, extensions, tables)
    for _ in range(rng.randint(1, 4)):
        o = rng.randrange(min(q.size, 6 * q.cs) or 1)
        pwrite(path, o, bytes([rng.getrandbits(8)]))
        log.append('byte @%#x' % o)


def mutate_header(rng, path, q, log):
    fields = [(24, 8, [q.size * 2, 1, 511, 513, 1 << 40, 2 ** 63, 2 ** 64 - 512, 0,
                       struct.unpack('>Q', q.h[24:32])[0] + 512,
                       struct.unpack('>Q', q.h[24:32])[0] - 512, 1049276]),
              (36, 4, [0, 1, q.l1_size + 1, q.l1_size - 1, 0xffffffff, 4194304, 4194305]),
              (40, 8, [0, q.cs, q.l1_off + 512, q.size + q.cs, 0x7fffffffffff0000]),
              (20, 4, [8, 9, 12, 21, 22, 16]),
              (48, 8, [0, q.rt_off + 512, 0x7fffffffffff0000, q.size * 4]),
              (56, 4, [0, 1, 2, 0xffff, 1024]),
              (32, 4, [1, 2, 3]),
              (60, 4, [1, 2, 65537]),
              (64, 8, [0, q.cs, 0xfffffffffff0000, 0x7fffffffffff0000]),
              (72, 8, [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 1 << 63]),
              (88, 8, [0x1, 0x2, 1 << 63]),
              (96, 4, [0, 3, 6, 7]),
              (100, 4, [72, 104, 105, 108, 112, 120, 4096]),
              (4, 4, [1, 2, 3, 4, 0]),
              (8, 8, [0, 0x100, q.cs, q.cs + 8]),
              (16, 4, [0, 1, 1023, 1024, 5000])]
    off, w, vals = rng.choice(fields)
    v = rng.choice(vals) if rng.random() < 0.85 else rng.getrandbits(8 * w)
    (put64 if w == 8 else put32)(path, off, v)
    if off == 104 or (off == 100 and rng.random() < 0.3):
        pwrite(path, 104, bytes([rng.choice([0, 1, 2])]))
    log.append('header @%d -> %#x' % (off, v & (2 ** (8 * w) - 1)))


# --- comparison ----------------------------------------------------------------

def encrypted(path):
    try:
        with open(path, 'rb') as f:
            h = f.read(36)
        return (len(h) == 36 and h[:4] == b'QFI\xfb' and struct.unpack('>I', h[4:8])[0] >= 2
                and struct.unpack('>I', h[32:36])[0] != 0)
    except OSError:
        return False


def qemu_src(d, img):
    """qemu-img arguments naming the image; an encrypted one is opened with
    its key, as qc-dump maps encrypted images"""
    if encrypted(os.path.join(d, img)):
        return ['--object', 'secret,id=sec0,data=abc', '--image-opts',
                'driver=qcow2,file.filename=%s,encrypt.key-secret=sec0' % img]
    return [img]


def qemu_format(d, img):
    rc, out, _ = run(['qemu-img', 'info', '--output=json'] + qemu_src(d, img), d)
    if rc != 0:
        return None
    try:
        return json.loads(out).get('format')
    except ValueError:
        return None


def compare(d, img, qc, stats, quiet):
    """returns a list of problems"""
    probs = []
    p = os.path.join(d, img)
    st0 = os.stat(p)
    h0 = sha256(p)
    fmt = qemu_format(d, img)
    # map
    qrc, qout, qerr = run(['qemu-img', 'map', '--output=json'] + qemu_src(d, img), d)
    rc, out, err = run([qc, '--map', '--json', img], d)
    if rc == 'hang' or (isinstance(rc, int) and rc < 0) or b'Sanitizer' in err or b'runtime error' in err:
        probs.append('map: qc-dump crashed/hung: rc %s %s' % (rc, err[-300:]))
    elif qrc == 'hang':
        if rc == 0:
            probs.append('map: qemu-img hangs, qc-dump exit 0')
        stats['map-qemu-hang'] += 1
    elif fmt is not None and fmt != 'qcow2':
        if rc != 63:
            probs.append('map: qemu-img sees %s; qc-dump exit %s (want 63)' % (fmt, rc))
        stats['map-notqcow2'] += 1
    elif qrc != 0:
        if rc == 0:
            probs.append('map: qemu-img failed (%s) but qc-dump exit 0' % qerr.strip()[-200:])
        else:
            stats['map-fail-agree'] += 1
            if out == qout:
                stats['map-partial-same'] += 1
            if qerr.replace(b'qemu-img: ', b'qc-dump: ') == err:
                stats['map-stderr-same'] += 1
            elif MSGLOG:
                with open(MSGLOG, 'ab') as f:
                    f.write(b'Q ' + qerr + b'O ' + err + b'\n')
    else:
        if rc != 0:
            probs.append('map: qc-dump exit %s (%s), qemu-img ok' % (rc, err.strip()[-200:]))
        elif out != qout:
            try:
                same = json.loads(out) == json.loads(qout)
            except ValueError:
                same = False
            probs.append('map: output differs%s' % (' (same JSON)' if same else ''))
        else:
            stats['map-ok'] += 1
    # raw
    qraw = os.path.join(d, '.q.raw')
    oraw = os.path.join(d, '.o.raw')
    # guest bytes are read keyless: an encrypted image is refused as
    # qemu-img refuses it without the key
    qrc, _, qerr = run(['qemu-img', 'convert', '-O', 'raw', img, qraw], d)
    rc, _, err = run([qc, '--raw', oraw, img], d)
    if encrypted(p) and rc == 1 and qrc == 1 and \
            qerr.replace(b'qemu-img: ', b'qc-dump: ', 1) == err:
        stats['raw-encrypted'] += 1
    elif rc == 'hang' or (isinstance(rc, int) and rc < 0) or b'Sanitizer' in err or b'runtime error' in err:
        probs.append('raw: qc-dump crashed/hung: rc %s %s' % (rc, err[-300:]))
    elif qrc == 'hang':
        if rc == 0:
            probs.append('raw: qemu-img hangs, qc-dump exit 0')
    elif fmt is not None and fmt != 'qcow2':
        if rc != 63:
            probs.append('raw: qemu-img sees %s; qc-dump exit %s (want 63)' % (fmt, rc))
    elif qrc != 0:
        if rc == 0:
            probs.append('raw: qemu-img failed (%s) but qc-dump exit 0' % qerr.strip()[-200:])
        else:
            stats['raw-fail-agree'] += 1
    else:
        if rc != 0:
            probs.append('raw: qc-dump exit %s (%s), qemu-img ok' % (rc, err.strip()[-200:]))
        elif os.path.getsize(qraw) != os.path.getsize(oraw) or sha256(qraw) != sha256(oraw):
            probs.append('raw: bytes differ')
        else:
            stats['raw-ok'] += 1
    for f in (qraw, oraw):
        if os.path.exists(f):
            os.unlink(f)
    st1 = os.stat(p)
    if sha256(p) != h0 or st1.st_mtime_ns != st0.st_mtime_ns:
        probs.append('image changed by a read-only run')
    return probs


def copy_dir(src, dst):
    os.makedirs(dst)
    for fn in os.listdir(src):
        subprocess.run(['cp', '--sparse=always', os.path.join(src, fn), os.path.join(dst, fn)],
                       check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--count', type=int, default=200, help='mutated images')
    ap.add_argument('--bin', default='bin', help='directory holding qc-dump')
    ap.add_argument('--keep', help='copy failing cases here')
    ap.add_argument('--bases', default='*', help='glob on base image names')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    qc = os.path.abspath(os.path.join(a.bin, 'qc-dump'))
    rng = random.Random(a.seed)
    stats = {k: 0 for k in ('map-ok', 'map-fail-agree', 'map-partial-same', 'map-notqcow2',
                            'map-qemu-hang', 'raw-ok', 'raw-fail-agree', 'raw-encrypted',
                            'map-stderr-same')}
    fails = 0
    compared = 0
    with tempfile.TemporaryDirectory(prefix='qc-difftest.') as work:
        bases = build_bases(work, a.bases)
        names = sorted(bases)
        # the pristine bases first, then mutants
        jobs = [(n, None) for n in names] + [(rng.choice(names), i) for i in range(a.count)]
        for n, i in jobs:
            d = os.path.join(work, 'case')
            if os.path.exists(d):
                shutil.rmtree(d)
            copy_dir(bases[n], d)
            log = []
            if i is not None:
                target = 'img.qcow2'
                side = [f for f in os.listdir(d) if f.endswith('.qcow2') and f != 'img.qcow2']
                if side and rng.random() < 0.25:
                    target = rng.choice(side)
                for _ in range(rng.choice([1, 1, 1, 2, 3])):
                    try:
                        mutate(rng, os.path.join(d, target), log)
                    except (OSError, ValueError, struct.error) as e:
                        log.append('mutation skipped: %s' % e)
                if target != 'img.qcow2':
                    log = ['[%s] ' % target + l for l in log]
            # settle delayed allocation: SEEK_DATA answers must not change
            # between the two programs' runs
            os.sync()
            probs = compare(d, 'img.qcow2', qc, stats, a.quiet)
            compared += 1
            tag = '%s#%s' % (n, 'base' if i is None else i)
            if probs:
                fails += 1
                print('FAIL %s: %s | %s' % (tag, '; '.join(probs), ', '.join(log)), flush=True)
                if a.keep:
                    dst = os.path.join(a.keep, tag.replace('#', '_'))
                    if os.path.exists(dst):
                        shutil.rmtree(dst)
                    shutil.copytree(d, dst)
                    with open(os.path.join(dst, 'MUTATIONS'), 'w') as f:
                        f.write('\n'.join(log) + '\n' + '\n'.join(probs) + '\n')
            elif not a.quiet:
                print('ok   %s %s' % (tag, ', '.join(log)), flush=True)
    print('difftest: seed %d, %d images compared, %d mismatches; %s' % (
        a.seed, compared, fails, ', '.join('%s %d' % kv for kv in sorted(stats.items()))))
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
