#!/bin/bash
# qc-check agrees with qemu-img check on clean images of every kind qemu-img
# and qemu-io make.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
cd "$TEST_DIR"

fresh v3.qcow2;                                   same_check v3.qcow2
fresh v2.qcow2 -o compat=0.10;                    same_check v2.qcow2
fresh c512.qcow2 -o cluster_size=512;             same_check c512.qcow2
qemu-img create -f qcow2 -o cluster_size=2M c2m.qcow2 256M >/dev/null
qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 100M 3M' c2m.qcow2 >/dev/null
same_check c2m.qcow2
for bits in 1 2 4 8 16 32 64; do
    fresh rc$bits.qcow2 -o refcount_bits=$bits
    qemu-io -c 'write -P 3 1M 200k' rc$bits.qcow2 >/dev/null
    same_check rc$bits.qcow2
done
qemu-img create -f qcow2 -o extended_l2=on extl2.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 4k' -c 'write -z 8k 4k' -c 'write -P 2 1M 100k' -c 'discard 1M 16k' extl2.qcow2 >/dev/null
same_check extl2.qcow2
for t in zlib zstd; do
    qemu-img create -f qcow2 -o compression_type=$t $t.qcow2 64M >/dev/null
    qemu-io -c 'write -c -P 1 0 64k' -c 'write -c -P 2 64k 128k' -c 'write -P 3 1M 64k' $t.qcow2 >/dev/null
    same_check $t.qcow2
done
fresh snap.qcow2
qemu-img snapshot -c one snap.qcow2
qemu-io -c 'write -P 9 0 64k' -c 'write -P 9 5M 64k' snap.qcow2 >/dev/null
qemu-img snapshot -c two snap.qcow2
qemu-io -c 'write -P 10 1M 64k' snap.qcow2 >/dev/null
same_check snap.qcow2
fresh bitmap.qcow2
qemu-img bitmap --add bitmap.qcow2 b0
qemu-img bitmap --add -g 65536 bitmap.qcow2 b1
qemu-io -c 'write -P 7 2M 64k' bitmap.qcow2 >/dev/null
qemu-img bitmap --disable bitmap.qcow2 b1
same_check bitmap.qcow2
fresh base.qcow2
qemu-img create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2 64M >/dev/null
qemu-io -c 'write -P 5 1M 64k' overlay.qcow2 >/dev/null
same_check overlay.qcow2
qemu-img create -f qcow2 -o data_file=data.raw datafile.qcow2 64M >/dev/null
qemu-io -c 'write -P 5 0 64k' -c 'write -P 6 3M 64k' datafile.qcow2 >/dev/null
same_check datafile.qcow2
qemu-img create -f qcow2 -o preallocation=metadata prealloc.qcow2 64M >/dev/null
qemu-io -c 'write -P 5 0 64k' prealloc.qcow2 >/dev/null
same_check prealloc.qcow2
fresh lazy.qcow2 -o lazy_refcounts=on
same_check lazy.qcow2
fresh zero.qcow2
qemu-io -c 'write -z 1M 64k' -c 'write -P 1 2M 128k' -c 'discard 2M 64k' -c 'write -z -u 4M 64k' zero.qcow2 >/dev/null
same_check zero.qcow2
check_done
