# qc-dump --features: the feature table joined with the header
. "$TESTS/lib.sh"
for f in v3 v2 c512 lazy dirty zstd extl2 bitmaps datafile; do
    fixture $f
    echo "== $f"
    qc-dump --features $f.qcow2
    echo "rc=$?"
done
