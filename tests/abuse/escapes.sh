#!/bin/bash
# Escape sequences in names from the image never reach the terminal: a
# snapshot name and id, a feature-table name, a backing file name, a data
# file name and a bitmap name holding ESC, BEL, CSI and other bytes are
# printed as \xNN by every text view and message, JSON stays JSON (control
# characters as \u00XX), the qcow2.py views print what qcow2.py prints, and
# QEMU's messages stay QEMU's for a printable name.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# ESC ] 0 ; X BEL ESC [ 2 J: sets the window title, clears the screen
HOSTILE="1b 5d 30 3b 58 07 1b 5b 32 4a"
HOSTILE_ESC='\x1b]0;X\x07\x1b[2J'
# ESC [ 3 1 m BEL, a lone CSI (0x9b), a backslash, 0xff
FEATURE="1b 5b 33 31 6d 07 9b 5c ff"
FEATURE_ESC='\x1b[31m\x07\x9b\\\xff'
# the same in a line of QEMU's words, where a backslash stays single
FEATURE_MSG='\x1b[31m\x07\x9b\\xff'

# offset of the first occurrence of MARK in FILE
find_mark() { grep -obUa -- "$2" "$1" | head -1 | cut -d: -f1; }
# replace MARK (same length as the bytes) by HEX
poke_mark() {
    local off
    off=$(find_mark "$1" "$2")
    [ -n "$off" ] || { fail "no $2 in $1"; return; }
    poke "$1" "$off" "$3"
}

# Text output: nothing but printable ASCII, newline and tab.
text_clean() {
    if LC_ALL=C grep -qaP '[\x00-\x08\x0b-\x1f\x7f-\xff]' "$2"; then
        fail "$1: raw control or non-ASCII bytes: $(LC_ALL=C grep -aP '[\x00-\x08\x0b-\x1f\x7f-\xff]' "$2" | head -3 | cat -v)"
    fi
}
# JSON output: parses, no C0 control but newline, no DEL, no C1 control.
json_clean() {
    python3 -m json.tool "$2" >/dev/null 2>&1 || fail "$1: not JSON: $(head -c 300 "$2" | cat -v)"
    if LC_ALL=C grep -qaP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$2"; then
        fail "$1: raw control bytes in JSON"
    fi
}
has() { grep -qaF -- "$3" "$2" || fail "$1: no '$3' in: $(head -c 400 "$2" | cat -v)"; }

# qcow2-looking text views; LABEL, then the command
view() {
    local label=$1; shift
    "$@" >out 2>&1
    text_clean "$label" out
}

# --- s.qcow2: snapshot, bitmap and feature table ---------------------------
qemu-img create -q -f qcow2 s.qcow2 1M
qemu-io -c 'write -P 1 0 64k' s.qcow2 >/dev/null
qemu-img snapshot -c SNAPNAMEXX s.qcow2
qemu-img bitmap --add s.qcow2 BMAPNAMEXX
cp s.qcow2 s0.qcow2
poke_mark s.qcow2 SNAPNAMEXX "$HOSTILE"
poke_mark s.qcow2 BMAPNAMEXX "$HOSTILE"
poke_mark s.qcow2 "dirty bit" "$FEATURE"
st=$(peek_be s.qcow2 64 8)
ex=$(peek_be s.qcow2 $((st + 36)) 4)
poke s.qcow2 $((st + 40 + ex)) "1b"     # snapshot id "1" becomes ESC

view "qc-dump --hex" qc-dump --hex s.qcow2
has "qc-dump --hex" out "$FEATURE_ESC"
view "qc-dump --features" qc-dump --features s.qcow2
has "qc-dump --features" out "$FEATURE_ESC"
view "qc-dump --snapshots" qc-dump --snapshots s.qcow2
has "qc-dump --snapshots" out "name               $HOSTILE_ESC"
has "qc-dump --snapshots" out 'id                 \x1b'
view "qc-dump --bitmaps" qc-dump --bitmaps s.qcow2
has "qc-dump --bitmaps" out "Bitmap 0 '$HOSTILE_ESC'"
view "qc-setfeature --list" qc-setfeature --list s.qcow2
has "qc-setfeature --list" out "$FEATURE_ESC"
view "qc-check" qc-check s.qcow2
view "qc-repair --dry-run" qc-repair --dry-run s.qcow2
printf 'snapshots\nbitmaps\nfeatures\nhex\nheader --hex\ncheck\n' | qc-shell s.qcow2 >out 2>&1
text_clean "qc-shell" out
has "qc-shell" out "$HOSTILE_ESC"
has "qc-shell" out "$FEATURE_ESC"

