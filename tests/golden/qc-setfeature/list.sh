# --list: the feature bits of an image, by the names qc-setfeature takes
. "$TESTS/lib.sh"
for f in v3 lazy dirty datafile zstd v2; do
    fixture $f
    echo "== $f"
    qc-setfeature --list $f.qcow2; echo "rc=$?"
done
echo "== unknown bits"
qc-setfeature v3.qcow2 autoclear:63 compatible:7; echo "rc=$?"
qc-setfeature --list v3.qcow2; echo "rc=$?"
