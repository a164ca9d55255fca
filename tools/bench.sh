#!/bin/bash
# make bench: qc-check, qc-dump --map and qc-repair against qemu-img on
# large images.
#
# Builds the images in a temporary directory outside the repository
# (BENCH_DIR, default under $TMPDIR), runs each pair of commands alternately
# (the image's allocated extents read right before every timed run: warm
# cache), RUNS times each, and reports medians of wall time and peak RSS,
# their ratios, and the time to read the image's metadata bytes once from
# the page cache (the physical floor).  Writes the table to
# docs/performance.md.
#
# A repair changes its image: each of its runs gets a fresh copy of the
# damaged image (made before the run, not timed), and the last copy qc-repair
# repaired must then be clean for qemu-img check.
#
#   tools/bench.sh [GROUP...]   groups: check map repair (default: all)
#                               (RUNS=5 BENCH_DIR=... KEEP=1 to keep the images;
#                               QC=DIR: the qc tools to measure, default bin/)
# A run of some groups only replaces those rows of the table in
# docs/performance.md and says so there.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
RUNS=${RUNS:-5}
QC=${QC:-$top/bin}
groups=${*:-check map repair}
for g in $groups; do
    case $g in check|map|repair) ;; *) echo "bench: unknown group '$g'" >&2; exit 64 ;; esac
done
want() { case " $groups " in *" $1 "*) return 0 ;; esac; return 1; }
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/qc-bench.XXXXXX")}
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export LC_ALL=C

