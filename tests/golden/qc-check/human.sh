# qemu-img check's report: problem lines on stderr, the summary on stdout.
. "$TESTS/lib.sh"
for n in ck-clean ck-leak ck-lazy ck-badreftable ck-badsnap; do
    fixture $n
    echo "== qc-check $n.qcow2"
    qc-check $n.qcow2 2>&1
    echo "exit $?"
done
echo "== stdout only"
qc-check ck-lazy.qcow2 2>/dev/null
