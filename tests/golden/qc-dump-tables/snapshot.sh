# --snapshot ID|NAME: the --l1, --l2, --map and --read views of an internal
# snapshot's disk (by ID and by name), the active disk for comparison, and
# qemu-img's message for a snapshot that is not there.
. "$TESTS/lib.sh"
fixture snapshots
qc-dump --l1 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot 1 --l1 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot snap2 --l1 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot snap1 --l2 0 --nonzero snapshots.qcow2; echo "exit $?"
qc-dump --snapshot 2 --l2 all --nonzero snapshots.qcow2; echo "exit $?"
qc-dump --map snapshots.qcow2; echo "exit $?"
qc-dump --snapshot snap1 --map snapshots.qcow2; echo "exit $?"
qc-dump --snapshot 2 --map --json snapshots.qcow2; echo "exit $?"
qc-dump --snapshot snap1 --read 0 32 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot snap2 --read 0 32 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot 3 --read 0 32 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot nosuch --l1 snapshots.qcow2; echo "exit $?"
qc-dump --snapshot nosuch --map snapshots.qcow2; echo "exit $?"
