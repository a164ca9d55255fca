# Helpers for the crash suite (sourced by tests/crash/*.sh).
WL=$TESTS/crash/workloads

# A repairer is needed: qc-repair, or qemu-img check -r all until it exists.
need_repairer() {
    [ -x "$QC_BIN/qc-repair" ] && return 0
    command -v qemu-img >/dev/null 2>&1 && return 0
    echo "neither qc-repair nor qemu-img is available"
    exit 77
}

# crash LABEL EXPECT ARGS...: runs crashtest, shows its summary, and checks
# the exit status (0 = every state passed) and that the run saw at least
# one crash state per write.  EXPECT lists words that must appear in the
# per-state lines (events the workload is meant to exercise).
crash() {
    local label=$1 expect=$2 out rc w states skipped
    shift 2
    out="$TEST_DIR/$label.out"
    crashtest "$@" >"$out" 2>&1
    rc=$?
    echo "== $label: $(tail -1 "$out")"
    if [ $rc -ne 0 ]; then
        grep -E 'FAIL|crashtest:' "$out" | head -10
        return 1
    fi
    grep -q '^crash states: [0-9]*, repaired: [0-9]*, data lost: 0$' "$out" ||
        { echo "$label: no summary line"; return 1; }
    w=$(sed -n 's/^crashtest: .*, \([0-9]*\) writes, .*/\1/p' "$out")
    states=$(sed -n 's/^crash states: \([0-9]*\),.*/\1/p' "$out")
    skipped=$(sed -n 's/.*(\([0-9]*\) identical states skipped).*/\1/p' "$out")
    [ -n "$w" ] && [ "$w" -gt 0 ] && [ $((states + skipped)) -gt "$w" ] ||
        { echo "$label: only $states (+$skipped identical) states for $w writes"; return 1; }
    for e in $expect; do
        grep -q "$e" "$out" || { echo "$label: no state after a '$e' write"; return 1; }
    done
}
