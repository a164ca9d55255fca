# qc-dump --snapshot ID|NAME shows an internal snapshot's disk: --raw equals
# qemu-img convert -l (by ID, by name and bare), --read slices equal the same
# bytes, --map --json agrees with the bytes and the image file, --l1 lists
# the snapshot's L1 table as the snapshot table names it; a missing or
# damaged snapshot gives qemu-img's message; the active disk is unchanged.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
bad() { echo "MISMATCH $*"; fail=1; }
io() { qemu-io "$@" >/dev/null; }

# The snapshot table read straight from the file: "id name l1_offset l1_size"
snaptable() {
    python3 - "$1" <<'EOF'
import struct, sys
f = open(sys.argv[1], 'rb'); h = f.read(72)
nb, = struct.unpack('>I', h[60:64]); off, = struct.unpack('>Q', h[64:72])
for _ in range(nb):
    f.seek(off); e = f.read(40)
    l1o, l1s, idl, nl = struct.unpack('>QIHH', e[:16])
    extra, = struct.unpack('>I', e[36:40])
    f.seek(off + 40 + extra); sid = f.read(idl).decode(); name = f.read(nl).decode()
    print(sid, name, l1o, l1s)
    off = (off + 40 + extra + idl + nl + 7) & ~7
EOF
}

# --l1 --json entries against the 8-byte words at the snapshot's L1 offset
check_l1() { # IMG SPEC L1OFF L1SIZE
    qc-dump --snapshot "$2" --l1 --json "$1" > l1.json || { bad "$1 $2: --l1 failed"; return; }
    python3 - "$1" "$3" "$4" l1.json <<'EOF' || bad "$1 $2: --l1 differs from the file"
import json, struct, sys
img, off, size, js = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
l1 = json.load(open(js))['l1']
f = open(img, 'rb'); f.seek(off); raw = f.read(8 * size)
want = [struct.unpack('>Q', raw[8*i:8*i+8])[0] if 8*i+8 <= len(raw) else 0 for i in range(size)]
got = [e['raw'] for e in l1['entries']]
ok = l1['offset'] == off and l1['size'] == size and got == want
if not ok: print(l1['offset'], l1['size'], got[:8], want[:8])
sys.exit(0 if ok else 1)
EOF
}

# --map --json against the converted bytes: unallocated or zero ranges read
# as zeros; data ranges of the top image with an offset hold the file's bytes
# (except compressed clusters, which have no offset); ranges cover the disk.
check_map() { # IMG SPEC RAW
    qc-dump --snapshot "$2" --map --json "$1" > map.json || { bad "$1 $2: --map failed"; return; }
    python3 - "$1" "$3" map.json <<'EOF' || bad "$1 $2: --map disagrees with the bytes"
import json, os, sys
img, rawf, js = sys.argv[1:4]
m = json.load(open(js)); raw = open(rawf, 'rb').read(); f = open(img, 'rb')
pos = 0; ok = True
for r in m:
    s, n = r['start'], r['length']
    ok &= s == pos; pos = s + n
    chunk = raw[s:s+n]
    if r['zero'] or not r['present']:
        ok &= chunk.count(0) == len(chunk)
    if r['data'] and 'offset' in r and r['depth'] == 0:
        f.seek(r['offset']); ok &= f.read(n).ljust(n, b'\0') == chunk
ok &= pos == len(raw)
sys.exit(0 if ok else 1)
EOF
}

