#!/bin/bash
# Files named by an untrusted header: the backing file and the external
# data file are opened by default only when the name is relative, has no
# "..", and resolves to a regular file inside the image's own directory.
# Absolute names, "..", symlinks leading out, FIFOs are refused (nothing of
# the named file is read or copied), with a message saying how to allow it;
# --allow FILE and --follow-header allow it.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

mkdir -p outside img
cd img
Q="qemu-img create -q -f qcow2"
$Q -o data_file="$TEST_DIR/outside/secret.data",data_file_raw=on abs.qcow2 1M
$Q -o data_file=../outside/secret.data,data_file_raw=on dotdot.qcow2 1M
ln -s ../outside/secret.data link.data
$Q -o data_file=link.data,data_file_raw=on link.qcow2 1M
$Q -o data_file=fifo.data,data_file_raw=on fifo.qcow2 1M
rm fifo.data; mkfifo fifo.data
$Q -o data_file=own.data,data_file_raw=on own.qcow2 1M
$Q -b "$TEST_DIR/outside/secret.data" -F raw back.qcow2 1M
ln -s ../outside/secret.data link.raw
$Q -b link.raw -F raw backlink.qcow2 1M
# the secret goes in last: every create above truncated the data file
printf 'SECRET-SECRET-SECRET' | dd of=../outside/secret.data conv=notrunc status=none
printf 'OWNDATA-OWNDATA' | dd of=own.data conv=notrunc status=none

leaks() { grep -qa 'SECRET' "$@" 2>/dev/null; }

refused() { # LABEL -- command...
    local label=$1 rc
    shift
    rm -f out.raw
    timeout 20 "$@" >out 2>err; rc=$?
    [ $rc = 0 ] && fail "$label: exit 0"
    [ $rc = 124 ] && fail "$label: hung"
    leaks out err out.raw && fail "$label: the named file's bytes came out"
    grep -q "not following the .* named by the header" err ||
        fail "$label: the refusal does not say what the header names: $(head -c 300 err)"
    grep -q -- "--allow .* or --follow-header" err || fail "$label: the refusal does not say how to allow it"
}

for img in abs dotdot link fifo back backlink; do
    refused "$img: qc-dump --read" qc-dump --backing --read 0 64 $img.qcow2
    refused "$img: qc-dump --raw" qc-dump --raw out.raw $img.qcow2
    refused "$img: qc-dump --map" qc-dump --map $img.qcow2
    refused "$img: qc-check" qc-check $img.qcow2
    refused "$img: qc-check --output=json" qc-check --output=json $img.qcow2
done
cp back.qcow2 w.qcow2
refused "back: qc-write" qc-write w.qcow2 -c 'read -v 0 64'
cp backlink.qcow2 w.qcow2
refused "backlink: qc-write" qc-write w.qcow2 -c 'read -v 0 64'

# A file inside the image's directory, named relatively, is followed.
qc-dump --read 0 64 own.qcow2 >out 2>err || fail "own data file: $(cat err)"
grep -q 'OWNDATA' out || fail "own data file: its bytes were not read"

# What the user allows is followed, and reads what qemu-img reads.
qemu-img convert -O raw abs.qcow2 q.raw
qc-dump --allow ../outside/secret.data --raw out.raw abs.qcow2 2>err || fail "--allow: $(cat err)"
cmp -s q.raw out.raw || fail "--allow: the raw copy differs from qemu-img convert's"
qc-dump --follow-header --read 0 64 dotdot.qcow2 >out 2>err || fail "--follow-header: $(cat err)"
leaks out || fail "--follow-header: the data file was not read"
qc-check --allow "$TEST_DIR/outside/secret.data" back.qcow2 >out 2>err || fail "qc-check --allow: $(cat err)"
cp back.qcow2 w.qcow2
qc-write --follow-header w.qcow2 -c 'read -v 0 64' >out 2>err || fail "qc-write --follow-header: $(cat err)"
leaks out || fail "qc-write --follow-header: the backing file was not read"
# --allow names a file, not a path string: a link to it allows it too
ln -s ../outside/secret.data other-name
qc-dump --allow other-name --read 0 64 link.qcow2 >out 2>err || fail "--allow through another name: $(cat err)"
[ $fails -eq 0 ]
