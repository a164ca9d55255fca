#!/bin/bash
# Encrypted images, keyless: qc-check, qc-dump --map and qc-repair read
# metadata only (never encrypted) and must give what qemu-img gives WITH
# the key -- numbers, lines and exit status -- plus one note on stderr that
# guest data was not read.  Reads of guest bytes (qc-dump --read/--raw,
# qc-write) refuse as QEMU refuses without the key.  Damaged LUKS headers
# are refused with the message QEMU's keyed open gives.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"

fails=0 compared=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
SEC="--object secret,id=sec0,data=pw"
keyed() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"; }
# qemu-img names an --image-opts image by its options: the file name here
norm() { sed -e "s|driver=qcow2,file.filename=\([^,']*\),encrypt.key-secret=sec0|\1|g"; }
ours() { grep -v "^$1: note: .*: encrypted image: .* without the key, guest data not read$"; }

luks_image() {
    rm -f "$1"
    # QEMU times PBKDF2 in CPU time at create and fails ("Unable to get
    # accurate CPU usage") when a loaded machine starves the benchmark
    local try
    for try in 1 2 3 4 5; do
        qemu-img create -q -f qcow2 $SEC -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 "$1" 64M && break
        [ $try = 5 ] && { echo "FAIL: qemu-img could not create $1"; exit 1; }
    done
    qemu-io $SEC --image-opts "$(keyed "$1")" -c 'write -P 5 0 128k' -c 'write -P 6 2M 64k' >/dev/null ||
        { echo "FAIL: qemu-io could not write $1"; exit 1; }
}

# same_check IMG LABEL: qc-check keyless against qemu-img check with the key
same_check() {
    local img=$1 label=$2 qr or
    compared=$((compared + 1))
    qemu-img check $SEC --image-opts "$(keyed "$img")" >q.out 2>q.err; qr=$?
    norm <q.err >q.err2
    qc-check "$img" >o.out 2>o.err; or=$?
    [ "$qr" = "$or" ] || fail "$label" "qc-check exit $or, qemu-img check (keyed) $qr"
    cmp -s q.out o.out || { fail "$label" "stdout differs"; diff q.out o.out | head -5; }
    ours qc-check <o.err >o.err2
    cmp -s q.err2 o.err2 || { fail "$label" "stderr differs"; diff q.err2 o.err2 | head -5; }
    if [ "$qr" != 1 ] || grep -q "^qc-check: note:" o.err; then
        grep -q "^qc-check: note: $img: encrypted image: checked without the key" o.err ||
            fail "$label" "no note that guest data was not read"
    fi
}

same_map() {
    local img=$1 label=$2 qr or
    compared=$((compared + 1))
    qemu-img map --output=json $SEC --image-opts "$(keyed "$img")" >q.out 2>q.err; qr=$?
    qc-dump --map --json "$img" >o.out 2>o.err; or=$?
    [ "$qr" = "$or" ] || fail "$label" "qc-dump --map exit $or, qemu-img map (keyed) $qr"
    cmp -s q.out o.out || { fail "$label" "map differs"; diff q.out o.out | head -5; }
    if [ "$qr" = 0 ]; then
        grep -q "^qc-dump: note: $img: encrypted image: mapped without the key" o.err ||
            fail "$label" "map: no note on stderr"
    else
        norm <q.err | sed 's/^qemu-img:/qc-dump:/' >q.err2
        cmp -s q.err2 o.err || { fail "$label" "map error differs"; diff q.err2 o.err | head -5; }
    fi
}

same_repair() {
    local img=$1 label=$2 qr or
    compared=$((compared + 1))
    cp "$img" q.img; cp "$img" o.img
    qemu-img check -r all $SEC --image-opts "$(keyed q.img)" >q.out 2>q.err; qr=$?
    qc-repair -r all o.img >o.out 2>o.err; or=$?
    [ "$qr" = "$or" ] || fail "$label" "qc-repair exit $or, qemu-img check -r all (keyed) $qr"
    cmp -s q.out o.out || { fail "$label" "repair stdout differs"; diff q.out o.out | head -5; }
    norm <q.err >q.err2; ours qc-repair <o.err >o.err2
    cmp -s q.err2 o.err2 || { fail "$label" "repair stderr differs"; diff q.err2 o.err2 | head -5; }
    grep -q "^qc-repair: note: o.img: encrypted image: repaired without the key" o.err ||
        fail "$label" "repair: no note on stderr"
    # (freed clusters may differ: QEMU discards them, qc-repair keeps their bytes)
    qemu-img check $SEC --image-opts "$(keyed o.img)" >/dev/null 2>&1 ||
        fail "$label" "not clean after qc-repair (keyed check)"
    [ "$(guest_sha q.img)" = "$(guest_sha o.img)" ] || fail "$label" "guest data differs from QEMU's repair"
}
guest_sha() {
    qemu-img convert -O raw $SEC --image-opts "$(keyed "$1")" g.raw && sha256sum <g.raw; rm -f g.raw
}

