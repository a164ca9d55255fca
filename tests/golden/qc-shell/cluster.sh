# cluster OFF: what the host cluster holding OFF is used for, from the
# check's walk.  Each answer is checked against the tables it names.
. "$TESTS/golden/qc-shell/same.bash"
fixture ck-leak; fixture dv-std; fixture dv-rc2; fixture dv-bitmap
# header, refcount table, refcount block, L1, L2, data, leaked, free, past EOF
run ck-leak.qcow2 'cluster 0' 'cluster 0x1000' 'cluster 0x2000' 'cluster 0x3000' \
    'cluster 0x4000' 'cluster 0x5000' 'cluster 0x5fff' 'cluster 0x7000' 'cluster 64k' 'cluster 1G'
# the tables say the same: refcount table -> block 0 at 0x2000, L1 at 0x3000,
# L1[0] -> L2 at 0x4000, L2[0] -> data at 0x5000, refcount 1 leaked at cluster 7
qc-dump --refcounts --nonzero ck-leak.qcow2 | head -4
qc-dump --l2 0 --nonzero ck-leak.qcow2
qc-check ck-leak.qcow2 2>&1 | head -1
# snapshots: shared data, snapshot L1 tables, the snapshot table, compressed data
run dv-std.qcow2 'cluster 0x5000' 'cluster 0x6000' 'cluster 0x7000' 'cluster 0x9000'
qc-dump --snapshots dv-std.qcow2 | grep -i 'l1'
run dv-rc2.qcow2 'cluster 0x5000'
# bitmaps: directory, tables, data (the directory at 0xf000, bitmap 0's
# table at 0xd000 naming data at 0xc000); a free cluster inside the file
run dv-bitmap.qcow2 'cluster 0xf000' 'cluster 0xd000' 'cluster 0xc000' 'cluster 0x5000'
qc-dump --bitmaps dv-bitmap.qcow2 | grep -E 'directory at|table_offset|serialized'
# an image QEMU would not open: no answer; usage errors
cp ck-leak.qcow2 bad.qcow2
poke_be bad.qcow2 20 4 40
run bad.qcow2 'cluster 0'
run ck-leak.qcow2 'cluster' 'cluster x' 'cluster 1 2' 'cluster --all 0'
