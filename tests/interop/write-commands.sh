#!/bin/bash
# qc-write against qemu-io on the same commands and the same starting
# image: byte-identical image files and the same messages (statistics
# lines aside), in writethrough (qemu-io's default) and writeback mode,
# over fresh images of every kind, images with a snapshot, with qcow2 and
# raw backing files, preallocated, and 1 TiB (L2 slices).
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
norm() { sed -E 's/^[0-9.]+ ([KMGTPE]iB|bytes), [0-9]+ ops; .*$/STATS/; s/^([0-9]+),1,.*$/\1,1,CSV/; s/(qemu-io|qc-write): warning/PROG: warning/' "$1"; }
same() {   # MODE SETUP OPTS SIZE CMD...
    local mode=$1 setup=$2 o=$3 size=$4 args=() c
    shift 4
    for c in "$@"; do args+=(-c "$c"); done
    qemu-img create -f qcow2 ${o:+-o $o} q.qcow2 "$size" >/dev/null
    $setup q.qcow2
    cp q.qcow2 w.qcow2
    qemu-io -t "$mode" "${args[@]}" q.qcow2 > q.out 2>&1; echo "exit $?" >> q.out
    qc-write -t "$mode" w.qcow2 "${args[@]}" > w.out 2>&1; echo "exit $?" >> w.out
    if ! cmp -s <(norm q.out) <(norm w.out); then
        echo "$mode/$setup [$o] $size: messages differ: $*"; diff <(norm q.out) <(norm w.out) | head -6; fail=1
    elif ! cmp -s q.qcow2 w.qcow2; then
        echo "$mode/$setup [$o] $size: images differ: $*"; cmp q.qcow2 w.qcow2 | head -2; fail=1
    else
        echo "ok $mode/$setup [$o] $size"
    fi
}
none() { :; }
snapshot() { qemu-io -c 'write -P 1 0 256k' -c 'write -c -P 2 1M 64k' "$1" >/dev/null; qemu-img snapshot -c s1 "$1"; }
backing() {
    rm -f b.qcow2; qemu-img create -f qcow2 b.qcow2 64M >/dev/null
    qemu-io -c 'write -P 5 0 1M' b.qcow2 >/dev/null
    qemu-img create -f qcow2 -b b.qcow2 -F qcow2 "$1" 64M >/dev/null
}
raw_backing() {
    rm -f b.raw; qemu-img create -f raw b.raw 64M >/dev/null
    qemu-io -f raw -c 'write -P 6 0 1M' b.raw >/dev/null
    qemu-img create -f qcow2 -b b.raw -F raw "$1" 64M >/dev/null
}
prealloc() { qemu-img create -f qcow2 -o preallocation=metadata "$1" 64M >/dev/null; }

for mode in writethrough writeback; do
    same $mode none "" 64M "write -P 1 0 64k" "write -P 2 64k 4k" "write 1M 192k" \
        "read -P 1 0 4k" "write -P 3 0 4k" "discard 64k 64k" "write -z 2M 64k" \
        "write -z 4k 4k" "write -z -u 0 64k" "read -v 1M 16" "flush" "write -P 4 3M 1"
    same $mode snapshot "" 64M "write -P 3 0 4k" "write -P 4 128k 64k" "write -P 5 1M 4k" \
        "discard 192k 64k" "write -P 6 10M 4k" "read -P 2 1M 64k"
    same $mode backing "" 64M "write -P 3 4k 4k" "write -P 4 2M 4k" "write -z 64k 64k" \
        "discard 128k 64k" "read -P 5 192k 4k" "write -z 1M 1k"
    same $mode raw_backing "" 64M "write -P 3 4k 4k" "write -P 4 2M 4k" "write -z 64k 64k" \
        "read -P 6 192k 4k"
    same $mode prealloc "" 64M "write -P 3 4k 4k" "write -z 64k 64k" "discard 128k 64k" \
        "write -P 4 128k 4k"
    same $mode none "" 1T "write -P 1 0 4k" "write -P 2 300G 128k" "write -P 3 600G 64k" \
        "discard 300G 64k"
    same $mode none cluster_size=512 64M "write -P 1 0 9M" "write -P 2 40M 1M" "discard 0 1M" \
        "write -P 3 20M 4k"
    same $mode none extended_l2=on,cluster_size=32k 64M "write -P 1 1k 1k" "write -P 2 5k 3k" \
        "write -z 64k 2k" "write -c -P 3 128k 32k" "write -P 4 130k 1k" "discard 32k 32k" \
        "write -z 160k 33k"
    same $mode none lazy_refcounts=on 64M "write -P 1 0 4k" "flush" "write -P 2 1M 64k" \
        "write -c 2M 64k" "discard 0 64k"
    same $mode none compat=0.10 64M "write -P 1 0 4k" "write -z 64k 64k" "discard 0 64k" \
        "write -c -P 2 1M 64k"
    same $mode none refcount_bits=1 64M "write -P 1 0 4k" "write -c -P 2 1M 64k" \
        "write -c -P 3 2M 64k" "discard 1M 64k" "write -P 4 5M 4k"
    same $mode none refcount_bits=64 64M "write -P 1 0 4k" "write -c -P 2 1M 64k" \
        "write -c -P 3 2M 64k"
    same $mode none compression_type=zstd 64M "write -c -P 7 0 64k" "write -c 64k 64k" \
        "read -P 7 0 64k" "write -P 1 4k 4k"
    same $mode none "" 64M "write 63M 2M" "write -c 0 4k" "write -c 1M 64k" "write -c 1M 64k" \
        "read 64M 1" "write -P 300 0 1" "frobnicate"
done
same unsafe none "" 64M "write -P 1 0 4k" "flush" "write -P 2 1M 64k"
exit $fail
