# Helpers for the repair-*.sh interop tests (sourced, not a test itself):
# qc-repair against qemu-img check -r on copies of one image.

QC_REPAIR=${QC_BIN}/qc-repair
QC_CHECK=${QC_BIN}/qc-check
repair_failures=0
repair_compared=0

repair_fail() {
    echo "FAIL $1: $2"
    repair_failures=$((repair_failures + 1))
}

# raw_sha IMG: sha256 of qemu-img convert -O raw, or "unreadable"
raw_sha() {
    local t
    t=$(mktemp)
    if qemu-img convert -O raw "$1" "$t" 2>/dev/null; then
        sha256sum <"$t" | cut -d' ' -f1
    else
        echo unreadable
    fi
    rm -f "$t"
}

# same_repair IMG LABEL [MODE] [exact|clean|better]: repairs copies with qemu-img
# check -r MODE and with qc-repair -r MODE.  "exact" (default): the same
# stdout, stderr and exit status.  Always: where QEMU's repair leaves a
# clean image, qc-repair's result is clean for qemu-img check and for
# qc-check (a second pass), and its guest data equals the image's before
# the repair (or, failing that, QEMU's repaired copy).  "better": QEMU's
# repair fails; qc-repair must leave a clean image with the same guest data.
same_repair() {
    local img=$1 label=$2 mode=${3:-all} how=${4:-exact} q o qr or before
    q=$(mktemp) o=$(mktemp)
    cp "$img" "$q.img"; cp "$img" "$o.img"
    before=$(raw_sha "$img")
    repair_compared=$((repair_compared + 1))
    (cd "$(dirname "$q.img")" && qemu-img check -r "$mode" "$(basename "$q.img")" >"$q.out" 2>"$q.err"); qr=$?
    (cd "$(dirname "$o.img")" && "$QC_REPAIR" -r "$mode" "$(basename "$o.img")" >"$o.out" 2>"$o.err"); or=$?
    sed -i "s|$(basename "$q.img")|IMG|g" "$q.out" "$q.err"
    sed -i "s|$(basename "$o.img")|IMG|g" "$o.out" "$o.err"
    if [ "$how" = exact ] && { [ "$qr" != "$or" ] || ! cmp -s "$q.out" "$o.out" || ! cmp -s "$q.err" "$o.err"; }; then
        repair_fail "$label" "output differs from qemu-img check -r $mode (exit $qr vs $or)"
        diff "$q.err" "$o.err" | head -10
        diff "$q.out" "$o.out" | head -10
    fi
    if [ "$or" = 99 ] || [ "$or" -gt 128 ]; then
        repair_fail "$label" "qc-repair exit $or"
    fi
    if [ "$how" = better ]; then
        # QEMU's own repair fails here (it marks the image corrupt): ours must not
        [ "$or" = 0 ] || repair_fail "$label" "qc-repair exit $or where a clean result is expected"
        qemu-img check "$o.img" >/dev/null 2>&1 || repair_fail "$label" "qemu-img check not clean after qc-repair"
        [ "$(raw_sha "$o.img")" = "$before" ] || repair_fail "$label" "guest data changed by qc-repair"
    elif qemu-img check "$q.img" >/dev/null 2>&1; then
        qemu-img check "$o.img" >/dev/null 2>&1 || repair_fail "$label" "qemu-img check not clean after qc-repair"
        "$QC_CHECK" "$o.img" >/dev/null 2>&1 || repair_fail "$label" "qc-check not clean after qc-repair"
        local after qafter
        after=$(raw_sha "$o.img")
        if [ "$after" != "$before" ]; then
            qafter=$(raw_sha "$q.img")
            [ "$after" = "$qafter" ] || repair_fail "$label" "guest data changed by qc-repair"
        fi
    fi
    rm -f "$q" "$o" "$q.img" "$o.img" "$q.out" "$q.err" "$o.out" "$o.err"
}

repair_done() {
    echo "$repair_compared repairs compared, $repair_failures failures"
    [ "$repair_failures" -eq 0 ]
}
