# Guest map, host bytes and guest bytes: the same as qc-dump's (and host
# bytes as hexdump -C's); sizes take the suffixes of the conventions.
. "$TESTS/golden/qc-shell/same.bash"
fixture dv-std; fixture dv-backing; fixture dv-damaged
same dv-std.qcow2 map qc-dump --map dv-std.qcow2
same dv-backing.qcow2 'map --json' qc-dump --map --json dv-backing.qcow2
same dv-damaged.qcow2 map qc-dump --map dv-damaged.qcow2
same dv-std.qcow2 'hexdump 0x30 0x40' qc-dump --hexdump 0x30 0x40 dv-std.qcow2
same dv-std.qcow2 'hexdump 1s 1k' hexdump -C -s 512 -n 1024 dv-std.qcow2
same dv-std.qcow2 'hexdump 1G 16' qc-dump --hexdump 1G 16 dv-std.qcow2
same dv-std.qcow2 'read 0 24k' qc-dump --read 0 24k dv-std.qcow2
same dv-backing.qcow2 'read 0 16k' qc-dump --read 0 16k dv-backing.qcow2
same dv-backing.qcow2 'read --backing 60k 8k' qc-dump --read 60k 8k --backing dv-backing.qcow2
same dv-damaged.qcow2 'read 0 12k' qc-dump --read 0 12k dv-damaged.qcow2
# usage errors
run dv-std.qcow2 'map x' 'map --raw' 'hexdump' 'hexdump 0' 'hexdump x 1' 'hexdump 0 1q' \
   'read 0 1 2' 'read --json 0 1' 'read 1M'
