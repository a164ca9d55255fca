#!/bin/bash
# Every qc-dump view takes time and memory bounded by the file, not by the
# counts its fields claim.  Three images made with qemu-img and poked:
#   big: an unmodified 2 MiB-cluster image (a refcount block of 1M entries,
#        nearly all zero);
#   l1:  65,536 L1 entries that all name one L2 table;
#   rt:  131,072 refcount-table entries that all name one refcount block;
# plus claims past the end of the file (an L2 table, the reftable, 2^32-1
# snapshots, 2^32-1 bitmaps), two bitmaps sharing a table, every fixture and
# every image of the conformance corpus.  Each view, text and --json, runs under a
# 256 MiB address-space limit and a 5 s timeout (sanitizer builds: no limit,
# ASan reserves far more, and 30 s); it must finish, its JSON must parse, a table
# named many times must be printed once, and the folded and --unfold
# entries must equal the values read from the file independently.
. "$TESTS/lib.sh"
skip_without_qemu
cd "$TEST_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
CONFORMANCE=${CONFORMANCE:-/work/shared/conformance}

# sanitizer builds: no address-space limit, and six times slower
limit_kb=262144 secs=5
if [ -n "${SANITIZED:-}" ] || grep -qa __asan_init "$QC_BIN/qc-dump"; then
    limit_kb=unlimited secs=30
fi

# run NAME ARGS...: qc-dump ARGS under the limits, output in NAME.out/.err,
# exit status in last_rc
nruns=0 last_rc=0
run() {
    local name=$1 rc
    shift
    (ulimit -v "$limit_kb"; exec timeout "$secs" qc-dump "$@") >"$name.out" 2>"$name.err"
    rc=$?
    last_rc=$rc
    nruns=$((nruns + 1))
    if [ $rc -ge 124 ]; then
        fail "qc-dump $* exit $rc (timeout or signal): $(tail -2 "$name.err")"
        return 1
    fi
    return 0
}

# keep_json OUT DEST VIEW: OUT is to be parsed, unless nothing was printed
# or VIEW is --map alone and failed (qemu-img map's JSON stops where it
# failed, and so does ours)
keep_json() {
    [ -s "$1" ] || return 0
    [ "$3" = --map ] && [ "$last_rc" != 0 ] && return 0
    cp "$1" "$2"
}

# COUNT big-endian copies of the 8-byte VALUE (COUNT a power of two) in FILE
repeat_u64() {
    local f=$1 n=1
    : >"$f"; truncate -s 8 "$f"; poke_be "$f" 0 8 "$2"
    while [ "$n" -lt "$3" ]; do cat "$f" "$f" >"$f.t"; mv "$f.t" "$f"; n=$((n * 2)); done
}

# --- the three images --------------------------------------------------------
qemu-img create -q -f qcow2 -o cluster_size=2M big.qcow2 4M

qemu-img create -q -f qcow2 l1.qcow2 32T
qemu-io -c 'write -P 0x11 0 64k' l1.qcow2 >/dev/null
l1_off=$(peek_be l1.qcow2 40 8)
l1_entry=$(peek_be l1.qcow2 "$l1_off" 8)
repeat_u64 l1.bin "$l1_entry" 65536
dd if=l1.bin of=l1.qcow2 bs=64k seek=$((l1_off / 65536)) conv=notrunc status=none
l2_off=$((l1_entry & 0x00fffffffffffe00))

qemu-img create -q -f qcow2 rt.qcow2 1G
rt_old=$(peek_be rt.qcow2 48 8)
rb_off=$(peek_be rt.qcow2 "$rt_old" 8)
repeat_u64 rt.bin "$rb_off" 131072
dd if=rt.bin of=rt.qcow2 bs=64k seek=4 conv=notrunc status=none
poke_be rt.qcow2 48 8 $((4 * 65536))
poke_be rt.qcow2 56 4 16

# claims past the end of the file
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -c 'write -P 0x22 0 128k' base.qcow2 >/dev/null
cp base.qcow2 l2eof.qcow2
poke_be l2eof.qcow2 "$(peek_be base.qcow2 40 8)" 8 $((1 << 40))
cp base.qcow2 rteof.qcow2
poke_be rteof.qcow2 56 4 120
cp base.qcow2 snaps.qcow2
poke_be snaps.qcow2 60 4 $((0xffffffff))
poke_be snaps.qcow2 64 8 65536

# bitmaps: two bitmaps naming one table; a directory claiming 2^32-1
# bitmaps and QEMU's largest size
qemu-img create -q -f qcow2 bm.qcow2 64M
qemu-img bitmap --add bm.qcow2 b0
qemu-img bitmap --add bm.qcow2 b1
qemu-io -c 'write 0 64k' bm.qcow2 >/dev/null
bm_ext=$(LC_ALL=C grep -obUaP '\x23\x85\x28\x75' bm.qcow2 | head -1 | cut -d: -f1)
bm_dir=$(peek_be bm.qcow2 $((bm_ext + 24)) 8)
cp bm.qcow2 bmdup.qcow2
poke_be bmdup.qcow2 $((bm_dir + 32)) 8 "$(peek_be bm.qcow2 "$bm_dir" 8)"
cp bm.qcow2 bmhuge.qcow2
poke_be bmhuge.qcow2 $((bm_ext + 8)) 4 $((0xffffffff))
poke_be bmhuge.qcow2 $((bm_ext + 16)) 8 $((1024 * 65535))

