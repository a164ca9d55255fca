#!/bin/bash
# README.md shows the output of `make demo` verbatim, between the lines
# <!-- demo:begin --> and <!-- demo:end --> (inside a ``` block).  This test
# runs tools/demo.sh with the tools under test and requires the same text.
#
# The demo's story needs qc-repair: without $QC_BIN/qc-repair the test is
# skipped (exit 77), as the demo would then show a skipped repair step.
#
# DEMO_UPDATE=1 rewrites the block in README.md from the current output
# (review the diff before committing it).
. "$TESTS/lib.sh"
skip_without_qemu
[ -x "$QC_BIN/qc-repair" ] || { echo "qc-repair not built: the demo cannot be compared"; exit 77; }
top=$(cd "$TESTS/.." && pwd)
readme=$top/README.md

QC_BIN=$QC_BIN QC_REPAIR=$QC_BIN/qc-repair "$top/tools/demo.sh" >demo.out 2>demo.err
rc=$?
[ $rc -eq 0 ] || { echo "tools/demo.sh failed (exit $rc):"; tail -20 demo.err; exit 1; }
[ -s demo.err ] && { echo "tools/demo.sh wrote to stderr:"; head -20 demo.err; exit 1; }

# The block: the lines between the markers, without the ``` fence lines.
awk '/^<!-- demo:end -->$/ { inside = 0 }
     inside && !/^```/ { print }
     /^<!-- demo:begin -->$/ { inside = 1 }' "$readme" >readme.out
grep -qx "<!-- demo:begin -->" "$readme" && grep -qx "<!-- demo:end -->" "$readme" ||
    { echo "README.md has no demo markers"; exit 1; }

if [ -n "${DEMO_UPDATE:-}" ]; then
    awk -v new=demo.out '
        /^<!-- demo:end -->$/ { print "```"; while ((getline l < new) > 0) print l; print "```"; skip = 0 }
        !skip { print }
        /^<!-- demo:begin -->$/ { skip = 1 }' "$readme" >readme.new && cp readme.new "$readme"
    echo "README.md demo block rewritten"
    exit 0
fi

[ -s readme.out ] || { echo "README.md has no demo block between the markers"; exit 1; }

if ! cmp -s readme.out demo.out; then
    echo "the demo's output differs from README.md (- README, + demo):"
    diff -u readme.out demo.out | head -60
    exit 1
fi
echo "README.md shows the demo's current output ($(wc -l <demo.out) lines)"
