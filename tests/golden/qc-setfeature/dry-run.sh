# --dry-run: the bytes that would change, before and after; nothing written
. "$TESTS/lib.sh"
fixture v3
fixture unknown-ext
fixture backing
cp v3.qcow2 v3.orig; cp unknown-ext.qcow2 ue.orig; cp backing.qcow2 bk.orig
touch -d '2001-01-01 00:00:00' v3.qcow2
echo "== feature bits"
qc-setfeature --dry-run v3.qcow2 autoclear:63 lazy_refcounts; echo "rc=$?"
echo "== a header field"
qc-setfeature --dry-run v3.qcow2 --set-header size=2M; echo "rc=$?"
echo "== nothing to change"
qc-setfeature --dry-run v3.qcow2 --clear dirty; echo "rc=$?"
echo "== delete an extension"
qc-setfeature --dry-run unknown-ext.qcow2 --del-ext 0x12345678; echo "rc=$?"
echo "== add one before the backing file name"
qc-setfeature --dry-run backing.qcow2 --add-ext 0x1234=abc; echo "rc=$?"
echo "== guards still apply"
qc-setfeature --dry-run v3.qcow2 incompatible:63; echo "rc=$?"
qc-setfeature --dry-run --force v3.qcow2 incompatible:63; echo "rc=$?"
cmp v3.orig v3.qcow2 && cmp ue.orig unknown-ext.qcow2 && cmp bk.orig backing.qcow2 && echo "nothing written"
stat -c %y v3.qcow2 | cut -c1-19
