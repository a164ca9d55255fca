# --dry-run: the plan of every write and flush; the image is unchanged.
. "$TESTS/lib.sh"
fixture ck-lazy
cp ck-lazy.qcow2 before.qcow2
echo "== qc-repair --dry-run ck-lazy.qcow2"
qc-repair --dry-run ck-lazy.qcow2 2>&1
echo "exit $?"
cmp before.qcow2 ck-lazy.qcow2 && echo "unchanged"
echo "== then the repair, with a backup, and the undo"
qc-repair --backup ck-lazy.bak ck-lazy.qcow2 >/dev/null 2>&1
echo "exit $?"
qc-check ck-lazy.qcow2 2>&1
echo "exit $?"
qc-repair --undo ck-lazy.bak ck-lazy.qcow2 2>&1
echo "exit $?"
cmp before.qcow2 ck-lazy.qcow2 && echo "restored"
