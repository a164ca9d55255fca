#!/bin/bash
# qc-dump --hash equals sha256sum/sha1sum/md5sum of qemu-img convert -O raw
# output; --hash-map's blocks cover the disk once, in order, and each
# block's sha256 is that of the same slice of the converted file; images
# QEMU cannot read are refused as qemu-img convert refuses them.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"

fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
io() { qemu-io "$@" >/dev/null || { echo "FAIL: qemu-io $*"; exit 1; }; }

check_map() {
    qc-dump --hash-map "$1" > map.jsonl || { fail "$1" "--hash-map exit $?"; return; }
    python3 - "$1" q.raw map.jsonl <<'PY' || fail "$1" "--hash-map"
import hashlib, json, sys
img, raw, jl = sys.argv[1:]
data = open(raw, 'rb').read()
cs = 1 << int.from_bytes(open(img, 'rb').read(24)[20:24], 'big')
pos, bad = 0, 0
for n, line in enumerate(open(jl), 1):
    b = json.loads(line)
    assert set(b) == {"offset", "length", "host", "sha256"}, line
    if b["offset"] != pos or b["length"] != min(cs, len(data) - pos):
        print("line %d: block %d+%d, expected at %d" % (n, b["offset"], b["length"], pos)); bad = 1
    if hashlib.sha256(data[b["offset"]:b["offset"] + b["length"]]).hexdigest() != b["sha256"]:
        print("line %d: sha256 differs" % n); bad = 1
    assert b["host"] is None or (isinstance(b["host"], int) and b["host"] % 512 == 0), line
    pos = b["offset"] + b["length"]
if pos != len(data):
    print("blocks end at %d, disk is %d" % (pos, len(data))); bad = 1
sys.exit(bad)
PY
}

