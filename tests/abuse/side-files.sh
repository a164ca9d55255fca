#!/bin/bash
# Side files (backup, write log, record, raw output) never destroy the
# image: not when they name it, not through a symlink or a hard link to
# it; a backup is created exclusively, mode 0600, never through a symlink
# planted at its name, and never replaces an earlier backup; a raw export
# refuses a target that a running QEMU holds.
. "$TESTS/lib.sh"
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

# A dirty lazy-refcount image: qc-repair has work to do on it.
fixture ck-lazy d.qcow2
cp d.qcow2 orig.qcow2
ln -s d.qcow2 sym.qcow2
ln d.qcow2 hard.qcow2

unchanged() { cmp -s d.qcow2 orig.qcow2 || { fail "$1: the image changed ($(stat -c %s d.qcow2) bytes)"; cp orig.qcow2 d.qcow2; }; }

for alias in d.qcow2 sym.qcow2 hard.qcow2; do
    qc-repair --backup "$alias" d.qcow2 >out 2>&1 && fail "--backup $alias: exit 0"
    unchanged "qc-repair --backup $alias"
    qc-repair --write-log "$alias" d.qcow2 >out 2>&1 && fail "qc-repair --write-log $alias: exit 0"
    unchanged "qc-repair --write-log $alias"
    qc-repair --record "$alias" d.qcow2 >out 2>&1 && fail "qc-repair --record $alias: exit 0"
    unchanged "qc-repair --record $alias"
    qc-write --write-log "$alias" d.qcow2 -c 'read 0 512' >out 2>&1 && fail "qc-write --write-log $alias: exit 0"
    unchanged "qc-write --write-log $alias"
    qc-write --record "$alias" d.qcow2 -c 'read 0 512' >out 2>&1 && fail "qc-write --record $alias: exit 0"
    unchanged "qc-write --record $alias"
done
grep -q 'is the image' out || fail "the refusal does not say that the file is the image: $(cat out)"

# A symlink planted at the backup path: its target is not written.
echo precious > victim
ln -s victim planted.bak
qc-repair --backup planted.bak d.qcow2 >out 2>&1 && fail "--backup through a planted symlink: exit 0"
[ "$(cat victim)" = precious ] || fail "the symlink's target was overwritten"
unchanged "qc-repair --backup planted.bak"

# A backup is 0600, and a second run does not replace it.
cp orig.qcow2 e.qcow2
qc-repair --backup e.bak e.qcow2 >out 2>&1 || fail "repair with a backup: $(cat out)"
[ "$(stat -c %a e.bak)" = 600 ] || fail "backup mode $(stat -c %a e.bak), not 600"
cp e.bak e.bak.first
cp orig.qcow2 e.qcow2
qc-repair --backup e.bak e.qcow2 >out 2>&1 && fail "a second --backup to the same file: exit 0"
cmp -s e.bak e.bak.first || fail "the second run replaced the first backup"
cmp -s e.qcow2 orig.qcow2 || fail "the refused repair still changed the image"

# A write log or record that exists is kept (it may be the only trace of a
# crash) unless --force asks for it to be replaced; a new one is 0600.
for tool in repair write; do
    for opt in --write-log --record; do
        cp orig.qcow2 f.qcow2
        echo "earlier log" > f.log
        cp f.log f.earlier
        if [ $tool = repair ]; then set -- qc-repair; else set -- qc-write -c 'write -P 7 0 512'; fi
        "$@" "$opt" f.log f.qcow2 >out 2>&1 && fail "qc-$tool $opt onto an existing file: exit 0"
        cmp -s f.log f.earlier || fail "qc-$tool $opt replaced an existing file"
        cmp -s f.qcow2 orig.qcow2 || fail "qc-$tool $opt: refused, yet the image changed"
        "$@" --force "$opt" f.log f.qcow2 >out 2>&1 || fail "qc-$tool --force $opt: $(cat out)"
        cmp -s f.log f.earlier && fail "qc-$tool --force $opt did not write the log"
        rm -f f.log
        cp orig.qcow2 f.qcow2
        "$@" "$opt" f.log f.qcow2 >out 2>&1 || fail "qc-$tool $opt to a new file: $(cat out)"
        [ "$(stat -c %a f.log)" = 600 ] || fail "qc-$tool $opt: mode $(stat -c %a f.log), not 600"
    done
