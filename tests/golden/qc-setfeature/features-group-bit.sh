# GROUP:BIT in every group, bits 0 to 63, and the bytes that change
. "$TESTS/lib.sh"
fixture v3
cp v3.qcow2 orig.qcow2
for req in autoclear:63 autoclear:0 compatible:1 compatible:63 incompatible:5 incompatible:0x20 incompatible:0o77; do
    echo "== $req"
    qc-setfeature --force v3.qcow2 $req; echo "rc=$?"
    cmp -l orig.qcow2 v3.qcow2
    qc-setfeature --force --clear v3.qcow2 $req; echo "rc=$?"
    cmp orig.qcow2 v3.qcow2 && echo "cleared"
done
echo "== all 64 autoclear bits"
for ((b = 0; b < 64; b++)); do qc-setfeature v3.qcow2 autoclear:$b || echo "bit $b failed"; done
qc-dump --legacy v3.qcow2 | grep autoclear
qc-dump v3.qcow2 | grep autoclear