check() {
    local img=$1 alg want got
    rm -f q.raw
    qemu-img convert -O raw "$img" q.raw || { fail "$img" "qemu-img convert failed"; return; }
    for alg in sha256 sha1 md5; do
        want="$(${alg}sum < q.raw | cut -d' ' -f1)  $img"
        got=$(qc-dump --hash $alg "$img") || { fail "$img" "--hash $alg exit $?"; continue; }
        [ "$got" = "$want" ] || fail "$img" "--hash $alg: '$got', want '$want'"
    done
    [ "$(qc-dump --hash "$img")" = "$(qc-dump --hash sha256 "$img")" ] || fail "$img" "default is not sha256"
    want=$(sha1sum < q.raw | cut -d' ' -f1)
    got=$(qc-dump --json --hash=sha1 "$img" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hash"]; print(h["algorithm"], h["value"])')
    [ "$got" = "sha1 $want" ] || fail "$img" "--json: '$got'"
    check_map "$img"
    echo "ok $img"
}

# data, a compressed cluster (at 2M, one cluster long), zeros, a partial
# cluster and a discard
patterns() {
    io -c 'write -P 0x11 0 64k' -c "write -c -P 0x22 2M $2" -c 'write -z 256k 64k' \
       -c 'write -P 0x33 1M 3k' -c 'write -P 0x44 1536k 512' -c 'discard 1M 1k' "$1"
}
for opts in cluster_size=64k extended_l2=on cluster_size=512 cluster_size=2M compat=0.10 compression_type=zstd; do
    img=img-${opts//[=,]/-}.qcow2
    qemu-img create -q -f qcow2 -o "$opts" "$img" 5M
    cs=$((1 << $(peek_be "$img" 20 4)))
    patterns "$img" $cs
    check "$img"
done
# an odd size: the last block is shorter
qemu-img create -q -f qcow2 odd.qcow2 1049088
io -c 'write -P 0x55 1048576 512' odd.qcow2
check odd.qcow2
# a backing file next to the overlay, named relatively
mkdir -p dir
qemu-img create -q -f qcow2 dir/base.qcow2 2M
io -c 'write -c -P 0xab 512k 64k' -c 'write -P 0xaa 0 512k' -c 'write -P 0xac 1M 1M' dir/base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 dir/top.qcow2 3M
io -c 'write -P 0x11 64k 4k' -c 'write -z 128k 64k' dir/top.qcow2
check dir/top.qcow2
# blocks from the backing file have no host offset in the overlay
qc-dump --hash-map dir/top.qcow2 | sed -n 3p | grep -q '"host": null' || fail top "backing block has a host"
# an external data file: its blocks are not in the image file
qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 1M
io -c 'write -P 0x11 64k 64k' df.qcow2
check df.qcow2
qc-dump --hash-map df.qcow2 | grep -vq '"host": null' && fail df "a data-file block has a host"
# host offsets: a written cluster's bytes are where --hash-map says
qc-dump --hash-map img-cluster_size-64k.qcow2 | sed -n 1p > first.json
host=$(python3 -c 'import json; print(json.load(open("first.json"))["host"])')
[ "$(dd if=img-cluster_size-64k.qcow2 bs=64k skip=$((host / 65536)) count=1 status=none | sha256sum | cut -d' ' -f1)" = \
  "$(python3 -c 'import json; print(json.load(open("first.json"))["sha256"])')" ] || fail host "first block not at its host offset"

# refusals: what qemu-img convert refuses, qc-dump refuses
refused() {
    local img=$1 what=$2
    qemu-img convert -O raw "$img" r.raw 2> q.err && { fail "$img" "qemu-img convert succeeded"; return; }
    for args in --hash --hash-map; do
        qc-dump $args "$img" > o.out 2> o.err && fail "$img" "qc-dump $args succeeded"
        [ -s o.out ] && [ "$args" = --hash ] && fail "$img" "qc-dump $args printed a hash"
        if [ "$what" = message ]; then
            [ "$(sed 's/^qemu-img: //' q.err)" = "$(sed 's/^qc-dump: //' o.err)" ] ||
                fail "$img" "$args: '$(cat o.err)', qemu-img: '$(cat q.err)'"
        fi
    done
    echo "ok refused $img"
}
for try in 1 2 3 4 5; do
    qemu-img create -q -f qcow2 --object secret,id=sec0,data=pw \
        -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 e.qcow2 16M && break
    [ $try = 5 ] && { echo "FAIL: qemu-img could not create e.qcow2"; exit 1; }
done
refused e.qcow2 message
# a compressed cluster that does not inflate
qemu-img create -q -f qcow2 comp.qcow2 1M
io -c 'write -c -P 0x22 0 64k' comp.qcow2
l1=$(peek_be comp.qcow2 40 8)
l2=$(( $(peek_be comp.qcow2 $l1 8) & 0xffffffffffffff ))
c=$(( $(peek_be comp.qcow2 $l2 8) & 0x3fffffffffffff ))
poke comp.qcow2 $c "ff ff ff ff"
refused comp.qcow2 message
# an L2 table at an unaligned offset
cp img-cluster_size-64k.qcow2 badl2.qcow2
poke_be badl2.qcow2 $(peek_be badl2.qcow2 40 8) 8 $((0x8000000000030200))
refused badl2.qcow2 message
# an internal snapshot's disk: the hash of qemu-img convert -l's output
qemu-img create -q -f qcow2 snap.qcow2 4M
qemu-io -c 'write -P 1 0 1M' snap.qcow2 >/dev/null
qemu-img snapshot -c s1 snap.qcow2
qemu-io -c 'write -P 2 512k 1M' snap.qcow2 >/dev/null
qemu-img convert -l snapshot.id=1 -O raw snap.qcow2 snap1.raw
for id in 1 s1; do
    got=$(qc-dump --snapshot $id --hash snap.qcow2 | cut -d' ' -f1)
    [ "$got" = "$(sha256sum <snap1.raw | cut -d' ' -f1)" ] || fail "snapshot $id" "--hash differs from convert -l"
done

exit $((fails > 0))
