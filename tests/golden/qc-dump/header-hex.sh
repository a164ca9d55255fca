# qc-dump --hex: every header field, extension and feature-table entry
. "$TESTS/lib.sh"
for f in v3 v2 zstd backing v2-backing bitmaps unknown-ext hl104; do
    fixture $f
    echo "== $f"
    qc-dump --hex $f.qcow2
    echo "rc=$?"
done
