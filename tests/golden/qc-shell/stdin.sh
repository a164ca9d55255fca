# Without -c and with standard input not a terminal: one command per line,
# no prompt, no history file.
. "$TESTS/golden/qc-shell/same.bash"
fixture ck-leak
export HOME=$TEST_DIR/home
mkdir -p "$HOME"
printf 'hexdump 0 16\n\nguest 0\ncheck -q\n' | qc-shell ck-leak.qcow2 2>&1; echo "exit $?"
printf 'hexdump 0 4\nquit\nhexdump 0 16\n' | qc-shell ck-leak.qcow2 2>&1; echo "exit $?"
printf 'hexdump 0 4' | qc-shell ck-leak.qcow2 2>&1; echo "exit $?"
qc-shell ck-leak.qcow2 </dev/null; echo "exit $?"
ls -A "$HOME"
