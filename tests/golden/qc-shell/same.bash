# Helpers of the qc-shell golden tests.
. "$TESTS/lib.sh"

# run IMAGE CMD...: qc-shell -c for each CMD, output and exit status.
run() {
    local img=$1 a=() c
    shift
    for c in "$@"; do a+=(-c "$c"); done
    printf -- "-- qc-shell"; printf " -c '%s'" "$@"; printf ' %s\n' "$img"
    qc-shell "${a[@]}" "$img" 2>&1
    echo "exit $?"
}

# same IMAGE CMD TOOL ARG...: prints what `qc-shell -c CMD IMAGE` prints and
# its exit status, then whether TOOL ARG... prints the same (stdout and
# stderr, the tool's name in its messages read as qc-shell's) with the same
# exit status.
same() {
    local img=$1 cmd=$2 rs rt
    shift 2
    qc-shell -c "$cmd" "$img" >shell.out 2>&1; rs=$?
    "$@" >tool.out 2>&1; rt=$?
    sed -i "s/^$1: /qc-shell: /" tool.out
    echo "-- $cmd  [exit $rs]"
    cat shell.out
    if [ $rs = $rt ] && cmp -s shell.out tool.out; then
        echo "== same as: $*"
    else
        echo "!! not the same as: $* [exit $rt]"
        diff shell.out tool.out
    fi
}

# same_json IMAGE CMD MEMBER TOOL ARG...: prints `qc-shell -c CMD IMAGE`'s
# JSON and exit status, then whether it equals (as JSON) the MEMBER of the
# document TOOL ARG... prints.
same_json() {
    local img=$1 cmd=$2 member=$3 rs
    shift 3
    qc-shell -c "$cmd" "$img" >shell.out 2>&1; rs=$?
    "$@" >tool.out 2>/dev/null
    echo "-- $cmd  [exit $rs]"
    cat shell.out
    if python3 -c 'import json,sys; a=json.load(open("shell.out")); b=json.load(open("tool.out"))[sys.argv[1]]; sys.exit(a != b)' "$member"; then
        echo "== same as member $member of: $*"
    else
        echo "!! not the same as member $member of: $*"
    fi
}
