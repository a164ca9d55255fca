# qc-dump --raw writes the bytes qemu-img convert -O raw writes (same size),
# and fails where it fails.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
check() {
    local qrc orc
    rm -f q.raw o.raw
    qemu-img convert -O raw "$1" q.raw 2>/dev/null; qrc=$?
    qc-dump --raw o.raw "$1" 2>/dev/null; orc=$?
    if [ $qrc -eq 0 ] && { [ $orc -ne 0 ] || ! cmp -s q.raw o.raw; }; then
        echo "MISMATCH $1 (qc-dump exit $orc)"; fail=1
    elif [ $qrc -ne 0 ] && [ $orc -eq 0 ]; then
        echo "MISMATCH $1: qemu-img failed, qc-dump exit 0"; fail=1
    else
        echo "ok $1 ($qrc)"
    fi
}
io() { qemu-io "$@" >/dev/null; }
for opts in compat=0.10 cluster_size=4k extended_l2=on compression_type=zstd refcount_bits=8; do
    img=img-${opts//[=,]/-}.qcow2
    qemu-img create -q -f qcow2 -o "$opts" "$img" 2M
    io -c 'write -P 0x11 0 64k' -c 'write -c -P 0x22 128k 64k' -c 'write -z 256k 64k' \
       -c 'write -P 0x33 1M 3k' -c 'discard 1M 1k' "$img"
    check "$img"
done
qemu-img create -q -f qcow2 base.qcow2 1M
io -c 'write -P 0xaa 0 1M' -c 'write -c -P 0xab 512k 64k' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 2M
io -c 'write -P 0x11 64k 4k' -c 'write -z 128k 64k' top.qcow2
check top.qcow2
head -c 70001 /dev/urandom > back.raw
qemu-img create -q -f qcow2 -b back.raw -F raw over-raw.qcow2 1M
check over-raw.qcow2
qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 1M
io -c 'write -P 0x11 64k 64k' df.qcow2
check df.qcow2
qemu-img create -q -f qcow2 odd.qcow2 1049088
io -c 'write -P 0x11 1048576 512' odd.qcow2
truncate -s 1049276 odd.qcow2 2>/dev/null; poke_be odd.qcow2 24 8 1049276
check odd.qcow2
# a compressed cluster that does not inflate: both fail
qemu-img create -q -f qcow2 comp.qcow2 1M
io -c 'write -c -P 0x22 0 64k' comp.qcow2
l1=$(peek_be comp.qcow2 40 8)
l2=$(( $(od -An -tx1 -j $l1 -N 8 comp.qcow2 | tr -d ' \n' | sed 's/^80/00/' | sed 's/^/0x/') ))
c=$(( $(od -An -tx1 -j $l2 -N 8 comp.qcow2 | tr -d ' \n' | sed 's/^40/00/' | sed 's/^/0x/') ))
poke comp.qcow2 $c "ff ff ff ff"
check comp.qcow2
exit $fail
