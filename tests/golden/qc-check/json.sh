# qemu-img's JSON keys in its order, then every finding under "problems".
. "$TESTS/lib.sh"
for n in ck-clean ck-leak ck-lazy ck-badreftable ck-badsnap; do
    fixture $n
    echo "== qc-check --output=json $n.qcow2"
    qc-check --output=json $n.qcow2 2>/dev/null
    echo "exit $?"
done
echo "== stderr stays qemu-img's"
qc-check --output=json ck-lazy.qcow2 2>&1 >/dev/null
