#!/bin/bash
# qc-repair -r all where the refcount structure is rebuilt and later fixes
# meet what the rebuild changed: the overlap guard of the OFLAG_COPIED pass
# knows the new refcount table and blocks only (the old ones are free
# clusters by then), and the second count runs on the file as the repair
# grew it (a reference past the old end may be inside it now).  Each case:
# the same report and exit status as qemu-img check -r all, then a clean
# image with the guest data it had.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
. "$TESTS/interop/repair-common.bash"
cd "$TEST_DIR"

# fresh: header 0, reftable 0x10000, refblock 0x20000, L1 0x30000, L2 0x40000,
# data 0x50000 (guest 0); one more data cluster at guest 1M (0x60000)
image() {
    fresh "$1" "${@:2}"
    qemu-io -c 'write -P 0x22 1M 64k' "$1" >/dev/null
}

# a refcount table entry names the L2 table, and an L2 entry names the old
# refcount block: after the rebuild the L2 fix lands on a free cluster
image a.qcow2
poke_be a.qcow2 0x10008 8 0x40000
poke_be a.qcow2 $((0x40000 + 5 * 8)) 8 0x20000
same_repair a.qcow2 l2-entry-at-old-refblock all

# the L1 entry names the refcount table: its entries read as L2 entries,
# and the COPIED fix rewrites the old table once it is free
image b.qcow2
poke_be b.qcow2 0x30000 8 0x8000000000010000
same_repair b.qcow2 l1-at-reftable all

# the same on an image left dirty by a crash with lazy refcounts
rm -f c.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on c.qcow2 64M
(qemu-io -c 'write -P 1 0 128k' -c 'write -P 2 1M 64k' -c 'sigraise 9' c.qcow2; true) >/dev/null 2>&1
[ $(( $(peek_be c.qcow2 72 8) & 1 )) = 1 ] || repair_fail lazy-dirty "the crash left the image clean"
poke_be c.qcow2 0x30000 8 0x8000000000010000
same_repair c.qcow2 lazy-dirty-l1-at-reftable all

# the refcount block is outside the image (the repair grows the file to
# hold it) and the L1 entry names the refcount table, whose entry then
# reads as a data cluster at the grown end: counted on the second count
image d.qcow2
poke_be d.qcow2 0x10000 8 $((2048 * 65536))
poke_be d.qcow2 0x30000 8 0x8000000000010000
same_repair d.qcow2 refblock-outside-grown-data all

# the same with the L2 entry of the grown cluster in a real L2 table
image e.qcow2
poke_be e.qcow2 0x10000 8 $((2048 * 65536))
poke_be e.qcow2 $((0x40000 + 3 * 8)) 8 $((0x8000000000000000 | 2048 * 65536))
same_repair e.qcow2 refblock-outside-l2-entry all

repair_done
