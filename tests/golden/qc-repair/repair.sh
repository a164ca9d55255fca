# qemu-img check -r all's report, then a second check of the result: clean.
. "$TESTS/lib.sh"
for n in ck-clean ck-leak ck-lazy ck-badreftable dirty; do
    fixture $n
    echo "== qc-repair $n.qcow2"
    qc-repair $n.qcow2 2>&1
    echo "exit $?"
    echo "-- second pass: qc-check $n.qcow2"
    qc-check $n.qcow2 2>&1
    echo "exit $?"
done
