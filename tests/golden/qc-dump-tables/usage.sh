# Bad arguments exit 64 naming them; files that are not qcow2 exit 63.
. "$TESTS/lib.sh"
fixture dv-std
qc-dump --l2 x dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 12 dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 12q 4 dv-std.qcow2; echo "exit $?"
qc-dump --read 0 4z dv-std.qcow2; echo "exit $?"
qc-dump --raw; echo "exit $?"
qc-dump --mapp dv-std.qcow2; echo "exit $?"
qc-dump --l1 --hex dv-std.qcow2; echo "exit $?"
qc-dump --raw o.raw --map dv-std.qcow2; echo "exit $?"
qc-dump --map dv-std.qcow2 other.qcow2; echo "exit $?"
qc-dump --map=1 dv-std.qcow2; echo "exit $?"
head -c 1000 /dev/zero > plain.img
qc-dump --map --json plain.img; echo "exit $?"
qc-dump --raw o.raw plain.img; echo "exit $?"
qc-dump --l1 plain.img; echo "exit $?"
qc-dump --hexdump 0 16 plain.img; echo "exit $?"
qc-dump --map missing.qcow2; echo "exit $?"
