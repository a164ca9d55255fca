# A dirty image (lazy refcounts, writethrough, not closed cleanly: the
# data and L2 tables are on disk, the refcounts are not): --no-repair refuses
# it; otherwise it is repaired first, as QEMU does on a read-write open,
# with the repair's lines on stderr, and is clean after.  abort stops dead:
# nothing more is written and the dirty bit stays.
. "$TESTS/golden/qc-write/filter.bash"
qc-write --create 64M -o lazy_refcounts=on img.qcow2 >/dev/null
qcw -t writethrough img.qcow2 -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' -c abort -c 'write -P 3 2M 64k'
qc-dump img.qcow2 | grep '^incompatible_features'
qcw --no-repair img.qcow2 -c 'read -P 1 0 64k'
qcw img.qcow2 -c 'read -P 1 0 64k' -c 'read -P 2 1M 64k'
qc-dump img.qcow2 | grep '^incompatible_features'
qc-check img.qcow2; echo "exit $?"
# writethrough: what a write returned is on disk; after abort nothing more
qc-write --create 64M clean.qcow2 >/dev/null
qcw -t writethrough clean.qcow2 -c 'write -P 1 0 64k' -c abort -c 'write -P 2 0 64k'
qcw clean.qcow2 -c 'read -P 1 0 64k'
# writeback: the L2 update of the write was still in the cache at abort
qc-write --create 64M wb.qcow2 >/dev/null
qcw wb.qcow2 -c 'write -P 1 0 64k' -c abort
qcw wb.qcow2 -c 'read -P 0 0 64k'
