# Malformed commands: qemu-io's messages and streams (qemu-io prints usage
# and value errors on stdout, argument-count and unknown-command errors on
# stderr); each one makes the exit status 1 and the others still run.
. "$TESTS/golden/qc-write/filter.bash"
qc-write --create 64M img.qcow2 >/dev/null
for c in 'read' 'read 0' 'read -x 0 1' 'discard' 'flush 1' 'write -P 300 0 1' \
         'write -P 0x1g 0 1' 'write 0 1x' 'write -c 1 512' 'write -c 0 100' \
         'write -z -P 1 0 1' 'write -u 0 1' 'read -l 5 0 1' 'write 0 3G' \
         'read -P 0 -s 2 -l 10 0 4' 'write 0 -1' 'frobnicate 1' 'write -b 0 1' \
         'write 1e3 1' 'write 0x1k 512' 'abort 1'; do
    echo "-- $c"
    qcw img.qcow2 -c "$c"
done