check_snapshot() { # IMG ID NAME L1OFF L1SIZE
    local img=$1 id=$2 name=$3 spec
    rm -f q.raw
    qemu-img convert -l "snapshot.id=$id" -O raw "$img" q.raw || { bad "$img $id: qemu-img failed"; return; }
    for spec in "$id" "$name"; do
        rm -f o.raw
        qc-dump --snapshot "$spec" --raw o.raw "$img" && cmp -s q.raw o.raw ||
            bad "$img --snapshot $spec: --raw differs from convert -l snapshot.id=$id"
    done
    rm -f n.raw
    qemu-img convert -l "snapshot.name=$name" -O raw "$img" n.raw && cmp -s q.raw n.raw ||
        bad "$img: convert by name $name differs from by id $id"
    local size off len
    size=$(stat -c %s q.raw)
    for off in 0 4096 65000 $((size / 2 + 123)) $((size - 100)); do
        len=3000; [ $((off + len)) -gt "$size" ] && len=$((size - off))
        qc-dump --snapshot "$name" --backing --read $off $len "$img" > r.txt &&
            hexdump -C -s $off -n $len q.raw | cmp -s - r.txt || bad "$img --snapshot $name --read $off $len"
    done
    check_map "$img" "$id" q.raw
    check_l1 "$img" "$name" "$4" "$5"
    echo "ok $img snapshot $id ($name, $size bytes)"
}

check_image() { # IMG: every snapshot, a missing one, and the active disk
    local img=$1 id name l1o l1s before
    before=$(qc-dump --raw /dev/stdout "$img" --force 2>/dev/null | md5sum)
    while read -r id name l1o l1s; do
        check_snapshot "$img" "$id" "$name" "$l1o" "$l1s"
    done < <(snaptable "$img")
    rm -f q.raw o.raw
    qemu-img convert -O raw "$img" q.raw; qc-dump --raw o.raw "$img"
    cmp -s q.raw o.raw || bad "$img: active disk differs"
    [ "$(qc-dump --raw /dev/stdout "$img" --force 2>/dev/null | md5sum)" = "$before" ] ||
        bad "$img: active disk changed"
    rm -f q.raw
    qemu-img convert -l nosuch -O raw "$img" q.raw 2> qemu.err; echo "qemu-img exit $?" >> qemu.err
    qc-dump --snapshot nosuch --raw o.raw "$img" 2> qc.err; echo "qc-dump exit $?" >> qc.err
    sed 's/^qemu-img/qc-dump/' qemu.err | cmp -s - qc.err || { bad "$img: missing snapshot"; cat qemu.err qc.err; }
}

# One image: writes with different patterns between snapshots, a compressed
# cluster, a discard, a resize between two snapshots.
qemu-img create -q -f qcow2 a.qcow2 1M
io -c 'write -P 0x11 0 64k' -c 'write -c -P 0x12 128k 64k' -c 'write -P 0x13 900k 3k' a.qcow2
qemu-img snapshot -c s1 a.qcow2
io -c 'write -P 0x21 32k 64k' -c 'discard 128k 64k' -c 'write -z 900k 4k' a.qcow2
qemu-img snapshot -c s2 a.qcow2
qemu-img resize -q a.qcow2 3M
io -c 'write -P 0x31 2M 64k' -c 'write -c -P 0x32 1M 64k' a.qcow2
qemu-img snapshot -c 3 a.qcow2      # a name that is another snapshot's ID
io -c 'write -P 0x41 0 1M' a.qcow2
check_image a.qcow2
# "3" is snapshot 3's ID and also a name: the ID wins, as in qemu-img
qemu-img convert -l 3 -O raw a.qcow2 q.raw; rm -f o.raw; qc-dump --snapshot 3 --raw o.raw a.qcow2
cmp -s q.raw o.raw || bad "bare 3"

# An overlay with snapshots over a backing file: unallocated clusters of a
# snapshot read through the backing file.
qemu-img create -q -f qcow2 -o cluster_size=4k base.qcow2 1M
io -c 'write -P 0xaa 0 1M' -c 'write -c -P 0xab 512k 64k' base.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 top.qcow2 1M
io -c 'write -P 0x11 64k 4k' -c 'write -z 128k 64k' top.qcow2
qemu-img snapshot -c first top.qcow2
io -c 'write -P 0x22 0 256k' -c 'write -c -P 0x23 768k 8k' top.qcow2
qemu-img snapshot -c second top.qcow2
io -c 'discard 0 1M' top.qcow2
check_image top.qcow2