qc-dump --json s.qcow2 >out 2>&1; json_clean "qc-dump --json" out
has "qc-dump --json" out '\u001b[31m\u0007'
qc-dump --snapshots --json s.qcow2 >out 2>&1; json_clean "qc-dump --snapshots --json" out
has "qc-dump --snapshots --json" out '"name": "\u001b]0;X\u0007\u001b[2J"'
qc-dump --bitmaps --json s.qcow2 >out 2>&1; json_clean "qc-dump --bitmaps --json" out
qc-check --output=json s.qcow2 >out 2>/dev/null; json_clean "qc-check --output=json" out
qc-repair --dry-run --output=json s.qcow2 >out 2>/dev/null; json_clean "qc-repair --dry-run --output=json" out

# qcow2.py prints a bitmap name as the str it decoded, bytes as they are:
# the qcow2.py views keep that (and are otherwise what the clean image gives).
for v in "" --exts; do
    qc-dump $v s0.qcow2 | sed "s/BMAPNAMEXX/$(printf '\x1b]0;X\x07\x1b[2J')/" >expect
    qc-dump $v s.qcow2 >got
    cmp -s expect got || fail "qc-dump $v: not qcow2.py's output: $(diff expect got | head -5 | cat -v)"
done
qc-dump --legacy s0.qcow2 >expect
qc-dump --legacy s.qcow2 >got
cmp -s expect got || fail "qc-dump --legacy: changed: $(diff expect got | head -5 | cat -v)"

# A snapshot whose L1 table is not aligned: QEMU's check line names it.
cp s.qcow2 sl.qcow2
l1=$(peek_be sl.qcow2 "$st" 8)
poke_be sl.qcow2 "$st" 8 $((l1 + 512))
view "qc-check (snapshot line)" qc-check sl.qcow2
has "qc-check (snapshot line)" out "ERROR snapshot \\x1b ($HOSTILE_ESC) l1_offset="
view "qc-repair --dry-run (snapshot line)" qc-repair --dry-run sl.qcow2
qc-check --output=json sl.qcow2 >out 2>/dev/null; json_clean "qc-check --output=json (snapshot line)" out

# --- f.qcow2: an unknown incompatible feature named by the table ----------
qemu-img create -q -f qcow2 f.qcow2 1M
off=$(find_mark f.qcow2 "dirty bit")
poke f.qcow2 $((off - 2)) "00 07 $FEATURE"          # incompatible bit 7
poke_be f.qcow2 72 8 $((1 << 7))
view "qc-check (unsupported feature)" qc-check f.qcow2
has "qc-check (unsupported feature)" out "Unsupported qcow2 feature(s): $FEATURE_MSG"
view "qc-dump --map (unsupported feature)" qc-dump --map f.qcow2
view "qc-dump (warnings)" qc-dump --hex f.qcow2
view "qc-write (unsupported feature)" qc-write f.qcow2 -c 'read 0 512'
has "qc-write (unsupported feature)" out "$FEATURE_MSG"
view "qc-setfeature (unsupported feature)" qc-setfeature --dry-run f.qcow2 lazy_refcounts
qc-check --output=json f.qcow2 >out 2>/dev/null; json_clean "qc-check --output=json (feature)" out

