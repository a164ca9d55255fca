#!/bin/bash
# Image locks against a running QEMU (qemu-io):
# - a writer and qemu-io starting at once never both hold an image
#   read-write (the lock bytes are taken before the conflict check, and the
#   test hook QC_TEST_LOCK_DELAY_MS widens the window between the two);
# - qc-write (and qc-repair, qc-setfeature, qc-shell -w) lock the backing
#   file of the image they write as QEMU does: a base held read-write
#   refuses them with QEMU's message (--force overrides), a base held
#   read-only does not;
# - qc-check and qc-dump (and qc-shell without -w) on an image a writer
#   holds warn on stderr, naming it, and print what they print without the
#   writer; -U silences the warning, and a read-only holder causes none.
. "$TESTS/lib.sh"
# stdbuf preloads its library: a sanitizer runtime must not insist on coming first
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
trap '' PIPE   # "quit" to a process that was refused and is gone

# Does some process hold lock byte BYTE of FILE?  (/proc/locks merges
# adjacent bytes into one range: "... dev:ino START END".)
lock_held() {
    local ino
    ino=$(stat -c %i "$1")
    awk -v ino="$ino" -v b="$2" '{ n = split($(NF-2), d, ":");
        if (d[n] == ino && $(NF-1) <= b && b <= $NF) found = 1 }
        END { exit !found }' /proc/locks
}
# Waits (without taking any lock: a probing qemu-img would race with the
# holder's own open) until byte BYTE of FILE is locked.
wait_lock() {
    for _ in $(seq 300); do
        lock_held "$1" "$2" && return 0
        sleep 0.1
    done
    return 1
}

# hold [-r] FILE: qemu-io holds FILE (read-write, or read-only with -r)
# until release; its commands come from fd 3.
hold() {
    local ro= byte=101
    [ "$1" = -r ] && { ro=-r; byte=201; shift; }
    rm -f hold.fifo
    mkfifo hold.fifo
    qemu-io $ro "$1" <hold.fifo >hold.out 2>&1 & holder=$!
    pids+=("$holder")
    exec 3>hold.fifo
    wait_lock "$1" $byte || fail "qemu-io $ro $1 took no lock: $(cat hold.out)"
}
release() { echo quit >&3; exec 3>&-; wait "$holder"; }

# --- the race: qc-write and qemu-io open one image at the same moment ---
# Each reads commands from a FIFO and answers "read 0 512" once it holds
# the image; one that is refused exits.  Both answering means both hold it
# read-write at once.
answered() {   # PID OUT: 0 answered, 1 exited without answering
    for _ in $(seq 600); do
        grep -q 'read 512/512 bytes at offset 0' "$2" && return 0
        kill -0 "$1" 2>/dev/null || { grep -q 'read 512/512 bytes at offset 0' "$2"; return; }
        sleep 0.05
    done
    fail "race: $2: neither an answer nor an exit in 30 s"
    return 1
}
both=0 one=0 none=0
for i in $(seq 20); do
    qemu-img create -q -f qcow2 race.qcow2 1M
    rm -f w.fifo q.fifo
    mkfifo w.fifo q.fifo
    # (stdbuf: each answer reaches the file as it is printed)
    QC_TEST_LOCK_DELAY_MS=500 stdbuf -oL qc-write race.qcow2 <w.fifo >w.out 2>&1 & wpid=$!
    stdbuf -oL qemu-io race.qcow2 <q.fifo >q.out 2>&1 & qpid=$!
    pids+=("$wpid" "$qpid")
    exec 4>w.fifo 5>q.fifo
    echo 'read 0 512' >&4
    echo 'read 0 512' >&5
    n=0
    answered "$wpid" w.out && n=$((n + 1))
    answered "$qpid" q.out && n=$((n + 1))
    echo quit >&4 2>/dev/null
    echo quit >&5 2>/dev/null
    exec 4>&- 5>&-
    wait "$wpid" "$qpid" 2>/dev/null
    # the one that comes second is refused with QEMU's message for that order:
    # "write" when it wants what the other holds, shared "write" when the
    # other already refuses to share it
    case $n in
    2) both=$((both + 1))
       fail "race $i: qc-write and qemu-io both held the image read-write" ;;
    1) one=$((one + 1))
       grep -qE 'Failed to get (shared )?"write" lock' w.out q.out ||
           fail "race $i: the refusal is not QEMU's: $(cat w.out q.out)" ;;
    *) none=$((none + 1)) ;;
    esac
