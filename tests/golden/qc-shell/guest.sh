# guest OFF: where a guest offset lives (L1 and L2 entries, subcluster, the
# host offset QEMU reads), checked against the guest map.
. "$TESTS/golden/qc-shell/same.bash"
fixture dv-std; fixture dv-extl2; fixture dv-backing; fixture dv-damaged; fixture dv-datafile
# data, zero, compressed, discarded, unallocated, past the end
run dv-std.qcow2 'guest 0' 'guest 4097' 'guest 8k' 'guest 16k' 'guest 64k' 'guest 100k' \
    'guest 256k'
qc-dump --map dv-std.qcow2
# extended L2: subclusters of different types in one cluster
run dv-extl2.qcow2 'guest 0' 'guest 2k' 'guest 16k' 'guest 16896' 'guest 64k' 'guest 96k'
# backing file, external data file
run dv-backing.qcow2 'guest 0' 'guest 4k' 'guest 8k'
run dv-datafile.qcow2 'guest 8k'
# damage: reserved bits, corrupt compressed entry, unaligned entry, L1 entry past EOF
run dv-damaged.qcow2 'guest 4k' 'guest 8k' 'guest 3M' 'guest 4M'
# usage errors
run dv-std.qcow2 'guest' 'guest x' 'guest 0 1'
