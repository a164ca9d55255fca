#!/bin/bash
# Not just the same bytes: the same writes and flushes in the same order
# as qemu-io (what a crash can interrupt), compared at the system-call
# level.  Requests that QEMU splits into concurrent pieces are left out.
. "$TESTS/lib.sh"
skip_without_qemu
command -v strace >/dev/null 2>&1 || { echo "strace not installed"; exit 77; }
fail=0
trace() {  # OUT PROGRAM ARGS...
    local out=$1; shift
    strace -f -qq -e trace=pwrite64,pwritev,fdatasync,fallocate,ftruncate -o "$out.raw" "$@" \
        >/dev/null 2>&1
    sed -E 's/^[0-9]+ +//; s/^(pwrite64|pwritev)\([0-9]+, .*, ([0-9]+)\)( += [0-9]+)?$/write @\2/;
            s/^fdatasync.*/sync/; s/^fallocate\([0-9]+, ([A-Z_|]+), ([0-9]+), ([0-9]+)\).*/fallocate \1 \2 \3/;
            s/^ftruncate\([0-9]+, ([0-9]+)\).*/truncate \1/' "$out.raw" | grep -v '^+++' > "$out"
}
seq_same() {  # MODE SETUP OPTS CMD...
    local mode=$1 setup=$2 o=$3 args=() c
    shift 3
    for c in "$@"; do args+=(-c "$c"); done
    qemu-img create -f qcow2 ${o:+-o $o} q.qcow2 64M >/dev/null
    $setup q.qcow2
    cp q.qcow2 w.qcow2
    trace q.seq qemu-io -t "$mode" "${args[@]}" q.qcow2
    trace w.seq qc-write -t "$mode" w.qcow2 "${args[@]}"
    if cmp -s q.seq w.seq; then
        echo "ok $mode/$setup [$o] ($(wc -l < q.seq) calls)"
    else
        echo "$mode/$setup [$o]: sequences differ: $*"; diff q.seq w.seq | head -8; fail=1
    fi
}
none() { :; }
snapshot() { qemu-io -c 'write -P 1 0 256k' -c 'write -c -P 2 1M 64k' "$1" >/dev/null; qemu-img snapshot -c s1 "$1"; }
for mode in writethrough writeback; do
    seq_same $mode none "" "write -P 1 0 64k" "write -P 2 64k 4k" "write -P 3 1M 4k" "write -P 4 0 4k" \
        "discard 64k 64k" "write -z 2M 64k" "flush"
    seq_same $mode snapshot "" "write -P 3 0 4k" "write -P 4 128k 64k" "write -P 5 1M 4k" \
        "discard 192k 64k" "write -P 6 10M 4k"
    seq_same $mode none lazy_refcounts=on "write -P 1 0 4k" "flush" "write -P 2 1M 64k" \
        "write -c 2M 64k" "discard 0 64k"
    seq_same $mode none extended_l2=on,cluster_size=32k "write -P 1 1k 1k" "write -P 2 5k 3k" \
        "write -z 64k 2k" "write -c -P 3 128k 32k" "write -P 4 130k 1k" "discard 32k 32k"
    seq_same $mode none refcount_bits=1 "write -P 1 0 4k" "write -c -P 2 1M 64k" \
        "write -c -P 3 2M 64k" "discard 1M 64k"
    seq_same $mode none cluster_size=512 "write -P 1 0 4k" "write -P 2 8M 512" "write -P 3 32M 1k"
done
exit $fail
