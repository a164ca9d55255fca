#!/bin/bash
# Images QEMU leaves dirty (lazy refcounts, killed): qc-write repairs them
# when it opens them for writing, as QEMU does, with QEMU's lines on
# stderr, and is interruptible there; --no-repair refuses them.  qc-write's
# own crashes leave images that qemu-img check -r all repairs with every
# acknowledged write intact.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
qemu-img create -f qcow2 -o lazy_refcounts=on,cluster_size=4096 d.qcow2 8M >/dev/null
qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' -c 'write -P 4 3M 2M' -c 'sigraise 9' d.qcow2 >/dev/null 2>&1
[ "$(peek_be d.qcow2 72 8)" = 1 ] || { echo "qemu-io did not leave the image dirty"; fail=1; }
qemu-img check d.qcow2 >/dev/null 2>&1 && { echo "qemu-io left nothing to repair"; fail=1; }
cp d.qcow2 base.qcow2
msg=$(qc-write --no-repair d.qcow2 -c 'write -P 3 2M 64k' 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q dirty || { echo "--no-repair: dirty image not refused: $rc $msg"; fail=1; }
cmp -s d.qcow2 base.qcow2 || { echo "the refusal changed the image"; fail=1; }
# the same open and write through QEMU and through qc-write
cp base.qcow2 q.qcow2
qemu-io -c 'write -P 3 2M 64k' q.qcow2 >/dev/null 2>q.err
qc-write d.qcow2 -c 'write -P 3 2M 64k' >/dev/null 2>d.err || { echo "qc-write on the dirty image failed"; fail=1; }
[ -s q.err ] || { echo "QEMU printed no repair lines"; fail=1; }
cmp -s q.err d.err || { echo "repair lines differ from QEMU's:"; diff q.err d.err | head -6; fail=1; }
[ "$(peek_be d.qcow2 72 8)" = 0 ] || { echo "still dirty after qc-write"; fail=1; }
qemu-img check d.qcow2 >/dev/null || { echo "not clean after qc-write"; fail=1; }
qemu-img compare q.qcow2 d.qcow2 >/dev/null || { echo "guest data differs from QEMU's"; fail=1; }
qc-write d.qcow2 -c 'read -P 1 0 64k' -c 'read -P 2 1M 64k' -c 'read -P 3 2M 64k' \
    -c 'read -P 4 3M 2M' >/dev/null || { echo "repaired image does not read back"; fail=1; }

# the repair at open interrupted at every write: the next open repairs again
cp base.qcow2 full.qcow2
qc-write --write-log open.json full.qcow2 -c 'write -P 3 2M 64k' >/dev/null 2>&1
n=$(grep -c '"seq"' open.json)
for ((k = 0; k < n; k++)); do
    cp base.qcow2 c.qcow2
    qc-write --crash-after $k c.qcow2 -c 'write -P 3 2M 64k' >/dev/null 2>&1
    [ $? -eq 99 ] || { echo "open interrupted after $k writes: no simulated crash"; fail=1; }
    qc-write c.qcow2 -c 'read -P 1 0 64k' -c 'read -P 2 1M 64k' -c 'read -P 4 3M 2M' >/dev/null 2>&1 &&
        qemu-img check c.qcow2 >/dev/null 2>&1 ||
        { echo "open interrupted after $k writes: not repaired on the next open"; fail=1; }
done
open_points=$n

# qc-write crashing at every write of a writethrough run: after the
# repair, every write that returned reads back and no other byte changed
C=(-c 'write -P 1 0 64k' -c 'write -P 2 1M 4k' -c 'write -P 3 64k 64k' -c 'write -z 68k 4k')
R=('read -P 1 0 64k' 'read -P 2 1M 4k' 'read -P 3 64k 4k' 'read -P 0 68k 4k')
qc-write --create 64M -o lazy_refcounts=on base.qcow2 >/dev/null
cp base.qcow2 full.qcow2
qc-write --write-log all.json -t writethrough full.qcow2 "${C[@]}" >/dev/null
n=$(grep -c '"seq"' all.json)
for ((k = 0; k <= n; k++)); do
    cp base.qcow2 c.qcow2
    qc-write --crash-after $k -t writethrough c.qcow2 "${C[@]}" > c.out 2>/dev/null
    done_cmds=$(grep -c '^wrote' c.out)
    qemu-img check -r all c.qcow2 >/dev/null 2>&1
    qemu-img check c.qcow2 >/dev/null 2>&1 || { echo "crash after $k writes: not repaired"; fail=1; }
    reads=()
    for ((i = 0; i < done_cmds; i++)); do reads+=(-c "${R[$i]}"); done
    reads+=(-c 'read -P 0 2M 1M')
    qemu-io -r "${reads[@]}" c.qcow2 | grep -q failed &&
        { echo "crash after $k writes ($done_cmds returned): an acknowledged write is lost"; fail=1; }
done
[ $fail -eq 0 ] && echo "dirty images handled; repair at open interrupted at $open_points" \
    "points; $((n + 1)) crash points repaired"
exit $fail
