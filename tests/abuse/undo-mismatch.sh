#!/bin/bash
# qc-repair --undo writes nothing unless the image is the one the backup
# was made for and still as the repair left it: a backup applied to
# another image, or to one a guest wrote to since the repair (a range the
# repair wrote changed, the file grew), is refused with what differs, and
# the image keeps every byte; --force restores anyway.  A damaged, cut or
# old-format backup is refused.  An undo after an interrupted repair, or
# after an interrupted undo, gives back the original or refuses; it never
# leaves a third state.  A backup of a repair that changed nothing says so.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# same FILE COPY WHAT: FILE is byte for byte COPY
same() { cmp -s "$1" "$2" || fail "$3: $1 differs from $2"; }
# refused BACKUP IMAGE WHAT PATTERN: --undo exits 1, IMAGE keeps every
# byte, and stderr matches PATTERN
refused() {
    cp "$2" before.img
    qc-repair --undo "$1" "$2" >out 2>err; rc=$?
    [ "$rc" = 1 ] || fail "$3: --undo exit $rc, not 1: $(cat out err)"
    same "$2" before.img "$3"
    grep -q -- "$4" err || fail "$3: stderr does not say '$4': $(cat err)"
}

# A dirty lazy-refcount image (the repair rebuilds the refcount structure
# past the old end of the file and rewrites header fields) and an image
# with a leaked cluster (the repair lowers one refcount in place).
fixture ck-lazy lazy.orig
fixture ck-leak leak.orig
repaired() { # NAME: NAME.qcow2 repaired with NAME.bak
    rm -f "$1.bak"
    cp "$1.orig" "$1.qcow2"
    qc-repair --backup "$1.bak" "$1.qcow2" >out 2>err || fail "repair of $1: $(cat out err)"
}

# --- the normal case: byte for byte, then nothing left to do
for n in lazy leak; do
    repaired $n
    qc-repair --undo $n.bak $n.qcow2 >out 2>err || fail "undo of $n: $(cat out err)"
    same $n.qcow2 $n.orig "undo of $n"
    qc-repair --undo $n.bak $n.qcow2 >out 2>err || fail "second undo of $n: $(cat out err)"
    grep -q 'nothing to restore' out || fail "second undo of $n: $(cat out)"
    same $n.qcow2 $n.orig "second undo of $n"
done

# --- another image: a healthy one, and another repaired one
repaired lazy
repaired leak
qemu-img create -q -f qcow2 healthy.qcow2 1M
refused lazy.bak healthy.qcow2 "lazy.bak onto a healthy image" "not the one this backup was made for"
qemu-img check healthy.qcow2 >/dev/null 2>&1 || fail "the healthy image is no longer clean"
refused lazy.bak leak.qcow2 "lazy.bak onto the other repaired image" "not the one this backup was made for"
refused leak.bak lazy.qcow2 "leak.bak onto the other repaired image" "not the one this backup was made for"

# --- the guest wrote after the repair
# into a cluster the repair freed: the new refcount block (a range the
# repair wrote past the old end) changes, the length does not
repaired lazy
len=$(stat -c %s lazy.qcow2)
qemu-io -c 'write -P 7 64k 4k' lazy.qcow2 >/dev/null || fail "qemu-io write"
[ "$(stat -c %s lazy.qcow2)" = "$len" ] || fail "the write grew the file (test premise)"
refused lazy.bak lazy.qcow2 "undo after a write into a repaired range" \
    "range 1 of 4 (offset 0x7000, 4096 bytes, past the old end of the file) no longer holds what the repair wrote"
grep -q 'the image changed since the repair' err || fail "the refusal does not say why: $(cat err)"
# --force restores anyway: the header and the length as before the repair
qc-repair --force --undo lazy.bak lazy.qcow2 >out 2>err || fail "--force --undo exit $?: $(cat out err)"
grep -q 'restoring despite 1 difference' err || fail "--force does not say what it overrides: $(cat err)"
cmp -s -n 4096 lazy.qcow2 lazy.orig || fail "--force: the header cluster is not restored"
[ "$(stat -c %s lazy.qcow2)" = "$(stat -c %s lazy.orig)" ] || fail "--force: the length is not restored"

# a range the repair wrote inside the old file changed (the refcount it
# lowered is now 2: neither the repair's 0 nor the old 1)
repaired leak
poke_be leak.qcow2 0x200e 2 2
refused leak.bak leak.qcow2 "undo after a change to a saved range" \
    "range 1 of 1 (offset 0x200e, 2 bytes) holds neither what the repair wrote there"