done
echo "race: $one runs with one holder, $none with none, $both with two"

# --- qc-write and the backing file ---
qemu-img create -q -f qcow2 base.qcow2 1M
qemu-io -c 'write -P 0x11 0 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M
cp base.qcow2 base.orig
cp top.qcow2 top.orig
hold base.qcow2
qc-write -c 'write -P 0x22 0 4k' top.qcow2 >out 2>&1 && fail "qc-write over a base held read-write: exit 0"
grep -q "Could not open backing file: Failed to get shared \"write\" lock" out &&
    grep -qF 'Is another process using the image [base.qcow2]?' out ||
    fail "qc-write over a held base: not QEMU's message: $(cat out)"
cmp -s top.qcow2 top.orig || { fail "the refused qc-write changed the overlay"; cp top.orig top.qcow2; }
cmp -s base.qcow2 base.orig || fail "the refused qc-write changed the base"
# The other writers hold the backing chain too.
held_base() {   # WHAT: refused with QEMU's message, nothing changed
    grep -q 'Failed to get shared "write" lock' out &&
        grep -qF 'Is another process using the image [base.qcow2]?' out ||
        fail "$1 over a held base: not QEMU's message: $(cat out)"
    cmp -s top.qcow2 top.orig || { fail "the refused $1 changed the overlay"; cp top.orig top.qcow2; }
}
qc-repair top.qcow2 >out 2>&1 && fail "qc-repair over a base held read-write: exit 0"
held_base qc-repair
qc-setfeature top.qcow2 lazy_refcounts >out 2>&1 && fail "qc-setfeature over a base held read-write: exit 0"
held_base qc-setfeature
qc-shell -w -c 'help' top.qcow2 >out 2>&1 && fail "qc-shell -w over a base held read-write: exit 0"
held_base "qc-shell -w"
qc-check top.qcow2 >out 2>&1 || fail "qc-check of the overlay of a held base: $(cat out)"
qc-write --force -c 'write -P 0x22 0 4k' top.qcow2 >out 2>&1 || fail "qc-write --force over a held base: $(cat out)"
cmp -s base.qcow2 base.orig || fail "qc-write --force changed the base"
release
cmp -s top.qcow2 top.orig && fail "qc-write --force did not write the overlay"

# A raw base, named with its format, is locked the same way.
qemu-img create -q -f raw base.raw 1M
qemu-img create -q -f qcow2 -b base.raw -F raw rtop.qcow2 1M
cp rtop.qcow2 rtop.orig
rm -f hold.fifo; mkfifo hold.fifo
qemu-io -f raw base.raw <hold.fifo >hold.out 2>&1 & holder=$!
pids+=("$holder")
exec 3>hold.fifo
wait_lock base.raw 101 || fail "qemu-io -f raw took no lock: $(cat hold.out)"
qc-write -c 'write 0 4k' rtop.qcow2 >out 2>&1 && fail "qc-write over a raw base held read-write: exit 0"
grep -qF 'Is another process using the image [base.raw]?' out || fail "raw base: $(cat out)"
cmp -s rtop.qcow2 rtop.orig || fail "the refused qc-write changed the overlay of the raw base"
release

# A base held read-only is shared, as between QEMU processes.
cp top.orig top.qcow2
hold -r base.qcow2
qc-write -c 'write -P 0x22 0 4k' top.qcow2 >out 2>&1 || fail "qc-write over a base held read-only: $(cat out)"
release

