# snapshot ID|NAME switches l1, l2, map, read and guest to an internal
# snapshot's disk (as qc-dump --snapshot shows it), snapshot active back;
# a missing snapshot is refused and the view stays; the header is the file's.
. "$TESTS/golden/qc-shell/same.bash"
fixture snapshots
# like: each view after `snapshot SPEC` against qc-dump --snapshot SPEC
like() {
    local spec=$1 cmd=$2 rs rt
    shift 2
    qc-shell -c "snapshot $spec" -c "$cmd" snapshots.qcow2 >shell.out 2>&1; rs=$?
    qc-dump --snapshot "$spec" "$@" snapshots.qcow2 >tool.out 2>&1; rt=$?
    sed -i "s/^qc-dump: /qc-shell: /" tool.out
    if [ $rs = $rt ] && cmp -s shell.out tool.out; then
        echo "== snapshot $spec, $cmd: same as qc-dump --snapshot $spec $* [exit $rs]"
    else
        echo "!! snapshot $spec, $cmd: not the same as qc-dump --snapshot $spec $*"
        diff shell.out tool.out
    fi
}
like 1 l1 --l1
like snap2 l1 --l1
like snap1 'l2 0 --nonzero' --l2 0 --nonzero
like snap2 'l2 all --nonzero' --l2 all --nonzero
like 2 map --map
like snap1 'map --json' --map --json
like snap1 'read 0 32' --read 0 32
run snapshots.qcow2 snapshot 'snapshot snap1' snapshot 'read 0 16' 'guest 0' \
    'snapshot nosuch' snapshot 'read 0 16' 'snapshot active' snapshot 'read 0 16' 'l1'
run snapshots.qcow2 'snapshot 2' 'header --json' 'snapshot 1 2'
