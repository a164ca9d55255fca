# --set-header: every kind of field, python-style numbers and qemu sizes
. "$TESTS/lib.sh"
fixture v3
cp v3.qcow2 orig.qcow2
for req in size=2M size=0x200000 size=4096s l1_size=2 snapshot_offset=0x50000 snapshots_offset=0 \
           refcount_order=5 nb_snapshots=0b1 compression_type=0 magic=0x514649fb cluster_bits=16; do
    echo "== $req"
    cp orig.qcow2 v3.qcow2
    qc-setfeature -v v3.qcow2 --set-header $req; echo "rc=$?"
    cmp -l orig.qcow2 v3.qcow2
done
echo "== header_length 104: the extensions move, the compression type byte goes"
cp orig.qcow2 v3.qcow2
qc-setfeature -v v3.qcow2 --set-header header_length=104; echo "rc=$?"
qc-dump --hex v3.qcow2 | sed -n '/header_length/,/ext\[0\].length/p'
echo "== and back to 112"
qc-setfeature -v v3.qcow2 --set-header header_length=112; echo "rc=$?"
cmp orig.qcow2 v3.qcow2 && echo "back to the original bytes"
echo "== a broken header_length repaired"
poke_be v3.qcow2 100 4 108
qc-dump v3.qcow2 2>&1 | tail -1
qc-setfeature -v v3.qcow2 --set-header header_length=112; echo "rc=$?"
cmp orig.qcow2 v3.qcow2 && echo "back to the original bytes"
echo "== version 2 to 3: version and header_length together"
fixture v2
qc-setfeature -v v2.qcow2 --set-header version=3 --set-header header_length=112; echo "rc=$?"
qc-dump v2.qcow2
echo "== compression type needs a header longer than 104"
fixture hl104
qc-setfeature hl104.qcow2 --set-header compression_type=1; echo "rc=$?"
