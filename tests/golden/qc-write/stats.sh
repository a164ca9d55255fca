# --stats: writes by kind and flushes, with and without lazy refcounts
# (what lazy refcounts save), in writethrough mode.
. "$TESTS/golden/qc-write/filter.bash"
for lazy in off on; do
    qc-write --create 64M -o lazy_refcounts=$lazy img-$lazy.qcow2 >/dev/null
    echo "-- lazy_refcounts=$lazy"
    qcw --stats -t writethrough img-$lazy.qcow2 -c 'write -P 1 0 64k' -c 'write -P 2 64k 64k' \
        -c 'write -P 3 128k 64k' -c 'write -P 4 1M 4k' | grep -v '^wrote\|ops;'
done
echo "-- --create"
qcw --stats --create 64M -o preallocation=metadata p.qcow2
