# Creation refused with qemu-img create's messages (exit 1), before or
# after its "Formatting" line as qemu-img prints them.
. "$TESTS/golden/qc-write/filter.bash"
qc-write --create 1M b.qcow2 >/dev/null
for o in cluster_size=1000 cluster_size=4M cluster_size=abc extended_l2=on,cluster_size=8k \
         refcount_bits=3 refcount_bits=128 refcount_bits=abc compat=0.10,refcount_bits=8 \
         compat=0.10,lazy_refcounts=on compat=0.10,extended_l2=on compat=0.10,compression_type=zstd \
         compression_type=lz4 compat=0.9 lazy_refcounts=maybe extended_l2=1 \
         preallocation=foo preallocation=full backing_fmt=qcow2 foo=bar \
         backing_file=missing.qcow2,backing_fmt=qcow2 backing_file=b.qcow2 \
         preallocation=metadata,backing_file=b.qcow2,backing_fmt=qcow2; do
    echo "-- $o"
    qcw --create 1M -o "$o" img.qcow2
    [ -e img.qcow2 ] && echo "img.qcow2 exists"
done
qcw --create 1x img.qcow2
