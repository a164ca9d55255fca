# qc-setfeature lazy_refcounts: qemu-img agrees, the image stays clean,
# and QEMU then writes lazily (dirty bit after a crash)
. "$TESTS/lib.sh"
skip_without_qemu
set -e
qemu-img create -q -f qcow2 img.qcow2 4M
qemu-img info --output=json img.qcow2 | grep -q '"lazy-refcounts": false'
qc-setfeature img.qcow2 lazy_refcounts
qemu-img info --output=json img.qcow2 | grep -q '"lazy-refcounts": true'
qemu-img check -q img.qcow2
# QEMU uses them: a crash after a write leaves the dirty bit
qemu-io -c 'write -P 0x5a 0 64k' -c abort img.qcow2 >/dev/null 2>&1 || true
qc-dump img.qcow2 | grep -q 'incompatible_features     \[0\]'
# which the guard will not clear, and qemu-img check -r all repairs
if qc-setfeature --clear img.qcow2 dirty 2>err; then echo "guard missed"; exit 1; fi
grep -q 'must be repaired first' err
qemu-img check -q -r all img.qcow2
qc-dump img.qcow2 | grep -q 'incompatible_features     \[\]'
qemu-io -c 'read -P 0x5a 0 64k' img.qcow2 >/dev/null
# clearing lazy_refcounts on a clean image: qemu-img says false again
qc-setfeature --clear img.qcow2 lazy_refcounts
qemu-img info --output=json img.qcow2 | grep -q '"lazy-refcounts": false'
qemu-img check -q img.qcow2
echo ok
