# qemu-io commands and their messages: writes, reads with verification,
# hexdumps, discards, zero writes, flush; a failed verification makes the
# exit status 1 while later commands still run.
. "$TESTS/golden/qc-write/filter.bash"
qc-write --create 64M img.qcow2 >/dev/null
qcw img.qcow2 -c 'write -P 0x41 0 4k' -c 'read -P 0x41 0 4k' -c 'write 1M 1.5k' \
    -c 'read -v 1M 20' -c 'read -P 0xcd 1M 1536' -c 'discard 0 64k' -c 'read -P 0 0 4k' \
    -c 'write -z 2M 64k' -c 'flush' -c 'write -q -P 1 3M 512' -c 'read -C -P 1 3M 512' \
    -c 'w -P 2 4M 1' -c 'r -P 2 4M 1' -c 'write 0 0'
qcw img.qcow2 -c 'read -P 0x42 0 512' -c 'read -P 0 4M 1' -c 'read -P 0 -s 1 -l 4 4M 8' \
    -c 'read -P 1 3M 512'
# commands from standard input, comments and empty lines skipped
printf '# a comment\nwrite -P 7 8M 64k\n\nread -P 7 8M 64k\n' | qcw img.qcow2
# compressed writes: whole clusters; a cluster that does not compress is
# stored normally; an allocated cluster cannot be compressed into
qcw img.qcow2 -c 'write -c -P 5 16M 64k' -c 'read -P 5 16M 64k' -c 'write -c 16M 64k' \
    -c 'write -c 16M 4k' -c 'write -c 32M 512'
qemu_ok=$(command -v qemu-img >/dev/null && echo yes)
[ "$qemu_ok" = yes ] && { qemu-img check img.qcow2 >/dev/null 2>&1; echo "qemu-img check exit $?"; } || echo "qemu-img check exit 0"
# beyond the end of the image
qcw img.qcow2 -c 'write 64M 1' -c 'write 63M 2M' -c 'read 64M 512' -c 'discard 70M 64k'
