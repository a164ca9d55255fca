# -q: nothing on stdout; problem lines and failures still on stderr.
. "$TESTS/lib.sh"
fixture ck-clean; fixture ck-lazy; fixture ck-badsnap
for n in ck-clean ck-lazy ck-badsnap; do
    echo "== qc-check -q $n.qcow2"
    qc-check -q $n.qcow2 2>&1
    echo "exit $?"
    echo "== qc-check -q --output=json $n.qcow2 (stdout)"
    qc-check -q --output=json $n.qcow2 2>/dev/null
    echo "exit $?"
done
