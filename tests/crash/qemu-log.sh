#!/bin/bash
# Writes made by QEMU itself: qemu-io through the blklogwrites driver
# records a dm-log-writes log, crashtest --replay checks every crash state
# of it.  The full replay must rebuild QEMU's file byte for byte, also for
# a log whose superblock lags behind its entries (qemu-io abort).
. "$TESTS/lib.sh"; . "$TESTS/crash/crash-lib.bash"
skip_without_qemu
need_repairer
fail=0
cmds() { grep -v '^#' "$1" | grep -v '^$' | while IFS= read -r l; do printf '%s\0' -c "$l"; done; }
record() {   # IMAGE LOG WORKLOAD [qemu-io options]
    local img=$1 log=$2 wl=$3; shift 3
    : > "$log"
    cmds "$wl" | xargs -0 qemu-io "$@" --image-opts \
        "driver=qcow2,file.driver=blklogwrites,file.file.filename=$img,file.log.filename=$log" \
        >/dev/null 2>&1
}

qemu-img create -f qcow2 base.qcow2 64M >/dev/null || exit 1
cp base.qcow2 img.qcow2
record img.qcow2 log.bin "$WL/mixed.wl"
crash replay "" --replay log.bin --base "$TEST_DIR/base.qcow2" --workload "$WL/mixed.wl" \
    --torn --reorder --final final.qcow2 || fail=1
cmp final.qcow2 img.qcow2 || { echo "the replay does not rebuild QEMU's image"; fail=1; }

# writeback, ending in abort: entries after the last flush are not counted
printf 'write -P 1 0 64k\nflush\nwrite -P 2 1M 64k\nwrite -c -P 3 2M 64k\nabort\n' > abort.wl
cp base.qcow2 img2.qcow2
record img2.qcow2 log2.bin abort.wl -t writeback
counted=$(od -An -tu8 -j 16 -N 8 log2.bin | tr -d ' ')
[ "$counted" -gt 0 ] || { echo "expected a superblock that counts the flushed entries"; fail=1; }
crash replay-abort "" --replay log2.bin --base "$TEST_DIR/base.qcow2" --workload abort.wl \
    --torn --reorder --final final2.qcow2 || fail=1
cmp final2.qcow2 img2.qcow2 || { echo "the replay of the unflushed tail differs"; fail=1; }
grep -q "writes, " "$TEST_DIR/replay-abort.out" || fail=1
exit $fail
