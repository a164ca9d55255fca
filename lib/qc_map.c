/* Block status and the guest map, as QEMU 7.2 computes them. */
#include "qc_map.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qc_endian.h"

/* --- qcow2_get_host_offset --------------------------------------------- */

int qc_node_host_offset(struct qc_node *n, uint64_t offset, uint64_t bytes,
                        struct qc_host_range *out)
{
    const struct qc_image *img = &n->img;
    unsigned cb = img->cluster_bits, l2_bits = img->l2_bits;
    unsigned sc_bits = img->extended_l2 ? cb - 5 : cb;
    bool extl2 = img->extended_l2;
    uint64_t cs = img->cluster_size;
    uint64_t oic = offset & (cs - 1);
    uint64_t l1_index = offset >> (cb + l2_bits);
    uint64_t l2_index = (offset >> cb) & (img->l2_entries - 1);
    unsigned sc_index = extl2 ? (unsigned)((offset >> sc_bits) & 31) : 0;
    uint64_t needed = bytes + oic;
    uint64_t avail = (img->l2_entries - l2_index) << cb;
    uint64_t l2_offset, bad = 0, nb_clusters, covered;
    const uint8_t *table;
    struct qc_l2_entry e;
    int64_t sc;
    int r;

    memset(out, 0, sizeof *out);
    if (needed > avail)
        needed = avail;
    if (l1_index >= n->l1_size || !(n->l1[l1_index] & QC_L1E_OFFSET_MASK)) {
        out->type = QC_SCT_UNALLOCATED_PLAIN;
        out->bytes = needed - oic;
        return 0;
    }
    l2_offset = n->l1[l1_index] & QC_L1E_OFFSET_MASK;
    if (l2_offset & (cs - 1)) {
        qc_node_corruption(n, "L2 table offset %#llx unaligned (L1 index: %#llx)",
                           (unsigned long long)l2_offset, (unsigned long long)l1_index);
        return -EIO;
    }
    r = qc_node_l2_table(n, l2_offset, l1_index, &table);
    if (r < 0)
        return r == QC_E_NOMEM ? -ENOMEM : -EIO;
    e = qc_l2_table_entry(table, extl2, n->has_data_file, l2_index);
    out->l2_entry = e.raw;
    nb_clusters = (needed + cs - 1) >> cb;
    out->type = qc_l2_subcluster_type(&e, extl2, sc_index);
    if (img->hdr.version < 3 &&
        (out->type == QC_SCT_ZERO_PLAIN || out->type == QC_SCT_ZERO_ALLOC)) {
        qc_node_corruption(n, "Zero cluster entry found in pre-v3 image (L2 offset: %#llx, L2 index: %#x)",
                           (unsigned long long)l2_offset, (unsigned)l2_index);
        return -EIO;
    }
    switch (out->type) {
    case QC_SCT_COMPRESSED:
        if (n->has_data_file) {
            qc_node_corruption(n, "Compressed cluster entry found in image with external data file (L2 offset: %#llx, L2 index: %#x)",
                               (unsigned long long)l2_offset, (unsigned)l2_index);
            return -EIO;
        }
        break;
    case QC_SCT_ZERO_ALLOC:
    case QC_SCT_NORMAL:
    case QC_SCT_UNALLOCATED_ALLOC: {
        uint64_t hc = e.raw & QC_L2E_OFFSET_MASK;
        out->host = hc + oic;
        if (hc & (cs - 1)) {
            qc_node_corruption(n, "Cluster allocation offset %#llx unaligned (L2 offset: %#llx, L2 index: %#x)",
                               (unsigned long long)hc, (unsigned long long)l2_offset, (unsigned)l2_index);
            return -EIO;
        }
        if (n->has_data_file && out->host != offset) {
            qc_node_corruption(n, "External data file host cluster offset %#llx does not match guest cluster offset: %#llx, L2 index: %#x)",
                               (unsigned long long)hc, (unsigned long long)(offset - oic),
                               (unsigned)l2_index);
            return -EIO;
        }
        break;
    }
    default:
        break;
    }
    sc = qc_l2_count_contiguous(table, extl2, n->has_data_file, cs, l2_index, nb_clusters,
                                sc_index, &bad);
    if (sc < 0) {
        qc_node_corruption(n, "Invalid cluster entry found  (L2 offset: %#llx, L2 index: %#x)",
                           (unsigned long long)l2_offset, (unsigned)bad);
        return -EIO;
    }
    covered = ((uint64_t)sc + sc_index) << sc_bits;
    if (covered > needed)
        covered = needed;
    out->bytes = covered - oic;
    return 0;
}

/* --- file-posix block status ------------------------------------------- */

/* find_allocation + raw_co_block_status for [off, off+bytes) of F whose
 * length (QEMU's, rounded up to 512) is FLEN; OFF < FLEN.  Returns the
 * flags (DATA or ZERO, OFFSET_VALID, ALLOCATED, EOF) and *pnum. */
