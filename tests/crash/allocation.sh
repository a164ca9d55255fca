#!/bin/bash
# Writes that need new L2 tables and a new refcount block (4 KiB clusters,
# 64-bit refcounts), crashed at every write.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash alloc "l2_update l1_update refblock_alloc_hookup" \
    --workload "$WL/alloc.wl" -o cluster_size=4k,refcount_bits=64 --torn --reorder || fail=1
exit $fail
