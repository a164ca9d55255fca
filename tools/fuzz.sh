#!/bin/bash
# libFuzzer runs of every tests/fuzz/fuzz_*.c target (make fuzz FUZZ_SECONDS=N).
#
# Each target is built with clang -fsanitize=fuzzer,address,undefined with
# the library sources compiled in, then run for N seconds (default 60) on a
# copy of its corpus in build/fuzz/corpus/NAME: new inputs stay in build/,
# never in the repository.  Prints the executions per target; fails when a
# target crashes (the input is kept in build/fuzz/NAME-crash-*).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:-60}
shift || true
out=build/fuzz
CLANG=${CLANG:-clang}
mkdir -p "$out"

command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG is needed (tools/deps.sh installs it)" >&2; exit 1; }
pkgs="zlib libzstd json-c libcrypto"
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -Ilib $(pkg-config --cflags $pkgs)"
libs=$(pkg-config --libs $pkgs)
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

targets=("$@")
[ ${#targets[@]} -eq 0 ] && for t in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$t" .c)"); done

status=0
summary=()
for name in "${targets[@]}"; do
    src=tests/fuzz/$name.c
    bin=$out/$name
    [ -f "$src" ] || { echo "fuzz: no $src" >&2; status=1; continue; }
    echo "fuzz: building $name"
    # shellcheck disable=SC2086
    if ! $CLANG $cflags $san -o "$bin" "$src" lib/*.c $libs; then
        echo "fuzz: $name does not build" >&2
        status=1
        continue
    fi
    corpus=$out/corpus/$name
    rm -rf "$corpus"
    mkdir -p "$corpus"
    [ -d tests/fuzz/corpus/$name ] && cp tests/fuzz/corpus/$name/* "$corpus"/ 2>/dev/null
    rm -f "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-*
    echo "fuzz: running $name for ${secs}s"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/$name-" "$corpus" >"$out/$name.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)
    crashes=$(ls "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-* 2>/dev/null)
    if [ $rc -ne 0 ] || [ -n "$crashes" ]; then
        status=1
        summary+=("$name: FAILED after ${execs:-?} executions (exit $rc); see $out/$name.log ${crashes//$'\n'/ }")
        grep -E 'ERROR|SUMMARY|runtime error' "$out/$name.log" | head -5 >&2
    else
        summary+=("$name: ${execs:-?} executions in ${secs}s, no crash; corpus $(ls "$corpus" | wc -l) inputs")
    fi
done
echo
printf 'fuzz: %s\n' "${summary[@]}"
exit $status
