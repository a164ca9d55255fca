# What cannot be checked: not qcow2 (exit 63), missing files, images QEMU
# refuses to open (exit 1, its words).
. "$TESTS/lib.sh"
fixture ck-clean
printf 'not an image\n' > plain.txt
: > empty.img
cp ck-clean.qcow2 v4.qcow2; poke_be v4.qcow2 4 4 4
cp ck-clean.qcow2 feat.qcow2; poke_be feat.qcow2 72 8 0x8000000000000020
for f in plain.txt empty.img missing.qcow2 v4.qcow2 feat.qcow2; do
    echo "== qc-check $f"
    qc-check $f 2>&1; echo "exit $?"
    echo "== qc-check --output=json $f"
    qc-check --output=json $f 2>/dev/null; echo "exit $?"
done
