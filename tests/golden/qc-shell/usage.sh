# Options: help, version, usage errors (exit 64), images that cannot be
# opened (63 not qcow2, 1 otherwise).
. "$TESTS/lib.sh"
fixture v3
qc-shell --help; echo "exit $?"
qc-shell -h >/dev/null; echo "exit $?"
qc-shell --version | sed 's/[0-9][0-9.]*/VERSION/'; echo "exit $?"
qc-shell 2>&1; echo "exit $?"
qc-shell -c 2>&1; echo "exit $?"
qc-shell --bogus v3.qcow2 2>&1; echo "exit $?"
qc-shell v3.qcow2 other.qcow2 2>&1; echo "exit $?"
qc-shell --force -c header v3.qcow2 2>&1; echo "exit $?"
printf 'not a qcow2 image at all' > raw.img
qc-shell -c header raw.img 2>&1; echo "exit $?"
qc-dump raw.img >/dev/null 2>&1; echo "qc-dump exit $?"
qc-shell -c header nosuch.qcow2 2>&1; echo "exit $?"
qc-shell -c header . 2>&1; echo "exit $?"
