# qc-salvage against qemu-img: images qemu-io writes with known patterns,
# damaged by pokes.  A clean image salvages to what qemu-img convert -O raw
# writes (exit 0); a zeroed L1 table or header is rebuilt from the tables
# in the file (exit 2); a zeroed L2 table and a truncated file lose ranges
# (exit 3, '-' in the map) but never return a wrong byte.  The image is
# unchanged (sha256 and mtime) after every run.
. "$TESTS/lib.sh"
skip_without_qemu
fail=0
bad() { echo "FAIL: $*"; fail=1; }

make_image() {
    rm -f "$1"
    qemu-img create -q -f qcow2 "$1" 1G
    qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 4M 256k' -c 'write -c -P 0x33 8M 128k' \
            -c 'write -z 9M 64k' -c 'write -P 0x44 600M 1M' "$1" >/dev/null
}

# salvage NAME EXPECTED_EXIT [ARGS...]: runs qc-salvage on NAME.qcow2 into
# NAME.raw (and NAME.map), checks the exit status and that the image is
# unchanged
salvage() {
    local name=$1 want=$2 before after rc
    shift 2
    before=$(sha256sum < "$name.qcow2"; stat -c %Y "$name.qcow2")
    rm -f "$name.raw" "$name.map" "$name.json"
    qc-salvage -O raw --map "$name.map" --report "$name.json" "$@" "$name.qcow2" "$name.raw" \
        2>"$name.err"
    rc=$?
    after=$(sha256sum < "$name.qcow2"; stat -c %Y "$name.qcow2")
    [ "$before" = "$after" ] || bad "$name: the image changed"
    [ $rc -eq "$want" ] || bad "$name: exit $rc, expected $want ($(cat "$name.err"))"
    case $want in 0|2|3)
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$name.json" ||
            bad "$name: the report is not JSON" ;;
    esac
}

# grade NAME REF: every 4 KiB block of NAME.raw equals REF or is zeros inside
# a '-' range of NAME.map; prints "exact N lost M wrong W"
grade() {
    python3 - "$1.raw" "$2" "$1.map" <<'PY'
import sys
out, ref, mp = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]
lost = []
for line in open(mp):
    f = line.split()
    if line.startswith('#') or len(f) != 3 or f[2] not in '+-' or f[1] == '+':
        continue
    if f[2] == '-':
        lost.append((int(f[0], 16), int(f[0], 16) + int(f[1], 16)))
exact = nlost = wrong = 0
zero = bytes(4096)
for off in range(0, len(ref), 4096):
    o, r = out[off:off + 4096].ljust(len(ref[off:off + 4096]), b'\0'), ref[off:off + 4096]
    in_lost = any(a <= off < b for a, b in lost)
    if in_lost and o != zero[:len(o)]:
        wrong += 1
    elif o == r:
        exact += r != zero[:len(r)]
    elif in_lost:
        nlost += 1
    else:
        wrong += 1
print("exact %d lost %d wrong %d" % (exact, nlost, wrong))
PY
}

expect_grade() {   # NAME REF MIN_EXACT: no wrong block, at least MIN_EXACT exact
    local g
    g=$(grade "$1" "$2")
    echo "$1: $g"
    case $g in *" wrong 0") ;; *) bad "$1: wrong blocks ($g)" ;; esac
    [ "$(echo "$g" | awk '{print $2}')" -ge "$3" ] || bad "$1: too few exact blocks ($g)"
}

make_image base.qcow2
qemu-img convert -O raw base.qcow2 ref.raw
nonzero=$(python3 -c 'import sys; d=open("ref.raw","rb").read(); print(sum(1 for i in range(0,len(d),4096) if any(d[i:i+4096])))')
l1=$(peek_be base.qcow2 40 8)
l2_0=$(( $(peek_be base.qcow2 "$l1" 8) & 0x00fffffffffffe00 ))

# clean: identical to qemu-img convert, raw and qcow2, exit 0
cp base.qcow2 clean.qcow2
salvage clean 0
cmp -s clean.raw ref.raw || bad "clean: differs from qemu-img convert -O raw"
grep -q ' -$' clean.map && bad "clean: lost ranges in the map"
rm -f clean.out.qcow2
qc-salvage clean.qcow2 clean.out.qcow2 2>/dev/null || bad "clean: qcow2 output failed"
qemu-img compare -q clean.qcow2 clean.out.qcow2 || bad "clean: the qcow2 output differs"
qemu-img check -q clean.out.qcow2 || bad "clean: the qcow2 output does not check clean"
qc-salvage clean.qcow2 clean.out.qcow2 2>/dev/null && bad "clean: an existing OUT was replaced"
qc-salvage --force clean.qcow2 clean.out.qcow2 2>/dev/null || bad "clean: --force refused"
qc-salvage clean.qcow2 clean.qcow2 2>/dev/null && bad "clean: OUT may be the image"
ln -sf clean.qcow2 clean-link.raw
qc-salvage --force -O raw clean.qcow2 clean-link.raw 2>/dev/null && bad "clean: OUT may be a link to the image"
rm -f clean-first.raw
qc-salvage --force -O raw --map clean.qcow2 clean.qcow2 clean-first.raw 2>/dev/null &&
    bad "clean: the map may be the image"
[ -e clean-first.raw ] && bad "clean: OUT written before the map was refused"
cmp -s clean.qcow2 base.qcow2 || bad "clean: the image changed"

