# qc-dump with no option: qcow2.py dump-header, on every kind of header
. "$TESTS/lib.sh"
for f in v3 v2 c512 lazy dirty zstd extl2 backing v2-backing bitmaps datafile snapshots unknown-ext hl104; do
    fixture $f
    echo "== $f"
    qc-dump $f.qcow2
    echo "rc=$?"
done
