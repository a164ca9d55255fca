#!/bin/bash
# qc-qcow2py in place of qemu-iotests' qcow2.py: every command, run with both
# on copies of the same image, must give the same stdout, stderr (the
# program name in usage lines normalised; of a Python traceback the first
# and the last line, since the frame lines name the script's own source),
# exit status and resulting image bytes.
#
# qcow2.py and qcow2_format.py come from $QCOW2PY_DIR when set, else from
# QEMU's Debian source package when `apt-get source` works here.  Without
# them the dumps are still compared with the qcow2.py outputs the shared
# conformance corpus stores (dump-header, -j, dump-header-exts); with
# neither the test is skipped.
. "$TESTS/lib.sh"
cd "$TEST_DIR"

find_conformance() {
    local d
    for d in "${CONFORMANCE:-}" "$TESTS/../../shared/conformance" \
             "$TESTS/../../../shared/conformance"; do
        [ -n "$d" ] && [ -d "$d/corpus" ] && [ -d "$d/expected" ] && { echo "$d"; return 0; }
    done
    return 1
}

# The two scripts from QEMU's source package, into ./qemu-py.
fetch_qcow2py() {
    local tarball
    command -v apt-get >/dev/null || return 1
    mkdir -p src qemu-py
    (cd src && apt-get source -qq --download-only qemu >/dev/null 2>&1) || return 1
    tarball=$(ls src/qemu_*.orig.tar.* 2>/dev/null | head -1)
    [ -n "$tarball" ] || return 1
    tar -xf "$tarball" -C src --wildcards '*/tests/qemu-iotests/qcow2.py' \
        '*/tests/qemu-iotests/qcow2_format.py' 2>/dev/null || return 1
    cp src/*/tests/qemu-iotests/qcow2.py src/*/tests/qemu-iotests/qcow2_format.py qemu-py/
}

PY=""
if command -v python3 >/dev/null; then
    if [ -n "${QCOW2PY_DIR:-}" ] && [ -f "$QCOW2PY_DIR/qcow2.py" ]; then
        PY=$QCOW2PY_DIR/qcow2.py
    elif fetch_qcow2py; then
        PY=$PWD/qemu-py/qcow2.py
    fi
fi
CONF=$(find_conformance) || CONF=""
if [ -z "$PY" ] && [ -z "$CONF" ]; then
    echo "neither qcow2.py (QCOW2PY_DIR, apt-get source) nor the conformance corpus"
    exit 77
fi

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "DIFF: $*"; }

# stderr as compared: a traceback keeps its first and last line
norm_err() {
    if head -1 "$1" | grep -q '^Traceback'; then
        { head -1 "$1"; tail -1 "$1"; } | sed "s|$2|PROG|g"
    else
        sed "s|$2|PROG|g" "$1"
    fi
}

# same IMG [STDIN] -- ARGS...: run ARGS on copies of IMG with both tools
same() {
    local img=$1 in=$2; shift 3
    local a=() b=() x
    for x in "$@"; do a+=("${x//@IMG@/py.img}"); b+=("${x//@IMG@/qc.img}"); done
    cp "$img" py.img; cp "$img" qc.img
    python3 "$PY" "${a[@]}" < "$in" > py.out 2> py.err; echo $? > py.rc
    qc-qcow2py "${b[@]}" < "$in" > qc.out 2> qc.err; echo $? > qc.rc
    sed -i "s|$PY|PROG|g; s|py\.img|IMG|g" py.out
    sed -i "s|qc-qcow2py|PROG|g; s|$(command -v qc-qcow2py)|PROG|g; s|qc\.img|IMG|g" qc.out
    norm_err py.err "$PY" | sed 's|py\.img|IMG|g' > py.e
    norm_err qc.err qc-qcow2py | sed 's|qc\.img|IMG|g' > qc.e
    if ! cmp -s py.out qc.out; then bad "$img $*: stdout"; diff py.out qc.out | head -10
    elif ! cmp -s py.e qc.e; then bad "$img $*: stderr"; diff py.e qc.e | head -10
    elif ! cmp -s py.rc qc.rc; then bad "$img $*: exit $(cat py.rc) vs $(cat qc.rc)"
    elif [ -f py.img ] && ! cmp -s py.img qc.img; then bad "$img $*: image bytes"; cmp py.img qc.img | head -3
    else ok; fi
}

