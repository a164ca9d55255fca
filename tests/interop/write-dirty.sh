#!/bin/bash
# Images QEMU leaves dirty (lazy refcounts, killed): qc-write refuses to
# write until they are repaired, and reads them once repaired; qc-write's
# own crashes leave images that qemu-img check -r all repairs with every
# acknowledged write intact.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
qemu-img create -f qcow2 -o lazy_refcounts=on d.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' -c 'sigraise 9' d.qcow2 >/dev/null 2>&1
[ "$(peek_be d.qcow2 72 8)" = 1 ] || { echo "qemu-io did not leave the image dirty"; fail=1; }
msg=$(qc-write d.qcow2 -c 'write -P 3 2M 64k' 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q dirty || { echo "dirty image not refused: $rc $msg"; fail=1; }
[ "$(peek_be d.qcow2 72 8)" = 1 ] || { echo "the refusal changed the image"; fail=1; }
qemu-img check -r all d.qcow2 >/dev/null 2>&1
qc-write d.qcow2 -c 'read -P 1 0 64k' -c 'read -P 2 1M 64k' -c 'write -P 3 2M 64k' >/dev/null ||
    { echo "repaired image not usable"; fail=1; }
qemu-img check d.qcow2 >/dev/null || { echo "not clean after qc-write"; fail=1; }

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
[ $fail -eq 0 ] && echo "dirty images handled; $((n + 1)) crash points repaired"
exit $fail