# --- read-only tools on an image a writer holds ---
qemu-img create -q -f qcow2 live.qcow2 1M
qemu-io -c 'write -P 0x33 0 128k' live.qcow2 >/dev/null
qemu-img create -q -f qcow2 other.qcow2 1M
qc-check live.qcow2 >check.ref 2>check.ref.err; check_rc=$?
qc-check live.qcow2 other.qcow2 >check2.ref 2>check2.ref.err; check2_rc=$?
qc-check --output=json live.qcow2 >json.ref 2>/dev/null
qc-dump live.qcow2 >dump.ref 2>dump.ref.err; dump_rc=$?
qc-dump --l1 --map live.qcow2 >map.ref 2>/dev/null
warns() { grep -c "warning: .*live\.qcow2.*for writing" "$1"; }
same() {   # WHAT OUT REF RC REFRC
    cmp -s "$2" "$3" || fail "$1: stdout differs from the run without a holder"
    [ "$4" = "$5" ] || fail "$1: exit $4, without a holder $5"
}
hold live.qcow2
qc-check live.qcow2 >out 2>err; rc=$?
same "qc-check (writer)" out check.ref $rc $check_rc
[ "$(warns err)" = 1 ] || fail "qc-check (writer): not one warning naming the image: $(cat err)"
grep -v 'warning: ' err | cmp -s - check.ref.err || fail "qc-check (writer): stderr beyond the warning changed"
qc-check live.qcow2 other.qcow2 >out 2>err; rc=$?
same "qc-check of two images (writer)" out check2.ref $rc $check2_rc
[ "$(warns err)" = 1 ] && [ "$(grep -c 'warning: ' err)" = 1 ] ||
    fail "qc-check of two images: not one warning, for the held one: $(cat err)"
qc-check --output=json live.qcow2 >out 2>err
cmp -s out json.ref || fail "qc-check --output=json (writer): stdout differs"
[ "$(warns err)" = 1 ] || fail "qc-check --output=json (writer): no warning: $(cat err)"
qc-dump live.qcow2 >out 2>err; rc=$?
same "qc-dump (writer)" out dump.ref $rc $dump_rc
[ "$(warns err)" = 1 ] || fail "qc-dump (writer): not one warning naming the image: $(cat err)"
qc-dump --l1 --map live.qcow2 >out 2>err
cmp -s out map.ref || fail "qc-dump --l1 --map (writer): stdout differs"
[ "$(warns err)" = 1 ] || fail "qc-dump --l1 --map (writer): not one warning: $(cat err)"
qc-shell -c help live.qcow2 >out 2>err
[ "$(warns err)" = 1 ] || fail "qc-shell (writer): not one warning naming the image: $(cat err)"
qc-shell -U -c help live.qcow2 >out 2>err
grep -q 'warning: ' err && fail "qc-shell -U (writer): warned: $(cat err)"
for u in -U --force-share; do
    qc-check $u live.qcow2 >out 2>err; rc=$?
    same "qc-check $u (writer)" out check.ref $rc $check_rc
    cmp -s err check.ref.err || fail "qc-check $u (writer): stderr: $(cat err)"
    qc-dump $u live.qcow2 >out 2>err; rc=$?
    same "qc-dump $u (writer)" out dump.ref $rc $dump_rc
    cmp -s err dump.ref.err || fail "qc-dump $u (writer): stderr: $(cat err)"
done
release

hold -r live.qcow2
qc-check live.qcow2 >out 2>err; rc=$?
same "qc-check (reader)" out check.ref $rc $check_rc
cmp -s err check.ref.err || fail "qc-check (read-only holder): stderr: $(cat err)"
qc-dump live.qcow2 >out 2>err; rc=$?
same "qc-dump (reader)" out dump.ref $rc $dump_rc
cmp -s err dump.ref.err || fail "qc-dump (read-only holder): stderr: $(cat err)"
qc-shell -c help live.qcow2 >out 2>err
grep -q 'warning: ' err && fail "qc-shell (read-only holder): warned: $(cat err)"
release

# The probe for a writer must not hang on a FIFO named as the image.
mkfifo pipe.qcow2
for tool in qc-check qc-dump "qc-shell -c help"; do
    timeout 20 $tool pipe.qcow2 >/dev/null 2>&1
    [ $? = 124 ] && fail "$tool on a FIFO hangs"
done

[ $fails -eq 0 ]
