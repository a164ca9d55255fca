# iotest 036: autoclear bit 63 is shown by both dumps, and QEMU's repair
# (any read-write open) clears it
. "$TESTS/lib.sh"
skip_without_qemu
set -e
qemu-img create -q -f qcow2 img.qcow2 4M
qc-setfeature img.qcow2 autoclear:63
qc-dump --legacy img.qcow2 | grep -qx 'autoclear_features        0x8000000000000000'
qc-dump img.qcow2 2>/dev/null | grep -qx 'autoclear_features        \[63\]'
# a read-only open keeps it
qemu-img check -q img.qcow2
qc-dump img.qcow2 2>/dev/null | grep -qx 'autoclear_features        \[63\]'
qemu-img check -q -r all img.qcow2
qc-dump img.qcow2 | grep -qx 'autoclear_features        \[\]'
qc-dump --legacy img.qcow2 | grep -qx 'autoclear_features        0x0'
# the same with a qemu-io read-write open
qc-setfeature img.qcow2 autoclear:63 bitmaps 2>/dev/null
qemu-io -c 'read 0 512' img.qcow2 >/dev/null
qc-dump --legacy img.qcow2 | grep -qx 'autoclear_features        0x1'
echo ok
