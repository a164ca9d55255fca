#!/bin/bash
# Writes into clusters and L2 tables shared with an internal snapshot
# (copy on write, OFLAG_COPIED), crashed at every write.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
command -v qemu-img >/dev/null 2>&1 || { echo "qemu-img needed to take a snapshot"; exit 77; }
qc-write --create 64M base.qcow2 >/dev/null || exit 1
qc-write base.qcow2 -c 'write -P 1 0 256k' -c 'write -c -P 2 1M 64k' -c 'write -P 3 2M 64k' \
    >/dev/null || exit 1
qemu-img snapshot -c s1 base.qcow2 || exit 1
fail=0
crash snapshot-writeback "cow_write l2_update l1_update" \
    --base "$TEST_DIR/base.qcow2" --workload "$WL/snapshot.wl" --torn --reorder || fail=1
crash snapshot-writethrough "cow_write" \
    --base "$TEST_DIR/base.qcow2" --workload "$WL/snapshot.wl" -t writethrough --torn --reorder || fail=1
# the snapshot still reads as it was taken
qemu-img snapshot -l base.qcow2 | grep -q s1 || { echo "snapshot lost"; fail=1; }
exit $fail
