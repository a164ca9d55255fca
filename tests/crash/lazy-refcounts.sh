#!/bin/bash
# Crash states of a mixed workload with and without lazy refcounts, in
# writeback and writethrough mode, with torn and reordered writes.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash off-writeback "refblock_update_part l2_update l1_update" \
    --workload "$WL/mixed.wl" -t writeback --torn --reorder || fail=1
crash off-writethrough "l2_update" \
    --workload "$WL/mixed.wl" -t writethrough --torn --reorder || fail=1
crash on-writeback "header_update" \
    --workload "$WL/mixed.wl" -o lazy_refcounts=on -t writeback --torn --reorder || fail=1
crash on-writethrough "header_update" \
    --workload "$WL/mixed.wl" -o lazy_refcounts=on -t writethrough --torn --reorder || fail=1
# lazy refcounts: some crash states must carry the dirty bit
grep -q 'before: dirty' "$TEST_DIR/on-writeback.out" || { echo "no dirty crash state"; fail=1; }
exit $fail