static unsigned file_status(struct qc_extent *x, const struct qc_file *f, uint64_t flen,
                            uint64_t off, uint64_t bytes, uint64_t *pnum)
{
    unsigned flags;
    off_t d, h;

    if (bytes > flen - off)
        bytes = flen - off;
    if (x->valid && off >= x->start && off < x->end) {
        flags = x->data ? QC_BS_DATA : QC_BS_ZERO;
        *pnum = x->end - off;
        goto out;
    }
    if (x->next_data_valid && off >= x->next_data) {
        /* a data extent starts at next_data: where it ends answers for
         * OFF too when OFF lies inside it (one lseek instead of two) */
        h = lseek(f->fd, (off_t)x->next_data, SEEK_HOLE);
        x->next_data_valid = false;
        if (h > 0 && (uint64_t)h > x->next_data) {
            x->valid = true;
            x->data = true;
            x->start = x->next_data;
            x->end = (uint64_t)h;
            if (off < x->end) {
                flags = QC_BS_DATA;
                *pnum = x->end - off;
                goto out;
            }
        }
    }
    d = lseek(f->fd, (off_t)off, SEEK_DATA);
    if (d < 0) {
        if (errno == ENXIO) {
            /* a trailing hole: everything from here on reads as zero */
            x->valid = true;
            x->data = false;
            x->start = off;
            x->end = UINT64_MAX;
            flags = QC_BS_ZERO;
        } else {
            flags = QC_BS_DATA;   /* no information: pretend data */
        }
        *pnum = bytes;
        goto out;
    }
    if ((uint64_t)d < off) {
        flags = QC_BS_DATA;
        *pnum = bytes;
        goto out;
    }
    if ((uint64_t)d > off) {
        x->valid = true;
        x->data = false;
        x->start = off;
        x->end = (uint64_t)d;
        x->next_data_valid = true;
        x->next_data = (uint64_t)d;
        flags = QC_BS_ZERO;
        *pnum = (uint64_t)d - off;
        goto out;
    }
    h = lseek(f->fd, (off_t)off, SEEK_HOLE);
    if (h < 0) {
        flags = errno == ENXIO ? QC_BS_ZERO : QC_BS_DATA;
        *pnum = bytes;
        goto out;
    }
    if ((uint64_t)h <= off) {
        flags = QC_BS_DATA;
        *pnum = bytes;
        goto out;
    }
    x->valid = true;
    x->data = true;
    x->start = off;
    x->end = (uint64_t)h;
    flags = QC_BS_DATA;
    *pnum = (uint64_t)h - off;
out:
    if (*pnum > bytes)
        *pnum = bytes;
    flags |= QC_BS_OFFSET_VALID | QC_BS_ALLOCATED;
    if (off + *pnum == flen)
        flags |= QC_BS_EOF;
    return flags;
}

static uint64_t file_length(const struct qc_file *f)
{
    return (f->size + 511) & ~511ull;
}

/* --- metadata preallocation (qcow2_detect_metadata_preallocation) ------- */

static bool detect_prealloc(struct qc_node *n)
{
    struct stat st;
    uint64_t cs = n->img.cluster_size, flen = file_length(n->file);
    uint64_t real_clusters, threshold, end_cluster, count = 0, per_block;
    int r;

    if (fstat(n->file->fd, &st) < 0)
        return false;
    real_clusters = (uint64_t)st.st_blocks * 512 / cs;
    threshold = real_clusters * 10 / 9;
    if (threshold < real_clusters + 2)
        threshold = real_clusters + 2;
    end_cluster = (flen + cs - 1) / cs;
    {
        uint64_t rc;
        /* loads the reftable; cluster 0 is counted by the loop below */
        if ((r = qc_node_refcount(n, 0, &rc)) < 0 && r != -EIO)
            return false;
        if (r == -EIO)
            return false;
    }
    per_block = 1ull << n->refcounts.rb_bits;
    for (uint64_t i = 0; i < end_cluster && count < threshold;) {
        uint64_t index = i / per_block, rc;
        /* whole blocks without a refcount block count nothing */
        if (index >= n->refcounts.nentries)
            break;
        if (!(qc_refcount_disk_entry(&n->refcounts, index) & QC_REFT_OFFSET_MASK)) {
            i = (index + 1) * per_block;
            continue;
        }
        if (qc_node_refcount(n, i, &rc) < 0)
            return false;
        count += rc != 0;
        i++;
    }
    return count >= threshold;
}

/* --- one layer ---------------------------------------------------------- */

int qc_node_block_status(struct qc_node *n, uint64_t offset, uint64_t bytes,
                         struct qc_block_status *st)
{
    struct qc_host_range hr;
    uint64_t req;
    unsigned f = 0;
    int r;

