# Usage errors (exit 64), a file that is not qcow2 (exit 63), a missing
# file, the version line.
. "$TESTS/golden/qc-write/filter.bash"
qcw
qcw -t fast img.qcow2
qcw --bogus img.qcow2
qcw -f raw img.qcow2
qcw a.qcow2 b.qcow2
qcw -c
printf 'not a qcow2 image' > text.img
qcw text.img -c flush
qcw missing.qcow2 -c flush
qc-write --version | sed 's/[0-9][0-9.]*/VERSION/'
qc-write --help | head -3