luks_image base.qcow2
# crypto area at 0x40000 (cluster 4): the LUKS header; data from 0x250000
H=$((0x40000))

cp base.qcow2 a.qcow2
same_check a.qcow2 clean; same_map a.qcow2 clean-map

# a leak and a corruption, where the check counts them the same keyed or not
cp base.qcow2 b.qcow2; poke_be b.qcow2 $((0x20000 + 2 * 60)) 2 1
same_check b.qcow2 leak; same_repair b.qcow2 leak-repair
data=$(( $(peek_be b.qcow2 $(( $(peek_be b.qcow2 $(( $(peek_be b.qcow2 40 8) )) 8) & 0xffffffffffffff )) 8) & 0xfffffffffffe00 ))
cp base.qcow2 c.qcow2; poke_be c.qcow2 $((0x20000 + 2 * (data >> 16))) 2 0
same_check c.qcow2 zeroed-data-refcount; same_repair c.qcow2 zeroed-data-refcount-repair

# damaged LUKS headers: QEMU's keyed open refuses each, with its reason
d=0
while read -r off width val label; do
    d=$((d + 1)); cp base.qcow2 "d$d.qcow2"
    poke_be "d$d.qcow2" $((H + off)) "$width" "$val"
    same_check "d$d.qcow2" "luks-$label"; same_map "d$d.qcow2" "luks-$label-map"
done <<'CASES'
0 1 0 magic
6 2 2 version
8 4 0x78787800 cipher-name
40 4 0x7a7a7a00 cipher-mode
72 4 0x6d643900 hash
104 4 1 payload-offset
108 4 16 key-bytes
164 4 0 key-iterations
208 4 0 slot-state
212 4 0 slot-iterations
252 4 3999 slot-stripes
248 4 0 slot-offset
208 4 0xdead no-enabled-slot
CASES
# the crypto area too short for the header, and for the key material
cp base.qcow2 e.qcow2; poke_be e.qcow2 128 8 500; same_check e.qcow2 area-too-short
cp base.qcow2 f.qcow2; poke_be f.qcow2 128 8 1000; same_check f.qcow2 area-short-of-key

# AES (crypt_method 1) needs no header: keyed, the image is checked as plain
rm -f p.qcow2; qemu-img create -q -f qcow2 p.qcow2 64M
qemu-io -c 'write -P 7 0 64k' p.qcow2 >/dev/null; poke_be p.qcow2 32 4 1
same_check p.qcow2 aes; same_map p.qcow2 aes-map

# guest bytes need the key: refused as QEMU refuses without it
compared=$((compared + 1))
qemu-img convert -O raw a.qcow2 q.raw 2>q.err; qr=$?
qc-dump --raw o.raw a.qcow2 2>o.err; or=$?
sed 's/^qemu-img:/qc-dump:/' q.err >q.err2
[ "$qr" = 1 ] && [ "$or" = 1 ] || fail raw "exit $or (qemu-img convert $qr)"
cmp -s q.err2 o.err || { fail raw "message differs"; diff q.err2 o.err; }
[ ! -e o.raw ] || fail raw "output file created"
qc-dump --read 0 512 a.qcow2 >o.out 2>o.err; or=$?
[ "$or" = 1 ] && [ ! -s o.out ] && cmp -s q.err2 o.err || fail read "--read not refused as QEMU refuses"
rm -f top.qcow2; qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 top.qcow2
qemu-img convert -O raw top.qcow2 q.raw 2>q.err; sed 's/^qemu-img:/qc-dump:/' q.err >q.err2
qc-dump --raw o.raw top.qcow2 2>o.err
cmp -s q.err2 o.err || { fail raw-backing "message differs"; diff q.err2 o.err; }
# a damaged LUKS header: keyless, QEMU asks for the key before it reads it
compared=$((compared + 1))
qemu-img convert -O raw d1.qcow2 q.raw 2>q.err; sed 's/^qemu-img:/qc-dump:/' q.err >q.err2
qc-dump --raw o.raw d1.qcow2 2>o.err
cmp -s q.err2 o.err || { fail raw-damaged-luks "message differs"; diff q.err2 o.err; }
cp a.qcow2 w.qcow2
qemu-io -c 'write 0 512' w.qcow2 >q.out 2>q.err; qr=$?
qc-write -c 'write 0 512' w.qcow2 >o.out 2>o.err; or=$?
sed 's/^qemu-io:/qc-write:/' q.err >q.err2
[ "$qr" = "$or" ] && cmp -s q.err2 o.err || { fail write "qc-write not refused as qemu-io ($or vs $qr)"; diff q.err2 o.err; }
cmp -s a.qcow2 w.qcow2 || fail write "the image changed"

echo "$compared comparisons, $fails failures"
[ "$fails" = 0 ]
