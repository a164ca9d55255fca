# --hash and --hash-map: digests of the guest disk, per-block hashes with
# host offsets, JSON, the digest's name, and failures.
. "$TESTS/lib.sh"
for f in dv-std dv-extl2 dv-backing dv-datafile dv-damaged c2m; do fixture $f; done
for f in dv-std dv-extl2 dv-backing dv-datafile c2m; do
    qc-dump --hash $f.qcow2; echo "exit $?"
done
qc-dump --hash md5 dv-std.qcow2; echo "exit $?"
qc-dump --hash=sha1 dv-std.qcow2; echo "exit $?"
qc-dump --hash sha1 --json dv-std.qcow2 | sed -n '/"hash"/,$p'; echo "exit $?"
qc-dump --hash-map dv-std.qcow2 | sed -n 1,4p; echo "exit ${PIPESTATUS[0]}"
qc-dump --hash-map dv-backing.qcow2 | sed -n 1,3p; echo "exit ${PIPESTATUS[0]}"
qc-dump --hash-map dv-datafile.qcow2 | sed -n 1,2p; echo "exit ${PIPESTATUS[0]}"
qc-dump --hash-map c2m.qcow2; echo "exit $?"
qc-dump --hash dv-damaged.qcow2; echo "exit $?"
qc-dump --hash-map dv-damaged.qcow2; echo "exit $?"
qc-dump --hash=sha512 dv-std.qcow2; echo "exit $?"
qc-dump --hash --l1 dv-std.qcow2; echo "exit $?"
qc-dump --hash-map --json dv-std.qcow2; echo "exit $?"
