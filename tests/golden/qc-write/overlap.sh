# A write that would land on metadata is refused with QEMU's message and
# marks the image corrupt (a full header rewrite with incompatible bit 1);
# every later request finds no medium, a flush succeeds, nothing more is
# written, and the image cannot be opened for writing again.  A v2 image
# gets the same message and keeps its header.
. "$TESTS/lib.sh"
. "$TESTS/golden/qc-write/filter.bash"
# the header's refcount (cluster 0) is 0: the next data cluster is cluster 0
qc-write --create 64M img.qcow2 -c 'write -P 1 0 64k' >/dev/null
poke_be img.qcow2 0x20000 2 0
qcw img.qcow2 -c 'write -P 2 64k 64k' -c 'read -P 1 0 4k' -c 'write 0 4k' -c 'discard 0 64k' \
    -c 'flush'
qc-dump img.qcow2 2>&1 | grep -E '^incompatible_features|warning'
qcw img.qcow2 -c 'read -P 1 0 4k'
qcw -r img.qcow2 -c 'read -P 1 0 4k'
# the L2 table's refcount is 0: a new data cluster would overwrite it
qc-write --create 64M l2.qcow2 -c 'write -P 1 0 64k' >/dev/null
poke_be l2.qcow2 0x20008 2 0
qcw -t writeback l2.qcow2 -c 'write -P 2 1M 64k' -c 'write -P 3 2M 64k'
qc-dump --l2 0 --nonzero l2.qcow2 2>&1
# the refcount table names no refcount block: the new one would be
# written over the refcount table itself
qc-write --create 64M rt.qcow2 >/dev/null
poke_be rt.qcow2 0x10000 8 0
qcw rt.qcow2 -c 'write 0 64k'
qc-dump --hexdump 0x10000 16 rt.qcow2 2>&1
# v2
qc-write --create 64M -o compat=0.10 v2.qcow2 -c 'write -P 1 0 64k' >/dev/null
poke_be v2.qcow2 0x20000 2 0
cp v2.qcow2 v2-before.qcow2
qcw v2.qcow2 -c 'write -P 2 64k 64k' -c 'read 0 4k'
cmp v2.qcow2 v2-before.qcow2 && echo "v2 image unchanged"
