# --add-ext, --add-ext-file (file and stdin) and --del-ext
. "$TESTS/lib.sh"
fixture c4k
cp c4k.qcow2 orig.qcow2
echo "== add"
qc-setfeature -v c4k.qcow2 --add-ext 0x12345678='This is a test header extension'; echo "rc=$?"
qc-dump --exts c4k.qcow2
echo "== add an empty one and one from stdin (036 writes a feature table this way)"
qc-setfeature c4k.qcow2 --add-ext 0x99= ; echo "rc=$?"
printf '\x00\x3f\x01\x02binary' | qc-setfeature c4k.qcow2 --add-ext-file 0x777=- ; echo "rc=$?"
qc-dump --exts c4k.qcow2
echo "== add from a file"
printf 'from a file\n' > payload
qc-setfeature c4k.qcow2 --add-ext-file 0x123=payload; echo "rc=$?"
qc-dump --exts c4k.qcow2 | tail -5
echo "== delete one in the middle: the rest moves up, the old bytes are cleared"
qc-setfeature -v c4k.qcow2 --del-ext 0x99; echo "rc=$?"
qc-dump --exts c4k.qcow2
echo "== delete what is not there"
qc-setfeature c4k.qcow2 --del-ext 0x4242; echo "rc=$?"
echo "== delete them all"
qc-setfeature c4k.qcow2 --del-ext 0x12345678 --del-ext 0x777 --del-ext 0x123; echo "rc=$?"
cmp orig.qcow2 c4k.qcow2 && echo "back to the original bytes"
echo "== duplicates: every one goes"
qc-setfeature c4k.qcow2 --add-ext 0xa=1 --add-ext 0xa=2 --add-ext 0xb=3 --add-ext 0xa=4; echo "rc=$?"
qc-setfeature -v c4k.qcow2 --del-ext 0xa; echo "rc=$?"
qc-dump --exts c4k.qcow2
echo "== with a backing file: the name moves behind the new extension"
fixture backing
qc-setfeature -v backing.qcow2 --add-ext 0x1234=abc; echo "rc=$?"
qc-dump --hex backing.qcow2 | grep -E 'backing_file|ext\[[12]\]|end of|backing file name'
echo "== the bitmaps extension is kept as it is"
fixture bitmaps
qc-setfeature -v bitmaps.qcow2 --del-ext 0x6803f857 --add-ext 0x1=x; echo "rc=$?"
qc-dump bitmaps.qcow2 | sed -n '/Header extension/,$p'
