# --map as a table and as qemu-img map's JSON: compressed and zero clusters,
# subclusters, a shorter backing file, an external data file, a failure.
. "$TESTS/lib.sh"
for f in dv-std dv-extl2 dv-backing dv-datafile dv-damaged; do fixture $f; done
qc-dump --map dv-std.qcow2; echo "exit $?"
qc-dump --map --json dv-std.qcow2; echo "exit $?"
qc-dump --map --json dv-extl2.qcow2; echo "exit $?"
qc-dump --map dv-backing.qcow2; echo "exit $?"
qc-dump --map --json dv-backing.qcow2; echo "exit $?"
qc-dump --map --json dv-datafile.qcow2; echo "exit $?"
qc-dump --map --json dv-damaged.qcow2; echo "exit $?"
qc-dump --map --l1 --json dv-datafile.qcow2 | sed -n '/"l1"/,$p'; echo "exit $?"
