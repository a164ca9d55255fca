# Usage errors (exit 64), help, a file that is not qcow2 (exit 63).
. "$TESTS/lib.sh"
qc-repair 2>&1; echo "exit $?"
qc-repair -r some x.qcow2 2>&1; echo "exit $?"
qc-repair --output=xml x.qcow2 2>&1; echo "exit $?"
qc-repair --bogus x.qcow2 2>&1; echo "exit $?"
qc-repair a b 2>&1; echo "exit $?"
qc-repair --dry-run --backup b x.qcow2 2>&1; echo "exit $?"
qc-repair --help | head -3; echo "exit $?"
printf 'not an image at all' > raw.img
qc-repair raw.img 2>&1; echo "exit $?"
qc-repair missing.qcow2 2>&1; echo "exit $?"
