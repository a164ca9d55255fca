# The exact bytes each request changes (offset, before, after; hex), for
# requests that qcow2.py's write commands also make.  Recorded from
# qc-setfeature and checked against qcow2.py (current version): the same
# bytes, except in the requests marked DIFFERS, where qcow2.py is wrong
# (docs/qc-setfeature.1, DIFFERENCES FROM QCOW2.PY).
. "$TESTS/lib.sh"
# changes ORIG NEW: each run of changed bytes; short runs byte by byte,
# long ones as offset, length and the sha256 of the new bytes
changes() {
    cmp -l "$1" "$2" | awk '
        function oct(s,  v, i) { v = 0; for (i = 1; i <= length(s); i++) v = v * 8 + substr(s, i, 1); return v }
        function flush() {
            if (n == 0) return
            if (n <= 8) printf "0x%x  %s-> %s\n", start, old, new
            else printf "0x%x +%d\n", start, n
            n = 0; old = new = ""
        }
        { off = $1 - 1
          if (n && off != start + n) flush()
          if (!n) start = off
          n++; old = old sprintf("%02x ", oct($2)); new = new sprintf("%02x ", oct($3)) }
        END { flush() }' |
    while read -r off rest; do
        case $rest in
        +*) echo "$off $rest bytes, new sha256 $(tail -c +$((off + 1)) "$2" | head -c ${rest#+} | sha256sum | cut -c1-16)" ;;
        *) echo "$off  $rest" ;;
        esac
    done
}
req() {
    local f=$1
    shift
    fixture "$f" work.qcow2
    cp work.qcow2 orig.qcow2
    echo "== $f: $*"
    qc-setfeature --force work.qcow2 "$@" 2>/dev/null </dev/null
    echo "rc=$?"
    changes orig.qcow2 work.qcow2
}
# set-feature-bit
req v3 autoclear:63
req v3 compatible:0
req v3 incompatible:63
req lazy incompatible:0
req zstd autoclear:1
# set-header
req v3 --set-header size=0x200000
req v3 --set-header l1_table_offset=0x40000
req v3 --set-header refcount_order=3
# DIFFERS: qcow2.py writes header_length - 1 = 103 bytes of the header, so
# the low byte of header_length stays 0x70 while the extensions move to 104
req v3 --set-header header_length=104
req backing --set-header backing_file_size=4
req v2 --set-header l1_size=5
# DIFFERS: qcow2.py never writes byte 71 of a version 2 header
req v2 --set-header snapshot_offset=0x50001
# (qcow2.py writes header_length - 1 bytes of the new length: all of them)
req hl104 --set-header header_length=112
# DIFFERS: qcow2.py leaves the old feature table header at 0x70..0x77 as
# header bytes 112..119
req v3 --set-header header_length=120
# add-header-ext
req c4k --add-ext 0x12345678=hello
req unknown-ext --add-ext 0xe2792aca=raw
req backing --add-ext 0x99=abcdefgh
req v2-backing --add-ext 0x1234=x
# del-header-ext
# nothing to delete: nothing written (qcow2.py: 'No such header extension')
req backing --del-ext 0x99
# DIFFERS: qcow2.py leaves the old bytes after the new end marker
req unknown-ext --del-ext 0x12345678
# DIFFERS: the same, and the backing file name's old copy
req backing --del-ext 0xe2792aca
# DIFFERS: qcow2.py stops with a TypeError on an image with bitmaps
req bitmaps lazy_refcounts
