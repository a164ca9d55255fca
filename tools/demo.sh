#!/bin/bash
# make demo: the main job end to end, on an image made here.
#
# Writes guest data into an image with lazy refcounts, lets the power fail
# in the middle, shows the dirty bit in the three header views, checks,
# repairs, checks again, verifies every acknowledged byte, then runs
# crashtest over every crash point of a small workload.
#
# The output is the same on every run (no paths, times or rates in it), so
# that README.md can show it verbatim; tests/interop/readme-demo.sh keeps
# the two equal.
#
#   QC_BIN     the tools (default: bin/ of this tree)
#   QC_REPAIR  qc-repair to use (default: $QC_BIN/qc-repair); when it does
#              not exist the repair step says so and is skipped
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
QC_BIN=${QC_BIN:-${BIN:-bin}}
case $QC_BIN in /*) ;; *) QC_BIN=$top/$QC_BIN ;; esac
QC_REPAIR=${QC_REPAIR:-$QC_BIN/qc-repair}
export PATH="$QC_BIN:$PATH" LC_ALL=C TZ=UTC

for t in qc-write qc-dump qc-check crashtest; do
    [ -x "$QC_BIN/$t" ] || { echo "demo: $QC_BIN/$t is missing (run make)" >&2; exit 1; }
done
for t in qemu-img qemu-io; do
    command -v $t >/dev/null || { echo "demo: $t is missing (tools/deps.sh installs qemu-utils)" >&2; exit 1; }
done
have_repair=false
[ -x "$QC_REPAIR" ] && have_repair=true
qc-repair() { "$QC_REPAIR" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/qc-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
sep=''
step() { printf '%s%s### %s%s\n' "$sep" "$bold" "$*" "$plain"; sep=$'\n'; }
# Drops qemu-io's timing line ("64 KiB, 1 ops; 00.01 sec (...)"), which
# differs from run to run.
untimed() { grep -Ev '^[0-9.]+ ([KMGTPE]i)?B, [0-9]+ ops; '; }
# run CMD: shows the command, runs it (stderr with stdout), shows a
# non-zero exit status.
run() {
    local rc
    printf '$ %s\n' "$*"
    eval "$*" 2>&1 | untimed
    rc=${PIPESTATUS[0]}
    [ "$rc" -ne 0 ] && printf '[exit status %d]\n' "$rc"
    return 0
}

step "A new 64 MiB image with lazy refcounts (made by qc-write as qemu-img create makes it)"
run qc-write --create 64M -o lazy_refcounts=on demo.qcow2

step "Four writes, each acknowledged when it returns (-t writethrough); the power fails after the 12th write to the file"
run "qc-write -t writethrough --crash-after 12 demo.qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 128k' -c 'write -P 0x33 32M 64k' -c 'write -P 0x44 60M 4k'"
echo "(three writes were acknowledged; the fourth was in flight: its data reached the file, its L2 entry did not)"

step "The header as qcow2.py dump-header prints it: incompatible bit 0, the dirty bit, is set"
run qc-dump demo.qcow2

step "The same fields, annotated hex: offset, raw bytes, field, decoded value"
run "qc-dump --hex demo.qcow2 | sed -n '/incompatible_features/,/autoclear_features/p'"

step "The same in JSON, for scripts"
run "qc-dump --json demo.qcow2 | sed -n '/\"features\": {/,/^    }/p'"

step "qc-check: lazy refcounts left the data clusters unaccounted for (qemu-img check's lines, numbers and exit status)"
run qc-check demo.qcow2

step "Its JSON adds a list of problems, each with a stable kind; here by kind"
run "qc-check --output=json demo.qcow2 2>/dev/null | grep '\"kind\"' | sort | uniq -c"

step "qemu-img check agrees"
run "qemu-img check demo.qcow2 2>/dev/null"

step "qc-repair: fixes what qemu-img check -r all fixes, saving every byte it overwrites"
if $have_repair; then
    run qc-repair --backup demo.undo demo.qcow2
else
    echo "qc-repair is not built: this step is skipped (QC_REPAIR=PATH names one)"
fi

step "Checked again: clean for qc-check and for qemu-img check; the dirty bit is clear"
run qc-check demo.qcow2
run qemu-img check demo.qcow2
run "qc-dump demo.qcow2 | grep incompatible_features"

step "The data: every acknowledged write reads back; the write in flight reads as before it (zeros)"
run qc-dump --read 1M 128k demo.qcow2
run "qemu-io -r -c 'read -P 0x11 0 64k' -c 'read -P 0x22 1M 128k' -c 'read -P 0x33 32M 64k' -c 'read -P 0 60M 4k' demo.qcow2"

step "crashtest: the same writes, a crash after every prefix of them (and torn writes), each state repaired and verified"
cat > demo.wl <<'EOF'
write -P 0x11 0 64k
write -P 0x22 1M 128k
write -P 0x33 32M 64k
write -P 0x44 60M 4k
EOF
run cat demo.wl
# The per-state lines are trimmed to the first few; the summary's time and
# rate are left out.
crash_trim() {
    awk '/^state / { n++; if (n <= 4) print; else if (n == 5) print "..."; next }
         { sub(/ in [0-9.]+ s, [0-9.]+ states\/s$/, ""); print }'
}
run "crashtest --workload demo.wl -o lazy_refcounts=on -t writethrough --torn | crash_trim"