# zeroed L1: both L2 tables placed by allocation order, every block back
cp base.qcow2 l1zero.qcow2
poke_be l1zero.qcow2 "$l1" 8 0
poke_be l1zero.qcow2 $((l1 + 8)) 8 0
salvage l1zero 2
expect_grade l1zero ref.raw "$nonzero"
grep -q '"reconstructed"' l1zero.json || bad "l1zero: no reconstructed range in the report"

# zeroed L2 table: its range is lost, zeros, '-' in the map, exit 3
cp base.qcow2 l2zero.qcow2
dd if=/dev/zero of=l2zero.qcow2 bs=65536 seek=$((l2_0 / 65536)) count=1 conv=notrunc status=none
salvage l2zero 3
expect_grade l2zero ref.raw 256     # the 600M range survives
grep -q '^0x00000000  0x20000000  -$' l2zero.map || bad "l2zero: the first 512 MiB are not '-'"

# truncated file: what lies inside is recovered, the rest is lost
cp base.qcow2 trunc.qcow2
truncate -s $(( $(stat -c %s base.qcow2) / 2 / 65536 * 65536 )) trunc.qcow2
salvage trunc 3
expect_grade trunc ref.raw 100

# zeroed header: cluster size, L1 and virtual size found by scanning
cp base.qcow2 hdr.qcow2
dd if=/dev/zero of=hdr.qcow2 bs=512 count=1 conv=notrunc status=none
salvage hdr 2
expect_grade hdr ref.raw "$nonzero"
cmp -s hdr.raw ref.raw || bad "hdr: differs from the undamaged disk"

# compressed clusters behind a zeroed L1 inflate as QEMU reads them
cmp -s <(dd if=l1zero.raw bs=1M skip=8 count=1 status=none) \
       <(dd if=ref.raw bs=1M skip=8 count=1 status=none) || bad "l1zero: compressed range differs"

# not qcow2 at all: exit 63, nothing written
head -c 1048576 /dev/urandom > junk.qcow2
salvage junk 63
[ -e junk.raw ] && bad "junk: OUT written"

# --dry-run writes nothing
qc-salvage --dry-run l1zero.qcow2 dry.raw >/dev/null 2>&1
[ $? -eq 2 ] || bad "dry-run: wrong exit status"
[ -e dry.raw ] && bad "dry-run: OUT written"

# --lost-found: the orphan data of the zeroed L2 table
rm -rf lf
qc-salvage -O raw --lost-found lf l2zero.qcow2 lf.raw 2>/dev/null
ls lf/*.bin >/dev/null 2>&1 || bad "lost-found: no orphan clusters written"

# 64-bit refcounts: a refcount block copied over the L2 table reads as
# zero-flag entries; the copy is recognised and the range lost, not zeros
qemu-img create -q -f qcow2 -o refcount_bits=64 rc64.qcow2 64M
qemu-io -c 'write -P 0x55 0 2M' rc64.qcow2 >/dev/null
qemu-img convert -O raw rc64.qcow2 rc64.ref
rt=$(peek_be rc64.qcow2 48 8)
rb=$(( $(peek_be rc64.qcow2 "$rt" 8) & 0x00fffffffffffe00 ))
l2=$(( $(peek_be rc64.qcow2 "$(peek_be rc64.qcow2 40 8)" 8) & 0x00fffffffffffe00 ))
dd if=rc64.qcow2 of=rc64.blk bs=65536 skip=$((rb / 65536)) count=1 status=none
dd if=rc64.blk of=rc64.qcow2 bs=65536 seek=$((l2 / 65536)) count=1 conv=notrunc status=none
salvage rc64 3
expect_grade rc64 rc64.ref 0
grep -q '^0x00000000  0x04000000  -$' rc64.map || bad "rc64: the range is not '-'"

# extended L2: subclusters allocated, zero and unallocated in one cluster
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k extl2.qcow2 1M
qemu-io -c 'write -P 0x11 0 16k' -c 'write -P 0x22 32k 512' -c 'write -P 0x23 36k 1k' \
        -c 'write -z 33k 512' -c 'write -c -P 0x24 64k 16k' extl2.qcow2 >/dev/null
qemu-img convert -O raw extl2.qcow2 extl2.ref
salvage extl2 0
cmp -s extl2.raw extl2.ref || bad "extl2: differs from qemu-img convert -O raw"

# a backing file: unallocated ranges read through it as qemu-img reads them
qemu-img create -q -f qcow2 back.qcow2 64M
qemu-io -c 'write -P 0xaa 0 4M' -c 'write -c -P 0xab 8M 64k' back.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b back.qcow2 -F qcow2 over.qcow2
qemu-io -c 'write -P 0x11 1M 64k' -c 'write -z 2M 64k' over.qcow2 >/dev/null
qemu-img convert -O raw over.qcow2 over.ref
back_before=$(sha256sum < back.qcow2)
salvage over 0
cmp -s over.raw over.ref || bad "over: differs from qemu-img convert -O raw"
[ "$back_before" = "$(sha256sum < back.qcow2)" ] || bad "over: the backing file changed"
# a backing name the rules do not follow: those ranges are lost, not zeros
qemu-img create -q -f qcow2 -b /etc/hostname -F raw abs.qcow2 1M
salvage abs 3
grep -q '^0x00000000  0x00100000  -$' abs.map || bad "abs: the backing ranges are not '-'"
salvage abs 0 --allow /etc/hostname

[ $fail -eq 0 ] && echo "salvage-qemu: ok"
exit $fail
