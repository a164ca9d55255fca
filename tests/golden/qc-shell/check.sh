# check: qc-check's report, streams and exit status.
. "$TESTS/golden/qc-shell/same.bash"
for n in ck-clean ck-leak ck-lazy ck-badreftable ck-badsnap; do
    fixture $n
    same $n.qcow2 check qc-check $n.qcow2
done
same ck-leak.qcow2 'check --output=json' qc-check --output=json ck-leak.qcow2
same ck-lazy.qcow2 'check --json' qc-check --output=json ck-lazy.qcow2
same ck-leak.qcow2 'check -q' qc-check -q ck-leak.qcow2
same ck-leak.qcow2 'check --output=human' qc-check --output=human ck-leak.qcow2
# usage errors
run ck-clean.qcow2 'check --output=xml' 'check -x' 'check ck-clean.qcow2'
