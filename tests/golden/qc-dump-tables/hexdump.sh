# --hexdump OFF LEN: host bytes as hexdump -C, with folding, partial lines,
# suffixes, ranges past EOF and empty ranges.
. "$TESTS/lib.sh"
fixture dv-std
qc-dump --hexdump 0 0x70 dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 4k 1k dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 1s 0x11 dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 53200 100 dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 1M 16 dv-std.qcow2; echo "exit $?"
qc-dump --hexdump 100 0 dv-std.qcow2; echo "exit $?"
qc-dump --json --hexdump 0 8 dv-std.qcow2 | sed -n '/"hexdump"/,$p'; echo "exit $?"
