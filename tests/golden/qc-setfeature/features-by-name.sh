# Every feature name, set and cleared again; the header after each step
. "$TESTS/lib.sh"
fixture v3
cp v3.qcow2 orig.qcow2
for name in lazy_refcounts bitmaps raw_external_data dirty corrupt external_data_file compression_type extended_l2; do
    echo "== $name"
    qc-setfeature --force v3.qcow2 $name; echo "rc=$?"
    qc-dump v3.qcow2 | grep _features
    qc-setfeature --force --clear v3.qcow2 $name; echo "rc=$?"
done
cmp orig.qcow2 v3.qcow2 && echo "back to the original bytes"
echo "== several at once"
qc-setfeature v3.qcow2 lazy_refcounts bitmaps autoclear:5; echo "rc=$?"
qc-dump v3.qcow2 | grep _features
qc-setfeature --clear v3.qcow2 lazy_refcounts bitmaps autoclear:5; echo "rc=$?"
cmp orig.qcow2 v3.qcow2 && echo "back to the original bytes"
