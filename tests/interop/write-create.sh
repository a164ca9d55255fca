#!/bin/bash
# qc-write --create against qemu-img create: for every creation option
# (and a few combinations), the same "Formatting" line, a byte-identical
# file, qemu-img check clean, qemu-img info agreeing with the options.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
qemu-img create -f qcow2 backing.qcow2 32M >/dev/null
for o in "" cluster_size=512 cluster_size=4k cluster_size=2M compat=0.10 compat=1.1 \
         lazy_refcounts=on refcount_bits=1 refcount_bits=2 refcount_bits=4 refcount_bits=8 \
         refcount_bits=32 refcount_bits=64 extended_l2=on extended_l2=on,cluster_size=16k \
         compression_type=zstd preallocation=metadata preallocation=metadata,cluster_size=4k \
         preallocation=metadata,cluster_size=512 preallocation=metadata,extended_l2=on \
         preallocation=metadata,lazy_refcounts=on preallocation=metadata,refcount_bits=1,cluster_size=4k \
         backing_file=backing.qcow2,backing_fmt=qcow2 compat=0.10,backing_file=backing.qcow2,backing_fmt=qcow2 \
         backing_file=backing.qcow2,backing_fmt=qcow2,extended_l2=on,preallocation=metadata \
         cluster_size=8k,lazy_refcounts=on,refcount_bits=64,compression_type=zstd; do
    sizes=64M
    case $o in
    ""|cluster_size=512|cluster_size=2M|preallocation=metadata|extended_l2=on) sizes="64M 1000 1T" ;;
    esac
    case $o in *preallocation*) sizes=${sizes% 1T} ;; esac
    for size in $sizes; do
        rm -f q.qcow2 w.qcow2
        qemu-img create -f qcow2 ${o:+-o $o} q.qcow2 $size > q.out 2>&1
        qc-write --create $size ${o:+-o $o} w.qcow2 > w.out 2>&1
        sed -i 's/w\.qcow2/q.qcow2/; s/^qc-write: /qemu-img: /' w.out
        if ! cmp -s q.out w.out; then
            echo "[$o] $size: output differs"; diff q.out w.out | head -4; fail=1; continue
        fi
        if [ ! -e q.qcow2 ] && [ ! -e w.qcow2 ]; then
            continue   # both refused, with the same message
        fi
        if ! cmp -s q.qcow2 w.qcow2; then
            echo "[$o] $size: files differ"; cmp q.qcow2 w.qcow2 | head -2; fail=1; continue
        fi
        qemu-img check w.qcow2 >/dev/null 2>&1 || { echo "[$o] $size: not clean"; fail=1; }
        info=$(qemu-img info --output=json w.qcow2)
        for kv in ${o//,/ }; do
            k=${kv%%=*} v=${kv#*=}
            case $k in
            cluster_size) want=$(numfmt --from=iec "${v^^}"); key='"cluster-size"' ;;
            compat) want="\"$v\""; key='"compat"' ;;
            lazy_refcounts) want=true; key='"lazy-refcounts"' ;;
            refcount_bits) want=$v; key='"refcount-bits"' ;;
            extended_l2) want=true; key='"extended-l2"' ;;
            compression_type) want="\"$v\""; key='"compression-type"' ;;
            backing_file) want="\"$v\""; key='"backing-filename"' ;;
            *) continue ;;
            esac
            echo "$info" | grep -q "$key: $want" ||
                { echo "[$o] $size: qemu-img info lacks $key: $want"; fail=1; }
        done
    done
done
[ $fail -eq 0 ] && echo "all creations identical to qemu-img create"
exit $fail
