# qc-dump on what is not a qcow2 image, and usage errors
. "$TESTS/lib.sh"
fixture v3
printf 'not an image at all' > text.img
echo "== bad magic"; qc-dump text.img; echo "rc=$?"
echo "== bad magic, json"; qc-dump --json text.img; echo "rc=$?"
head -c 3 v3.qcow2 > tiny.img
echo "== 3 bytes"; qc-dump tiny.img; echo "rc=$?"
head -c 90 v3.qcow2 > cut.img
echo "== cut inside the header"; qc-dump cut.img; echo "rc=$?"
head -c 300 v3.qcow2 > cut2.img
echo "== cut inside the feature table"; qc-dump --exts cut2.img; echo "rc=$?"
echo "== missing"; qc-dump nosuch.img; echo "rc=$?"
echo "== directory"; qc-dump .; echo "rc=$?"
echo "== two views"; qc-dump --hex --legacy v3.qcow2; echo "rc=$?"
echo "== unknown option"; qc-dump --frobnicate v3.qcow2; echo "rc=$?"
echo "== no image"; qc-dump; echo "rc=$?"
echo "== incompatible bit 63 (QEMU refuses it; qc-dump shows it)"
poke_be v3.qcow2 72 8 0x8000000000000000
qc-dump v3.qcow2 | grep incompatible; echo "rc=$?"
