#!/bin/bash
# qc-repair -r all on a damaged snapshot table, on a bitmaps extension whose
# autoclear bit is clear, and on in-use bitmaps: QEMU's lines, counts and
# exit status (qc-repair's own "qc-repair:" notes aside), the same header,
# the same snapshot list, a result clean for qemu-img check, qemu-img info
# and qc-check, and no freed cluster that anything still names.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
QC_REPAIR=$QC_BIN/qc-repair
QC_CHECK=$QC_BIN/qc-check
failures=0
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

# compare LABEL IMG MODE [notes-regex]: repair copies with both tools
compare() {
    local label=$1 img=$2 mode=$3 want=$4 qr or
    cp "$img" q.qcow2; cp "$img" o.qcow2
    qemu-img check -r "$mode" q.qcow2 >q.out 2>q.err; qr=$?
    "$QC_REPAIR" -r "$mode" o.qcow2 >o.out 2>o.err; or=$?
    [ "$qr" = "$or" ] || fail "$label" "exit $or, qemu-img $qr"
    grep -v '^qc-repair: ' o.err >o.err2
    cmp -s q.err o.err2 || { fail "$label" "stderr differs"; diff q.err o.err2 | head -5; }
    cmp -s q.out o.out || { fail "$label" "stdout differs"; diff q.out o.out | head -5; }
    grep -q 'changed$\|instead of' o.err && fail "$label" "a snapshot or bitmap changed unexplained"
    if [ -n "$want" ]; then grep -q "^qc-repair: .*$want" o.err || fail "$label" "no note matching '$want'"; fi
    cmp -s <(head -c 72 q.qcow2 | tail -c 24) <(head -c 72 o.qcow2 | tail -c 24) ||
        fail "$label" "header bytes 48..71 differ from QEMU's"
    [ "$(qemu-img snapshot -l q.qcow2 2>&1 | sed 's/q\.qcow2/IMG/')" = \
      "$(qemu-img snapshot -l o.qcow2 2>&1 | sed 's/o\.qcow2/IMG/')" ] ||
        fail "$label" "snapshot list differs from QEMU's"
    if qemu-img check q.qcow2 >/dev/null 2>&1; then
        qemu-img check o.qcow2 >/dev/null 2>&1 || fail "$label" "qemu-img check not clean"
        "$QC_CHECK" o.qcow2 >/dev/null 2>&1 || fail "$label" "qc-check not clean"
        qemu-img info o.qcow2 >/dev/null 2>&1 || fail "$label" "qemu-img info fails"
        qemu-img convert -O raw o.qcow2 o.raw; qemu-img convert -O raw q.qcow2 q.raw
        cmp -s o.raw q.raw || fail "$label" "guest data differs"
        rm -f o.raw q.raw
    fi
}

# two snapshots; table at cluster 13 (entry 1 at +0x48)
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -c 'write -P 0x11 0 128k' base.qcow2 >/dev/null
qemu-img snapshot -c s1 base.qcow2
qemu-io -c 'write -P 0x22 64k 128k' base.qcow2 >/dev/null
qemu-img snapshot -c snap2 base.qcow2
qemu-io -c 'write -P 0x33 0 64k' base.qcow2 >/dev/null
st=$(peek_be base.qcow2 64 8)
e1=$((st + 72))

cp base.qcow2 d.qcow2; poke_be d.qcow2 $((e1 + 36)) 4 0            # incomplete (v3)
compare incomplete d.qcow2 all 'entry 1 .*only 0 bytes of extra data'
[ "$(peek_be o.qcow2 60 4)" = 2 ] || fail incomplete "a snapshot was dropped"
qemu-img snapshot -l o.qcow2 | grep -q ' s1 ' || fail incomplete "the valid snapshot lost"
compare incomplete-leaks d.qcow2 leaks

cp base.qcow2 d.qcow2; poke_be d.qcow2 $((e1 + 36)) 4 2000         # too much extra data
compare extra-2000 d.qcow2 all 'entry 1 .*2000 bytes of extra data'
qemu-img snapshot -l o.qcow2 | grep -q ' s1 ' || fail extra-2000 "the valid snapshot lost"
compare extra-2000-leaks d.qcow2 leaks

cp base.qcow2 d.qcow2; poke_be d.qcow2 $((st + 36)) 4 1100         # the same in entry 0
compare extra-1100 d.qcow2 all 'entry 0 .*1100 bytes'

