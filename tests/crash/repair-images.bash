# Damaged images for the interrupted-repair tests (sourced by
# tests/crash/repair-*.sh, after tests/lib.sh).  Every image has 4 KiB
# clusters and a few MiB; each is made by qemu-img/qemu-io and damaged with
# byte pokes, or left damaged by QEMU itself (lazy refcounts + abort).
#
#   repair_images            names of every image, in order
#   make_repair_image NAME   writes NAME.qcow2 (damaged) and NAME.raw (its
#                            guest bytes as qemu-img reads them, or as they
#                            were before the damage when qemu-img refuses to
#                            read it: then NAME.unreadable exists too) in the
#                            current directory; returns non-zero when the
#                            image could not be made as intended

# --- reading and poking metadata ---------------------------------------

# hexof IMG OFF LEN: the bytes as one hex string
hexof() { od -An -tx1 -v -j "$(($2))" -N "$3" "$1" | tr -d ' \n'; }
# be IMG OFF LEN: big-endian value (8 bytes: as a signed 64-bit number)
be() { local h; h=$(hexof "$@"); echo $((16#${h:-0})); }

OFFSET_MASK=0x00fffffffffffe00
COPIED=$((1 << 63))
COMPRESSED=$((1 << 62))

# geom IMG: sets CB (cluster bits), CS, L1_OFF, L1_SIZE, RT_OFF,
# RC_BITS, RB_ENTRIES (refcounts per refcount block)
geom() {
    local ro=4
    CB=$(be "$1" 20 4); CS=$((1 << CB))
    L1_SIZE=$(be "$1" 36 4); L1_OFF=$(be "$1" 40 8); RT_OFF=$(be "$1" 48 8)
    [ "$(be "$1" 4 4)" -ge 3 ] && ro=$(be "$1" 96 4)
    RC_BITS=$((1 << ro)); RB_ENTRIES=$((CS * 8 / RC_BITS))
}

# refcount_at IMG CLUSTER: sets RC_BYTE (file offset of the byte holding the
# entry, or of its first byte) and RC_SHIFT (bit position for < 8 bits)
refcount_at() {
    local c=$2 rb bit
    geom "$1"
    rb=$(( $(be "$1" $((RT_OFF + 8 * (c / RB_ENTRIES))) 8) & ~0x1ff ))
    [ "$rb" -ne 0 ] || { echo "cluster $c has no refcount block" >&2; return 1; }
    bit=$(( (c % RB_ENTRIES) * RC_BITS ))
    RC_BYTE=$((rb + bit / 8)); RC_SHIFT=$((bit % 8))
}

get_refcount() {
    refcount_at "$1" "$2" || return 1
    if [ "$RC_BITS" -ge 8 ]; then
        be "$1" "$RC_BYTE" $((RC_BITS / 8))
    else
        echo $(( ($(be "$1" "$RC_BYTE" 1) >> RC_SHIFT) & ((1 << RC_BITS) - 1) ))
    fi
}

set_refcount() {   # IMG CLUSTER VALUE (refcount entries are LSB first below 8 bits)
    local old mask
    refcount_at "$1" "$2" || return 1
    if [ "$RC_BITS" -ge 8 ]; then
        poke_be "$1" "$RC_BYTE" $((RC_BITS / 8)) "$3"
    else
        old=$(be "$1" "$RC_BYTE" 1); mask=$(( ((1 << RC_BITS) - 1) << RC_SHIFT ))
        poke_be "$1" "$RC_BYTE" 1 $(( (old & ~mask) | (($3 << RC_SHIFT) & mask) ))
    fi
}

# l1_entry_at IMG GUEST_OFFSET / l2_entry_at IMG GUEST_OFFSET: file offset
# of the active L1 / L2 entry mapping that guest byte
l1_entry_at() { geom "$1"; echo $((L1_OFF + 8 * ($2 >> (2 * CB - 3)))); }
l2_entry_at() {
    local l2
    geom "$1"
    l2=$(( $(be "$1" "$(l1_entry_at "$1" "$2")" 8) & OFFSET_MASK ))
    [ "$l2" -ne 0 ] || { echo "guest offset $2 has no L2 table" >&2; return 1; }
    echo $((l2 + 8 * (($2 >> CB) & ((1 << (CB - 3)) - 1))))
}
# host_cluster IMG GUEST_OFFSET: host cluster of a standard data cluster
host_cluster() {
    local a; a=$(l2_entry_at "$1" "$2") || return 1
    geom "$1"
    echo $(( ($(be "$1" "$a" 8) & OFFSET_MASK) >> CB ))
}
# compressed_cluster IMG GUEST_OFFSET: host cluster where its data starts
compressed_cluster() {
    local a e; a=$(l2_entry_at "$1" "$2") || return 1
    geom "$1"
    e=$(be "$1" "$a" 8)
    [ $((e & COMPRESSED)) -ne 0 ] || { echo "guest offset $2 is not compressed" >&2; return 1; }
    echo $(( (e & ((1 << (70 - CB)) - 1)) >> CB ))
}
set_bits()   { local v; v=$(be "$1" "$2" 8); poke_be "$1" "$2" 8 $((v | $3)); }
clear_bits() { local v; v=$(be "$1" "$2" 8); poke_be "$1" "$2" 8 $((v & ~$3)); }
file_clusters() { geom "$1"; echo $(( ($(stat -c %s "$1") + CS - 1) / CS )); }
# grow IMG N: N more clusters at the end of the file (zeros)
grow() { geom "$1"; truncate -s $(( $(file_clusters "$1") * CS + $2 * CS )) "$1"; }

qio() { ( qemu-io "$@" >/dev/null 2>&1; true ) 2>/dev/null; }
new_image() {   # IMG SIZE [OPTS]
    qemu-img create -q -f qcow2 -o "cluster_size=4096${3:+,$3}" "$1" "$2"
}

# --- the images ----------------------------------------------------------

repair_images() {
    echo lazy lazy-snapshot leaks raised lowered zeroed reftable-outside \
         reftable-unaligned reftable-reserved copied refcount1 compressed-fix \
         compressed-rebuild bitmap-snapshot v2-leaks zero-unaligned \
         snapshot-incomplete mixed
}

# Damage that destroys guest data (the image is still repaired to what
# qemu-img reads from it); for every other image the guest bytes must equal
# those from before the damage.
repair_image_destroys_data() { case $1 in leaks) return 0 ;; esac; return 1; }

# before_damage IMG: the guest bytes before the pokes (IMG.pre.raw), and
# the geometry for them
before_damage() { qemu-img convert -O raw "$1" "$1.pre.raw" 2>/dev/null; geom "$1"; }

make_repair_image() {
    local name=$1 img=$1.qcow2 c i
    rm -f "$img" "$img.pre.raw"
    case $name in
    lazy)
        # QEMU's crash with lazy refcounts: data and L2 tables on disk,
        # refcounts of the last request missing, dirty bit set; four L2
        # tables, the last write crossing from one into the next
        new_image "$img" 8M lazy_refcounts=on
        qio -c 'write -P 1 0 300k' "$img"
        qio -c 'write -P 2 2M 64k' -c 'write -P 3 4100k 20k' -c 'write -P 4 6M 8k' \
            -c 'write -P 5 3968k 256k' -c abort "$img"
        ;;
    lazy-snapshot)
        # the same with a snapshot: copy on write of shared clusters and of
        # the shared L2 table while refcounts are lazy
        new_image "$img" 4M lazy_refcounts=on
        qio -c 'write -P 1 0 512k' -c 'write -P 2 2M 64k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 3 64k 16k' -c 'write -P 4 2M 4k' -c 'write -P 5 3M 8k' -c abort "$img"
        ;;
    leaks)
        # clusters counted but not used: past the old end of the file, and
        # data clusters whose L2 entries were cleared; an unknown autoclear bit
        new_image "$img" 4M
        qio -c 'write -P 1 0 1M' -c 'write -P 2 2M 512k' "$img"
        before_damage "$img"
        c=$(file_clusters "$img")
        grow "$img" 16
        for ((i = 0; i < 16; i += 2)); do set_refcount "$img" $((c + i)) 1 || return 1; done
        for i in 8k 12k 2100k; do poke_be "$img" "$(l2_entry_at "$img" $((${i%k} * 1024)))" 8 0; done
        poke "$img" 88 "80"
        ;;
    raised)
        # refcounts above the references: data clusters, an L2 table (then
        # its L1 entry's OFLAG_COPIED disagrees), the L1 table, the header
        new_image "$img" 4M
        qio -c 'write -P 1 0 256k' -c 'write -P 2 3M 64k' "$img"
        before_damage "$img"
        for i in 4096 65536 131072 3145728; do
            set_refcount "$img" "$(host_cluster "$img" $i)" 2 || return 1
        done
        set_refcount "$img" $(( ($(be "$img" "$(l1_entry_at "$img" 0)" 8) & OFFSET_MASK) >> CB )) 3
        set_refcount "$img" $((L1_OFF >> CB)) 2
        set_refcount "$img" 0 5
        ;;
    lowered)
        # refcounts below the references (shared with a snapshot) but not 0:
        # fixed in place, then OFLAG_COPIED agrees again
        new_image "$img" 4M
        qio -c 'write -P 1 0 256k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 2 0 16k' "$img"
        before_damage "$img"
        for i in 65536 69632 200704; do
            set_refcount "$img" "$(host_cluster "$img" $i)" 1 || return 1
        done
        ;;
    zeroed)
        # every refcount block emptied: the structure must be rebuilt
        # (64-bit refcounts: several blocks of 512 entries)
        new_image "$img" 4M refcount_bits=64
        qio -c 'write -P 1 0 1M' -c 'write -P 2 2M 1M' -c 'write -P 3 3900k 100k' "$img"
        before_damage "$img"
        for ((i = 0; i < CS / 8; i++)); do
            c=$(( $(be "$img" $((RT_OFF + 8 * i)) 8) & ~0x1ff ))
            [ "$c" -ne 0 ] && dd if=/dev/zero of="$img" bs="$CS" seek=$((c / CS)) count=1 conv=notrunc status=none
        done
        ;;
    reftable-outside)
        # refcount table entry 0 points past the end of the file
        new_image "$img" 4M
        qio -c 'write -P 1 0 512k' -c 'write -P 2 3M 64k' "$img"
        before_damage "$img"
        poke_be "$img" "$RT_OFF" 8 $((64 << 20))
        ;;
    reftable-unaligned)
        # refcount table entry 0 not cluster aligned (qemu-img check -r all
        # marks such an image corrupt instead of repairing it)
        new_image "$img" 4M
        qio -c 'write -P 1 0 512k' -c 'write -P 2 3M 64k' "$img"
        before_damage "$img"
        poke_be "$img" "$RT_OFF" 8 $(( $(be "$img" "$RT_OFF" 8) + 0x200 ))
        ;;
    reftable-reserved)
        # refcount table entry 0 with a reserved bit
        new_image "$img" 4M
        qio -c 'write -P 1 0 512k' -c 'write -P 2 3M 64k' "$img"
        before_damage "$img"
        set_bits "$img" "$RT_OFF" 1
        ;;
    copied)
        # OFLAG_COPIED cleared where the refcount is 1 (L1 and L2 entries)
        # and set where a snapshot shares the cluster; the corrupt bit
        new_image "$img" 4M
        qio -c 'write -P 1 0 256k' -c 'write -P 2 1M 64k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 3 0 16k' -c 'write -P 4 2M 8k' "$img"
        before_damage "$img"
        clear_bits "$img" "$(l2_entry_at "$img" 4096)" $COPIED
        clear_bits "$img" "$(l2_entry_at "$img" 2101248)" $COPIED
        set_bits "$img" "$(l2_entry_at "$img" 65536)" $COPIED
        set_bits "$img" "$(l2_entry_at "$img" 1048576)" $COPIED
        clear_bits "$img" "$(l1_entry_at "$img" 2097152)" $COPIED
        set_bits "$img" 72 2     # and the corrupt bit QEMU would have set
        ;;
    refcount1)
        # refcount_bits=1: leaked clusters past the end, one used data
        # cluster counted 0 (rebuild)
        new_image "$img" 4M refcount_bits=1
        qio -c 'write -P 1 0 512k' -c 'write -P 2 3M 16k' "$img"
        before_damage "$img"
        c=$(file_clusters "$img")
        grow "$img" 9
        for ((i = 0; i < 9; i += 2)); do set_refcount "$img" $((c + i)) 1 || return 1; done
        set_refcount "$img" "$(host_cluster "$img" 8192)" 0
        ;;
    compressed-fix|compressed-rebuild)
        # compressed clusters (several per host cluster) shared by two
        # snapshots and the active table
        new_image "$img" 4M
        qio -c 'write -c -P 1 0 4k' -c 'write -c -P 2 4k 4k' -c 'write -c -P 3 8k 4k' \
            -c 'write -c -P 4 12k 4k' -c 'write -P 5 1M 64k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -c -P 6 16k 4k' -c 'write -P 7 4k 4k' "$img"
        qemu-img snapshot -c s2 "$img"
        qio -c 'write -c -P 8 0 4k' "$img"
        before_damage "$img"
        c=$(compressed_cluster "$img" 8192) || return 1
        if [ "$name" = compressed-fix ]; then
            # one host cluster counted too high, one too low (not 0)
            set_refcount "$img" "$c" $(( $(get_refcount "$img" "$c") + 2 ))
            c=$(compressed_cluster "$img" 16384) || return 1
            set_refcount "$img" "$c" 1
        else
            set_refcount "$img" "$c" 0
        fi
        ;;
    bitmap-snapshot)
        # a persistent bitmap and a snapshot (qemu-img check -r leaks of
        # QEMU 7.2 drops the snapshot), with leaks and a raised refcount
        new_image "$img" 4M
        qio -c 'write -P 1 0 256k' "$img"
        qemu-img bitmap --add "$img" b0
        qio -c 'write -P 2 1M 64k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 3 2M 16k' "$img"
        before_damage "$img"
        c=$(file_clusters "$img")
        grow "$img" 4
        set_refcount "$img" $((c + 1)) 1
        set_refcount "$img" $((c + 3)) 1
        set_refcount "$img" "$(host_cluster "$img" 2097152)" 2
        ;;
    v2-leaks)
        # version 2 header (no feature fields): leaks and a raised refcount
        new_image "$img" 4M compat=0.10
        qio -c 'write -P 1 0 256k' "$img"
        before_damage "$img"
        c=$(file_clusters "$img")
        grow "$img" 3
        set_refcount "$img" $((c + 2)) 1
        set_refcount "$img" "$(host_cluster "$img" 8192)" 3
        ;;
    zero-unaligned)
        # preallocated zero clusters whose offsets are not cluster aligned
        new_image "$img" 4M
        qio -c 'write -P 1 0 256k' -c 'write -z 8k 8k' -c 'write -z 200k 4k' "$img"
        before_damage "$img"
        for i in 8192 12288 204800; do
            c=$(l2_entry_at "$img" $i) || return 1
            poke_be "$img" "$c" 8 $(( $(be "$img" "$c" 8) + 0x200 ))
        done
        ;;
    snapshot-incomplete)
        # the first of two snapshot table entries with 8 bytes of extra data
        # (fewer than version 3 requires): the table is rewritten
        new_image "$img" 4M
        qio -c 'write -P 1 0 64k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 2 0 4k' "$img"
        qemu-img snapshot -c second "$img"
        before_damage "$img"
        python3 - "$img" <<'PY' || return 1