# --- b.qcow2: a backing file name ------------------------------------------
qemu-img create -q -f qcow2 BACKINGXXX.qcow2 1M
qemu-img create -q -f qcow2 -F qcow2 -b BACKINGXXX.qcow2 b.qcow2 1M
poke_mark b.qcow2 BACKINGXXX.qcow2 "$HOSTILE 2e 71 63 6f 77 32"
view "qc-dump --hex (backing)" qc-dump --hex b.qcow2
has "qc-dump --hex (backing)" out "'$HOSTILE_ESC.qcow2'"
view "qc-dump --map (backing)" qc-dump --map b.qcow2
has "qc-dump --map (backing)" out "Could not open '$HOSTILE_ESC.qcow2'"
view "qc-dump --read --backing" qc-dump --backing --read 0 512 b.qcow2
view "qc-check (backing)" qc-check b.qcow2
has "qc-check (backing)" out "Could not open backing file: Could not open '$HOSTILE_ESC.qcow2'"
view "qc-repair --dry-run (backing)" qc-repair --dry-run b.qcow2
view "qc-write (backing)" qc-write b.qcow2 -c 'read 0 512'
has "qc-write (backing)" out "Could not open '$HOSTILE_ESC.qcow2'"
printf 'map\nread --backing 0 512\ncheck\n' | qc-shell b.qcow2 >out 2>&1
text_clean "qc-shell (backing)" out
qc-dump --json b.qcow2 >out 2>&1; json_clean "qc-dump --json (backing)" out
qc-check --output=json b.qcow2 >out 2>/dev/null; json_clean "qc-check --output=json (backing)" out
has "qc-check --output=json (backing)" out 'Could not open '"'"'\u001b]0;X\u0007\u001b[2J.qcow2'"'"

# A printable name with a backslash: QEMU's line, byte for byte.
qemu-img create -q -f qcow2 -F qcow2 -b 'no\where.qcow2' -u p.qcow2 1M
qc-check p.qcow2 >ours 2>&1
qemu-img check p.qcow2 >theirs 2>&1
cmp -s ours theirs || fail "qc-check on a printable backing name differs from qemu-img: $(diff theirs ours | head -5)"

# --- d.qcow2: a data file name ---------------------------------------------
qemu-img create -q -f qcow2 -o data_file=DATAFILEXXX.raw d.qcow2 1M
poke_mark d.qcow2 DATAFILEXXX.raw "$HOSTILE 2e 72 61 77 9b"
view "qc-dump --hex (data file)" qc-dump --hex d.qcow2
view "qc-dump --map (data file)" qc-dump --map d.qcow2
has "qc-dump --map (data file)" out "Could not open '$HOSTILE_ESC.raw\\x9b'"
view "qc-check (data file)" qc-check d.qcow2
has "qc-check (data file)" out "Could not open '$HOSTILE_ESC.raw\\x9b'"
view "qc-repair --dry-run (data file)" qc-repair --dry-run d.qcow2
qc-dump --json d.qcow2 >out 2>&1; json_clean "qc-dump --json (data file)" out
qc-check --output=json d.qcow2 >out 2>/dev/null; json_clean "qc-check --output=json (data file)" out
printf 'header --hex\nmap\n' | qc-shell d.qcow2 >out 2>&1
text_clean "qc-shell (data file)" out

# Strings from the command line (a file name in a hostile directory, a
# piped command) are escaped as well.
ESCNAME=$(printf 'e\033[2J\033]0;T\007.qcow2')
cp d.qcow2 "$ESCNAME" 2>/dev/null || cp "$(ls *.qcow2 | head -1)" "$ESCNAME"
qc-dump --l2 "$(printf '\033[2J')" "$ESCNAME" >out 2>&1; text_clean "qc-dump, a bad --l2 argument" out
qc-dump --hexdump 0 16 "$(printf 'missing\033[2J')" >out 2>&1; text_clean "qc-dump, a missing image" out
qc-repair --dry-run "$ESCNAME" >out 2>&1; text_clean "qc-repair --dry-run, an escaped name" out
qc-setfeature "$ESCNAME" "$(printf 'zz\033[2J')" >out 2>&1; text_clean "qc-setfeature, a bad feature" out
qc-write "$(printf 'missing\033[2J')" -c 'read 0 1' >out 2>&1; text_clean "qc-write, a missing image" out
qc-check "$(printf 'missing\033[2J')" >out 2>&1; text_clean "qc-check, a missing image" out

[ $fails -eq 0 ]
