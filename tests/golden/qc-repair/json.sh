# --output=json: the second check's JSON with leaks-fixed / corruptions-fixed.
. "$TESTS/lib.sh"
fixture ck-lazy
qc-repair --output=json ck-lazy.qcow2 2>/dev/null
echo "exit $?"
fixture ck-leak
qc-repair --output=json -r leaks ck-leak.qcow2 2>/dev/null
echo "exit $?"
qc-check ck-leak.qcow2 >/dev/null 2>&1
echo "second pass exit $?"
