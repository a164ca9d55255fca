# With -w, qc-setfeature's edits: the same messages, exit status and bytes
# written as qc-setfeature for the same request (each run on its own copy);
# the next command sees the change.
. "$TESTS/golden/qc-shell/same.bash"
fixture v3; fixture lazy; fixture dirty
same v3.qcow2 list qc-setfeature --list v3.qcow2
same dirty.qcow2 list qc-setfeature --list dirty.qcow2

# same_edit BASE 'CMD' SETFEATURE-ARG...: CMD on one copy of BASE, qc-setfeature
# on another (both named img.qcow2); output, exit status and bytes compared
same_edit() {
    local base=$1 cmd=$2 rs rt
    shift 2
    rm -rf s t; mkdir s t
    cp "$base" s/img.qcow2; cp "$base" t/img.qcow2
    printf 'payload' > s/payload; cp s/payload t/payload
    (cd s && qc-shell -w -c "$cmd" img.qcow2 >../shell.out 2>&1); rs=$?
    (cd t && qc-setfeature "$@" >../tool.out 2>&1); rt=$?
    sed -i 's/^qc-setfeature: /qc-shell: /' tool.out
    echo "-- $base: $cmd  [exit $rs]"
    cat shell.out
    if [ $rs = $rt ] && cmp -s shell.out tool.out && cmp -s s/img.qcow2 t/img.qcow2; then
        echo "== same output and bytes as: qc-setfeature $*"
    else
        echo "!! not the same as: qc-setfeature $* [exit $rt]"
        diff shell.out tool.out; cmp s/img.qcow2 t/img.qcow2
    fi
}
same_edit v3.qcow2 'set lazy_refcounts' img.qcow2 lazy_refcounts
same_edit v3.qcow2 'set -v autoclear:63 compatible:5' -v img.qcow2 autoclear:63 compatible:5
same_edit lazy.qcow2 'clear -v lazy_refcounts' --clear -v img.qcow2 lazy_refcounts
same_edit v3.qcow2 'set dirty' img.qcow2 dirty
same_edit v3.qcow2 'set --force dirty' --force img.qcow2 dirty
same_edit dirty.qcow2 'clear dirty' --clear img.qcow2 dirty
same_edit v3.qcow2 'set-header -v size=2M' -v img.qcow2 --set-header size=2M
same_edit v3.qcow2 'set-header refcount_order=3 header_length=0x70' \
    img.qcow2 --set-header refcount_order=3 --set-header header_length=0x70
same_edit v3.qcow2 'add-ext -v 0x12345678=hello' -v img.qcow2 --add-ext 0x12345678=hello
same_edit v3.qcow2 'add-ext backing_format=qcow2' img.qcow2 --add-ext 0xe2792aca=qcow2
same_edit v3.qcow2 'add-ext-file 0x1234=payload' img.qcow2 --add-ext-file 0x1234=payload
same_edit v3.qcow2 'add-ext-file 0x1234=nosuch' img.qcow2 --add-ext-file 0x1234=nosuch
same_edit v3.qcow2 'del-ext -v feature_table' -v img.qcow2 --del-ext 0x6803f857
same_edit v3.qcow2 'del-ext 0x99' img.qcow2 --del-ext 0x99
same_edit v3.qcow2 'set --dry-run extended_l2' --dry-run img.qcow2 extended_l2
# --dry-run needs no -w, and writes nothing
cp v3.qcow2 ro.qcow2
same ro.qcow2 'set-header --dry-run size=4M' qc-setfeature --dry-run ro.qcow2 --set-header size=4M
cmp v3.qcow2 ro.qcow2 && echo "unchanged"
# the next command sees the edit
cp v3.qcow2 seq.qcow2
run seq.qcow2 'features' 'set lazy_refcounts' 'features' 'set-header size=4M' 'guest 3M'
qc-shell -w -c 'set lazy_refcounts' -c 'features' -c 'clear lazy_refcounts' -c 'features' \
    -c 'set-header size=4M' -c 'guest 3M' seq.qcow2; echo "exit $?"
# usage errors
run seq.qcow2 'set' 'set frob' 'clear incompatible:64' 'set-header size' 'set-header nosuch=1' \
    'set-header cluster_bits=300' 'add-ext x=1' 'add-ext-file 1' 'del-ext zz' 'set --bogus dirty'
