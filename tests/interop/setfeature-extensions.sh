# Header extensions written by qc-setfeature are what QEMU reads, keeps
# and refuses
. "$TESTS/lib.sh"
skip_without_qemu
set -e
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 img.qcow2
qemu-io -c 'write -P 0x33 0 4k' img.qcow2 >/dev/null
qc-setfeature img.qcow2 --add-ext 0x12345678='This is a test header extension'
qemu-img check -q img.qcow2
qemu-img info img.qcow2 | grep -q 'backing file: base.qcow2'
# QEMU keeps unknown extensions across its own header rewrite
qemu-img amend -f qcow2 -o lazy_refcounts=on img.qcow2
qc-dump --exts img.qcow2 | grep -q "'This is a test header extension'"
# the backing format extension replaced: QEMU reads the new one
qc-setfeature img.qcow2 --del-ext 0xe2792aca --add-ext 0xe2792aca=raw
qemu-img info --output=json img.qcow2 | grep -q '"backing-filename-format": "raw"'
qc-setfeature img.qcow2 --del-ext 0xe2792aca --add-ext 0xe2792aca=qcow2
qemu-io -c 'read -P 0x33 0 4k' img.qcow2 >/dev/null
# a backing format of 16 bytes: QEMU's refusal, and qc-setfeature's warning
qc-setfeature img.qcow2 --del-ext 0xe2792aca --add-ext 0xe2792aca=0123456789abcdef
if qemu-img info img.qcow2 >out 2>&1; then echo "qemu-img opened it"; exit 1; fi
grep -q 'ERROR: ext_backing_format: len=16 too large (>=16)' out
qc-setfeature img.qcow2 --del-ext 0xe2792aca --add-ext 0xe2792aca=qcow2
qemu-img check -q img.qcow2
# an extension that fills the header cluster exactly still opens
qemu-img create -q -f qcow2 -o cluster_size=4k small.qcow2 4M
head -c $((4096 - 112 - 16)) /dev/zero | tr '\0' 'x' > fill
qc-setfeature small.qcow2 --add-ext-file 0x4444=fill
qemu-img check -q small.qcow2
echo ok
