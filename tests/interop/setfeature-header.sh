# --set-header results as QEMU sees them
. "$TESTS/lib.sh"
skip_without_qemu
set -e
# version 2 to 3 with a 112-byte header: a clean v3 image for QEMU
qemu-img create -q -f qcow2 -o compat=0.10 img.qcow2 4M
qemu-io -c 'write -P 0x44 0 64k' img.qcow2 >/dev/null
qc-setfeature img.qcow2 --set-header version=3 --set-header header_length=112
qemu-img info --output=json img.qcow2 | grep -q '"compat": "1.1"'
qemu-img check -q img.qcow2
qemu-io -c 'read -P 0x44 0 64k' img.qcow2 >/dev/null
# a 104-byte header (QEMU before 5.0) opens too
qc-setfeature img.qcow2 --set-header header_length=104
qemu-img check -q img.qcow2
qc-dump img.qcow2 | grep -q 'header_length             104'
# a size the L1 table cannot cover: QEMU refuses, we warned
qc-setfeature img.qcow2 --set-header size=1T 2>warn
grep -q 'QEMU will refuse to open the image: L1 table is too small' warn
if qemu-img info img.qcow2 >out 2>&1; then exit 1; fi
grep -q 'L1 table is too small' out
qc-setfeature img.qcow2 --set-header size=4M
qemu-img check -q img.qcow2
echo ok
