# qc-dump --legacy: the 2012 qcow2.py (masks in hex, no extension names)
. "$TESTS/lib.sh"
for f in v3 v2 lazy dirty zstd backing bitmaps datafile unknown-ext hl104; do
    fixture $f
    echo "== $f"
    qc-dump --legacy $f.qcow2
    echo "rc=$?"
done
