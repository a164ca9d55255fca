#!/bin/bash
# qc-check agrees with qemu-img check on images damaged byte by byte: the
# numbers, the per-problem lines and their order, the exit status.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
cd "$TEST_DIR"

# a refcount of the data cluster (5): refblock 0 is cluster 2, 16-bit entries
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 10)) 2 0;      same_check a.qcow2 zeroed-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 10)) 2 2;      same_check a.qcow2 raised-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 0)) 2 5;       same_check a.qcow2 raised-header-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 12)) 2 1;      same_check a.qcow2 leak-past-data
# OFLAG_COPIED cleared / set where it must not be
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x50000;           same_check a.qcow2 copied-cleared-l2
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x40000;           same_check a.qcow2 copied-cleared-l1
fresh a.qcow2; qemu-img snapshot -c s a.qcow2; poke_be a.qcow2 0x40000 8 0x8000000000050000
same_check a.qcow2 copied-set-shared
# L2 entries: unaligned, past the end of the file, reserved bits, duplicates
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x8000000000050200; same_check a.qcow2 unaligned-data
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x0000000000050201; same_check a.qcow2 unaligned-prealloc
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000900000; same_check a.qcow2 data-past-eof
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x8100000000050000; same_check a.qcow2 l2-reserved
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000050000; same_check a.qcow2 duplicate-data
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000000000; same_check a.qcow2 data-at-header
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0xC000000000050000; same_check a.qcow2 compressed-copied
# L1 entries: L2 over the header, duplicate L2 use, reserved, unaligned, past EOF
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000000000; same_check a.qcow2 l2-at-header
fresh a.qcow2; poke_be a.qcow2 36 4 2; poke_be a.qcow2 0x30008 8 0x8000000000040000
same_check a.qcow2 duplicate-l2
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000040003; same_check a.qcow2 l1-reserved
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000040200; same_check a.qcow2 l2-unaligned
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000800000; same_check a.qcow2 l2-past-eof
# header pointers at offset 0
fresh a.qcow2; poke_be a.qcow2 40 8 0;                      same_check a.qcow2 l1-at-0
fresh a.qcow2; poke_be a.qcow2 48 8 0;                      same_check a.qcow2 reftable-at-0
fresh a.qcow2; poke_be a.qcow2 56 4 0;                      same_check a.qcow2 no-reftable
# refcount table entries
for v in 0x20200 0x20001 0x1000000 0x8000000000000000 0x7FFFFFFFC0000000 0x10000 0x30000; do
    fresh a.qcow2; poke_be a.qcow2 0x10000 8 $v;            same_check a.qcow2 reftable-$v
done
fresh a.qcow2; poke_be a.qcow2 0x10008 8 0x20000;            same_check a.qcow2 reftable-duplicate
# truncation
for len in 0x60000 0x5ffff 0x50001 0x50000 0x40000 0x30008 0x30000 0x20000 0x10000 200 104 72 20 8; do
    fresh a.qcow2; truncate -s $((len)) a.qcow2;            same_check a.qcow2 truncated-$len
done
# snapshot table and snapshot L1 tables
fresh s.qcow2; qemu-img snapshot -c snap1 s.qcow2
so=$(peek_be s.qcow2 64 8)
cp s.qcow2 a.qcow2; poke_be a.qcow2 $so 8 $(( $(peek_be s.qcow2 $so 8) + 0x200 )); same_check a.qcow2 snap-l1-unaligned
cp s.qcow2 a.qcow2; poke_be a.qcow2 $((so + 8)) 4 4194305;  same_check a.qcow2 snap-l1-too-large
cp s.qcow2 a.qcow2; poke_be a.qcow2 $so 8 0x4000000;         same_check a.qcow2 snap-l1-past-eof
cp s.qcow2 a.qcow2; poke_be a.qcow2 $so 8 0;                 same_check a.qcow2 snap-l1-at-header
cp s.qcow2 a.qcow2; poke_be a.qcow2 $so 8 0xFFFFFFFFFFFF0000; same_check a.qcow2 snap-l1-negative
cp s.qcow2 a.qcow2; poke_be a.qcow2 $so 8 0x8000000000000000; same_check a.qcow2 snap-l1-high
cp s.qcow2 a.qcow2; poke_be a.qcow2 $((so + 36)) 4 8;        same_check a.qcow2 snap-incomplete
cp s.qcow2 a.qcow2; poke_be a.qcow2 $((so + 36)) 4 1025;     same_check a.qcow2 snap-extra-too-big
cp s.qcow2 a.qcow2; poke_be a.qcow2 64 8 $((so + 8));        same_check a.qcow2 snap-table-unaligned
cp s.qcow2 a.qcow2; poke_be a.qcow2 60 4 65537;              same_check a.qcow2 snap-table-too-large
cp s.qcow2 a.qcow2; poke_be a.qcow2 60 4 3;                  same_check a.qcow2 snap-count-past-table
# 1-bit refcounts: a second reference overflows
fresh a.qcow2 -o refcount_bits=1; poke_be a.qcow2 0x40008 8 0x8000000000050000
poke_be a.qcow2 0x40010 8 0x8000000000050000;               same_check a.qcow2 overflow-rc1
# extended L2 bitmaps
qemu-img create -f qcow2 -o extended_l2=on e.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 4k' e.qcow2 >/dev/null
cp e.qcow2 a.qcow2; poke_be a.qcow2 $((0x40000 + 8)) 8 0x0000000100000001; same_check a.qcow2 extl2-both
cp e.qcow2 a.qcow2; poke_be a.qcow2 $((0x40010 + 8)) 8 0x1;  same_check a.qcow2 extl2-unallocated
cp e.qcow2 a.qcow2; poke_be a.qcow2 0x40010 8 0x4000000000050000; poke_be a.qcow2 $((0x40010 + 8)) 8 1
same_check a.qcow2 extl2-compressed-bitmap
check_done
