# qc-dump --map --json prints exactly what qemu-img map --output=json prints,
# on images made here: every creation option, chains, data files, damage.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
check() {   # check IMAGE: stdout identical, both succeed or both fail
    local q o qrc orc
    # QEMU leaves unwritten extents whose SEEK_DATA answers change as the
    # page cache does; a sparse copy has plain holes that stay put
    cp --sparse=always "$1" "$1.n" && mv "$1.n" "$1" && sync "$1"
    q=$(qemu-img map --output=json "$1" 2>/dev/null); qrc=$?
    o=$(qc-dump --map --json "$1" 2>/dev/null); orc=$?
    if [ $qrc -eq 0 ] && { [ $orc -ne 0 ] || [ "$q" != "$o" ]; }; then
        echo "MISMATCH $1 (qemu-img ok, qc-dump exit $orc)"; diff <(echo "$q") <(echo "$o") | head -5; fail=1
    elif [ $qrc -ne 0 ] && [ $orc -eq 0 ]; then
        echo "MISMATCH $1: qemu-img failed, qc-dump exit 0"; fail=1
    else
        echo "ok $1"
    fi
}
io() { qemu-io "$@" >/dev/null; }
for opts in compat=0.10 compat=1.1 cluster_size=512 cluster_size=2M refcount_bits=1 \
            refcount_bits=64 lazy_refcounts=on extended_l2=on \
            extended_l2=on,cluster_size=16k compression_type=zstd; do
    img=img-${opts//[=,]/-}.qcow2
    qemu-img create -q -f qcow2 -o "$opts" "$img" 8M
    io -c 'write -P 0x11 0 64k' -c 'write -c -P 0x22 1M 64k' -c 'write -z 2M 64k' \
       -c 'write -P 0x33 3M 3k' -c 'discard 3M 1k' -c 'write -P 0x44 6M 1M' "$img"
    check "$img"
done
# chains: qcow2 and raw backing files, shorter backing files
qemu-img create -q -f qcow2 base.qcow2 1M
io -c 'write -P 0xaa 0 1M' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 3M
io -c 'write -P 0xbb 512k 64k' -c 'write -P 0xbc 2M 64k' mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 4M
io -c 'write -z 0 64k' top.qcow2
check top.qcow2
head -c 70000 /dev/urandom > back.raw
qemu-img create -q -f qcow2 -b back.raw -F raw over-raw.qcow2 1M
check over-raw.qcow2
# external data file, raw and not
qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 4M
io -c 'write -P 0x11 64k 64k' df.qcow2
check df.qcow2
qemu-img create -q -f qcow2 -o data_file=dfr.data,data_file_raw=on dfr.qcow2 4M
check dfr.qcow2
# metadata preallocation on a sparse file: holes show as zero data
qemu-img create -q -f qcow2 -o preallocation=metadata pre.qcow2 16M
io -c 'write -P 0x11 1M 64k' pre.qcow2
check pre.qcow2
# damage: unaligned L2 entry, L2 entry past EOF, truncated file
qemu-img create -q -f qcow2 dmg.qcow2 4M
io -c 'write -P 0x11 0 128k' dmg.qcow2
l1=$(peek_be dmg.qcow2 40 8)
l2=$(( $(od -An -tx1 -j $l1 -N 8 dmg.qcow2 | tr -d ' \n' | sed 's/^80/00/' | sed 's/^/0x/') ))
cp dmg.qcow2 dmg-unaligned.qcow2; poke_be dmg-unaligned.qcow2 $((l2 + 8)) 8 $((0x8000000000060200))
check dmg-unaligned.qcow2
cp dmg.qcow2 dmg-eof.qcow2; poke_be dmg-eof.qcow2 $((l2 + 8)) 8 $((0x8000000010000000))
check dmg-eof.qcow2
cp dmg.qcow2 dmg-trunc.qcow2; truncate -s 300000 dmg-trunc.qcow2
check dmg-trunc.qcow2
exit $fail
