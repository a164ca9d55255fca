#!/bin/bash
# 1-bit and 64-bit refcounts.  With 1-bit refcounts no two compressed
# clusters share a host cluster (a refcount of 2 does not fit).
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash rc1-mixed "l2_update" --workload "$WL/mixed.wl" -o refcount_bits=1 --torn --reorder || fail=1
crash rc1-compressed "write_compressed" \
    --workload "$WL/compressed-only.wl" -o refcount_bits=1 --torn --reorder || fail=1
crash rc64-mixed "l2_update" --workload "$WL/mixed.wl" -o refcount_bits=64 --torn --reorder || fail=1
crash rc64-compressed "write_compressed" \
    --workload "$WL/compressed.wl" -o refcount_bits=64 --torn --reorder || fail=1
exit $fail
