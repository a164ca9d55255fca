#!/bin/bash
# 512-byte clusters (an L2 table per 32 KiB, a refcount block per 128 KiB
# of file), 2 MiB clusters, and a refcount table that must grow (512-byte
# clusters, 64-bit refcounts: one table cluster covers 2 MiB of file).
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash cs512 "l2_update refblock_alloc_hookup" \
    --workload "$WL/small-clusters.wl" -o cluster_size=512 --torn --reorder || fail=1
crash cs2m "cluster_alloc_space write_aio" \
    --workload "$WL/big-clusters.wl" -o cluster_size=2M --torn --reorder || fail=1
qc-write --create 8M -o cluster_size=512,refcount_bits=64 grow.qcow2 >/dev/null &&
    qc-write grow.qcow2 -c 'write -P 1 0 1960k' >/dev/null || exit 1
crash reftable-growth "refblock_alloc_write_table refblock_alloc_switch_table" \
    --base "$TEST_DIR/grow.qcow2" --workload "$WL/reftable-growth.wl" --torn --reorder || fail=1
exit $fail
