# --l1: entries with COPIED, reserved bits, L2 tables past EOF; JSON section.
. "$TESTS/lib.sh"
fixture dv-std
fixture dv-damaged
qc-dump --l1 dv-std.qcow2; echo "exit $?"
qc-dump --l1 dv-damaged.qcow2; echo "exit $?"
qc-dump --l1 --json dv-damaged.qcow2 | sed -n '/"l1"/,$p'; echo "exit $?"