# every command on IMG
all_commands() {
    local img=$1 v
    for v in "dump-header" "dump-header -j" "-j dump-header" "dump-header-exts" \
             "dump-header-exts -j" "dump-header extra" "frobnicate"; do
        # shellcheck disable=SC2086
        same "$img" /dev/null -- @IMG@ $v
    done
    for v in "version 2" "version 0x3" "size 1_0000" "header_length 104" \
             "header_length 120" "header_length 0" "header_length 1" "refcount_order 7" \
             "incompatible_features 0xffffffffffffffff" "magic -1" "size -1" \
             "cluster_bits 0x100000000" "size 0x10000000000000000" "nosuch 1" "size x" \
             "size 010" "snapshots_offset 0" "backing_file_offset 0x200"; do
        # shellcheck disable=SC2086
        same "$img" /dev/null -- @IMG@ set-header $v
    done
    same "$img" /dev/null -- @IMG@ add-header-ext 0x12345678 "hello world"
    same "$img" /dev/null -- @IMG@ add-header-ext 0x1 ""
    same "$img" /dev/null -- @IMG@ add-header-ext 0x100000000 data
    same "$img" /dev/null -- @IMG@ add-header-ext -5 data
    same "$img" /dev/null -- @IMG@ add-header-ext zz data
    same "$img" /dev/null -- @IMG@ add-header-ext 0x1 "caf$(printf '\xc3\xa9')s"
    same "$img" /dev/null -- @IMG@ add-header-ext 0x1 "$(head -c 70000 /dev/zero | tr '\0' x)"
    printf 'line one\r\nline two\rend' > stdin.txt
    same "$img" stdin.txt -- @IMG@ add-header-ext-stdio 0x2
    same "$img" /dev/null -- @IMG@ add-header-ext-stdio 0x2
    printf 'caf\xc3\xa9 \xff' > stdin.txt
    same "$img" stdin.txt -- @IMG@ add-header-ext-stdio 0x3
    for v in 0x6803f857 0x23852875 0xe2792aca 0x44415441 0x12345678 0 junk; do
        same "$img" /dev/null -- @IMG@ del-header-ext $v
    done
    for v in "incompatible 0" "compatible 0" "autoclear 63" "incompatible 0x3f" \
             "autoclear 64" "autoclear -1" "autoclear x" "other 1" "incompatible"; do
        # shellcheck disable=SC2086
        same "$img" /dev/null -- @IMG@ set-feature-bit $v
    done
}

if [ -n "$PY" ]; then
    images=()
    for f in v3 v2 bitmaps backing extl2 hl104 dirty lazy c512 datafile; do
        [ -f "$FIXTURES/$f.qcow2.gz" ] || continue
        fixture "$f" "fx-$f.qcow2"
        images+=("fx-$f.qcow2")
    done
    if have_qemu; then
        qemu-img create -q -f qcow2 -o compat=0.10 q-v2.qcow2 64M
        qemu-img create -q -f qcow2 -o cluster_size=512 q-c512.qcow2 1M
        qemu-img create -q -f qcow2 q-bm.qcow2 64M
        qemu-img bitmap --add q-bm.qcow2 b0
        qemu-img bitmap --add -g 65536 q-bm.qcow2 b1
        qemu-io -c 'write -P 7 2M 64k' q-bm.qcow2 >/dev/null
        qemu-img bitmap --disable q-bm.qcow2 b1
        qemu-img create -q -f qcow2 q-base.qcow2 64M
        qemu-img create -q -f qcow2 -b q-base.qcow2 -F qcow2 q-back.qcow2 64M
        qemu-img create -q -f qcow2 -o data_file=q-df.data q-df.qcow2 64M
        qemu-img create -q -f qcow2 -o compression_type=zstd,extended_l2=on q-zstd.qcow2 64M
        images+=(q-v2.qcow2 q-c512.qcow2 q-bm.qcow2 q-back.qcow2 q-df.qcow2 q-zstd.qcow2)
    fi
    for img in "${images[@]}"; do all_commands "$img"; done
    # damaged and odd files
    head -c 50 "${images[0]}" > short.img; all_commands short.img
    head -c 300 "${images[0]}" > cut.img; all_commands cut.img
    printf 'not an image at all, but long enough to hold a 104-byte header: %s' \
        "$(head -c 100 /dev/zero | tr '\0' .)" > text.img
    all_commands text.img
    if [ -f fx-bitmaps.qcow2 ]; then
        # a bitmap name that is not ASCII; a directory past the end of the file
        cp fx-bitmaps.qcow2 bm-name.img
        poke bm-name.img $((0xc0000 + 24 + 2)) "c3 a9"
        all_commands bm-name.img
        cp fx-bitmaps.qcow2 bm-dir.img
        truncate -s $((0xc0000 + 30)) bm-dir.img
        all_commands bm-dir.img
    fi
    # an extension running past the end of the file; a huge header_length
    cp "${images[0]}" ext-eof.img
    poke_be ext-eof.img $(( $(peek_be ext-eof.img 100 4) + 4 )) 4 0x10000
    truncate -s 400 ext-eof.img
    all_commands ext-eof.img
    cp "${images[0]}" hl-big.img
    poke_be hl-big.img 100 4 0xfffffff0
    all_commands hl-big.img
    # command line
    same "${images[0]}" /dev/null --
    same "${images[0]}" /dev/null -- @IMG@
    same "${images[0]}" /dev/null -- @IMG@ -j
    same "${images[0]}" /dev/null -- nosuch.img dump-header
    same "${images[0]}" /dev/null -- . dump-header
    same "${images[0]}" /dev/null -- @IMG@ set-header size
    same "${images[0]}" /dev/null -- @IMG@ -j -j dump-header
fi

# Without the scripts: the dumps against the corpus' stored qcow2.py outputs.
if [ -n "$CONF" ]; then
    while read -r name _; do
        case $name in '#'*|'') continue ;; esac
        zcat "$CONF/corpus/$name.qcow2.gz" > c.img
        for v in "dump-header:dump" "dump-header -j:dump-j" "dump-header-exts:exts"; do
            # shellcheck disable=SC2086
            qc-qcow2py c.img ${v%%:*} > c.out 2>/dev/null; rc=$?
            exp=$CONF/expected/$name.${v#*:}
            [ -f "$exp.out" ] || continue
            if cmp -s c.out "$exp.out" && [ "$rc" = "$(cat "$exp.rc" 2>/dev/null || echo 0)" ]; then
                ok
            else
                bad "corpus $name ${v%%:*}"
            fi
        done
    done < "$CONF/cases.tsv"
fi

echo "qcow2py-dropin: $pass identical, $fail different${PY:+ (against $PY)}"
[ "$fail" = 0 ]
