#!/bin/bash
# qc-repair never destroys what lost metadata still maps.  On images made by
# qemu-img/qemu-io (plain, with a snapshot, with compressed clusters) whose
# L1 table was zeroed, garbled, or lost one L2 table's entry, qemu-img check
# -r frees every data cluster and L2 table; qc-repair must change nothing,
# name qc-salvage and exit 1, and with --force repair as qemu-img does.  On
# crash debris (a raised refcount, an unlinked empty L2 table, an unlinked
# copy of an L2 table, a tail of never-linked data, lazy refcounts) it must
# stay exactly qemu-img check -r.
. "$TESTS/lib.sh"
skip_without_qemu
. "$TESTS/interop/repair-common.bash"
cd "$TEST_DIR"

CS=4096
l1_offset() { peek_be "$1" 40 8; }
l1_size() { peek_be "$1" 36 4; }
refblock0() { peek_be "$1" "$(peek_be "$1" 48 8)" 8; }

mk_plain() {
    qemu-img create -q -f qcow2 -o cluster_size=$CS "$1" 16M
    qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 1M' -c 'write -P 0x33 5M 512k' \
        -c 'write -P 0x44 9M 256k' "$1" >/dev/null
}
mk_snap() {
    mk_plain "$1"
    qemu-img snapshot -c s1 "$1"
    qemu-io -c 'write -P 0x55 512k 1M' -c 'write -P 0x66 12M 256k' "$1" >/dev/null
}
mk_comp() {
    qemu-img create -q -f qcow2 -o cluster_size=$CS "$1" 16M
    qemu-io -c 'write -c -P 0x77 0 256k' -c 'write -P 0x88 4M 512k' \
        -c 'write -c -P 0x99 8M 128k' "$1" >/dev/null
}

zero_l1() {
    dd if=/dev/zero of="$1" bs=1 seek="$(l1_offset "$1")" count=$(($(l1_size "$1") * 8)) \
        conv=notrunc status=none
}
# every entry an offset no L2 table can be at (not cluster aligned)
garble_l1() {
    local off i n
    off=$(l1_offset "$1") n=$(l1_size "$1")
    for ((i = 0; i < n; i++)); do poke_be "$1" $((off + 8 * i)) 8 $((0x1200 + i * 0x10000)); done
}
# L1 entry INDEX (one L2 table among several) zeroed
zero_l1_entry() { poke_be "$1" $(($(l1_offset "$1") + 8 * $2)) 8 0; }

# --- lost metadata: refused, unchanged, qc-salvage named; --force = qemu-img
lm_failures=0
lm_fail() { echo "FAIL $1: $2"; lm_failures=$((lm_failures + 1)); }

refused() {
    local img=$1 label=$2 mode rc qrc
    for mode in all leaks; do
        cp "$img" t.qcow2
        "$QC_REPAIR" -r $mode t.qcow2 >t.out 2>t.err; rc=$?
        [ "$rc" = 1 ] || lm_fail "$label -r $mode" "exit $rc, expected 1"
        cmp -s "$img" t.qcow2 || lm_fail "$label -r $mode" "the image changed"
        sed 's/^qc-repair: //' t.err | tr '\n' ' ' | grep -q "qc-salvage t.qcow2 OUT" || lm_fail "$label -r $mode" "stderr does not name qc-salvage"
        grep -q "look like" t.err || lm_fail "$label -r $mode" "stderr does not say what it found"
        grep -q "No errors were found" t.out t.err && lm_fail "$label -r $mode" "claims a clean image"
    done
    "$QC_REPAIR" --output=json t.qcow2 >t.json 2>/dev/null; rc=$?
    [ "$rc" = 1 ] || lm_fail "$label json" "exit $rc, expected 1"
    grep -q '"kind": "lost-metadata"' t.json || lm_fail "$label json" "no lost-metadata object"
    "$QC_REPAIR" --dry-run t.qcow2 >t.out 2>t.err
    cmp -s "$img" t.qcow2 || lm_fail "$label --dry-run" "the image changed"
    # qc-check names it in its findings, its qemu-img numbers unchanged
    "$QC_BIN/qc-check" --output=json t.qcow2 >c.json 2>/dev/null; rc=$?
    qemu-img check --output=json t.qcow2 >q.json 2>/dev/null; qrc=$?
    [ "$rc" = "$qrc" ] || lm_fail "$label qc-check" "exit $rc, qemu-img check $qrc"
    python3 - c.json q.json <<'PY' || lm_fail "$label qc-check" "no lost-metadata finding, or numbers differ"
import json, sys
c, q = (json.load(open(f)) for f in sys.argv[1:3])
assert any(p['kind'] == 'lost-metadata' for p in c['problems'])
for k in ('corruptions', 'leaks', 'check-errors', 'image-end-offset'):
    assert c.get(k) == q.get(k), k
PY
    grep -q "qc-salvage" t.err || lm_fail "$label --dry-run" "the verdict is not reported"
}

