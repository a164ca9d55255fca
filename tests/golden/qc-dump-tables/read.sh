# --read OFF LEN: guest bytes (compressed clusters inflated, zero clusters,
# subclusters), the backing file only with --backing, failures.
. "$TESTS/lib.sh"
for f in dv-std dv-extl2 dv-backing dv-datafile dv-damaged; do fixture $f; done
qc-dump --read 0 24k dv-std.qcow2; echo "exit $?"
qc-dump --read 200k 4k dv-std.qcow2; echo "exit $?"
qc-dump --read 0 4k dv-extl2.qcow2; echo "exit $?"
qc-dump --read 0 16k dv-backing.qcow2; echo "exit $?"
qc-dump --read --backing 0 16k dv-backing.qcow2; echo "exit $?"
qc-dump --backing --read 60k 8k dv-backing.qcow2; echo "exit $?"
qc-dump --read 4k 8k dv-datafile.qcow2; echo "exit $?"
qc-dump --read 0 12k dv-damaged.qcow2; echo "exit $?"
qc-dump --read 250k 1M dv-std.qcow2; echo "exit $?"
qc-dump --read 1M 1 dv-std.qcow2; echo "exit $?"
