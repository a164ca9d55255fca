# Options: help, version, usage errors (exit 64).
qc-check --help; echo "exit $?"
qc-check -h >/dev/null; echo "exit $?"
qc-check --version | sed 's/[0-9][0-9.]*/VERSION/'; echo "exit $?"
qc-check 2>&1; echo "exit $?"
qc-check --output=xml x.qcow2 2>&1; echo "exit $?"
qc-check --output 2>&1; echo "exit $?"
qc-check --bogus x.qcow2 2>&1; echo "exit $?"
qc-check -r all x.qcow2 2>&1; echo "exit $?"