for img in big l1 rt l2eof rteof snaps bmdup bmhuge; do
    for v in "--l1" "--l2 0" "--l2 all" "--refcounts" "--snapshots" "--bitmaps" "--map"; do
        # shellcheck disable=SC2086
        run "$img.t" $v "$img.qcow2" || continue
        # shellcheck disable=SC2086
        run "$img.j" --json $v "$img.qcow2" && keep_json "$img.j.out" "json.$img.${v//[ -]/}.json" "$v"
    done
done

# --- what each of the three shows --------------------------------------------
# big: the 1M-entry refcount block, folded and unfolded, against the file
run big.rc --refcounts big.qcow2
run big.rcj --json --refcounts big.qcow2
run big.rcu --refcounts --unfold big.qcow2
# 190 MB of JSON: counted as it comes rather than stored
(ulimit -v "$limit_kb"; exec timeout "$secs" qc-dump --json --refcounts --unfold big.qcow2) 2>big.rcuj.err |
    awk '/"cluster":/ { n++ } { last = $0 } END { print n + 0; print last }' >big.rcuj.sum
rc=${PIPESTATUS[0]}
[ "$rc" -lt 124 ] || fail "qc-dump --json --refcounts --unfold big.qcow2 exit $rc (timeout or signal)"
[ "$(wc -c <big.rcj.out)" -lt 100000 ] || fail "big: --json --refcounts prints $(wc -c <big.rcj.out) bytes"
[ "$(sed -n 1p big.rcuj.sum)" = 1048576 ] || fail "big: --unfold --json does not give the 1M refcounts"
[ "$(sed -n 2p big.rcuj.sum)" = "}" ] || fail "big: --unfold --json is cut short"

# l1: one L2 table, named 65,536 times, printed once
run l1.l2 --l2 all l1.qcow2
run l1.l2j --json --l2 all l1.qcow2
[ "$(grep -c '^L2 table of L1 entry' l1.l2.out)" = 65536 ] || fail "l1: not every L1 entry is listed"
[ "$(grep -c '^index  guest offset' l1.l2.out)" = 1 ] || fail "l1: the L2 table is printed more than once"
[ "$(grep -c '^  the table shown above for L1 entry 0$' l1.l2.out)" = 65535 ] ||
    fail "l1: later references do not point back to L1 entry 0"
run l1.l2u --l2 0 --unfold l1.qcow2
run l1.l2uj --json --l2 0 --unfold l1.qcow2

# rt: one refcount block, named 131,072 times, printed once
run rt.rc --refcounts rt.qcow2
run rt.rcj --json --refcounts rt.qcow2
[ "$(grep -c "refcount block at $(printf '%#x' "$rb_off") " rt.rc.out)" = 131072 ] ||
    fail "rt: not every reftable entry is listed"
[ "$(grep -c '^  cluster  ' rt.rc.out)" = 1 ] || fail "rt: the refcount block is printed more than once"

# bmdup: bitmap 1's table is bitmap 0's, printed once
run bm.t --bitmaps bmdup.qcow2
run bm.j --json --bitmaps bmdup.qcow2
[ "$(grep -c '^  index    kind' bm.t.out)" = 1 ] && grep -q '^  the table shown above for bitmap 0$' bm.t.out ||
    fail "bmdup: the shared bitmap table is not printed once"
grep -q '"duplicate_of": 0' bm.j.out || fail "bmdup: JSON does not point back to bitmap 0"

cp big.rcj.out big.rcj.json; cp l1.l2j.out l1.l2j.json; cp rt.rcj.out rt.rcj.json
cp l1.l2uj.out l1.l2uj.json

# The entries against the file, read here with Python's struct (refcounts
# 16 bits wide, L2 entries 8 bytes), and the dedup in JSON.
python3 - "$l2_off" "$rb_off" >check.out 2>&1 <<'EOF' || { fail "entries differ from the file:"; cat check.out; }
import json, re, struct, sys
l2_off, rb_off = int(sys.argv[1]), int(sys.argv[2])
bad = []

def u16s(path, off, n):
    with open(path, 'rb') as f:
        f.seek(off)
        return list(struct.unpack('>%dH' % n, f.read(2 * n)))

def u64s(path, off, n):
    with open(path, 'rb') as f:
        f.seek(off)
        return list(struct.unpack('>%dQ' % n, f.read(8 * n)))

def expand_json(entries, key, value):
    out = {}
    for e in entries:
        if e.get('empty'):
            assert e['count'] == e['last'] - e['first'] + 1
            for i in range(e['first'], e['last'] + 1):
                out[i] = 0
        else:
            out[e[key]] = value(e)
    return out