import struct, sys
f = open(sys.argv[1], 'r+b')
n, off = struct.unpack('>IQ', f.read(72)[60:72])
f.seek(off)
t = f.read(1 << 16)
p, out = 0, b''
for i in range(n):
    p = (p + 7) & ~7
    hd = bytearray(t[p:p + 40])
    ids, ns = struct.unpack('>HH', hd[12:16])
    ex = struct.unpack('>I', hd[36:40])[0]
    extra, names = t[p + 40:p + 40 + ex], t[p + 40 + ex:p + 40 + ex + ids + ns]
    p += 40 + ex + ids + ns
    if i == 0:
        hd[36:40] = struct.pack('>I', 8)
        extra = extra[:8]
    out += bytes(hd) + extra + names
    out += bytes(-len(out) % 8)
f.seek(off)
f.write(out + bytes(p - len(out)) if p > len(out) else out)
PY
        ;;
    mixed)
        # a repair in every stage: refcounts raised and lowered in several
        # refcount blocks (64-bit refcounts, 512 per block), OFLAG_COPIED in
        # the L1 table and in two L2 tables, the dirty bit and an unknown
        # autoclear bit
        new_image "$img" 8M refcount_bits=64
        qio -c 'write -P 1 0 1536k' -c 'write -P 2 3M 1536k' -c 'write -P 3 6M 1536k' "$img"
        qemu-img snapshot -c s1 "$img"
        qio -c 'write -P 4 0 8k' -c 'write -P 5 6M 8k' "$img"
        before_damage "$img"
        for i in 1048576 3354624 6815744; do
            c=$(host_cluster "$img" $i) || return 1
            set_refcount "$img" "$c" $(( $(get_refcount "$img" "$c") + 1 ))
        done
        for i in 40960 3149824 7340032; do set_refcount "$img" "$(host_cluster "$img" $i)" 1; done
        clear_bits "$img" "$(l2_entry_at "$img" 0)" $COPIED
        clear_bits "$img" "$(l2_entry_at "$img" 6295552)" $COPIED
        clear_bits "$img" "$(l1_entry_at "$img" 0)" $COPIED
        set_bits "$img" 72 1
        set_bits "$img" 88 $((1 << 62))
        ;;
    *)
        echo "unknown image $name" >&2
        return 1
        ;;
    esac
    # every image is damaged in its refcounts or OFLAG_COPIED
    if qemu-img check "$img" >/dev/null 2>&1; then
        echo "$name: the damage did not take (qemu-img check finds it clean)" >&2
        return 1
    fi
    rm -f "$name.unreadable"
    if ! qemu-img convert -O raw "$img" "$name.raw" 2>/dev/null; then
        # QEMU refuses to read it (an unaligned cluster offset): the guest
        # bytes are those from before the damage
        [ -f "$img.pre.raw" ] || { echo "$name: qemu-img cannot read it" >&2; return 1; }
        mv "$img.pre.raw" "$name.raw"
        touch "$name.unreadable"
    fi
    if [ -f "$img.pre.raw" ] && ! repair_image_destroys_data "$name" &&
       ! cmp -s "$img.pre.raw" "$name.raw"; then
        echo "$name: the damage changed guest data" >&2
        return 1
    fi
    rm -f "$img.pre.raw"
}
