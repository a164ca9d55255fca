#!/bin/sh
# Adds up the result files of the check passes into the closing line.
p=0 f=0 s=0
for r in "$@"; do
    [ -f "$r" ] || { echo "missing result file $r" >&2; f=$((f + 1)); continue; }
    read -r a b c < "$r"
    p=$((p + a)); f=$((f + b)); s=$((s + c))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
