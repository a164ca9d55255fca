# -r leaks: leaks fixed; a broken refcount structure refused as QEMU does.
. "$TESTS/lib.sh"
for n in ck-leak ck-lazy; do
    fixture $n
    echo "== qc-repair -r leaks $n.qcow2"
    qc-repair -r leaks $n.qcow2 2>&1
    echo "exit $?"
    echo "-- second pass: qc-check $n.qcow2"
    qc-check $n.qcow2 >/dev/null 2>&1
    echo "exit $?"
done
