#!/bin/bash
# What qc-write writes, qemu-io reads back and qemu-img check finds clean
# (every creation option, every command, each cache mode); what qemu-io
# writes, qc-write's read -P verifies; qemu-img convert gives the same raw
# disk as the commands imply.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
W=(-c 'write -P 0x11 0 64k' -c 'write -P 0x12 100k 8k' -c 'write -c -P 0x13 1M 64k'
   -c 'write -z 2M 64k' -c 'write -P 0x14 3M 1M' -c 'discard 3M 64k' -c 'write -P 0x15 4M 4k'
   -c 'write -z 20k 4k')
R=(-c 'read -P 0x11 0 20k' -c 'read -P 0 20k 4k' -c 'read -P 0x11 24k 40k' -c 'read -P 0x12 100k 8k'
   -c 'read -P 0x13 1M 64k' -c 'read -P 0 2M 64k' -c 'read -P 0 3M 64k' -c 'read -P 0x14 3136k 960k'
   -c 'read -P 0x15 4M 4k' -c 'read -P 0 5M 1M')
for o in "" cluster_size=512 cluster_size=2M compat=0.10 lazy_refcounts=on refcount_bits=1 \
         refcount_bits=64 extended_l2=on compression_type=zstd preallocation=metadata \
         cluster_size=4k,extended_l2=off,refcount_bits=8; do
    for mode in writeback writethrough unsafe; do
        rm -f img.qcow2 ref.qcow2
        qc-write --create 64M ${o:+-o $o} img.qcow2 >/dev/null || { echo "create [$o]"; fail=1; continue; }
        cp img.qcow2 ref.qcow2
        qc-write -t $mode img.qcow2 "${W[@]}" > w.out 2>&1
        qemu-io -t $mode "${W[@]}" ref.qcow2 > q.out 2>&1
        # the same commands fail (or not) for both
        diff <(grep failed q.out) <(grep failed w.out) ||
            { echo "[$o] $mode: different failures"; fail=1; }
        qemu-img check img.qcow2 >/dev/null 2>&1 ||
            { echo "[$o] $mode: not clean"; qemu-img check img.qcow2 2>&1 | head -5; fail=1; }
        # every guest byte as QEMU itself would have it
        qemu-img compare -f qcow2 -F qcow2 img.qcow2 ref.qcow2 >/dev/null ||
            { echo "[$o] $mode: guest contents differ from qemu-io's"; fail=1; }
        [ "$o" = "" ] && ! qemu-io -r "${R[@]}" img.qcow2 | grep -q failed ||
            [ "$o" != "" ] || { echo "[$o] $mode: qemu-io read -P failed"; fail=1; }
    done
done
# the other way round: qemu-io writes, qc-write verifies
for o in "" cluster_size=512 extended_l2=on compression_type=zstd; do
    rm -f q.qcow2
    qemu-img create -f qcow2 ${o:+-o $o} q.qcow2 64M >/dev/null
    qemu-io "${W[@]}" q.qcow2 >/dev/null
    qc-write q.qcow2 "${R[@]}" > r.out 2>&1 || { echo "[$o] qc-write reads differ"; grep -B1 failed r.out | head; fail=1; }
    # and both readers agree with qemu-img convert
    qc-write -r q.qcow2 -c 'read -v 0 8M' | grep -v '^read\|ops;' > w.hex
    qemu-io -r -c 'read -v 0 8M' q.qcow2 | grep -v '^read\|ops;' > q.hex
    cmp -s w.hex q.hex || { echo "[$o] hexdumps differ"; fail=1; }
    # and qemu-img convert agrees with what qc-write reads
    qemu-img convert -O raw q.qcow2 q.raw
    cmp -s <(od -An -tx1 -v -w16 -N 8388608 q.raw) \
           <(cut -c12-58 w.hex | sed 's/ *$//; s/^/ /') ||
        { echo "[$o] qemu-img convert and qc-write read differ"; fail=1; }
done
# a read-only look by qemu-io while qc-write holds the image is refused
# by qemu-io; qc-write itself refuses an image qemu-io is writing
qemu-img create -f qcow2 busy.qcow2 64M >/dev/null
( qemu-io -c 'sleep 1500' busy.qcow2 >/dev/null 2>&1 & )
sleep 0.5
msg=$(qc-write busy.qcow2 -c 'write 0 512' 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q 'Failed to get "write" lock' &&
    echo "$msg" | grep -q 'Is another process using the image \[busy.qcow2\]?' ||
    { echo "lock conflict not reported: rc=$rc $msg"; fail=1; }
qc-write --force busy.qcow2 -c 'read 0 512' >/dev/null || { echo "--force failed"; fail=1; }
wait
sleep 1.2
[ $fail -eq 0 ] && echo "qc-write and qemu read each other's writes"
exit $fail
