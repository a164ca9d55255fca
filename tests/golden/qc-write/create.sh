# qc-write --create: qemu-img create's "Formatting" line, layout and size of
# the new file, for a range of options.
. "$TESTS/golden/qc-write/filter.bash"
for o in "" cluster_size=4k cluster_size=512 compat=0.10 extended_l2=on,cluster_size=16k \
         compression_type=zstd lazy_refcounts=on refcount_bits=1 refcount_bits=64 \
         preallocation=metadata compat=v3,extended_l2=yes,lazy_refcounts=true; do
    rm -f img.qcow2
    qcw --create 64M ${o:+-o $o} img.qcow2
    echo "file length $(stat -c %s img.qcow2)"
    qc-dump img.qcow2 | grep -E '^(version|cluster_bits|size|l1_size|l1_table_offset|refcount_table_offset|incompatible_features|compatible_features|refcount_order|header_length|compression_type) '
done
# a size that is not a multiple of 512 is rounded up
qcw --create 1000 small.qcow2
qc-dump small.qcow2 | grep '^size '
# a backing file (relative to the image), its size taken over when none given
qcw --create 1M base.qcow2
qcw --create 0 -o backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2
qc-dump top.qcow2 | grep -E '^(backing_file_offset|backing_file_size|size) '
qc-dump --exts top.qcow2 | grep -A2 'Backing format'
