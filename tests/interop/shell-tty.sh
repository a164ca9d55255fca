# qc-shell at a real terminal (tmux): the prompt, TAB completion of a
# command, an option, a feature name, a header field and an extension name,
# a -w edit, quit, the history saved in $HOME/.qc_history and read back by
# the next session.
. "$TESTS/lib.sh"
command -v tmux >/dev/null 2>&1 || { echo "tmux not installed"; exit 77; }
set -u
fixture v3
export HOME=$TEST_DIR/home
mkdir -p "$HOME"
T() { tmux -S "$TEST_DIR/tmux.sock" "$@"; }
trap 'T kill-server 2>/dev/null' EXIT
fail() { echo "FAIL: $*"; echo "--- pane:"; T capture-pane -p -t qc; echo "--- stderr:"; cat "$TEST_DIR"/stderr.* 2>/dev/null; exit 1; }

# wait_for REGEX: poll the pane until a line matches (30 s at most); the
# pane's lines come without trailing blanks
wait_for() {
    local i
    for i in $(seq 600); do
        T capture-pane -p -t qc | grep -Eq -- "$1" && return 0
        sleep 0.05
    done
    fail "timed out waiting for /$1/"
}

# session N: qc-shell -w in a fresh tmux window; its stderr goes to a file
# (sanitizer reports included), its exit status shows in the pane
session() {
    T new-session -d -s qc -x 160 -y 50 \
        "cd '$TEST_DIR' && '$QC_BIN/qc-shell' -w v3.qcow2 2>stderr.$1; echo EXITED \$?; sleep 60"
    wait_for '^qc-shell>$'
}

session 1
# a command name, then an option: each completion ends with a space
T send-keys -t qc 'hea' Tab '--leg' Tab
wait_for '^qc-shell> header --legacy$'
T send-keys -t qc Enter
wait_for '^incompatible_features +0x0$'
# a feature name (also the image's feature-table names as GROUP:BIT)
T send-keys -t qc 'set lazy_r' Tab Enter
wait_for '^qc-shell> set lazy_refcounts$'
T send-keys -t qc 'list' Enter
wait_for '^lazy_refcounts +compatible:0 +set +lazy refcounts$'
# a header field: completes to "size=" with no space after it
T send-keys -t qc 'set-header si' Tab '2M' Enter
wait_for '^qc-shell> set-header size=2M$'
# an extension name
T send-keys -t qc 'del-ext --dry-run feature_t' Tab Enter
wait_for '^qc-shell> del-ext --dry-run feature_table$'
wait_for '^dry run: nothing written$'
T send-keys -t qc 'quit' Enter
wait_for '^EXITED 0$'
T kill-server

# what the session did to the image
qc-setfeature --list v3.qcow2 | grep -Eq '^lazy_refcounts +compatible:0 +set' || fail "lazy_refcounts not set"
qc-dump v3.qcow2 | grep -Eq '^size +2097152$' || fail "size not set"
qc-dump --exts v3.qcow2 | grep -q 'Feature table' || fail "--dry-run deleted an extension"

# the history file holds the lines as run (a completed word ends in a blank)
printf '%s\n' 'header --legacy ' 'set lazy_refcounts ' 'list' 'set-header size=2M' \
    'del-ext --dry-run feature_table ' 'quit' > expected.history
diff expected.history "$HOME/.qc_history" || fail "history file"

# the next session reads it back: Up recalls the last lines
session 2
T send-keys -t qc Up Up
wait_for '^qc-shell> del-ext --dry-run feature_table$'
T send-keys -t qc C-u 'quit' Enter
wait_for '^EXITED 0$'
T kill-server
[ "$(tail -1 "$HOME/.qc_history")" = quit ] || fail "history after the second session"
cat stderr.1 stderr.2
[ ! -s stderr.1 ] && [ ! -s stderr.2 ] || fail "messages on stderr"
echo "ok"
