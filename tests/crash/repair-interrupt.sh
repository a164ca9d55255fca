#!/bin/bash
# qc-repair interrupted at every write: for each damaged image of
# repair-images.bash and every k below the number of writes a full repair
# makes, `qc-repair --crash-after k` must stop as a power failure would
# (exit 99) without changing what the guest reads, and a second qc-repair
# must then leave the image clean for qemu-img check and qc-check, with the
# guest bytes, the snapshot list and the bitmaps of the damaged image, and
# the dirty and corrupt bits clear.  The uninterrupted repair must do the same.
. "$TESTS/lib.sh"; . "$TESTS/crash/repair-images.bash"
skip_without_qemu
[ -x "$QC_BIN/qc-repair" ] || { echo "qc-repair not built"; exit 77; }
jobs_max=$(nproc 2>/dev/null || echo 2)
images=${REPAIR_IMAGES:-$(repair_images)}

# What must survive a repair: qemu-img info without the fields a repair
# changes (file length, dirty and corrupt flags); it lists snapshots and
# bitmaps.
info_of() {
    qemu-img info --output=json "$1" 2>&1 | grep -v -e '"actual-size"' -e '"dirty-flag"' -e '"corrupt"' \
        -e '"filename"'
}

# verify_repaired NAME IMG: the state after the last repair
verify_repaired() {
    local name=$1 img=$2 out
    out=$(qemu-img check "$img" 2>&1) || { echo "qemu-img check: $(echo "$out" | head -3)"; return 1; }
    out=$("$QC_BIN/qc-check" "$img" 2>&1) || { echo "qc-check: $(echo "$out" | head -3)"; return 1; }
    qemu-img convert -O raw "$img" "$img.raw" 2>/dev/null || { echo "qemu-img convert failed"; return 1; }
    cmp -s "$img.raw" "$name.raw" || { echo "guest bytes differ: $(cmp "$img.raw" "$name.raw" | head -1)"; return 1; }
    rm -f "$img.raw"
    info_of "$img" | cmp -s - "$name.info" ||
        { echo "snapshots, bitmaps or image info differ:"; info_of "$img" | diff "$name.info" - | head -6; return 1; }
    if [ "$(be "$img" 4 4)" -ge 3 ]; then
        [ $(( $(be "$img" 72 8) & 3 )) -eq 0 ] || { echo "dirty or corrupt bit still set"; return 1; }
        [ $(( $(be "$img" 88 8) & ~3 )) -eq 0 ] || { echo "unknown autoclear bits still set"; return 1; }
    fi
}

# point NAME K N: crash after K of the N writes, repair again, verify
point() {
    local name=$1 k=$2 n=$3 img=$1.$2.qcow2 out rc want=99
    [ "$k" -eq "$n" ] && want=0
    cp "$name.qcow2" "$img"
    out=$("$QC_BIN/qc-repair" --crash-after "$k" "$img" 2>&1); rc=$?
    if [ $rc -ne $want ]; then
        echo "first run exit $rc, expected $want: $(echo "$out" | tail -2)"
        return 1
    fi
    if [ "$k" -lt "$n" ]; then
        # the interrupted repair has not changed what the guest reads
        if [ ! -f "$name.unreadable" ]; then
            qemu-img convert -O raw "$img" "$img.raw" 2>/dev/null &&
                cmp -s "$img.raw" "$name.raw" ||
                { echo "guest bytes differ at the crash, before the second repair"; return 1; }
        fi
        out=$("$QC_BIN/qc-repair" "$img" 2>&1); rc=$?
        [ $rc -eq 0 ] || { echo "second run exit $rc: $(echo "$out" | grep -v '^\(Leaked\|Repairing\|ERROR\)' | tail -3)"; return 1; }
    fi
    verify_repaired "$name" "$img" || return 1
    rm -f "$img" "$img.raw"
}

fail=0 total=0
t0=$SECONDS
for name in $images; do
    make_repair_image "$name" || { echo "$name: could not be made"; fail=1; continue; }
    info_of "$name.qcow2" > "$name.info"
    # the number of writes of a full repair
    cp "$name.qcow2" "$name.full.qcow2"
    out=$("$QC_BIN/qc-repair" --write-log "$name.log" "$name.full.qcow2" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
        echo "$name: repair exit $rc; qemu-img check then finds:"
        qemu-img check "$name.full.qcow2" 2>&1 | grep -E '^(ERROR|Leaked|[0-9]+ (errors|leaked))' |
            head -4 | sed 's/^/    /'
        fail=1
        continue
    fi
    rm -f "$name.full.qcow2"
    n=$(grep -c '"seq"' "$name.log")
    if [ "$n" -eq 0 ]; then
        echo "$name: the repair wrote nothing to a damaged image"
        fail=1
        continue
    fi
    for ((k = 0; k <= n; k++)); do
        ( point "$name" "$k" "$n" > "$name.$k.result" 2>&1; echo $? >> "$name.$k.result" ) &
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    done
    wait
    bad=0
    for ((k = 0; k <= n; k++)); do
        if [ "$(tail -1 "$name.$k.result")" != 0 ]; then
            [ $bad -lt 5 ] && echo "$name: crash after $k of $n writes: $(sed '$d' "$name.$k.result" | head -8)"
            bad=$((bad + 1))
        fi
    done
    echo "$name: $n crash points$( [ $bad -eq 0 ] && echo ", all repaired" || echo ", $bad FAILED")"
    [ $bad -eq 0 ] || fail=1
    total=$((total + n))
done
echo "interrupted repairs: $total crash points in total, $((SECONDS - t0)) s"
exit $fail