# --force: qemu-img check -r's stdout, exit status and stderr (the warning
# apart), and a result as clean as QEMU's
forced() {
    local img=$1 label=$2 mode qr or
    for mode in all leaks; do
        cp "$img" q.qcow2; cp "$img" o.qcow2
        qemu-img check -r $mode q.qcow2 >q.out 2>q.err; qr=$?
        "$QC_REPAIR" --force -r $mode o.qcow2 >o.out 2>o.err; or=$?
        sed -i 's/q\.qcow2/IMG/g' q.out q.err
        sed -i 's/o\.qcow2/IMG/g' o.out o.err
        grep -q '^qc-repair: .*qc-salvage' o.err || lm_fail "$label --force -r $mode" "no warning"
        grep -v '^qc-repair: ' o.err >o.err2
        if [ "$qr" != "$or" ] || ! cmp -s q.out o.out || ! cmp -s q.err o.err2; then
            lm_fail "$label --force -r $mode" "differs from qemu-img check -r $mode (exit $qr vs $or)"
            diff q.err o.err2 | head -5; diff q.out o.out | head -5
        fi
        if qemu-img check q.qcow2 >/dev/null 2>&1; then
            qemu-img check o.qcow2 >/dev/null 2>&1 || lm_fail "$label --force -r $mode" "not clean"
        fi
    done
}

lost() {
    local mk=$1 damage=$2 label=$3 arg=${4:-}
    $mk img.qcow2
    $damage img.qcow2 $arg
    refused img.qcow2 "$label"
    forced img.qcow2 "$label"
    rm -f img.qcow2
}

lost mk_plain zero_l1 plain-zeroed-l1
lost mk_plain garble_l1 plain-garbled-l1
lost mk_plain zero_l1_entry plain-one-l1-entry 1
lost mk_snap zero_l1 snapshot-zeroed-l1
lost mk_snap garble_l1 snapshot-garbled-l1
lost mk_snap zero_l1_entry snapshot-one-l1-entry 6
lost mk_comp zero_l1 compressed-zeroed-l1
lost mk_comp garble_l1 compressed-garbled-l1
lost mk_comp zero_l1_entry compressed-one-l1-entry 4

# --- crash debris: exactly qemu-img check -r (same_repair without --force)
both() { same_repair "$1" "$2" all; same_repair "$1" "$2-leaks" leaks; }

# append a cluster holding FILE's bytes (or zeros) with refcount 1, as an
# allocation whose link never landed leaves it
leak_cluster() {
    local img=$1 src=${2:-} k
    k=$(( ($(stat -c %s "$img") + CS - 1) / CS ))
    truncate -s $((k * CS)) "$img"
    if [ -n "$src" ]; then cat "$src" >>"$img"; else truncate -s $(((k + 1) * CS)) "$img"; fi
    poke_be "$img" $(($(refblock0 "$img") + 2 * k)) 2 1
}

mk_plain c.qcow2    # a raised refcount of a used data cluster
poke_be c.qcow2 $(($(refblock0 c.qcow2) + 2 * 10)) 2 2
both c.qcow2 raised-refcount

mk_plain c.qcow2; leak_cluster c.qcow2    # an empty L2 table whose L1 update did not land
both c.qcow2 unlinked-empty-l2

mk_plain c.qcow2    # a copy of a live L2 table (its data is not leaked), never linked
l2=$(( $(peek_be c.qcow2 $(($(l1_offset c.qcow2) + 2)) 6) & ~0x1ff ))
dd if=c.qcow2 of=l2.bin bs=$CS skip=$((l2 / CS)) count=1 status=none
leak_cluster c.qcow2 l2.bin
both c.qcow2 unlinked-l2-copy

# most of a small image leaked, but as a tail of never-linked data clusters
qemu-img create -q -f qcow2 -o cluster_size=$CS c.qcow2 16M
qemu-io -c 'write -P 0x12 0 4k' c.qcow2 >/dev/null
head -c $CS /dev/zero | tr '\0' '\132' >d.bin
for i in $(seq 20); do leak_cluster c.qcow2 d.bin; done
both c.qcow2 leaked-data-tail

fixture ck-lazy lazy.qcow2    # lazy refcounts, dirty bit set after a crash
both lazy.qcow2 lazy-refcounts
qemu-img create -q -f qcow2 -o cluster_size=$CS,lazy_refcounts=on c.qcow2 16M
qemu-io -c 'write -P 1 0 1M' c.qcow2 >/dev/null
sh -c "qemu-io -c 'write -P 0x5a 4M 1M' -c 'discard 0 512k' -c abort c.qcow2; true" >/dev/null 2>&1
both c.qcow2 lazy-refcounts-abort

echo "$lm_failures lost-metadata failures"
repair_done && [ "$lm_failures" -eq 0 ]
