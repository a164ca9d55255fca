#!/bin/bash
# qc-repair keeps what QEMU 7.2 loses, changes nothing in a dry run, undoes
# itself byte for byte from a backup, and refuses an image another process
# holds (qemu-io, qemu-nbd) unless --force.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fail() { echo "FAIL: $*"; exit 1; }
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# --- a snapshot and a persistent bitmap: qemu-img check -r leaks (7.2) drops
# the snapshot of this healthy image; qc-repair keeps both
qemu-img create -q -f qcow2 sb.qcow2 64M
qemu-io -c 'write -P 1 0 128k' sb.qcow2 >/dev/null
qemu-img snapshot -c snap1 sb.qcow2
qemu-img bitmap --add sb.qcow2 bm0
qemu-io -c 'write -P 2 0 64k' sb.qcow2 >/dev/null
for mode in leaks all; do
    cp sb.qcow2 o.qcow2
    qc-repair -r $mode o.qcow2 >out 2>err || { cat out err; fail "-r $mode exit $?"; }
    qemu-img snapshot -l o.qcow2 | grep -q ' snap1 ' || fail "-r $mode lost the snapshot"
    qemu-img info --output=json o.qcow2 | grep -q '"name": "bm0"' || fail "-r $mode lost the bitmap"
    cmp -s sb.qcow2 o.qcow2 || fail "-r $mode changed a healthy image"
done
# the same image with a leak: repaired, snapshot and bitmap kept
cp sb.qcow2 o.qcow2
rt=$(peek_be o.qcow2 48 8); rb=$(peek_be o.qcow2 $rt 8)
poke_be o.qcow2 $rb 2 2
qemu-img check o.qcow2 >/dev/null 2>&1 && fail "no leak made"
qc-repair -r leaks o.qcow2 >out 2>err || { cat out err; fail "leak repair"; }
qemu-img check o.qcow2 >/dev/null || fail "leak left"
qemu-img snapshot -l o.qcow2 | grep -q ' snap1 ' || fail "leak repair lost the snapshot"
qemu-img info --output=json o.qcow2 | grep -q '"name": "bm0"' || fail "leak repair lost the bitmap"

# --- a damaged image for the rest: lazy refcounts and abort
qemu-img create -q -f qcow2 -o lazy_refcounts=on d.qcow2 64M
qemu-io -c 'write -P 1 0 128k' d.qcow2 >/dev/null
sh -c "qemu-io -c 'write -P 0x5a 1M 64k' -c abort d.qcow2; true" >/dev/null 2>&1
qemu-img check d.qcow2 >/dev/null 2>&1 && fail "no damage made"

# --dry-run: the plan on stdout, not a byte (nor the mtime) changed
cp d.qcow2 a.qcow2; touch -d '2001-01-01 00:00:00' a.qcow2
sum=$(sha256sum <a.qcow2); mt=$(stat -c %Y a.qcow2)
qc-repair --dry-run a.qcow2 >out 2>err; rc=$?
[ "$rc" = 2 ] || fail "dry run exit $rc"
grep -q '^Dry run: nothing was written' out || fail "dry run: no plan header"
grep -q '^write 1: offset 0x' out || fail "dry run: no write listed"
grep -q 'switch to the new refcount table' out || fail "dry run: no table switch"
[ "$(sha256sum <a.qcow2)" = "$sum" ] || fail "dry run changed the image"
[ "$(stat -c %Y a.qcow2)" = "$mt" ] || fail "dry run changed the mtime"
qc-repair --dry-run --output=json a.qcow2 >out 2>/dev/null
python3 -c 'import json,sys; d=json.load(open("out")); assert d["dry-run"] and d["plan"] and d["corruptions-fixed"] > 0' ||
    fail "dry run JSON"

# --backup then --undo: byte for byte, length included
cp d.qcow2 a.qcow2
sum=$(sha256sum <a.qcow2); len=$(stat -c %s a.qcow2)
qc-repair --backup a.bak a.qcow2 >out 2>err || { cat out err; fail "repair with backup"; }
qemu-img check a.qcow2 >/dev/null || fail "not repaired"
[ "$(sha256sum <a.qcow2)" != "$sum" ] || fail "repair changed nothing"
qc-repair --undo a.bak a.qcow2 >out 2>err || { cat out err; fail "undo"; }
[ "$(sha256sum <a.qcow2)" = "$sum" ] || fail "undo did not restore the bytes"
[ "$(stat -c %s a.qcow2)" = "$len" ] || fail "undo did not restore the length"
# a damaged backup is refused and changes nothing
printf 'x' | dd of=a.bak bs=1 seek=30 conv=notrunc status=none
qc-repair --undo a.bak a.qcow2 >out 2>err && fail "damaged backup accepted"
[ "$(sha256sum <a.qcow2)" = "$sum" ] || fail "damaged backup changed the image"

# JSON: the double check's numbers with the fixed counts
cp d.qcow2 a.qcow2
qc-repair --output=json a.qcow2 >out 2>/dev/null || fail "json repair"
python3 -c '
import json
d = json.load(open("out"))
assert d["corruptions-fixed"] > 0 and d.get("corruptions", 0) == 0, d
assert list(d)[:3] == ["image-end-offset", "total-clusters", "corruptions-fixed"], list(d)
' || fail "repair JSON"

# --crash-after: exit 99 after N writes; a second repair finishes the job
cp d.qcow2 a.qcow2
qc-repair --crash-after 1 a.qcow2 >/dev/null 2>&1; rc=$?
[ "$rc" = 99 ] || fail "crash-after exit $rc"
qc-repair a.qcow2 >/dev/null 2>&1 || fail "second repair after the crash"
qemu-img check a.qcow2 >/dev/null || fail "not clean after the second repair"

# --- locks
cp d.qcow2 a.qcow2; cp a.qcow2 orig.qcow2
inode=$(stat -c %i a.qcow2)
locked() { grep -Eq "OFDLCK .*:$inode " /proc/locks; }
wait_locked() {
    local i
    for ((i = 0; i < 100; i++)); do locked && return 0; sleep 0.1; done
    fail "the holder took no lock"
}
for holder in "qemu-io -r" "qemu-nbd"; do
    case $holder in
    qemu-nbd) qemu-nbd -f qcow2 -k "$TEST_DIR/nbd.sock" a.qcow2 >/dev/null 2>&1 & ;;
    *) qemu-io -r -c 'sleep 100000' a.qcow2 >/dev/null & ;;
    esac
    pid=$!
    wait_locked
    # (qemu-nbd repairs the dirty image itself when it opens it)
    sleep 0.5; cp a.qcow2 orig.qcow2
    qc-repair a.qcow2 >out 2>err && fail "not refused with $holder"
    grep -q 'Failed to get "write" lock' err || { cat err; fail "lock message"; }
    grep -q 'Is another process using the image \[a.qcow2\]?' err || { cat err; fail "lock hint"; }
    cmp -s orig.qcow2 a.qcow2 || fail "written despite the lock ($holder)"
    # a dry run only reads
    qc-repair --dry-run a.qcow2 >/dev/null 2>&1; [ $? != 1 ] || fail "dry run with $holder"
    kill "$pid"; wait "$pid" 2>/dev/null; pid=
    for ((i = 0; i < 50; i++)); do locked || break; sleep 0.1; done
    cp d.qcow2 a.qcow2
done
qemu-io -r -c 'sleep 100000' a.qcow2 >/dev/null &
pid=$!
wait_locked
qc-repair --force a.qcow2 >/dev/null 2>&1 || fail "--force"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
qemu-img check a.qcow2 >/dev/null || fail "not repaired with --force"
echo ok
