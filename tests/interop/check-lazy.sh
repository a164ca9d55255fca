#!/bin/bash
# Images QEMU itself leaves behind: lazy refcounts and a crash (qemu-io
# abort) leave refcounts of zero for used clusters and a dirty bit.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/check-common.bash"
cd "$TEST_DIR"

qemu-img create -f qcow2 -o lazy_refcounts=on a.qcow2 64M >/dev/null
qemu-io -c 'write -P 0x5a 0 512' -c abort a.qcow2 >/dev/null 2>&1
same_check a.qcow2 lazy-64k

qemu-img create -f qcow2 -o lazy_refcounts=on,cluster_size=4096 b.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 1M' b.qcow2 >/dev/null
qemu-io -c 'write -P 2 10M 2M' -c 'write -P 3 40M 100k' -c abort b.qcow2 >/dev/null 2>&1
same_check b.qcow2 lazy-4k-multi

qemu-img create -f qcow2 -o cluster_size=4096 c.qcow2 64M >/dev/null
qemu-io -c 'write -P 2 10M 2M' -c 'write -P 3 40M 100k' -c abort c.qcow2 >/dev/null 2>&1
same_check c.qcow2 nolazy-abort

qemu-img create -f qcow2 -o lazy_refcounts=on,cluster_size=512 d.qcow2 4M >/dev/null
qemu-io -c 'write -P 2 0 300k' -c 'write -c -P 3 1M 512' -c abort d.qcow2 >/dev/null 2>&1
same_check d.qcow2 lazy-512

qemu-img create -f qcow2 -o lazy_refcounts=on e.qcow2 64M >/dev/null
qemu-io -c 'write -P 1 0 64k' e.qcow2 >/dev/null
qemu-img snapshot -c s e.qcow2
qemu-io -c 'write -P 2 0 64k' -c 'write -P 2 1M 64k' -c abort e.qcow2 >/dev/null 2>&1
same_check e.qcow2 lazy-snapshot
check_done
