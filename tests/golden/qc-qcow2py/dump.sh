# qc-qcow2py dump-header and dump-header-exts, text and -j (qcow2.py's
# output byte for byte: bit lists, extension names, bitmap directory)
. "$TESTS/lib.sh"
for f in v3 v2 backing bitmaps unknown-ext; do
    fixture $f
    echo "== $f dump-header"; qc-qcow2py $f.qcow2 dump-header; echo "rc=$?"
    echo "== $f dump-header-exts"; qc-qcow2py $f.qcow2 dump-header-exts; echo "rc=$?"
done
for f in v3 bitmaps; do
    echo "== $f dump-header -j"; qc-qcow2py $f.qcow2 dump-header -j; echo "rc=$?"
    echo "== $f -j dump-header-exts"; qc-qcow2py -j $f.qcow2 dump-header-exts; echo "rc=$?"
done
echo "== dirty: no warning of ours"; fixture dirty; qc-qcow2py dirty.qcow2 dump-header | grep incompat; echo "rc=$?"
