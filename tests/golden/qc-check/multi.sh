# Several images: one report each (JSON Lines with --output=json); the exit
# status is the worst (failed > not qcow2 > corruptions > leaks > clean).
. "$TESTS/lib.sh"
fixture ck-clean; fixture ck-leak; fixture ck-lazy; fixture ck-badreftable
printf 'not an image\n' > plain.txt
echo "== human"
qc-check ck-clean.qcow2 ck-leak.qcow2 2>&1; echo "exit $?"
echo "== json lines"
qc-check --output=json ck-clean.qcow2 ck-leak.qcow2 ck-lazy.qcow2 plain.txt 2>/dev/null; echo "exit $?"
echo "== worst"
qc-check -q ck-leak.qcow2 ck-clean.qcow2 2>/dev/null; echo "exit $?"
qc-check -q ck-leak.qcow2 ck-lazy.qcow2 2>/dev/null; echo "exit $?"
qc-check -q ck-lazy.qcow2 plain.txt 2>/dev/null; echo "exit $?"
qc-check -q plain.txt ck-badreftable.qcow2 2>/dev/null; echo "exit $?"
