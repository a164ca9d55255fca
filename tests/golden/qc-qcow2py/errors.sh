# qc-qcow2py: qcow2.py's usage, messages and exceptions (a traceback is its
# first and last line), and exit statuses
. "$TESTS/lib.sh"
fixture v3
echo "== no arguments"; qc-qcow2py; echo "rc=$?"
echo "== wrong argument count"; qc-qcow2py v3.qcow2 set-header size; echo "rc=$?"
echo "== unknown command"; qc-qcow2py v3.qcow2 frobnicate; echo "rc=$?"
echo "== only -j after the image"; qc-qcow2py v3.qcow2 -j; echo "rc=$?"
echo "== missing file"; qc-qcow2py nosuch.img dump-header; echo "rc=$?"
echo "== directory"; qc-qcow2py . dump-header; echo "rc=$?"
echo "== bad number"; qc-qcow2py v3.qcow2 set-header size 010; echo "rc=$?"
echo "== unknown field"; qc-qcow2py v3.qcow2 set-header snapshots_offset 0; echo "rc=$?"
echo "== out of range for the field"; qc-qcow2py v3.qcow2 set-header version 0x100000000; echo "rc=$?"
qc-qcow2py v3.qcow2 set-header size -1; echo "rc=$?"
echo "== bad magic number"; qc-qcow2py v3.qcow2 add-header-ext 0xzz x; echo "rc=$?"
qc-qcow2py v3.qcow2 del-header-ext '' ; echo "rc=$?"
echo "== not ASCII"; qc-qcow2py v3.qcow2 add-header-ext 1 "$(printf 'a\xc3\xa9\xe2\x82\xac')"; echo "rc=$?"
echo "== bit numbers"; qc-qcow2py v3.qcow2 set-feature-bit autoclear 0x40; echo "rc=$?"
qc-qcow2py v3.qcow2 set-feature-bit autoclear one; echo "rc=$?"
echo "== bad group"; qc-qcow2py v3.qcow2 set-feature-bit all 1; echo "rc=$?"
echo "== short file"; head -c 50 v3.qcow2 > short.img
qc-qcow2py short.img dump-header; echo "rc=$?"
qc-qcow2py short.img set-feature-bit autoclear 1; echo "rc=$?"
echo "== cut in the extensions: nothing printed"; head -c 120 v3.qcow2 > cut.img
qc-qcow2py cut.img dump-header; echo "rc=$?"
