# qc-dump --exts: qcow2.py dump-header-exts (nothing at all without extensions)
. "$TESTS/lib.sh"
for f in v3 v2 c512 backing bitmaps datafile unknown-ext; do
    fixture $f
    echo "== $f"
    qc-dump --exts $f.qcow2
    echo "rc=$?"
done
