#!/bin/bash
# qc-repair's own writes under every crash a drive allows: a full repair of
# each damaged image of repair-images.bash is recorded (--record), and
# crashtest rebuilds every prefix of those writes, every torn write and
# every subset of the writes since the last flush; in each state qc-repair
# runs again and the image must be clean for qc-check and qemu-img check,
# with every guest byte as the damaged image had it (an empty workload).
. "$TESTS/lib.sh"; . "$TESTS/crash/repair-images.bash"; . "$TESTS/crash/crash-lib.bash"
skip_without_qemu
[ -x "$QC_BIN/qc-repair" ] || { echo "qc-repair not built"; exit 77; }
images=${REPAIR_IMAGES:-$(repair_images)}
: > empty.wl
fail=0 total=0
for name in $images; do
    make_repair_image "$name" || { echo "$name: could not be made"; fail=1; continue; }
    cp "$name.qcow2" "$name.rec.qcow2"
    out=$(qc-repair --record "$name.rec" "$name.rec.qcow2" 2>&1) ||
        { echo "$name: repair failed: $(echo "$out" | tail -3)"; fail=1; continue; }
    # the guest bytes are compared with the damaged image's, unless QEMU
    # refuses to read it (then repair-interrupt.sh compares them)
    wl=(--workload empty.wl)
    [ -f "$name.unreadable" ] && wl=()
    crash "$name" "" --replay "$name.rec" --base "$TEST_DIR/$name.qcow2" "${wl[@]}" \
        --damaged-base --torn --reorder || fail=1
    n=$(sed -n 's/^crash states: \([0-9]*\),.*/\1/p' "$TEST_DIR/$name.out")
    total=$((total + ${n:-0}))
    rm -f "$name.rec" "$name.rec.qcow2"
done
echo "replayed repairs: $total distinct crash states in total"
exit $fail
