# --refcounts: 2-bit refcounts up to 3, with and without --nonzero, JSON;
# runs of empty entries folded into one line, or not (--unfold).
. "$TESTS/lib.sh"
fixture dv-rc2
fixture dv-std
qc-dump --refcounts --nonzero dv-rc2.qcow2; echo "exit $?"
qc-dump --refcounts dv-std.qcow2 | sed -n '1,8p'; echo "exit $?"
qc-dump --refcounts dv-std.qcow2 | wc -l
qc-dump --refcounts dv-std.qcow2 | tail -3
qc-dump --refcounts --unfold dv-std.qcow2 | wc -l
qc-dump --refcounts --nonzero --json dv-rc2.qcow2 | sed -n '/"refcounts"/,$p'; echo "exit $?"