# a write that only grows the file (the freed cluster and one at the end)
repaired leak
qemu-io -c 'write -P 7 64k 8k' leak.qcow2 >/dev/null || fail "qemu-io write"
[ "$(stat -c %s leak.qcow2)" -gt "$(stat -c %s leak.orig)" ] || fail "the write did not grow the file (test premise)"
refused leak.bak leak.qcow2 "undo after a write that grew the file" \
    "the image is 36864 bytes long; the repair left it 32768 bytes long"

# a file that only grew: refused; --force gives back the original
repaired leak
truncate -s +64k leak.qcow2
refused leak.bak leak.qcow2 "undo after the file grew" "the repair left it 32768 bytes long"
qc-repair --force --undo leak.bak leak.qcow2 >out 2>err || fail "--force after growth: $(cat out err)"
same leak.qcow2 leak.orig "--force after growth"

# --- damaged, cut and old-format backups
repaired lazy
size=$(stat -c %s lazy.bak)
for cut in 0 8 100 $((size / 2)) $((size - 49)) $((size - 1)); do
    [ "$cut" -lt "$size" ] || continue
    head -c "$cut" lazy.bak >cut.bak
    refused cut.bak lazy.qcow2 "a backup cut to $cut of $size bytes" "backup"
done
for at in 9 40 80 $((size - 60)) $((size - 10)); do
    [ "$at" -lt "$size" ] || continue
    cp lazy.bak flip.bak
    printf '\377' | dd of=flip.bak bs=1 seek="$at" conv=notrunc status=none
    refused flip.bak lazy.qcow2 "a backup with byte $at changed" "damaged backup file"
done
# version 1 (no identity, no state): a well-formed one with no ranges
python3 -c '
import struct, sys, zlib
b = b"QCREPBK1" + struct.pack(">QQ", int(sys.argv[1]), 0)
open("v1.bak", "wb").write(b + struct.pack(">I", zlib.crc32(b)))
' "$(stat -c %s lazy.qcow2)"
refused v1.bak lazy.qcow2 "a version 1 backup" "old format (version 1)"

# --- a repair that changed nothing: its backup says so
fixture ck-clean clean.orig
cp clean.orig clean.qcow2
rm -f clean.bak
qc-repair --backup clean.bak clean.qcow2 >out 2>err || fail "repair of a clean image: $(cat out err)"
qc-repair --undo clean.bak clean.qcow2 >out 2>err || fail "undo of an empty backup: $(cat out err)"
grep -q 'holds no changes' out || fail "an empty backup's undo does not say so: $(cat out)"
same clean.qcow2 clean.orig "undo of an empty backup"

# --- interrupted repairs, then an undo: the original, or a refusal
for n in lazy leak; do
    for torn in "" --torn; do
        for k in 0 1 2 3 4; do
            rm -f $n.bak
            cp $n.orig $n.qcow2
            qc-repair $torn --crash-after $k --backup $n.bak $n.qcow2 >/dev/null 2>&1
            cp $n.qcow2 crashed.img
            qc-repair --undo $n.bak $n.qcow2 >out 2>err; rc=$?
            if [ "$rc" = 0 ]; then
                same $n.qcow2 $n.orig "undo after $n repair $torn --crash-after $k"
            elif [ "$rc" = 1 ]; then
                same $n.qcow2 crashed.img "refused undo after $n repair $torn --crash-after $k"
            else
                fail "undo after $n repair $torn --crash-after $k: exit $rc"
            fi
        done
    done
done
# the interrupted repair is named, and its undo still restores
rm -f lazy.bak
cp lazy.orig lazy.qcow2
qc-repair --crash-after 2 --backup lazy.bak lazy.qcow2 >/dev/null 2>&1
qc-repair --undo lazy.bak lazy.qcow2 >out 2>err || fail "undo after --crash-after 2: $(cat out err)"
grep -q 'did not finish' err || fail "the undo does not say the repair did not finish: $(cat err)"
same lazy.qcow2 lazy.orig "undo after --crash-after 2"

# --- interrupted undos, then the undo again
for k in 0 1 2; do
    repaired lazy
    qc-repair --crash-after $k --undo lazy.bak lazy.qcow2 >/dev/null 2>&1
    qc-repair --undo lazy.bak lazy.qcow2 >out 2>err || fail "undo after an undo --crash-after $k: $(cat out err)"
    same lazy.qcow2 lazy.orig "undo after an undo --crash-after $k"
done
[ $fails -eq 0 ]
