# qc-dump --hexdump OFF LEN prints what hexdump -C -s OFF -n LEN prints, and
# --read on an image without a backing file what hexdump -C prints of the
# raw export.
. "$TESTS/lib.sh"
command -v hexdump >/dev/null || { echo "hexdump not installed"; exit 77; }
skip_without_qemu
fail=0
qemu-img create -q -f qcow2 -o cluster_size=4k img.qcow2 1M
qemu-io -c 'write -P 0x41 0 5000' -c 'write -c -P 0x42 8k 4k' -c 'write -z 16k 4k' \
        -c 'write -P 0x43 20001 300' img.qcow2 >/dev/null
size=$(stat -c %s img.qcow2)
for range in "0 0" "0 1" "0 16" "0 17" "3 40" "0 4096" "4090 4200" "8 100" \
             "$((size - 5)) 100" "$size 10" "$((size + 100)) 10" "100 0" "0 $((size * 2))"; do
    set -- $range
    if ! cmp -s <(hexdump -C -s "$1" -n "$2" img.qcow2) <(qc-dump --hexdump "$1" "$2" img.qcow2); then
        echo "MISMATCH --hexdump $1 $2"; fail=1
    fi
done
qc-dump --raw img.raw img.qcow2 || fail=1
for range in "0 0" "0 5000" "4000 9000" "8190 20" "20000 400" "1048000 2000" "2000000 5" "0 1M"; do
    set -- $range
    n=$2; [ "$n" = 1M ] && n=1048576
    if ! cmp -s <(hexdump -C -s "$1" -n "$n" img.raw) <(qc-dump --read "$1" "$2" img.qcow2); then
        echo "MISMATCH --read $1 $2"; fail=1
    fi
done
[ $fail -eq 0 ] && echo ok
exit $fail
