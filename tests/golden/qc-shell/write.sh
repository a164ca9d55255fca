# With -w, qc-write's commands: the same messages and exit status as
# qc-write, and the same bytes in the image.  Views between writes see the
# image as a clean close of the writer leaves it.
. "$TESTS/golden/qc-shell/same.bash"
. "$TESTS/golden/qc-write/filter.bash"
fixture v3; fixture dirty; fixture bitmaps

# same_write BASE CMD...: the commands in qc-shell -w and in qc-write, each
# on its own copy of BASE named img.qcow2.  The shell's output is shown
# (stdout and stderr together); stdout and stderr are compared one by one
# (qc-write, unlike the shell, does not flush stdout after each command).
same_write() {
    local base=$1 a=() c rs rt
    shift
    for c in "$@"; do a+=(-c "$c"); done
    rm -rf s u t; mkdir s u t
    cp "$base" s/img.qcow2; cp "$base" u/img.qcow2; cp "$base" t/img.qcow2
    (cd s && qc-shell -w "${a[@]}" img.qcow2 2>&1 | filter_stats >../shell.out; exit "${PIPESTATUS[0]}"); rs=$?
    (cd u && qc-shell -w "${a[@]}" img.qcow2 2>../shell.err | filter_stats >../shell.std)
    (cd t && qc-write img.qcow2 "${a[@]}" 2>../tool.err | filter_stats >../tool.std; exit "${PIPESTATUS[0]}"); rt=$?
    sed -i 's/^qc-write: /qc-shell: /' tool.err
    printf -- "-- %s:" "$base"; printf " '%s'" "$@"; echo "  [exit $rs]"
    cat shell.out
    if [ $rs = $rt ] && cmp -s shell.std tool.std && cmp -s shell.err tool.err &&
       cmp -s s/img.qcow2 t/img.qcow2 && cmp -s u/img.qcow2 t/img.qcow2; then
        echo "== same output and bytes as qc-write"
    else
        echo "!! not the same as qc-write [exit $rt]"
        diff shell.std tool.std; diff shell.err tool.err; cmp s/img.qcow2 t/img.qcow2
    fi
}
same_write v3.qcow2 'write -P 0x5a 0 64k' 'write -z 64k 64k' 'write -c -P 0x11 128k 64k' \
    'discard 0 4k' 'flush' 'write 1020k 4k'
same_write dirty.qcow2 'write -P 1 0 512'
same_write bitmaps.qcow2 'write 0 512'
# qemu-io's messages for bad commands; the others still run
same_write v3.qcow2 'write' 'write -P 300 0 1' 'write 0 1x' 'discard' 'flush 1' 'write -P 7 0 4k'
# views between writes: the writer is closed (flushed) first, and reopened
cp v3.qcow2 w.qcow2
qc-shell -w -c 'write -P 0x77 0 4k' -c 'read 0 32' -c 'guest 0' -c 'write -P 0x78 4k 4k' \
    -c 'map' -c 'check' w.qcow2 2>&1 | filter_stats; echo "exit ${PIPESTATUS[0]}"
qc-dump --read 0 8k w.qcow2
# without -w: refused, nothing written
cp v3.qcow2 ro.qcow2
run ro.qcow2 'write 0 512' 'discard 0 512' 'flush'
cmp v3.qcow2 ro.qcow2 && echo "unchanged"
# a write onto metadata (the header's refcount is 0): refused, the image
# marked corrupt, later requests without a medium, as in qc-write (a view
# such as read would close the writer; the corrupt image is then refused)
qc-write --create 64M ovl.qcow2 -c 'write -P 1 0 64k' >/dev/null
poke_be ovl.qcow2 0x20000 2 0
same_write ovl.qcow2 'write -P 2 64k 64k' 'write 0 4k' 'discard 0 64k' 'flush' 'write -z 0 4k'
