/* QEMU's metadata overlap check (qcow2_check_metadata_overlap). */
#include "qc_overlap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "qc_endian.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_refcount.h"

#define L1_MAX_ENTRIES ((32ull << 20) / 8)   /* QCOW_MAX_L1_SIZE / 8 */
#define L1_CHUNK_ENTRIES 4096                /* inactive L1 tables are read this much at a time */

/* The write range [OFF, OFF+LEN) against a structure at [START, START+SIZE):
 * QEMU's ranges_overlap, with its unsigned wrap-around on the last byte. */
static bool overlaps(uint64_t off, uint64_t len, uint64_t start, uint64_t size)
{
    uint64_t last, slast;

    if (!len || !size)
        return false;
    last = off + len - 1;
    slast = start + size - 1;
    return !(slast < off || last < start);
}

static bool overlaps_l2_tables(const struct qc_overlap_view *v, uint64_t off, uint64_t len)
{
    uint64_t cs = 1ull << v->cluster_bits;

    for (uint32_t i = 0; i < v->l1_size; i++) {
        uint64_t l2 = v->l1[i] & QC_L1E_OFFSET_MASK;
        if (l2 && overlaps(off, len, l2, cs))
            return true;
    }
    return false;
}

static bool overlaps_refblocks(const struct qc_overlap_view *v, uint64_t off, uint64_t len)
{
    uint64_t cs = 1ull << v->cluster_bits;
    uint64_t last = v->max_reftable_index;

    if (!v->reftable_size)
        return false;
    if (last >= v->reftable_size)
        last = v->reftable_size - 1;
    for (uint64_t i = 0; i <= last; i++) {
        uint64_t rb = v->reftable[i] & QC_REFT_OFFSET_MASK;
        if (rb && overlaps(off, len, rb, cs))
            return true;
    }
    return false;
}

static bool overlaps_inactive_l1(const struct qc_overlap_view *v, uint64_t off, uint64_t len)
{
    for (size_t i = 0; i < v->nb_snapshots; i++) {
        const struct qc_overlap_snapshot *s = &v->snapshots[i];
        if (s->l1_size && overlaps(off, len, s->l1_offset, (uint64_t)s->l1_size * 8))
            return true;
    }
    return false;
}

/* One snapshot's L2 tables: its L1 table is validated as QEMU validates it
 * and read in pieces; what lies past the end of the file reads as zeros,
 * so the reading stops there.  1 overlap, 0 none, negative errno. */
static int snapshot_l2_overlap(const struct qc_overlap_view *v, const struct qc_overlap_snapshot *s,
                               uint64_t off, uint64_t len)
{
    uint64_t cs = 1ull << v->cluster_bits, bytes = (uint64_t)s->l1_size * 8;
    uint8_t buf[L1_CHUNK_ENTRIES * 8];

    if (s->l1_size > L1_MAX_ENTRIES)
        return -EFBIG;
    if (INT64_MAX - bytes < s->l1_offset || (s->l1_offset & (cs - 1)))
        return -EINVAL;
    if (!v->file)
        return 0;
    for (uint64_t done = 0; done < bytes && s->l1_offset + done < v->file->size;) {
        size_t n = bytes - done < sizeof buf ? (size_t)(bytes - done) : sizeof buf;
        int64_t r = qc_file_read_padded(v->file, s->l1_offset + done, buf, n);
        if (r < 0)
            return (int)r;
        for (size_t j = 0; j < n; j += 8) {
            uint64_t l2 = qc_be64(buf + j) & QC_L1E_OFFSET_MASK;
            if (l2 && overlaps(off, len, l2, cs))
                return 1;
        }
        done += n;
    }
    return 0;
}

static int overlaps_inactive_l2(const struct qc_overlap_view *v, uint64_t off, uint64_t len)
{
    for (size_t i = 0; i < v->nb_snapshots; i++) {
        int r = snapshot_l2_overlap(v, &v->snapshots[i], off, len);
        if (r != 0)
            return r;
    }
    return 0;
}

int qc_overlap_check(const struct qc_overlap_view *v, unsigned ignore, uint64_t offset,
                     uint64_t len)
{
    unsigned chk = v->enabled & ~ignore;
    uint64_t cs = 1ull << v->cluster_bits;
    int r;

    if (!len)
        return 0;
    if ((chk & QC_OL_MAIN_HEADER) && offset < cs)
        return QC_OL_MAIN_HEADER;

    /* the rest is tested on whole clusters */
    len = ((offset & (cs - 1)) + len + cs - 1) & ~(cs - 1);
    offset &= ~(cs - 1);

    if ((chk & QC_OL_ACTIVE_L1) && v->l1_size &&
        overlaps(offset, len, v->l1_offset, (uint64_t)v->l1_size * 8))
        return QC_OL_ACTIVE_L1;
    if ((chk & QC_OL_REFCOUNT_TABLE) && v->reftable_size &&
        overlaps(offset, len, v->reftable_offset, v->reftable_size * 8))
        return QC_OL_REFCOUNT_TABLE;
    if ((chk & QC_OL_SNAPSHOT_TABLE) && v->snapshots_size &&
        overlaps(offset, len, v->snapshots_offset, v->snapshots_size))
        return QC_OL_SNAPSHOT_TABLE;
    if ((chk & QC_OL_INACTIVE_L1) && overlaps_inactive_l1(v, offset, len))
        return QC_OL_INACTIVE_L1;
    if ((chk & QC_OL_ACTIVE_L2) && overlaps_l2_tables(v, offset, len))
        return QC_OL_ACTIVE_L2;
    if ((chk & QC_OL_REFCOUNT_BLOCK) && overlaps_refblocks(v, offset, len))
        return QC_OL_REFCOUNT_BLOCK;
    if (chk & QC_OL_INACTIVE_L2) {
        r = overlaps_inactive_l2(v, offset, len);
        if (r != 0)
            return r < 0 ? r : (int)QC_OL_INACTIVE_L2;
    }
    if ((chk & QC_OL_BITMAP_DIRECTORY) && v->bitmaps &&
        overlaps(offset, len, v->bitmap_dir_offset, v->bitmap_dir_size))
        return QC_OL_BITMAP_DIRECTORY;
    return 0;
}

const char *qc_overlap_name(unsigned cls)
{
    static const char *const names[] = {
        "qcow2_header", "active L1 table", "active L2 table", "refcount table",
        "refcount block", "snapshot table", "inactive L1 table", "inactive L2 table",
        "bitmap directory",
    };
    unsigned bit = cls ? (unsigned)__builtin_ctz(cls) : 0;

    return bit < sizeof names / sizeof names[0] ? names[bit] : "unknown metadata";
}