done

# A raw export onto a disk that a running QEMU holds is refused.
if have_qemu; then
    qemu-img create -q -f qcow2 vm.qcow2 1M
    cp vm.qcow2 vm.orig
    mkfifo ctl
    qemu-io vm.qcow2 <ctl >/dev/null 2>&1 & pid=$!
    exec 3>ctl
    # Wait for its locks without taking any (a probing qemu-img would race
    # with qemu-io's own open and make it fail).
    ino=$(stat -c %i vm.qcow2)
    for _ in $(seq 300); do
        grep -q ":$ino " /proc/locks && break
        sleep 0.1
    done
    qc-dump --force --raw vm.qcow2 d.qcow2 >out 2>&1 && fail "--raw onto a locked image: exit 0"
    grep -q "another process holds it" out || fail "--raw: not refused for the lock: $(cat out)"
    cmp -s vm.qcow2 vm.orig || fail "--raw replaced a disk that qemu-io holds"
    echo quit >&3; exec 3>&-
    wait "$pid"; pid=
fi
# --force replaces a log, never a file the image reads: its backing file
# (by name or hard link), its data file.
if have_qemu; then
    qemu-img create -q -f raw base.raw 1M
    qemu-io -f raw -c 'write -P 0x11 0 1M' base.raw >/dev/null
    cp base.raw base.orig
    qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2
    ln base.raw base.link
    qemu-img create -q -f qcow2 -o data_file=data.bin,data_file_raw=on dd.qcow2 1M
    qemu-io -c 'write -P 0x22 0 64k' dd.qcow2 >/dev/null
    cp data.bin data.orig
    for log in base.raw base.link; do
        for opt in --write-log --record; do
            qc-write --force "$opt" "$log" ov.qcow2 -c 'write 0 512' >out 2>&1 &&
                fail "qc-write --force $opt $log (the backing file): exit 0"
            qc-repair --force "$opt" "$log" ov.qcow2 >out 2>&1 &&
                fail "qc-repair --force $opt $log (the backing file): exit 0"
        done
    done
    cmp -s base.raw base.orig || fail "a log with --force replaced the backing file"
    qc-repair --force --write-log data.bin dd.qcow2 >out 2>&1 && fail "qc-repair --force --write-log onto the data file: exit 0"
    cmp -s data.bin data.orig || fail "a log with --force replaced the data file"
    # an image that would back itself is refused as qemu-img refuses it
    qc-write --create 1M -o backing_file=base.raw,backing_fmt=raw base.raw >out 2>&1 &&
        fail "--create with the image as its own backing file: exit 0"
    grep -q "same filename as the backing file" out || fail "--create onto its backing file: $(cat out)"
    cmp -s base.raw base.orig || fail "--create over its own backing file changed it"
fi

# qc-dump --raw keeps an existing OUT (another image, say) unless --force,
# and a replaced or created OUT is 0600.
cp orig.qcow2 other.qcow2; chmod 644 other.qcow2
qc-dump --raw other.qcow2 orig.qcow2 >out 2>&1 && fail "--raw onto an existing file: exit 0"
cmp -s other.qcow2 orig.qcow2 || fail "--raw replaced an existing file without --force"
qc-dump --force --raw other.qcow2 orig.qcow2 >out 2>&1 || fail "--raw --force: $(cat out)"
[ "$(stat -c %a other.qcow2)" = 600 ] || fail "--raw --force left mode $(stat -c %a other.qcow2)"

# an undo file that is a FIFO is refused at once, not waited on
mkfifo undo.fifo
timeout 10 qc-repair --undo undo.fifo orig.qcow2 >out 2>&1; rc=$?
[ $rc = 124 ] && fail "--undo FIFO: hung"
[ $rc = 0 ] && fail "--undo FIFO: exit 0"
[ $fails -eq 0 ]
