# Usage errors (exit 64), not qcow2 (63), files that cannot be edited (1)
. "$TESTS/lib.sh"
fixture v3
cp v3.qcow2 orig.qcow2
qc-setfeature --help | head -1; echo "rc=$?"
qc-setfeature --version | sed 's/[0-9][0-9.]*$/VERSION/'; echo "rc=$?"
for args in "" "v3.qcow2" "v3.qcow2 lazy" "v3.qcow2 autoclear:64" "v3.qcow2 autoclear:-1" \
            "v3.qcow2 autoclear" "v3.qcow2 other:1" "v3.qcow2 autoclear:x" "--frob v3.qcow2 dirty" \
            "v3.qcow2 --set-header size" "v3.qcow2 --set-header bogus=1" "v3.qcow2 --set-header size=x" \
            "v3.qcow2 --set-header version=0x100000000" "v3.qcow2 --set-header compression_type=256" \
            "v3.qcow2 --set-header size=-1" "v3.qcow2 --set-header size=010" \
            "v3.qcow2 --add-ext 0x100000000=x" "v3.qcow2 --add-ext nomagic" \
            "v3.qcow2 --add-ext -1=x" "v3.qcow2 --del-ext 0xg" "--list v3.qcow2 dirty"; do
    echo "== qc-setfeature $args"
    qc-setfeature $args; echo "rc=$?"
done
cmp orig.qcow2 v3.qcow2 && echo "unchanged"
echo "== not qcow2"
printf 'hello, world' > text.img
qc-setfeature text.img lazy_refcounts; echo "rc=$?"
echo "== cut inside the header"
head -c 80 v3.qcow2 > cut.img
qc-setfeature cut.img lazy_refcounts; echo "rc=$?"
echo "== missing, and a directory"
qc-setfeature nosuch.img lazy_refcounts; echo "rc=$?"
qc-setfeature . lazy_refcounts; echo "rc=$?"
echo "== --add-ext-file with a missing file"
qc-setfeature v3.qcow2 --add-ext-file 0x1=nosuch; echo "rc=$?"
