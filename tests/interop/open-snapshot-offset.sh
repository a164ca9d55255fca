#!/bin/bash
# QEMU validates the snapshot table's offset at every open whatever
# nb_snapshots says (aligned, and the table ending below INT64_MAX):
# qc-dump's map and raw export and qc-write open or refuse exactly as
# qemu-img map and qemu-io do.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
qemu-img create -q -f qcow2 base.qcow2 1M
qemu-io -c 'write -P 0x5a 0 64k' base.qcow2 >/dev/null
for off in 0x8000000000000000 0xffffffffffff0000 0x7fffffffffff0000 0x7fffffffffff0000:65535 0xffffffffffff0000:65535; do
    cp base.qcow2 t.qcow2
    poke_be t.qcow2 64 8 "${off%%:*}"
    case $off in *:*) poke_be t.qcow2 60 4 "${off##*:}" ;; esac
    qemu-img map --output=json t.qcow2 >q.out 2>q.err; q=$?
    qc-dump --map --json t.qcow2 >c.out 2>c.err; c=$?
    [ $q = $c ] || fail "$off: map exit $c, qemu-img map $q ($(cat c.err))"
    [ $q = 0 ] && { cmp -s q.out c.out || fail "$off: map differs"; }
    sed 's/^qemu-img: //' q.err >q.msg; sed 's/^qc-dump: //' c.err >c.msg
    cmp -s q.msg c.msg || fail "$off: map message '$(cat c.msg)', qemu-img '$(cat q.msg)'"
    rm -f r.raw; qc-dump --raw r.raw t.qcow2 >/dev/null 2>&1; r=$?
    [ $q = $r ] || fail "$off: --raw exit $r, qemu-img map $q"
    qemu-io -c 'read 0 512' t.qcow2 >/dev/null 2>&1; q=$?
    qc-write t.qcow2 -c 'read 0 512' >/dev/null 2>&1; w=$?
    [ $q = $w ] || fail "$off: qc-write exit $w, qemu-io $q"
done
[ $fails -eq 0 ]
