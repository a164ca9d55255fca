#!/bin/bash
# qc-repair against qemu-img check -r all / -r leaks on images damaged byte by
# byte (the damage kinds of check-damage.sh): the same report and exit
# status, and afterwards a clean image with the guest data it had.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
. "$TESTS/interop/repair-common.bash"
cd "$TEST_DIR"

both() { same_repair "$1" "$2" all "${3:-exact}"; same_repair "$1" "$2-leaks" leaks "${3:-exact}"; }

fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 10)) 2 0;      both a.qcow2 zeroed-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 10)) 2 2;      both a.qcow2 raised-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 0)) 2 5;       both a.qcow2 raised-header-refcount
fresh a.qcow2; poke_be a.qcow2 $((0x20000 + 12)) 2 1;      both a.qcow2 leak-past-data
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x50000;           both a.qcow2 copied-cleared-l2
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x40000;           both a.qcow2 copied-cleared-l1
fresh a.qcow2; qemu-img snapshot -c s a.qcow2; poke_be a.qcow2 0x40000 8 0x8000000000050000
both a.qcow2 copied-set-shared
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x8000000000050200; both a.qcow2 unaligned-data
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x0000000000050201; both a.qcow2 unaligned-prealloc
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000900000; both a.qcow2 data-past-eof
fresh a.qcow2; poke_be a.qcow2 0x40000 8 0x8100000000050000; both a.qcow2 l2-reserved
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000050000; both a.qcow2 duplicate-data
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0x8000000000000000; both a.qcow2 data-at-header
fresh a.qcow2; poke_be a.qcow2 0x40008 8 0xC000000000050000; both a.qcow2 compressed-copied
# QEMU's overlap guard stops the repair: so does ours (we do not mark the
# image corrupt, so that one line differs)
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000000000; both a.qcow2 l2-at-header clean
fresh a.qcow2; poke_be a.qcow2 36 4 2; poke_be a.qcow2 0x30008 8 0x8000000000040000
both a.qcow2 duplicate-l2
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000040003; both a.qcow2 l1-reserved
# An L1 entry pointing into the middle of the real L2 table: QEMU's repair
# writes its L2 fixes into the middle of that table and frees what it maps;
# ours refuses (lost metadata), changes nothing, and names qc-salvage.
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000040200; cp a.qcow2 before.qcow2
for mode in all leaks; do
    qc-repair -r $mode a.qcow2 >o.out 2>o.err; rc=$?
    [ $rc = 1 ] || repair_fail l2-unaligned-$mode "exit $rc, expected 1 (refused: lost metadata)"
    cmp -s a.qcow2 before.qcow2 || repair_fail l2-unaligned-$mode "the refused repair changed the image"
    sed 's/^qc-repair: //' o.err | tr '\n' ' ' | grep -q "qc-salvage a.qcow2 OUT" ||
        repair_fail l2-unaligned-$mode "the refusal does not name qc-salvage"
done
fresh a.qcow2; poke_be a.qcow2 0x30000 8 0x8000000000800000; both a.qcow2 l2-past-eof
fresh a.qcow2; poke_be a.qcow2 40 8 0;                      both a.qcow2 l1-at-0
fresh a.qcow2; poke_be a.qcow2 56 4 0;                      both a.qcow2 no-reftable
# a broken refcount table entry: QEMU 7.2 puts the new refcount block on top
# of the old one and marks the image corrupt; ours goes where nothing is
for v in 0x20200 0x20001; do
    fresh a.qcow2; poke_be a.qcow2 0x10000 8 $v
    same_repair a.qcow2 reftable-$v all better; same_repair a.qcow2 reftable-$v-leaks leaks clean
done
for v in 0x1000000 0x8000000000000000 0x10000 0x30000; do
    fresh a.qcow2; poke_be a.qcow2 0x10000 8 $v;            both a.qcow2 reftable-$v
done
fresh a.qcow2; poke_be a.qcow2 0x10008 8 0x20000;            both a.qcow2 reftable-duplicate
for len in 0x60000 0x5ffff 0x50001 0x50000 0x40000 0x30000; do
    fresh a.qcow2; truncate -s $((len)) a.qcow2;            both a.qcow2 truncated-$len
done
fresh a.qcow2; truncate -s $((0x20000)) a.qcow2;            both a.qcow2 truncated-0x20000 clean
fresh a.qcow2 -o refcount_bits=1; poke_be a.qcow2 0x40008 8 0x8000000000050000
poke_be a.qcow2 0x40010 8 0x8000000000050000;               both a.qcow2 overflow-rc1
repair_done
