# --l2: QEMU's cluster types, compressed descriptors, reserved bits,
# unaligned and past-EOF offsets, extended L2 subcluster bitmaps.
. "$TESTS/lib.sh"
fixture dv-std
fixture dv-damaged
fixture dv-extl2
qc-dump --l2 0 --nonzero dv-std.qcow2; echo "exit $?"
qc-dump --l2 all --nonzero dv-damaged.qcow2; echo "exit $?"
qc-dump --l2 0 --nonzero dv-extl2.qcow2; echo "exit $?"
qc-dump --l2 0 dv-std.qcow2 | sed -n '1,3p;$p'; echo "exit $?"
qc-dump --l2 0 --unfold dv-std.qcow2 | sed -n '1,3p;$p'; echo "exit $?"
qc-dump --l2 7 dv-std.qcow2; echo "exit $?"
qc-dump --l2 0x1 --nonzero dv-damaged.qcow2; echo "exit $?"
qc-dump --l2 all --nonzero --json dv-extl2.qcow2 | sed -n '/"l2"/,$p'; echo "exit $?"
qc-dump --l2 9 --json dv-std.qcow2 | sed -n '/"l2"/,$p'; echo "exit ${PIPESTATUS[0]}"