need() { command -v "$1" >/dev/null || { echo "bench: $1 is needed" >&2; exit 1; }; }
need qemu-img; need qemu-io; need python3
[ -x "$QC/qc-check" ] || { echo "bench: run make first" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

cc=${CC:-cc}
for t in mkprealloc benchrun warmcache; do
    $cc -O2 -Wall -Wextra -o "$work/$t" "tools/$t.c" || exit 1
done

# --- images ---------------------------------------------------------------
t0=$SECONDS
big=$work/prealloc-1t.qcow2
c512=$work/prealloc-512.qcow2
snap=$work/snap20.qcow2
comp=$work/zstd.qcow2
if [ ! -f "$big" ]; then
    say "1 TiB, 64 KiB clusters, preallocation=metadata"
    qemu-img create -q -f qcow2 -o preallocation=metadata "$big" 1T
fi
if [ ! -f "$c512" ] && { want check || want map; }; then
    say "16 GiB, 512-byte clusters, preallocation=metadata (generated)"
    "$work/mkprealloc" "$c512" $((16 << 30)) 9 || exit 1
fi
if [ ! -f "$snap" ] && want check; then
    say "4 GiB with 20 internal snapshots"
    qemu-img create -q -f qcow2 "$snap" 4G
    qemu-io -c 'write -P 1 0 1G' "$snap" >/dev/null
    for i in $(seq 1 20); do
        qemu-img snapshot -c "s$i" "$snap"
        qemu-io -c "write -P $((i + 1)) $((i * 150))M 32M" \
                -c "write -P $((i + 2)) $((i * 100 + 1000))M 8M" "$snap" >/dev/null
    done
fi
if [ ! -f "$comp" ] && want check; then
    say "2 GiB compressed with zstd"
    head -c $((3 << 29)) /dev/urandom | base64 -w 76 | head -c $((2 << 30)) > "$work/src.raw"
    qemu-img convert -c -O qcow2 -o compression_type=zstd "$work/src.raw" "$comp"
    rm -f "$work/src.raw"
fi
# Damage for the repair rows (16-bit refcounts): clusters past the used end
# of the file counted 1, used data clusters counted 2 (leaks); or every
# refcount block emptied (the structure must be rebuilt).
damage() {
    python3 - "$@" <<'PY'
import os, struct, sys
path, mode = sys.argv[1], sys.argv[2]
f = open(path, 'r+b')
h = f.read(104)
cs = 1 << struct.unpack('>I', h[20:24])[0]
l1n, l1o = struct.unpack('>IQ', h[36:48])
rto, rtc = struct.unpack('>QI', h[48:60])
assert struct.unpack('>I', h[96:100])[0] == 4, '16-bit refcounts expected'
f.seek(rto)
rt = struct.unpack('>%dQ' % (rtc * cs // 8), f.read(rtc * cs))
per = cs // 2
def rc_addr(c):
    blk = rt[c // per] & ~0x1ff
    assert blk, 'no refcount block for cluster %d' % c
    return blk + 2 * (c % per)
def set_rc(c, v):
    f.seek(rc_addr(c)); f.write(struct.pack('>H', v))
if mode == 'leaks':
    extra, raise_n = int(sys.argv[3]), int(sys.argv[4])
    end = (os.path.getsize(path) + cs - 1) // cs
    os.truncate(path, (end + extra) * cs)
    for c in range(end, end + extra):
        set_rc(c, 1)
    f.seek(l1o)
    l1 = struct.unpack('>%dQ' % l1n, f.read(8 * l1n))
    data = []
    for e in l1:
        if e & 0x00fffffffffffe00:
            f.seek(e & 0x00fffffffffffe00)
            for x in struct.unpack('>%dQ' % (cs // 8), f.read(cs)):
                o = x & 0x00fffffffffffe00
                if o and not x & (1 << 62):
                    data.append(o // cs)
    assert len(data) >= raise_n, 'only %d data clusters' % len(data)
    for c in data[:raise_n]:
        set_rc(c, 2)
elif mode == 'zero-refblocks':
    z = bytes(cs)
    for e in rt:
        if e & ~0x1ff:
            f.seek(e & ~0x1ff); f.write(z)
PY
}
leaks=$work/leaks-8g.qcow2
zeroed=$work/prealloc-1t-zeroed.qcow2
if want repair; then
    if [ ! -f "$leaks" ]; then
        say "8 GiB, 4096 clusters written 2 MiB apart, 8192 leaked clusters"
        qemu-img create -q -f qcow2 "$leaks.tmp" 8G
        for i in $(seq 0 4095); do echo "write -P $((i % 250 + 1)) $((i * 2))M 64k"; done |
            qemu-io "$leaks.tmp" >/dev/null
        damage "$leaks.tmp" leaks 4096 4096 && mv "$leaks.tmp" "$leaks" || exit 1
    fi
    if [ ! -f "$zeroed" ]; then
        say "1 TiB, 64 KiB clusters, preallocation=metadata, refcount blocks zeroed"
        cp --sparse=always "$big" "$zeroed.tmp" && damage "$zeroed.tmp" zero-refblocks &&
            mv "$zeroed.tmp" "$zeroed" || exit 1
    fi
fi
say "images ready in $((SECONDS - t0)) s"

# Bytes of metadata: header, L1 tables, distinct L2 tables, refcount table
# and blocks, snapshot table (what a check must read).
meta_bytes() {
    python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb')
def rd(off, n):
    f.seek(off)
    b = f.read(n)
    return b + bytes(n - len(b))
h = rd(0, 112)
cb = struct.unpack('>I', h[20:24])[0]; cs = 1 << cb
l1n, l1o = struct.unpack('>IQ', h[36:48])
rto, rtc = struct.unpack('>QI', h[48:60])
nsn, sno = struct.unpack('>IQ', h[60:72])
total = cs + rtc * cs
l2 = set()
def walk(off, n):
    global total
    total += n * 8
    t = rd(off, n * 8)
    for i in range(n):
        e = struct.unpack_from('>Q', t, 8 * i)[0] & 0x00fffffffffffe00
        if e:
            l2.add(e)
walk(l1o, l1n)
p = sno
for _ in range(nsn):
    p = (p + 7) & ~7
    e = rd(p, 40)
    so, sn = struct.unpack('>QI', e[:12]); ids, ns = struct.unpack('>HH', e[12:16])
    ex = struct.unpack('>I', e[36:40])[0]
    walk(so, sn)
    p += 40 + ex + ids + ns
    total += 40 + ex + ids + ns
rt = rd(rto, rtc * cs)
total += cs * sum(1 for i in range(rtc * cs // 8) if struct.unpack_from('>Q', rt, 8 * i)[0])
total += cs * len(l2)
print(total)
PY
}

# The time to read N bytes once from the page cache.
floor_time() {
    local n=$1 f=$work/floor.bin
    head -c "$n" /dev/zero > "$f"
    cat "$f" >/dev/null
    python3 - "$f" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
best = None
for _ in range(3):
    t = time.monotonic()
    while os.read(fd, 1 << 20):
        pass
    d = time.monotonic() - t
    best = d if best is None or d < best else best
    os.lseek(fd, 0, 0)
print('%.4f' % best)
PY
    rm -f "$f"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pair LABEL IMAGE RUNS -- QC_CMD... -- QEMU_CMD...: alternate the two,
# warm cache before each run; prints "qc_wall qc_rss qemu_wall qemu_rss qc_rc qemu_rc".
pair() {
    local img=$1 runs=$2; shift 2
    local qc=() qemu=() side=qc a
    for a in "$@"; do
        if [ "$a" = -- ]; then side=qemu; continue; fi
        if [ $side = qc ]; then qc+=("$a"); else qemu+=("$a"); fi
    done
    : > "$work/qc.t"; : > "$work/qemu.t"
    for i in $(seq "$runs"); do
        "$work/warmcache" "$img" >/dev/null
        "$work/benchrun" "${qc[@]}" >> "$work/qc.t"
        "$work/warmcache" "$img" >/dev/null
        "$work/benchrun" "${qemu[@]}" >> "$work/qemu.t"
    done
    echo "$(cut -d' ' -f1 "$work/qc.t" | median) $(cut -d' ' -f2 "$work/qc.t" | median)" \
         "$(cut -d' ' -f1 "$work/qemu.t" | median) $(cut -d' ' -f2 "$work/qemu.t" | median)" \
         "$(tail -1 "$work/qc.t" | cut -d' ' -f3) $(tail -1 "$work/qemu.t" | cut -d' ' -f3)"
}

# pair_fresh SRC RUNS -- QC_CMD... -- QEMU_CMD...: as pair, for commands
# that change their image: the QC command works on $work/run-qc.qcow2, the
# qemu-img one on $work/run-qemu.qcow2, each a fresh copy of SRC made (and
# read into the page cache, and written back: each timed fdatasync pays for
# the tool's own writes, not for the copy) before the timed run.
pair_fresh() {
    local src=$1 runs=$2; shift 2
    local qc=() qemu=() side=qc a
    for a in "$@"; do
        if [ "$a" = -- ]; then side=qemu; continue; fi
        if [ $side = qc ]; then qc+=("$a"); else qemu+=("$a"); fi
    done
    : > "$work/qc.t"; : > "$work/qemu.t"
    for i in $(seq "$runs"); do
        cp --sparse=always "$src" "$work/run-qc.qcow2" || exit 1
        sync "$work/run-qc.qcow2"
        "$work/warmcache" "$work/run-qc.qcow2" >/dev/null
        "$work/benchrun" "${qc[@]}" >> "$work/qc.t"
        cp --sparse=always "$src" "$work/run-qemu.qcow2" || exit 1
        sync "$work/run-qemu.qcow2"
        "$work/warmcache" "$work/run-qemu.qcow2" >/dev/null
        "$work/benchrun" "${qemu[@]}" >> "$work/qemu.t"
    done
    echo "$(cut -d' ' -f1 "$work/qc.t" | median) $(cut -d' ' -f2 "$work/qc.t" | median)" \
         "$(cut -d' ' -f1 "$work/qemu.t" | median) $(cut -d' ' -f2 "$work/qemu.t" | median)" \
         "$(tail -1 "$work/qc.t" | cut -d' ' -f3) $(tail -1 "$work/qemu.t" | cut -d' ' -f3)"
}

rows=()
labels=()
unclean=0
row() {   # LABEL RUNS IMAGE QC... -- QEMU...
    local label=$1 runs=$2 img=$3; shift 3
    local r meta fl
    say "$label ($runs runs each)"
    if [ -n "${FRESH:-}" ]; then
        r=$(pair_fresh "$img" "$runs" "$@")
    else
        r=$(pair "$img" "$runs" "$@")
    fi
    meta=$(meta_bytes "$img")
    fl=$(floor_time "$meta")
    set -- $r
    if [ "$5" != "$6" ]; then
        say "WARNING: exit status differs on $label: qc $5, qemu-img $6"
    fi
    labels+=("$label")
    rows+=("$(printf '%s|%d|%.3f|%.3f|%s|%.1f|%.1f|%s|%s' "$label" "$runs" "$1" "$3" \
        "$(awk -v a="$1" -v b="$3" 'BEGIN { printf "%.3f", a / b }')" \
        "$(awk -v k="$2" 'BEGIN { print k / 1024 }')" "$(awk -v k="$4" 'BEGIN { print k / 1024 }')" \
        "$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v m="$meta" -v t="$fl" 'BEGIN { printf "%.0f MB in %.3f s", m / 1e6, t }')")")
}

if want check; then
row "check: 1 TiB, 64 KiB clusters, prealloc" "$RUNS" "$big" \
    "$QC/qc-check" "$big" -- qemu-img check "$big"
row "check: 16 GiB, 512 B clusters, prealloc" "$RUNS" "$c512" \
    "$QC/qc-check" "$c512" -- qemu-img check "$c512"
row "check: 4 GiB, 20 snapshots" "$RUNS" "$snap" \
    "$QC/qc-check" "$snap" -- qemu-img check "$snap"
row "check: 2 GiB, zstd compressed" "$RUNS" "$comp" \
    "$QC/qc-check" "$comp" -- qemu-img check "$comp"
row "check --output=json: 2 GiB zstd (inflates all)" 3 "$comp" \
    "$QC/qc-check" --output=json "$comp" -- qemu-img check --output=json "$comp"
fi

# qc-dump --map, when qc-dump has it
if want map; then
qemu-img create -q -f qcow2 "$work/tiny.qcow2" 1M
if "$QC/qc-dump" --map --json "$work/tiny.qcow2" 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
    row "map --json: 1 TiB, 64 KiB clusters, prealloc" 3 "$big" \
        "$QC/qc-dump" --map --json "$big" -- qemu-img map --output=json "$big"
    row "map --json: 16 GiB, 512 B clusters, prealloc" 1 "$c512" \
        "$QC/qc-dump" --map --json "$c512" -- qemu-img map --output=json "$c512"
else
    say "qc-dump --map --json not available yet: map rows skipped"
fi
fi

# qc-repair against qemu-img check -r all, each run on a fresh copy; the
# image qc-repair repaired last must be clean for qemu-img check
repair_row() {   # LABEL RUNS SRC
    FRESH=1 row "$1" "$2" "$3" \
        "$QC/qc-repair" "$work/run-qc.qcow2" -- qemu-img check -r all "$work/run-qemu.qcow2"
    if ! qemu-img check "$work/run-qc.qcow2" >"$work/after.txt" 2>&1; then
        say "ERROR: not clean after qc-repair ($1):"
        tail -5 "$work/after.txt" >&2
        unclean=1
    fi
}
if want repair; then
    if [ -x "$QC/qc-repair" ]; then
        repair_row "repair -r all: 8 GiB, 8192 leaked clusters" "$RUNS" "$leaks"
        # qemu-img takes minutes here (33 million error lines before the rebuild)
        repair_row "repair -r all: 1 TiB prealloc, refcounts zeroed (rebuild)" \
            $((RUNS < 3 ? RUNS : 3)) "$zeroed"
    else
        say "qc-repair not built: repair rows skipped"
    fi
    rm -f "$work/run-qc.qcow2" "$work/run-qemu.qcow2"
fi

# --- report -----------------------------------------------------------------
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
qver=$(qemu-img --version | head -1)
table() {
    echo "| benchmark | runs | qc wall (s) | qemu-img wall (s) | wall ratio | qc RSS (MB) | qemu-img RSS (MB) | RSS ratio | metadata read once (floor) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
}
table
header() {
    echo "# Performance"
    echo
    if [ "$groups" = "check map repair" ] || [ ! -f docs/performance.md ]; then
        echo "Measured by \`make bench\` (tools/bench.sh) on $(date -u +%Y-%m-%d)."
        echo "Machine: $(nproc) CPUs ($cpu), $mem of memory; $qver."
    else
        # a partial run keeps the date and machine of the full one
        sed -n -e '/^Measured by/p' -e '/^Machine:/p' docs/performance.md
        echo "The rows of \`tools/bench.sh $groups\` were measured again on $(date -u +%Y-%m-%d)"
        echo "($(nproc) CPUs, $cpu, $mem; $qver)."
    fi
    echo
    echo "Each pair of commands runs alternately; before every timed run the image's"
    echo "allocated extents are read, so both start from a warm page cache.  Wall time"
    echo "and peak RSS are medians; ratios are qc / qemu-img.  The last column is the"
    echo "time to read the image's metadata bytes once from the page cache: the floor"
    echo "for any tool that reads all of it.  qc-check reads every table once (qemu-img"
    echo "check reads every L2 table and refcount block twice), with a second thread"
    echo "reading ahead; in JSON mode it also inflates every compressed cluster to"
    echo "report the ones that are damaged, which qemu-img check does not do."
    echo
    echo "The floor column reads the metadata's bytes as one contiguous file.  Tables"
    echo "of 512 bytes lying 33 KiB apart (QEMU's layout with 512-byte clusters) cost"
    echo "one read request each, about a microsecond of kernel time here, which that"
    echo "floor does not show; both cores share those requests.  qemu-img's times vary"
    echo "by a factor of two or more between runs on a shared machine."
    echo
    echo "The repair rows time \`qc-repair\` (default \`-r all\`) against"
    echo "\`qemu-img check -r all\`; both find the damage, repair it and check the"
    echo "result again.  Every run repairs a fresh copy of the damaged image, made,"
    echo "written back to disk and read into the page cache before the timed run, so"
    echo "each tool's closing fdatasync pays for its own writes only.  The leaks image"
    echo "has 4096 data clusters counted 2 instead of 1 and 4096 clusters past its used"
    echo "end counted 1; the 1 TiB image has every refcount block zeroed, so both tools"
    echo "rebuild the refcount structure.  After the last qc-repair run of each image"
    echo "\`qemu-img check\` must find it clean (the bench stops with an error"
    echo "otherwise)."
    echo
}
{
    header
    if [ "$groups" = "check map repair" ] || [ ! -f docs/performance.md ]; then
        table
    else
        # the table of the last full run with the rows measured now replaced
        # (by label) or added
        table | python3 -c '
import sys
new = [l for l in sys.stdin.read().splitlines() if l.startswith("| ") and not l.startswith("| benchmark")]
label = lambda l: l.split("|")[1].strip()
newby = {label(l): l for l in new}
old = [l for l in open("docs/performance.md").read().splitlines() if l.startswith("|")]
out = []
for l in old:
    if l.startswith("| ") and not l.startswith("| benchmark") and label(l) in newby:
        out.append(newby.pop(label(l)))
    else:
        out.append(l)
out += [l for l in new if label(l) in newby]
print("\n".join(out))'
    fi
} > docs/performance.md.new && mv docs/performance.md.new docs/performance.md
say "done in $((SECONDS - t0)) s; docs/performance.md written"
if [ $unclean -ne 0 ]; then
    say "FAILED: an image was not clean after qc-repair"
    exit 1
fi