# Extended L2 and zstd
qemu-img create -q -f qcow2 -o extended_l2=on,compression_type=zstd x.qcow2 2M
io -c 'write -P 0x51 0 3k' -c 'write -c -P 0x52 1M 64k' x.qcow2
qemu-img snapshot -c only x.qcow2
io -c 'write -P 0x53 1k 1k' x.qcow2
check_image x.qcow2

# Damaged snapshot L1 tables: an unaligned offset is refused with qemu-img's
# message; one past the end of the file reads as zeros, as in qemu-img.
l1off_field() { # IMG INDEX NEWOFFSET: patch snapshot INDEX's l1_table_offset
    python3 - "$@" <<'EOF'
import struct, sys
img, idx, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = open(img, 'r+b'); h = f.read(72); off, = struct.unpack('>Q', h[64:72])
for _ in range(idx):
    f.seek(off); e = f.read(40); idl, nl = struct.unpack('>HH', e[12:16])
    extra, = struct.unpack('>I', e[36:40]); off = (off + 40 + extra + idl + nl + 7) & ~7
f.seek(off); f.write(struct.pack('>Q', new))
EOF
}
for case in unaligned:$((0x10000 + 512)) past-eof:$((1 << 40)); do
    cp a.qcow2 d.qcow2
    l1off_field d.qcow2 1 "${case#*:}"
    rm -f q.raw o.raw
    qemu-img convert -l snapshot.id=2 -O raw d.qcow2 q.raw 2> qemu.err; echo "exit $?" >> qemu.err
    qc-dump --snapshot 2 --raw o.raw d.qcow2 2> qc.err; echo "exit $?" >> qc.err
    sed 's/^qemu-img/qc-dump/' qemu.err | cmp -s - qc.err || { bad "${case%%:*}: messages"; cat qemu.err qc.err; }
    if [ -f q.raw ]; then cmp q.raw o.raw || bad "${case%%:*}: bytes"; fi
    echo "ok damaged L1 ${case%%:*}: $(head -1 qc.err)"
done
# A snapshot whose L1 entry names an unaligned L2 table: the corruption is
# reported and the read fails where qemu-img's does, with its messages;
# the active disk still converts.
qemu-img create -q -f qcow2 e.qcow2 1M
io -c 'write -P 0x61 0 64k' e.qcow2
qemu-img snapshot -c s1 e.qcow2
io -c 'write -P 0x62 0 64k' e.qcow2
python3 - e.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); h = f.read(72); off, = struct.unpack('>Q', h[64:72])
f.seek(off); l1, = struct.unpack('>Q', f.read(8))
f.seek(l1); e, = struct.unpack('>Q', f.read(8)); f.seek(l1); f.write(struct.pack('>Q', e + 512))
PY
rm -f q.raw o.raw
qemu-img convert -l s1 -O raw e.qcow2 q.raw 2> qemu.err; echo "exit $?" >> qemu.err
qc-dump --snapshot s1 --raw o.raw e.qcow2 2> qc.err; echo "exit $?" >> qc.err
sed 's/^qemu-img:/qc-dump:/' qemu.err | cmp -s - qc.err || { bad "unaligned L2 of a snapshot: messages"; cat qemu.err qc.err; }
qc-dump --snapshot s1 --l1 e.qcow2 | grep -q 'unaligned' || bad "unaligned L2 of a snapshot: --l1 does not say so"
rm -f q.raw o.raw
qemu-img convert -O raw e.qcow2 q.raw; qc-dump --raw o.raw e.qcow2
cmp -s q.raw o.raw || bad "damaged snapshot: active disk differs"
echo "ok damaged snapshot L2 offset: $(head -1 qc.err)"
exit $fail
