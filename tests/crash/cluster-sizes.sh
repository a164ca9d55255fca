#!/bin/bash
# 512-byte clusters (an L2 table per 32 KiB, a refcount block per 128 KiB
# of file) and 2 MiB clusters.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash cs512 "l2_update refblock_alloc_hookup" \
    --workload "$WL/small-clusters.wl" -o cluster_size=512 --torn --reorder || fail=1
crash cs2m "cluster_alloc_space write_aio" \
    --workload "$WL/big-clusters.wl" -o cluster_size=2M --torn --reorder || fail=1
exit $fail
