# --raw OUT: the guest disk as a raw file (size and bytes), and failures.
. "$TESTS/lib.sh"
for f in dv-std dv-extl2 dv-backing dv-datafile dv-damaged; do fixture $f; done
for f in dv-std dv-extl2 dv-backing dv-datafile; do
    rm -f out.raw
    qc-dump --raw out.raw $f.qcow2; echo "exit $?"
    echo "$(stat -c %s out.raw) $(sha256sum < out.raw)"
done
# an existing OUT is kept unless --force
qc-dump --raw out.raw dv-std.qcow2; echo "exit $?"
qc-dump --force --raw out.raw dv-std.qcow2; echo "exit $?"
rm -f out.raw
qc-dump --raw out.raw dv-damaged.qcow2; echo "exit $?"
rm -f out.raw
qc-dump --raw out.raw --json dv-std.qcow2 | sed -n '/"raw"/,$p'; echo "exit $?"
# never over a file the image reads
qc-dump --raw dv-backing.base dv-backing.qcow2; echo "exit $?"
cmp <(zcat "$FIXTURES/dv-backing.base.gz") dv-backing.base && echo "backing file intact"