    memset(st, 0, sizeof *st);
    if (offset >= n->length) {
        st->flags = QC_BS_EOF;
        return 0;
    }
    if (bytes > n->length - offset)
        bytes = n->length - offset;
    if (n->kind == QC_NODE_RAW) {
        st->flags = file_status(&n->extent, n->file, n->length, offset, bytes, &st->pnum);
        st->map = offset;
        st->file = n->file;
        return 0;
    }
    if (!n->prealloc_checked) {
        n->prealloc = detect_prealloc(n);
        n->prealloc_checked = true;
    }
    req = bytes < INT_MAX ? bytes : INT_MAX;
    r = qc_node_host_offset(n, offset, req, &hr);
    if (r < 0)
        return r;
    st->pnum = hr.bytes;
    if ((hr.type == QC_SCT_NORMAL || hr.type == QC_SCT_ZERO_ALLOC ||
         hr.type == QC_SCT_UNALLOCATED_ALLOC) && !n->encrypted) {
        f |= QC_BS_OFFSET_VALID;
        st->map = hr.host;
        st->file = n->data;
    }
    if (hr.type == QC_SCT_ZERO_PLAIN || hr.type == QC_SCT_ZERO_ALLOC)
        f |= QC_BS_ZERO;
    else if (hr.type != QC_SCT_UNALLOCATED_PLAIN && hr.type != QC_SCT_UNALLOCATED_ALLOC)
        f |= QC_BS_DATA;
    if (st->pnum > bytes)
        st->pnum = bytes;
    if (f & (QC_BS_DATA | QC_BS_ZERO)) {
        f |= QC_BS_ALLOCATED;
    } else if (!n->backing || offset >= n->backing->length) {
        /* nothing below, or below is shorter: zeros answered here */
        f |= QC_BS_ZERO;
    }
    if (n->prealloc && (f & QC_BS_DATA) && !(f & QC_BS_ZERO) && (f & QC_BS_OFFSET_VALID)) {
        /* ask the data file whether the host range is a hole */
        uint64_t flen = file_length(n->data), p2;
        if (st->map >= flen) {
            f |= QC_BS_ZERO;
        } else {
            uint64_t ask = st->pnum < flen - st->map ? st->pnum : flen - st->map;
            unsigned f2 = file_status(&n->extent, n->data, flen, st->map, ask, &p2);
            if ((f2 & QC_BS_EOF) && (f2 & QC_BS_ZERO)) {
                f |= QC_BS_ZERO;
            } else {
                st->pnum = p2;
                if (f2 & QC_BS_ZERO)
                    f |= QC_BS_ZERO;
            }
        }
    }
    if (offset + st->pnum == n->length)
        f |= QC_BS_EOF;
    st->flags = f;
    return 0;
}

/* --- the map ------------------------------------------------------------ */

int qc_map_entry_at(struct qc_node *n, uint64_t offset, uint64_t bytes,
                    struct qc_map_entry *e)
{
    struct qc_block_status st;
    unsigned depth = 0;
    int r;

    for (;;) {
        r = qc_node_block_status(n, offset, bytes, &st);
        if (r < 0)
            return r;
        if (st.pnum == 0)
            return -EIO;   /* cannot happen: a shorter layer answers above */
        bytes = st.pnum;
        if (st.flags & (QC_BS_ZERO | QC_BS_DATA))
            break;
        if (!n->backing) {
            st.flags = 0;
            break;
        }
        n = n->backing;
        depth++;
    }
    memset(e, 0, sizeof *e);
    e->start = offset;
    e->length = bytes;
    e->depth = depth;
    e->present = (st.flags & QC_BS_ALLOCATED) != 0;
    e->zero = (st.flags & QC_BS_ZERO) != 0;
    e->data = (st.flags & QC_BS_DATA) != 0;
    e->has_offset = (st.flags & QC_BS_OFFSET_VALID) != 0;
    e->offset = e->has_offset ? st.map : 0;
    e->file = e->has_offset ? st.file : NULL;
    e->node = n;
    return 0;
}

bool qc_map_mergeable(const struct qc_map_entry *cur, const struct qc_map_entry *next)
{
    if (cur->length == 0)
        return false;
    if (cur->zero != next->zero || cur->data != next->data || cur->depth != next->depth ||
        cur->present != next->present || cur->has_offset != next->has_offset)
        return false;
    if (cur->has_offset &&
        (cur->file != next->file || cur->offset + cur->length != next->offset))
        return false;
    return true;
}

int qc_map_walk(struct qc_chain *c, qc_map_fn fn, void *ctx, uint64_t *fail_offset)
{
    struct qc_node *top = c->top;
    uint64_t len = top->length;
    struct qc_map_entry cur, next;
    int r;

    memset(&cur, 0, sizeof cur);
    cur.node = top;
    while (cur.start + cur.length < len) {
        uint64_t off = cur.start + cur.length;
        r = qc_map_entry_at(top, off, len - off, &next);
        if (r < 0) {
            if (fail_offset)
                *fail_offset = off;
            return r;
        }
        if (qc_map_mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (cur.length > 0 && (r = fn(ctx, &cur, false)) != 0)
            return r;
        cur = next;
    }
    return fn(ctx, &cur, true);
}
