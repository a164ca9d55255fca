#!/bin/bash
# The metadata overlap check against qemu-io: images whose refcounts or
# tables make the next write land on metadata (qemu-iotests 060 and a data
# cluster, L2 table or compressed cluster allocated onto each kind of
# structure made to look free), run with qemu-io and with qc-write on
# copies.  stdout, stderr and exit status must be the same (statistics
# lines aside), and so must the files: the corrupt bit, the header and
# every table byte for byte.  Every case runs in writethrough and
# writeback mode.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
cases=0
norm() { sed -E 's/^[0-9.]+ ([KMGTPE]iB|bytes), [0-9]+ ops; .*$/STATS/' "$1"; }

# The image's layout as qemu-img creates it (64 MiB or, where a second L2
# table is wanted, 1 GiB; 64 KiB clusters): header 0,
# reftable 0x10000, refblock 0x20000, L1 0x30000; the first write puts
# its L2 table at 0x40000 and its data at 0x50000.
rt=0x10000 rb=0x20000 l1=0x30000 l2=0x40000

# refcount_zero IMG CLUSTER: the cluster looks free (16-bit refcounts)
refcount_zero() { poke_be "$1" $((rb + 2 * $2)) 2 0; }
cluster_of() { echo $(($(peek_be "$1" "$2" 8) / 65536)); }
features() { [ "$(peek_be "$1" 4 4)" = 3 ] && echo "incompatible features $(peek_be "$1" 72 8)" || echo v2; }

same() {   # NAME OPTS SETUP CMD...
    local name=$1 o=$2 setup=$3 args=() c mode
    shift 3
    for c in "$@"; do args+=(-c "$c"); done
    for mode in writethrough writeback; do
        cases=$((cases + 1))
        rm -f q.qcow2
        qemu-img create -f qcow2 ${o:+-o $o} q.qcow2 "${SIZE:-64M}" >/dev/null
        $setup q.qcow2
        cp q.qcow2 w.qcow2
        qemu-io -t $mode "${args[@]}" q.qcow2 > q.out 2> q.err; echo "exit $?" >> q.out
        qc-write -t $mode w.qcow2 "${args[@]}" > w.out 2> w.err; echo "exit $?" >> w.out
        if ! cmp -s <(norm q.out) <(norm w.out); then
            echo "$name/$mode: stdout differs: $*"; diff <(norm q.out) <(norm w.out) | head -6; fail=1
        elif ! cmp -s q.err w.err; then
            echo "$name/$mode: stderr differs: $*"; diff q.err w.err | head -6; fail=1
        elif ! cmp -s q.qcow2 w.qcow2; then
            echo "$name/$mode: images differ: $*"; cmp q.qcow2 w.qcow2 | head -2; fail=1
        else
            echo "ok $name/$mode ($(features w.qcow2)): $(head -c 120 q.err)"
        fi
    done
}

first_write() { qemu-io -c 'write -P 1 0 64k' "$1" >/dev/null; }
with_snapshot() { first_write "$1"; qemu-img snapshot -c s1 "$1"; }

# qemu-iotests 060, "unallocated image header"; then every later request
# finds no medium, a flush succeeds
header() { first_write "$1"; refcount_zero "$1" 0; }
same header "" header "write 64k 64k" "read 0 512" "write 0 4k" "flush" "discard 0 64k" \
    "write -z 0 64k"
# the same without the first write: the L2 table would go to offset 0
header_only() { refcount_zero "$1" 0; }
same header-no-l2 "" header_only "write 64k 64k" "read 0 512"
# 060 "empty refcount table": the new refcount block would go into the
# refcount table itself (its write is refused, the table stays)
empty_reftable() { poke_be "$1" $rt 8 0; }
same empty-reftable "" empty_reftable "write 0 64k" "read 0 4k"
# 060 "discarding with an unaligned refblock": the tail piece of the
# discard finds no medium
unaligned_refblock() { qemu-io -c 'write 0 128k' "$1" >/dev/null; poke_be "$1" $rt 8 0x2a00; }
same unaligned-refblock "" unaligned_refblock "discard 0 65537" "read 0 4k"
# 060 "L2 reference into L1": the L2 table written by the cache is the L1
l2_into_l1() { poke_be "$1" $l1 8 0x8000000000030000; }
same l2-into-l1 "" l2_into_l1 "write -P 0x2a 0 512"
# 060 "cluster data reference into refcount block": an existing data
# cluster (written in place) that is the refcount block
data_into_refblock() {
    truncate -s $((l2 + 65536)) "$1"
    poke_be "$1" $l1 8 0x8000000000040000
    poke_be "$1" $((rb + 8)) 2 1
    poke_be "$1" $l2 8 0x8000000000020000
}
same data-into-refblock "" data_into_refblock "write -P 0x2a 0 512"

# a new data cluster allocated onto each structure made to look free
for target in 1:refcount-table 2:refcount-block 3:active-l1 4:active-l2; do
    n=${target%%:*}
    eval "free_$n() { first_write \"\$1\"; refcount_zero \"\$1\" $n; }"
    same "data-on-${target#*:}" "" free_$n "write -P 2 1M 64k" "read -P 1 0 4k"
    SIZE=1G same "l2-on-${target#*:}" "" free_$n "write -P 2 600M 4k"
    same "compressed-on-${target#*:}" "" free_$n "write -c -P 3 2M 64k"
done
# the snapshot table and the snapshot's L1 table
free_snapshot_table() { with_snapshot "$1"; refcount_zero "$1" "$(($(peek_be "$1" 64 8) / 65536))"; }
same data-on-snapshot-table "" free_snapshot_table "write -P 2 1M 64k"
free_snapshot_l1() {
    with_snapshot "$1"
    # the snapshot's L1 table offset: bytes 0-7 of the first entry
    refcount_zero "$1" "$(cluster_of "$1" "$(peek_be "$1" 64 8)")"
}
same data-on-snapshot-l1 "" free_snapshot_l1 "write -P 2 1M 64k"
# a copy on write of a shared cluster whose new place is the L2 table
cow_on_l2() { with_snapshot "$1"; refcount_zero "$1" 4; }
same cow-on-l2 "" cow_on_l2 "write -P 4 4k 4k"

# v2 images have no corrupt bit: QEMU still says it marks the image and
# rewrites its header
same v2-header compat=0.10 header "write 64k 64k" "read 0 512"
v2_free_l2() { first_write "$1"; refcount_zero "$1" 4; }
same v2-data-on-l2 compat=0.10 v2_free_l2 "write -P 2 1M 64k" "write 8M 4k"
same v2-l2-into-l1 compat=0.10 l2_into_l1 "write -P 0x2a 0 512"

# a healthy image is not refused
SIZE=1G same healthy "" first_write "write -P 2 1M 64k" "write -c 2M 64k" "write -P 3 600M 4k" \
    "discard 0 64k" "write -z 8M 64k"
echo "$cases cases"
exit $fail