cp base.qcow2 d.qcow2; poke_be d.qcow2 $((st + 36)) 4 0xfffffff0   # table too big
compare too-big d.qcow2 all 'entries 0..1 discarded'

# more than 65536 snapshots (entries without L1 tables), table appended
qemu-img create -q -f qcow2 ov.qcow2 64M
qemu-io -c 'write -P 1 0 64k' ov.qcow2 >/dev/null
python3 - ov.qcow2 65540 <<'PY'
import struct, sys
img, n = sys.argv[1], int(sys.argv[2])
cs = 65536
f = open(img, 'r+b'); d = f.read()
end = (len(d) + cs - 1) // cs * cs
t = bytearray()
for i in range(n):
    t += b'\0' * ((-len(t)) % 8)
    ids, name = str(i + 1).encode(), b'o%d' % i
    t += struct.pack('>QIHHIIQII', 0, 0, len(ids), len(name), 0, 0, 0, 0, 24)
    t += struct.pack('>QQQ', 0, 64 << 20, 0) + ids + name
nclu = (len(t) + cs - 1) // cs
rt = struct.unpack('>Q', d[48:56])[0]; rb = struct.unpack('>Q', d[rt:rt + 8])[0]
f.seek(end); f.write(bytes(t) + b'\0' * (nclu * cs - len(t)))
for k in range(end // cs, end // cs + nclu):
    f.seek(rb + 2 * k); f.write(struct.pack('>H', 1))
f.seek(60); f.write(struct.pack('>IQ', n, end))
PY
compare overhang ov.qcow2 all '4 entries past the limit'
[ "$(peek_be o.qcow2 60 4)" = 65536 ] || fail overhang "count not 65536"

# a bitmaps extension with autoclear bit 0 clear: dropped, clusters freed
qemu-img create -q -f qcow2 bm.qcow2 64M
qemu-io -c 'write -P 1 0 128k' bm.qcow2 >/dev/null
qemu-img bitmap --add bm.qcow2 bm0
qemu-io -c 'write -P 2 0 64k' bm.qcow2 >/dev/null
qemu-img bitmap --add bm.qcow2 bm1
cp bm.qcow2 nb.qcow2; poke_be nb.qcow2 88 8 0
for mode in all leaks; do
    compare "no-autoclear-$mode" nb.qcow2 $mode 'bitmaps extension dropped'
    cmp -s <(head -c 4096 q.qcow2) <(head -c 4096 o.qcow2) || fail "no-autoclear-$mode" "header cluster differs from QEMU's"
    qemu-img info o.qcow2 2>&1 | grep -q 'bitmaps' && fail "no-autoclear-$mode" "bitmaps still listed"
    qemu-img check o.qcow2 2>&1 | grep -q warning && fail "no-autoclear-$mode" "extension still there"
done
# a crash after any write is fixed by a second run
n=$("$QC_REPAIR" --dry-run nb.qcow2 2>/dev/null | grep -c '^write ')
[ "$n" -ge 2 ] || fail crash "expected at least 2 writes, got $n"
for ((i = 1; i < n; i++)); do
    cp nb.qcow2 c.qcow2
    "$QC_REPAIR" --crash-after $i c.qcow2 >/dev/null 2>&1
    [ $? = 99 ] || fail "crash-$i" "no simulated crash"
    qemu-img info c.qcow2 >/dev/null 2>&1 || fail "crash-$i" "qemu-img info fails"
    "$QC_REPAIR" c.qcow2 >/dev/null 2>&1
    qemu-img check c.qcow2 >/dev/null 2>&1 || fail "crash-$i" "not clean after a second run"
done

# in-use bitmaps (qemu-io aborted while holding them): kept, image unchanged
cp bm.qcow2 iu.qcow2
sh -c "qemu-io -c 'write -P 7 0 64k' -c abort iu.qcow2; true" >/dev/null 2>&1
qemu-img info iu.qcow2 | grep -q in-use || fail in-use "no in-use bitmap made"
compare in-use iu.qcow2 all
cmp -s iu.qcow2 o.qcow2 || fail in-use "image changed"
# with a leak as well: repaired, both bitmaps kept in use
cp iu.qcow2 iul.qcow2
rt=$(peek_be iul.qcow2 48 8); rb=$(peek_be iul.qcow2 $rt 8)
poke_be iul.qcow2 $rb 2 2
compare in-use-leak iul.qcow2 all
[ "$(qemu-img info o.qcow2 | grep -c in-use)" = 2 ] || fail in-use-leak "bitmaps lost"

echo "$failures failures"
[ "$failures" = 0 ]
