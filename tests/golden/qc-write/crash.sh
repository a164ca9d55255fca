# Crash injection: --crash-after N, --crash-at EVENT[:K], --torn, and the
# write log (seq, offset, length, event, flush epoch).  A crash exits 99
# and writes nothing more.
. "$TESTS/golden/qc-write/filter.bash"
qc-write --create 64M fresh.qcow2 >/dev/null
W=(-c 'write -P 1 0 64k' -c 'write -P 2 1M 4k' -c flush)
cp fresh.qcow2 a.qcow2
qcw --write-log full.json a.qcow2 "${W[@]}"
cat full.json
for opts in "--crash-after 0" "--crash-after 3" "--crash-after 5 --torn" \
            "--crash-at l1_update" "--crash-at refblock_update_part:2" \
            "--crash-at cluster_alloc_space --torn" "--crash-at write_aio:2" \
            "--crash-at l2_alloc_write" "--crash-at refblock_load"; do
    echo "-- $opts"
    cp fresh.qcow2 b.qcow2
    rm -f b.json
    qcw $opts --write-log b.json b.qcow2 "${W[@]}"
    tail -2 b.json
    echo "file length $(stat -c %s b.qcow2)"
done
# a bad event name or count is a usage error
qcw --crash-at bogus a.qcow2 -c flush
qcw --crash-at l2_update:0 a.qcow2 -c flush
qcw --crash-after -1 a.qcow2 -c flush
