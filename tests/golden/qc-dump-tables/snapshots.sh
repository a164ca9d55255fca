# --snapshots: ids, names, L1 tables, sizes, dates, extra data; JSON.
. "$TESTS/lib.sh"
fixture dv-rc2
fixture dv-extl2
qc-dump --snapshots dv-rc2.qcow2; echo "exit $?"
qc-dump --snapshots dv-extl2.qcow2; echo "exit $?"
qc-dump --snapshots --json dv-rc2.qcow2 | sed -n '/"snapshots"/,$p'; echo "exit $?"
