#!/bin/bash
# qc-repair on states QEMU itself leaves behind, and on images whose repair
# must rebuild the refcount structure: lazy refcounts and qemu-io abort,
# several L2 tables, 512-byte clusters where the new refcount table is
# larger than the old one, refcount_bits=1, compressed clusters shared with
# snapshots.  Same report as qemu-img check -r, then a clean image with the
# guest data it had.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
. "$TESTS/interop/repair-common.bash"
cd "$TEST_DIR"
# qemu-io ... abort, without the shell's "Aborted" notice
qemu_io_abort() { sh -c 'qemu-io "$@"; true' sh "$@" >/dev/null 2>&1; }

both() { same_repair "$1" "$2" all "${3:-exact}"; same_repair "$1" "$2-leaks" leaks "${3:-exact}"; }

# lazy refcounts, one write, abort: dirty bit and refcounts 0
rm -f a.qcow2; qemu-img create -f qcow2 -o lazy_refcounts=on a.qcow2 64M >/dev/null
qemu_io_abort -c 'write -P 0x5a 0 512' -c abort a.qcow2
both a.qcow2 lazy-abort
# the dirty bit is gone after the repair
cp a.qcow2 b.qcow2; "$QC_REPAIR" b.qcow2 >/dev/null 2>&1
[ $(( $(peek_be b.qcow2 72 8) & 1 )) = 0 ] || repair_fail lazy-abort-dirty "dirty bit still set"

# lazy refcounts, 4k clusters, data first, then writes across several L2 tables
rm -f a.qcow2; qemu-img create -f qcow2 -o lazy_refcounts=on,cluster_size=4096 a.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 64k' a.qcow2 >/dev/null
qemu_io_abort -c 'write -P 2 1M 8k' -c 'write -P 3 3M 4k' -c 'write -P 4 9M 12k' \
    -c 'write -P 5 32k 4k' -c abort a.qcow2
both a.qcow2 lazy-abort-multi

# without lazy refcounts: QEMU's ordering leaves leaks at worst
rm -f a.qcow2; qemu-img create -f qcow2 -o cluster_size=4096 a.qcow2 64M >/dev/null
qemu_io_abort -c 'write -P 2 1M 8k' -c 'write -P 3 3M 4k' -c abort a.qcow2
both a.qcow2 abort-nolazy

# 512-byte clusters, 12 MiB of data: the rebuilt refcount table needs more
# clusters than one, and goes elsewhere
rm -f a.qcow2; qemu-img create -f qcow2 -o cluster_size=512 a.qcow2 64M >/dev/null
qemu-io -c 'write -P 7 0 12M' a.qcow2 >/dev/null
rt=$(peek_be a.qcow2 48 8); rb=$(peek_be a.qcow2 $rt 8)
poke_be a.qcow2 $((rb + 2 * 200)) 2 0
both a.qcow2 rebuild-relocate
cp a.qcow2 b.qcow2; "$QC_REPAIR" b.qcow2 >/dev/null 2>&1
[ "$(peek_be b.qcow2 48 8)" != "$rt" ] || repair_fail rebuild-relocate "refcount table not moved"
[ "$(peek_be b.qcow2 56 4)" -gt 1 ] || repair_fail rebuild-relocate "refcount table not larger"

# refcount_bits=1: a zeroed refcount (rebuild) and a leak
rm -f a.qcow2; qemu-img create -f qcow2 -o refcount_bits=1 a.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 192k' a.qcow2 >/dev/null
cp a.qcow2 r1.qcow2
poke a.qcow2 0x20000 "1f";                                     both a.qcow2 rc1-zeroed
cp r1.qcow2 a.qcow2; poke a.qcow2 0x20001 "01";                both a.qcow2 rc1-leak

# compressed clusters shared by two snapshots, then damage
rm -f a.qcow2; qemu-img create -f qcow2 a.qcow2 64M >/dev/null
qemu-io -c 'write -c -P 3 0 64k' -c 'write -c -P 4 64k 64k' -c 'write -P 5 128k 64k' a.qcow2 >/dev/null
qemu-img snapshot -c s1 a.qcow2; qemu-img snapshot -c s2 a.qcow2
qemu-io -c 'write -P 6 128k 4k' a.qcow2 >/dev/null
cp a.qcow2 comp.qcow2
same_repair a.qcow2 compressed-clean
# the refcount of the first compressed cluster (3 references) lowered to 1
rt=$(peek_be a.qcow2 48 8); rb=$(peek_be a.qcow2 $rt 8)
l1=$(peek_be a.qcow2 40 8); l2=$(( $(peek_be a.qcow2 $l1 8) & 0x00fffffffffffe00 ))
e=$(peek_be a.qcow2 $l2 8); k=$(( (e & 0x3fffffffffffff) >> 16 ))
poke_be a.qcow2 $((rb + 2 * k)) 2 1;                           both a.qcow2 compressed-shared-low
cp comp.qcow2 a.qcow2; poke_be a.qcow2 $((rb + 2 * k)) 2 0;    both a.qcow2 compressed-shared-zero
cp comp.qcow2 a.qcow2; poke_be a.qcow2 $((rb + 2 * k)) 2 7;    both a.qcow2 compressed-shared-high
repair_done
