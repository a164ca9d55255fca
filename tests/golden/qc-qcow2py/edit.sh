# qc-qcow2py's edits: the bytes qcow2.py writes, shown through its own dump
. "$TESTS/lib.sh"
fixture v3
hd() { od -An -tx1 -v -j "$2" -N "$3" "$1"; }
echo "== set-header size"; qc-qcow2py v3.qcow2 set-header size 0x2000_0000; echo "rc=$?"
qc-qcow2py v3.qcow2 dump-header | grep '^size'
echo "== set-feature-bit autoclear 63, compatible 0"
qc-qcow2py v3.qcow2 set-feature-bit autoclear 63; echo "rc=$?"
qc-qcow2py v3.qcow2 set-feature-bit compatible 0; echo "rc=$?"
qc-qcow2py v3.qcow2 dump-header -j | grep features
echo "== add-header-ext, then from stdin"
qc-qcow2py v3.qcow2 add-header-ext 0x12345678 'hello'; echo "rc=$?"
printf 'from stdin' | qc-qcow2py v3.qcow2 add-header-ext-stdio 0xabcdef; echo "rc=$?"
qc-qcow2py v3.qcow2 dump-header-exts
echo "== del-header-ext"; qc-qcow2py v3.qcow2 del-header-ext 0x12345678; echo "rc=$?"
qc-qcow2py v3.qcow2 del-header-ext 0x12345678; echo "rc=$?"
qc-qcow2py v3.qcow2 dump-header-exts | grep magic
echo "== the header is written less its last byte"
fixture v3 h.qcow2
poke h.qcow2 $(( $(peek_be h.qcow2 100 4) - 1 )) "5a"
qc-qcow2py h.qcow2 set-header nb_snapshots 0; echo "rc=$?"
hd h.qcow2 $(( $(peek_be h.qcow2 100 4) - 1 )) 1
echo "== a bitmaps extension stops every edit with qcow2.py's TypeError"
fixture bitmaps
cp bitmaps.qcow2 before.qcow2
qc-qcow2py bitmaps.qcow2 set-feature-bit compatible 1; echo "rc=$?"
cmp -l before.qcow2 bitmaps.qcow2 | head -5
echo "== extensions past the cluster"
fixture c512
qc-qcow2py c512.qcow2 add-header-ext 0x1 "$(head -c 600 /dev/zero | tr '\0' x)"; echo "rc=$?"
