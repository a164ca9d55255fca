# qc-dump --json: header, extensions, feature table, features, problems
. "$TESTS/lib.sh"
for f in v3 v2 dirty backing bitmaps unknown-ext; do
    fixture $f
    echo "== $f"
    qc-dump --json $f.qcow2
    echo "rc=$?"
done
