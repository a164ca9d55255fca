#!/bin/bash
# Runs every test suite against the tools in $BIN (library tests from
# $BUILD/tests).  Prints one line per test and a closing
# "N passed, N failed" line; writes the counts to $BUILD/results.*.
#
#   BUILD=build BIN=bin tests/run.sh [SUITE...]
#   suites: unit golden interop abuse fuzz-replay crash build   (default: all)
#   GOLDEN_UPDATE=1 rewrites golden .out files from the current output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
SANITIZED=${SANITIZED:-}
export QC_BIN=$(cd "$BIN" && pwd)
export FIXTURES="$top/fixtures"
export TESTS="$top/tests"
export PATH="$QC_BIN:$top/tools:$PATH"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=86:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LC_ALL=C TZ=UTC
suites=${*:-unit golden interop abuse fuzz-replay crash build}

pass=0 fail=0 skip=0
failed_names=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/qc-tests.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Wall time of each test, for the closing list of the slowest ones
# (CI has a time budget; this shows where it goes).
t0=$EPOCHREALTIME
took() { local now=$EPOCHREALTIME; printf '%s %s\n' "$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f", b - a }')" "$1" >>"$scratch/times"; t0=$now; }
ok()   { took "$1"; pass=$((pass + 1)); printf 'PASS %s\n' "$1"; }
bad()  { took "$1"; fail=$((fail + 1)); failed_names+=("$1"); printf 'FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | head -40 | sed 's/^/    /'; }
skipped() { took "$1"; skip=$((skip + 1)); printf 'SKIP %s (%s)\n' "$1" "$2"; }

sanitizer_report() {
    grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$1"
}

run_unit() {
    local t out
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        out="$scratch/unit.out"
        if "$t" >"$out" 2>&1 && ! sanitizer_report "$out"; then
            ok "unit/$(basename "$t")"
        else
            bad "unit/$(basename "$t")" "$(grep -E 'FAILED|ERROR|Sanitizer|runtime error|\[  FAIL' "$out" | head -20)"
        fi
    done
}

# A golden test: tests/golden/TOOL/NAME.sh prints (stdout+stderr) what must
# equal NAME.out.  TEST_DIR is a private scratch directory; its path is
# replaced by TEST_DIR in the output.
run_golden() {
    local sh name dir out exp
    for sh in tests/golden/*/*.sh; do
        [ -f "$sh" ] || continue
        name=${sh#tests/golden/}; name=${name%.sh}
        exp=${sh%.sh}.out
        dir="$scratch/golden/$name"
        rm -rf "$dir"; mkdir -p "$dir"
        out="$scratch/golden.out"
        (cd "$dir" && TEST_DIR="$dir" bash "$top/$sh") >"$out" 2>&1 </dev/null
        sed -i "s|$dir|TEST_DIR|g" "$out"
        if sanitizer_report "$out"; then
            bad "golden/$name" "$(grep -E -A5 'Sanitizer|runtime error' "$out" | head -20)"
            continue
        fi
        if [ -n "${GOLDEN_UPDATE:-}" ] && [ -z "$SANITIZED" ]; then
            cp "$out" "$exp"
        fi
        if [ ! -f "$exp" ]; then
            bad "golden/$name" "missing $exp"
        elif cmp -s "$out" "$exp"; then
            ok "golden/$name"
        else
            bad "golden/$name" "$(diff -u "$exp" "$out" | head -40)"
        fi
    done
}

# An interop or crash test: a script that exits 0 (pass), 77 (skip) or
# anything else (fail).  It may use QC_BIN, FIXTURES and TEST_DIR.
run_scripts() {
    local kind=$1 sh name dir out rc
    for sh in tests/$kind/*.sh; do
        [ -f "$sh" ] || continue
        name=$(basename "$sh" .sh)
        dir="$scratch/$kind/$name"
        rm -rf "$dir"; mkdir -p "$dir"
        out="$scratch/$kind.out"
        (cd "$dir" && TEST_DIR="$dir" bash "$top/$sh") >"$out" 2>&1 </dev/null
        rc=$?
        if sanitizer_report "$out"; then
            bad "$kind/$name" "$(grep -E -A5 'Sanitizer|runtime error' "$out" | head -20)"
        elif [ $rc -eq 0 ]; then
            ok "$kind/$name"
        elif [ $rc -eq 77 ]; then
            skipped "$kind/$name" "$(tail -1 "$out")"
        else
            bad "$kind/$name" "$(tail -30 "$out")"
        fi
    done
}

run_fuzz_replay() {
    local r target out
    for r in "$BUILD"/tests/replay_fuzz_*; do
        [ -x "$r" ] || continue
        target=${r##*/replay_}
        out="$scratch/replay.out"
        if "$r" tests/fuzz/corpus/"$target" >"$out" 2>&1 && ! sanitizer_report "$out"; then
            ok "fuzz-replay/$target ($(tail -1 "$out"))"
        else
            bad "fuzz-replay/$target" "$(tail -20 "$out")"
        fi
    done
}

for s in $suites; do
    case $s in
    unit) run_unit ;;
    golden) run_golden ;;
    interop) run_scripts interop ;;
    crash) run_scripts crash ;;
    build) run_scripts build ;;
    abuse) run_scripts abuse ;;
    fuzz-replay) run_fuzz_replay ;;
    *) echo "unknown suite $s" >&2; exit 2 ;;
    esac
done

label=normal; [ -n "$SANITIZED" ] && label=san
if [ -s "$scratch/times" ]; then
    printf 'slowest (%s):' "$label"
    sort -rn "$scratch/times" | head -6 | while read -r secs name; do printf ' %s %ss;' "$name" "$secs"; done
    printf '\n'
fi
mkdir -p "$BUILD"
echo "$pass $fail $skip" > "$BUILD/results.$label"
if [ $fail -gt 0 ]; then
    printf 'failed (%s):' "$label"; printf ' %s' "${failed_names[@]}"; printf '\n'
fi
echo "$label: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
