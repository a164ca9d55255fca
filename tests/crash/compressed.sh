#!/bin/bash
# Compressed clusters (zlib and zstd): packed, overwritten in part, zeroed
# and discarded, crashed at every write.
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
need_repairer
fail=0
crash zlib "write_compressed cow_write" \
    --workload "$WL/compressed.wl" --torn --reorder || fail=1
crash zstd "write_compressed" \
    --workload "$WL/compressed.wl" -o compression_type=zstd -t writethrough --torn --reorder || fail=1
exit $fail