def expand_text(path, row, value_col):
    out = {}
    for line in open(path):
        m = re.match(row, line)
        if not m:
            continue
        r = m.group(1)
        if '-' in r and 'empty entries' in line:
            a, b = map(int, r.split('-'))
            n = int(re.search(r'\((\d+) empty entries\)', line).group(1))
            assert n == b - a + 1, line
            for i in range(a, b + 1):
                out[i] = 0
        else:
            out[int(r)] = value_col(m, line)
    return out

# big: the refcount block (1M 16-bit refcounts at the block the table names)
hdr = open('big.qcow2', 'rb').read(104)
rt = struct.unpack('>Q', hdr[48:56])[0]
blk = u64s('big.qcow2', rt, 1)[0]
want = dict(enumerate(u16s('big.qcow2', blk, 1 << 20)))
d = json.load(open('big.rcj.json'))['refcounts']['table']
if expand_json(d[0]['refcounts'], 'cluster', lambda e: e['refcount']) != want:
    bad.append('big: folded JSON refcounts')
if d[1] != {'first': 1, 'last': 262143, 'count': 262143, 'empty': True}:
    bad.append('big: the empty reftable entries are not one object: %r' % d[1])
row = r'^  (\d+(?:-\d+)?) +(?:0x[0-9a-f]+|0|\() *(\d+)?'
for path in ('big.rc.out', 'big.rcu.out'):
    got = expand_text(path, row, lambda m, l: int(m.group(2)))
    if got != want:
        bad.append('%s: refcounts differ from the file' % path)
if sum(1 for l in open('big.rcu.out') if re.match(r'^  \d+ ', l)) != 1 << 20:
    bad.append('big: --unfold does not print every refcount')

# l1: the L2 table (8192 entries), and each later reference pointing back
want = dict(enumerate(u64s('l1.qcow2', l2_off, 8192)))
d = json.load(open('l1.l2j.json'))['l2']['tables']
full = [t for t in d if 'entries' in t]
if len(d) != 65536 or len(full) != 1 or full[0]['l1_index'] != 0:
    bad.append('l1: JSON tables: %d listed, %d with entries' % (len(d), len(full)))
if any(t.get('duplicate_of') != 0 for t in d[1:]):
    bad.append('l1: a later table does not point back to L1 entry 0')
if expand_json(full[0]['entries'], 'index', lambda e: e['raw']) != want:
    bad.append('l1: folded JSON L2 entries')
d = json.load(open('l1.l2uj.json'))['l2']['tables'][0]['entries']
if {e['index']: e['raw'] for e in d} != want or any('empty' in e for e in d):
    bad.append('l1: --unfold JSON L2 entries')
row = r'^(\d+(?:-\d+)?) +'
got = expand_text('l1.l2u.out', row, lambda m, l: int(re.search(r'raw=0x([0-9a-f]+)', l).group(1), 16))
if got != want:
    bad.append('l1: --unfold text L2 entries')

# rt: one block, once
d = json.load(open('rt.rcj.json'))['refcounts']['table']
full = [t for t in d if 'refcounts' in t]
if len(d) != 131072 or len(full) != 1 or any(t.get('duplicate_of') != 0 for t in d[1:]):
    bad.append('rt: JSON: %d entries, %d with refcounts' % (len(d), len(full)))
print('\n'.join(bad))
sys.exit(1 if bad else 0)
EOF

# --- every fixture and corpus image, every view --------------------------------
mkdir -p fx corpus
(cd fx && for gz in "$FIXTURES"/*.gz; do gunzip -c "$gz" >"$(basename "$gz" .gz)"; done)
if [ -d "$CONFORMANCE/corpus" ]; then
    (cd corpus && for gz in "$CONFORMANCE"/corpus/*.gz; do gunzip -c "$gz" >"$(basename "$gz" .gz)"; done)
fi
views=("" --legacy --exts --hex --features --l1 "--l2 0" "--l2 all" --refcounts --snapshots
       --bitmaps --map "--hexdump 0 64k" "--read 0 64k"
       "--l1 --l2 all --refcounts --snapshots --bitmaps --map")
for img in fx/*.qcow2 corpus/*.qcow2 big.qcow2 l1.qcow2 rt.qcow2 l2eof.qcow2 rteof.qcow2 snaps.qcow2 \
           bmdup.qcow2 bmhuge.qcow2; do
    [ -f "$img" ] || continue
    n=0
    for v in "${views[@]}"; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        run all.t $v "$img"
        # shellcheck disable=SC2086
        run all.j --json $v "$img" && keep_json all.j.out "json.all.${img//\//_}.$n.json" "$v"
    done
done

# every JSON output parses (one Python for all of them)
python3 - json.*.json >parse.out 2>&1 <<'EOF' || { fail "JSON that does not parse:"; head -20 parse.out; }
import json, sys
bad = []
for p in sys.argv[1:]:
    try:
        json.load(open(p, encoding='utf-8'))
    except Exception as e:
        bad.append('%s: %s' % (p, e))
print('\n'.join(bad))
sys.exit(1 if bad else 0)
EOF
echo "$nruns views run, $(ls json.*.json | wc -l) JSON outputs parsed, limit ${limit_kb} KB, ${secs} s"
[ $fails -eq 0 ]
