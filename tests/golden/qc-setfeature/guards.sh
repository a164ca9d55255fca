# The guards: each refuses with a message and exit 1; --force does it anyway
. "$TESTS/lib.sh"
fixture v2
fixture v3
fixture dirty
fixture c4k
fixture backing
echo "== feature bits on a version 2 image"
qc-setfeature v2.qcow2 lazy_refcounts; echo "rc=$?"
qc-setfeature --force v2.qcow2 lazy_refcounts; echo "rc=$?"
qc-setfeature v2.qcow2 --set-header autoclear_features=1; echo "rc=$?"
echo "== setting an incompatible bit"
for req in incompatible:63 dirty corrupt external_data_file compression_type incompatible:9; do
    qc-setfeature v3.qcow2 $req; echo "rc=$?"
done
qc-setfeature v3.qcow2 --set-header incompatible_features=0x30; echo "rc=$?"
fixture c4k c4k-l2.qcow2
qc-setfeature c4k-l2.qcow2 extended_l2; echo "rc=$?"
qc-setfeature v3.qcow2 extended_l2; echo "rc=$?"
qc-setfeature --force v3.qcow2 incompatible:63; echo "rc=$?"
qc-dump v3.qcow2 | grep incompatible
echo "== clearing dirty or lazy_refcounts on a dirty image"
qc-setfeature --clear dirty.qcow2 dirty; echo "rc=$?"
qc-setfeature --clear dirty.qcow2 lazy_refcounts; echo "rc=$?"
qc-setfeature --clear dirty.qcow2 dirty lazy_refcounts; echo "rc=$?"
qc-setfeature dirty.qcow2 --set-header incompatible_features=0; echo "rc=$?"
qc-setfeature --force --clear dirty.qcow2 dirty; echo "rc=$?"
qc-dump dirty.qcow2 | grep _features
echo "== an extension that does not fit in the header cluster"
head -c 4000 /dev/zero > big
qc-setfeature c4k.qcow2 --add-ext-file 0x1234=big; echo "rc=$?"
head -c 3968 /dev/zero > fits
qc-setfeature c4k.qcow2 --add-ext-file 0x1234=fits; echo "rc=$?"
qc-setfeature backing.qcow2 --add-ext-file 0x1234=big; echo "rc=$?"
echo "== magic 0 is the end marker"
qc-setfeature v3.qcow2 --add-ext 0=x; echo "rc=$?"
echo "== a damaged extension area is not rewritten"
poke_be v3.qcow2 100 4 108
qc-setfeature v3.qcow2 --add-ext 0x1234=x; echo "rc=$?"
qc-setfeature --force v3.qcow2 --add-ext 0x1234=x; echo "rc=$?"
