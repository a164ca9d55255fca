# qemu-iotests 036: unknown feature bits, as the test sets them with
# qcow2.py, shown by the current and the 2012 dump
. "$TESTS/lib.sh"
fixture v3
echo "== autoclear bit 63"
qc-setfeature v3.qcow2 autoclear:63; echo "rc=$?"
qc-dump --legacy v3.qcow2 | grep _features
qc-dump v3.qcow2 | grep _features
echo "== incompatible bit 63 (QEMU will refuse the image)"
qc-setfeature v3.qcow2 incompatible:63; echo "rc=$?"
qc-setfeature --force v3.qcow2 incompatible:63; echo "rc=$?"
qc-dump --legacy v3.qcow2 | grep _features
qc-dump v3.qcow2 | grep _features
echo "== back"
qc-setfeature --clear v3.qcow2 incompatible:63 autoclear:63; echo "rc=$?"
qc-dump v3.qcow2 | grep _features
echo "== a feature table that names an unknown bit (036: 'test feature' for bit 63)"
printf '\x00\x3ftest feature' > table
qc-setfeature v3.qcow2 --del-ext 0x6803f857 --add-ext-file 0x6803f857=table; echo "rc=$?"
qc-setfeature v3.qcow2 incompatible:63; echo "rc=$?"
qc-dump --features v3.qcow2
