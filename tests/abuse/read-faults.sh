#!/bin/bash
# An image that cannot be read is an I/O error, never "not qcow2": reads of
# the image fail (EIO) or come back short (a file that shrank) after the
# first K reads, for every K up to the tool's whole run; the tools must exit
# 1 naming the error (or, for a check, count internal errors as qemu-img
# does), never 63, never "Unknown error".
. "$TESTS/lib.sh"
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v cc >/dev/null || { echo "no C compiler"; exit 77; }
cc -shared -fPIC -O2 -o read-fault.so "$TESTS/abuse/read-fault.c" -ldl || exit 1
# the sanitizer runtime must come first; the shim only wraps pread
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

faulty() { # K MODE [OFFSET] -- command...
    local k=$1 mode=$2 off=$3
    shift 3
    env QC_FAULT_FILE=e.qcow2 QC_FAULT_AFTER="$k" QC_FAULT_MODE="$mode" ${off:+QC_FAULT_OFFSET=$off} \
        LD_PRELOAD="$PWD/read-fault.so" "$@"
}

judge() { # WHAT RC OUTFILE
    local what=$1 rc=$2 out=$3
    [ "$rc" = 63 ] && fail "$what: exit 63 (not qcow2): $(tail -1 "$out")"
    grep -qE 'not in qcow2 format|does not support checks|not a qcow2|Unknown error' "$out" &&
        fail "$what: $(grep -E 'not in qcow2 format|does not support checks|not a qcow2|Unknown error' "$out" | head -1)"
    if [ "$rc" = 1 ] && ! grep -qE 'Input/output error|shrank|internal errors have occurred' "$out"; then
        fail "$what: exit 1 without naming the error: $(tail -1 "$out")"
    fi
    # a sanitizer report, a crash or an abort is never an answer
    case $rc in 0|1|2|3) ;; *) fail "$what: exit $rc";; esac
}

injected=0
for img in ck-lazy c512; do
    fixture "$img" d.qcow2
    for mode in eio eof; do
        for k in $(seq 0 32); do
            cp d.qcow2 e.qcow2
            faulty "$k" "$mode" "" qc-check e.qcow2 >out 2>&1; judge "$img qc-check, fault after $k reads ($mode)" $? out
            faulty "$k" "$mode" "" qc-check --output=json e.qcow2 >out 2>&1; judge "$img qc-check --output=json, fault after $k ($mode)" $? out
            faulty "$k" "$mode" "" qc-repair e.qcow2 >out 2>&1; judge "$img qc-repair, fault after $k ($mode)" $? out
            cp d.qcow2 e.qcow2
            faulty "$k" "$mode" "" qc-dump --map e.qcow2 >out 2>&1; rc=$?
            [ $rc = 63 ] && fail "$img qc-dump --map, fault after $k ($mode): exit 63"
            grep -q 'Unknown error' out && fail "$img qc-dump --map, fault after $k ($mode): $(grep 'Unknown error' out | head -1)"
            injected=$((injected + 1))
        done
    done
done

# Re-reading the magic (the format probe after the header was read) fails.
fixture ck-clean e.qcow2
faulty 1 eio 0 qc-check e.qcow2 >out 2>&1; rc=$?
[ $rc = 1 ] || fail "qc-check, the magic's second read fails: exit $rc, not 1"
grep -q "Input/output error" out || fail "qc-check, the magic's second read fails: $(cat out)"
faulty 1 eio 0 qc-repair e.qcow2 >out 2>&1; rc=$?
[ $rc = 1 ] || fail "qc-repair, the magic's second read fails: exit $rc, not 1"
grep -q "Input/output error" out || fail "qc-repair, the magic's second read fails: $(cat out)"

# The shim does inject: the first read failing makes qc-check fail.
faulty 0 eio "" qc-check e.qcow2 >out 2>&1 && fail "the fault shim injected nothing"
echo "$injected fault points"
[ $fails -eq 0 ]
