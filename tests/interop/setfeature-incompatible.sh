# An unknown incompatible bit: QEMU refuses the image with its message,
# and opens it again once the bit is cleared
. "$TESTS/lib.sh"
skip_without_qemu
set -e
qemu-img create -q -f qcow2 img.qcow2 4M
qemu-io -c 'write -P 0x11 0 4k' img.qcow2 >/dev/null
qc-setfeature --force img.qcow2 incompatible:63 2>warn
if qemu-img info img.qcow2 >out 2>&1; then echo "qemu-img opened it"; exit 1; fi
grep -qx "qemu-img: Could not open 'img.qcow2': Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000000000" out
# the warning qc-setfeature gave quotes the same message
grep -q "Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000000000" warn
qc-setfeature --clear img.qcow2 incompatible:63
qemu-img info img.qcow2 >/dev/null
qemu-img check -q img.qcow2
qemu-io -c 'read -P 0x11 0 4k' img.qcow2 >/dev/null
# a feature table entry names the bit, in QEMU's message as in ours
printf '\x00\x3ftest feature' > table
qc-setfeature img.qcow2 --del-ext 0x6803f857 --add-ext-file 0x6803f857=table
qc-setfeature --force img.qcow2 incompatible:63 incompatible:62 2>warn
if qemu-img info img.qcow2 >out 2>&1; then echo "qemu-img opened it"; exit 1; fi
msg="Unsupported qcow2 feature(s): test feature, Unknown incompatible feature: 4000000000000000"
grep -qx "qemu-img: Could not open 'img.qcow2': $msg" out
# qc-setfeature's guard gives QEMU's refusal for each bit
grep -q "bit 63 (unknown): QEMU will refuse to open the image: Unsupported qcow2 feature(s): test feature$" warn
grep -q "bit 62 (unknown): QEMU will refuse to open the image: Unsupported qcow2 feature(s): Unknown incompatible feature: 4000000000000000$" warn
# the corrupt bit: read-only opens work, read-write ones do not
qc-setfeature --clear img.qcow2 incompatible:63 incompatible:62
qc-setfeature --force img.qcow2 corrupt 2>/dev/null
qemu-img info img.qcow2 >/dev/null
if qemu-io -c 'write 0 512' img.qcow2 >out 2>&1; then echo "qemu-io wrote"; exit 1; fi
grep -q 'qcow2: Image is corrupt; cannot be opened read/write' out
qc-setfeature --clear img.qcow2 corrupt
qemu-io -c 'write -P 0x22 0 512' img.qcow2 >/dev/null
echo ok
