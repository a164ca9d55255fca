# Usage errors (exit 64), help, a file that is not qcow2 (exit 63), a
# missing image (exit 1), an existing OUT refused (exit 1).
. "$TESTS/lib.sh"
qc-salvage 2>&1; echo "exit $?"
qc-salvage x.qcow2 2>&1; echo "exit $?"
qc-salvage -O vmdk x.qcow2 out 2>&1; echo "exit $?"
qc-salvage --progress=always x.qcow2 out 2>&1; echo "exit $?"
qc-salvage --bogus x.qcow2 out 2>&1; echo "exit $?"
qc-salvage a b c 2>&1; echo "exit $?"
qc-salvage --help; echo "exit $?"
head -c 65536 /dev/zero > zeros.img
qc-salvage zeros.img out.raw 2>&1; echo "exit $?"
[ -e out.raw ] && echo "out.raw written"
qc-salvage missing.qcow2 out.raw 2>&1; echo "exit $?"
fixture v3
: > taken.raw
qc-salvage -O raw v3.qcow2 taken.raw 2>&1; echo "exit $?"
qc-salvage -O raw --force v3.qcow2 taken.raw 2>&1; echo "exit $?"
