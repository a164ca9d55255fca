/*
 * The L1/L2 side of writing, as QEMU 7.2 does it (docs/qemu-behaviour.md
 * §4.6-§4.8, §4.11, §4.12): finding or allocating host clusters for
 * a guest range, allocating L2 tables (copying shared ones), entering new
 * clusters with their copy-on-write, compressed clusters, zeroing and
 * discarding.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_writer_int.h"

enum qc_cluster_type qc_w_cluster_type(const struct qc_writer *w, uint64_t entry)
{
    return qc_l2_entry_decode(entry, 0, w->extl2, false).type;
}

enum qc_subcluster_type qc_w_subcluster_type(const struct qc_writer *w, uint64_t entry,
                                             uint64_t bitmap, unsigned sc)
{
    struct qc_l2_entry e = qc_l2_entry_decode(entry, bitmap, w->extl2, false);
    return qc_l2_subcluster_type(&e, w->extl2, sc);
}

static unsigned ctz32(uint32_t v)
{
    return v ? (unsigned)__builtin_ctz(v) : 32;
}

static unsigned clz32(uint32_t v)
{
    return v ? (unsigned)__builtin_clz(v) : 32;
}

static unsigned cto32(uint32_t v)
{
    return ctz32(~v);
}

/* bits [from, to) of the 32 allocation bits, and the same zero bits */
static uint64_t sub_alloc_range(unsigned from, unsigned to)
{
    return to - from >= 32 ? 0xffffffffull : (((1ull << (to - from)) - 1) << from);
}

static uint64_t sub_zero_range(unsigned from, unsigned to)
{
    return sub_alloc_range(from, to) << 32;
}

#define L2_BITMAP_ALL_ALLOC 0x00000000ffffffffull
#define L2_BITMAP_ALL_ZEROES 0xffffffff00000000ull

/* --- L1 --- */

static int write_l1_entry(struct qc_writer *w, uint64_t l1_index)
{
    uint8_t be[8];
    int r;

    /* a regular file has a request alignment of 1: one 8-byte entry */
    qc_put_be64(be, w->l1[l1_index]);
    r = qc_w_pre_write(w, QC_OL_ACTIVE_L1, w->l1_offset + 8 * l1_index, 8);
    if (r < 0)
        return r;
    r = qc_file_write(&w->img.file, w->l1_offset + 8 * l1_index, be, 8, QC_EV_L1_UPDATE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    return r;
}

int qc_grow_l1(struct qc_writer *w, uint64_t min_size, bool exact)
{
    uint64_t new_size, new_bytes, old_offset, old_size;
    uint64_t *nt;
    uint8_t *raw, hdr[12];
    int64_t new_offset;
    int r;

    if (min_size <= w->l1_size)
        return 0;
    if (min_size > QC_INT_MAX / 8)
        return -EFBIG;
    if (exact) {
        new_size = min_size;
    } else {
        new_size = w->l1_size ? w->l1_size : 1;
        while (min_size > new_size)
            new_size = (new_size * 3 + 1) / 2;
    }
    if (new_size > QC_MAX_L1_SIZE / 8)
        return -EFBIG;
    new_bytes = new_size * 8;
    nt = calloc(new_size, 8);
    raw = calloc(new_size, 8);
    if (!nt || !raw) {
        free(nt);
        free(raw);
        return QC_E_NOMEM;
    }
    if (w->l1_size)
        memcpy(nt, w->l1, (size_t)w->l1_size * 8);

    qc_file_event(&w->img.file, QC_EV_L1_GROW_ALLOC_TABLE);
    new_offset = qc_alloc_clusters(w, new_bytes);
    if (new_offset < 0) {
        free(nt);
        free(raw);
        return (int)new_offset;
    }
    r = qc_cache_flush(&w->rbc);
    if (r < 0)
        goto fail;
    for (uint64_t i = 0; i < new_size; i++)
        qc_put_be64(raw + 8 * i, nt[i]);
    /* the new table's clusters were free: nothing may be there yet */
    r = qc_w_pre_write(w, 0, (uint64_t)new_offset, new_bytes);
    if (r < 0)
        goto fail;
    r = qc_file_write(&w->img.file, (uint64_t)new_offset, raw, new_bytes,
                      QC_EV_L1_GROW_WRITE_TABLE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    if (r < 0)
        goto fail;
    qc_put_be32(hdr, (uint32_t)new_size);
    qc_put_be64(hdr + 4, (uint64_t)new_offset);
    r = qc_file_write(&w->img.file, 36, hdr, sizeof hdr, QC_EV_L1_GROW_ACTIVATE_TABLE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    if (r < 0)
        goto fail;
    free(raw);
    free(w->l1);
    old_offset = w->l1_offset;
    old_size = w->l1_size;
    w->l1 = nt;
    w->l1_offset = (uint64_t)new_offset;
    w->l1_size = (uint32_t)new_size;
    qc_free_clusters(w, old_offset, old_size * 8, QC_DISCARD_OTHER);
    return 0;
fail:
    free(nt);
    free(raw);
    qc_free_clusters(w, (uint64_t)new_offset, new_bytes, QC_DISCARD_OTHER);
    return r;
}

/* --- L2 tables --- */

static int l2_load(struct qc_writer *w, uint64_t offset, uint64_t l2_offset, uint8_t **slice)
{
    uint64_t start = (uint64_t)w->l2_entry_size *
                     (qc_w_l2_index(w, offset) - qc_w_l2_slice_index(w, offset));
    return qc_cache_get(&w->l2c, l2_offset + start, slice);
}

/* A new L2 table for L1 entry L1_INDEX: zeroed, or a copy of the shared
 * table the entry pointed to. */
static int l2_allocate(struct qc_writer *w, uint64_t l1_index)
{
    uint64_t old = w->l1[l1_index];
    uint64_t slice_bytes = w->l2_slice_size * w->l2_entry_size;
    uint64_t n_slices = w->cluster_size / slice_bytes;
    uint8_t *slice = NULL;
    int64_t l2_offset;
    int r;

    l2_offset = qc_alloc_clusters(w, w->l2_size * w->l2_entry_size);
    if (l2_offset < 0)
        return (int)l2_offset;
    if (l2_offset == 0) {
        r = qc_w_corruption(w, true, "Preventing invalid allocation of L2 table at offset 0");
        goto fail;
    }
    /* the refcount of the new table reaches the file before the table */
    if (!w->opt.unsafe_order) {
        r = qc_cache_flush(&w->rbc);
        if (r < 0)
            goto fail;
    }
    for (uint64_t s = 0; s < n_slices; s++) {
        r = qc_cache_get_empty(&w->l2c, (uint64_t)l2_offset + s * slice_bytes, &slice);
        if (r < 0)
            goto fail;
        if ((old & QC_L1E_OFFSET_MASK) == 0) {
            memset(slice, 0, slice_bytes);
        } else {
            uint8_t *old_slice;
            qc_file_event(&w->img.file, QC_EV_L2_ALLOC_COW_READ);
            r = qc_cache_get(&w->l2c, (old & QC_L1E_OFFSET_MASK) + s * slice_bytes, &old_slice);
            if (r < 0)
                goto fail;
            memcpy(slice, old_slice, slice_bytes);
            qc_cache_put(&w->l2c, &old_slice);
        }
        qc_file_event(&w->img.file, QC_EV_L2_ALLOC_WRITE);
        qc_cache_mark_dirty(&w->l2c, slice);
        qc_cache_put(&w->l2c, &slice);
    }
    r = qc_cache_flush(&w->l2c);
    if (r < 0)
        goto fail;
    w->l1[l1_index] = (uint64_t)l2_offset | QC_OFLAG_COPIED;
    r = write_l1_entry(w, l1_index);
    if (r < 0)
        goto fail;
    return 0;
fail:
    if (slice)
        qc_cache_put(&w->l2c, &slice);
    w->l1[l1_index] = old;
    if (l2_offset > 0)
        qc_free_clusters(w, (uint64_t)l2_offset, w->l2_size * w->l2_entry_size, QC_DISCARD_ALWAYS);
    return r;
}

/* The L2 slice for OFFSET, with a table of our own (allocated, or copied
 * from a snapshot's) behind it. */
static int get_cluster_table(struct qc_writer *w, uint64_t offset, uint8_t **slice,
                             unsigned *index)
{
    uint64_t l1_index = qc_w_l1_index(w, offset), l2_offset;
    int r;

    if (l1_index >= w->l1_size) {
        r = qc_grow_l1(w, l1_index + 1, false);
        if (r < 0)
            return r;
    }
    l2_offset = w->l1[l1_index] & QC_L1E_OFFSET_MASK;
    if (qc_w_offset_into_cluster(w, l2_offset))
        return qc_w_corruption(w, true, "L2 table offset %#llx unaligned (L1 index: %#llx)",
                               (unsigned long long)l2_offset, (unsigned long long)l1_index);
    if (!(w->l1[l1_index] & QC_OFLAG_COPIED)) {
        r = l2_allocate(w, l1_index);
        if (r < 0)
            return r;
        if (l2_offset)
            qc_free_clusters(w, l2_offset, w->l2_size * w->l2_entry_size, QC_DISCARD_OTHER);
        l2_offset = w->l1[l1_index] & QC_L1E_OFFSET_MASK;
    }
    r = l2_load(w, offset, l2_offset, slice);
    if (r < 0)
        return r;
    *index = qc_w_l2_slice_index(w, offset);
    return 0;
}

/* --- lookups --- */

/* Subclusters from SC_FROM on with the type of SC_FROM (QEMU's
 * qcow2_get_subcluster_range_type); -1 for an invalid entry. */
static int subcluster_range_type(const struct qc_writer *w, uint64_t entry, uint64_t bitmap,
                                 unsigned sc_from, enum qc_subcluster_type *type)
{
    uint32_t val;

    *type = qc_w_subcluster_type(w, entry, bitmap, sc_from);
    if (*type == QC_SCT_INVALID)
        return -1;
    if (!w->extl2 || *type == QC_SCT_COMPRESSED)
        return (int)(w->subclusters - sc_from);
    switch (*type) {
    case QC_SCT_NORMAL:
        val = (uint32_t)(bitmap | sub_alloc_range(0, sc_from));
        return (int)(cto32(val) - sc_from);
    case QC_SCT_ZERO_PLAIN:
    case QC_SCT_ZERO_ALLOC:
        val = (uint32_t)((bitmap | sub_zero_range(0, sc_from)) >> 32);
        return (int)(cto32(val) - sc_from);
    default:
        val = (uint32_t)(((bitmap >> 32) | bitmap) & ~sub_alloc_range(0, sc_from));
        return (int)(ctz32(val) - sc_from);
    }
}

static int count_contiguous_subclusters(const struct qc_writer *w, unsigned nb_clusters,
                                        unsigned sc_index, const uint8_t *slice,
                                        unsigned *l2_index)
{
    enum qc_subcluster_type expected = QC_SCT_NORMAL, type;
    uint64_t expected_offset = 0;
    bool check_offset = false;
    int count = 0;

    for (unsigned i = 0; i < nb_clusters; i++) {
        unsigned first_sc = i == 0 ? sc_index : 0;
        uint64_t entry = qc_w_get_l2_entry(w, slice, *l2_index + i);
        uint64_t bitmap = qc_w_get_l2_bitmap(w, slice, *l2_index + i);
        int n = subcluster_range_type(w, entry, bitmap, first_sc, &type);
        if (n < 0) {
            *l2_index += i;
            return -EIO;
        }
        if (i == 0) {
            if (type == QC_SCT_COMPRESSED)
                return n;
            expected = type;
            expected_offset = entry & QC_L2E_OFFSET_MASK;
            check_offset = type == QC_SCT_NORMAL || type == QC_SCT_ZERO_ALLOC ||
                           type == QC_SCT_UNALLOCATED_ALLOC;
        } else if (type != expected) {
            break;
        } else if (check_offset) {
            expected_offset += w->cluster_size;
            if (expected_offset != (entry & QC_L2E_OFFSET_MASK))
                break;
        }
        count += n;
        if (first_sc + (unsigned)n < w->subclusters)
            break;
    }
    return count;
}

int qc_get_host_offset(struct qc_writer *w, uint64_t offset, uint64_t *bytes,
                       uint64_t *host, enum qc_subcluster_type *type)
{
    uint64_t in_cluster = qc_w_offset_into_cluster(w, offset);
    uint64_t needed = *bytes + in_cluster, available, l1_index, l2_offset;
    uint64_t entry, bitmap;
    unsigned l2_index, sc_index;
    uint8_t *slice;
    int sc, r;

    available = (w->l2_slice_size - qc_w_l2_slice_index(w, offset)) << w->cluster_bits;
    if (needed > available)
        needed = available;
    *host = 0;
    l1_index = qc_w_l1_index(w, offset);
    if (l1_index >= w->l1_size || !(l2_offset = w->l1[l1_index] & QC_L1E_OFFSET_MASK)) {
        *type = QC_SCT_UNALLOCATED_PLAIN;
        goto out;
    }
    if (qc_w_offset_into_cluster(w, l2_offset))
        return qc_w_corruption(w, true, "L2 table offset %#llx unaligned (L1 index: %#llx)",
                               (unsigned long long)l2_offset, (unsigned long long)l1_index);
    r = l2_load(w, offset, l2_offset, &slice);
    if (r < 0)
        return r;
    l2_index = qc_w_l2_slice_index(w, offset);
    sc_index = qc_w_sc_index(w, offset);
    entry = qc_w_get_l2_entry(w, slice, l2_index);
    bitmap = qc_w_get_l2_bitmap(w, slice, l2_index);
    *type = qc_w_subcluster_type(w, entry, bitmap, sc_index);
    if (w->version < 3 && (*type == QC_SCT_ZERO_PLAIN || *type == QC_SCT_ZERO_ALLOC)) {
        qc_cache_put(&w->l2c, &slice);
        return qc_w_corruption(w, true, "Zero cluster entry found in pre-v3 image "
                               "(L2 offset: %#llx, L2 index: %#x)",
                               (unsigned long long)l2_offset, l2_index);
    }
    switch (*type) {
    case QC_SCT_COMPRESSED:
        *host = entry & ((1ull << 62) - 1);
        break;
    case QC_SCT_ZERO_ALLOC:
    case QC_SCT_NORMAL:
    case QC_SCT_UNALLOCATED_ALLOC: {
        uint64_t hc = entry & QC_L2E_OFFSET_MASK;
        *host = hc + in_cluster;
        if (qc_w_offset_into_cluster(w, hc)) {
            qc_cache_put(&w->l2c, &slice);
            return qc_w_corruption(w, true, "Cluster allocation offset %#llx unaligned "
                                   "(L2 offset: %#llx, L2 index: %#x)",
                                   (unsigned long long)hc, (unsigned long long)l2_offset,
                                   l2_index);
        }
        break;
    }
    default:
        break;
    }
    sc = count_contiguous_subclusters(w, (unsigned)qc_w_size_to_clusters(w, needed), sc_index,
                                      slice, &l2_index);
    qc_cache_put(&w->l2c, &slice);
    if (sc < 0)
        return qc_w_corruption(w, true, "Invalid cluster entry found  (L2 offset: %#llx, "
                               "L2 index: %#x)", (unsigned long long)l2_offset, l2_index);
    available = ((uint64_t)sc + sc_index) << w->subcluster_bits;
out:
    if (available > needed)
        available = needed;
    *bytes = available - in_cluster;
    return 0;
}

/* --- allocation for a write --- */

static bool cluster_needs_new_alloc(const struct qc_writer *w, uint64_t entry)
{
    switch (qc_w_cluster_type(w, entry)) {
    case QC_CT_NORMAL:
    case QC_CT_ZERO_ALLOC:
        return !(entry & QC_OFLAG_COPIED);
    default:
        return true;
    }
}

static unsigned count_single_write_clusters(const struct qc_writer *w, unsigned nb,
                                            const uint8_t *slice, unsigned l2_index,
                                            bool new_alloc)
{
    uint64_t expected = qc_w_get_l2_entry(w, slice, l2_index) & QC_L2E_OFFSET_MASK;
    unsigned i;

    for (i = 0; i < nb; i++) {
        uint64_t entry = qc_w_get_l2_entry(w, slice, l2_index + i);
        if (cluster_needs_new_alloc(w, entry) != new_alloc)
            break;
        if (!new_alloc) {
            if (expected != (entry & QC_L2E_OFFSET_MASK))
                break;
            expected += w->cluster_size;
        }
    }
    return i;
}

static int calculate_l2_meta(struct qc_writer *w, uint64_t host_cluster, uint64_t guest,
                             uint64_t bytes, const uint8_t *slice, struct qc_l2meta **m,
                             bool keep_old)
{
    unsigned l2_index = qc_w_l2_slice_index(w, guest);
    unsigned cow_start_to = (unsigned)qc_w_offset_into_cluster(w, guest);
    unsigned cow_end_from = cow_start_to + (unsigned)bytes;
    unsigned nb_clusters = (unsigned)qc_w_size_to_clusters(w, cow_end_from);
    unsigned cow_start_from, cow_end_to, sc_index;
    enum qc_subcluster_type type = QC_SCT_NORMAL;
    bool skip_cow = keep_old;
    uint64_t entry, bitmap;
    struct qc_l2meta *nm;

    for (unsigned i = 0; i < nb_clusters; i++) {
        entry = qc_w_get_l2_entry(w, slice, l2_index + i);
        bitmap = qc_w_get_l2_bitmap(w, slice, l2_index + i);
        if (skip_cow) {
            unsigned from = cow_start_to > (i << w->cluster_bits) ? cow_start_to : i << w->cluster_bits;
            unsigned to = cow_end_from < ((i + 1) << w->cluster_bits) ? cow_end_from
                                                                      : (i + 1) << w->cluster_bits;
            unsigned first_sc = (from >> w->subcluster_bits) & (w->subclusters - 1);
            unsigned last_sc = ((to - 1) >> w->subcluster_bits) & (w->subclusters - 1);
            int cnt = subcluster_range_type(w, entry, bitmap, first_sc, &type);
            if (type != QC_SCT_NORMAL || (int)first_sc + cnt <= (int)last_sc)
                skip_cow = false;
        } else {
            type = qc_w_subcluster_type(w, entry, bitmap, 0);
        }
        if (type == QC_SCT_INVALID) {
            uint64_t l1i = qc_w_l1_index(w, guest);
            return qc_w_corruption(w, true, "Invalid cluster entry found (L2 offset: %#llx, "
                                   "L2 index: %#x)",
                                   (unsigned long long)(w->l1[l1i] & QC_L1E_OFFSET_MASK),
                                   l2_index + i);
        }
    }
    if (skip_cow)
        return 0;

    entry = qc_w_get_l2_entry(w, slice, l2_index);
    bitmap = qc_w_get_l2_bitmap(w, slice, l2_index);
    sc_index = qc_w_sc_index(w, guest);
    type = qc_w_subcluster_type(w, entry, bitmap, sc_index);
    if (!keep_old) {
        switch (type) {
        case QC_SCT_COMPRESSED:
            cow_start_from = 0;
            break;
        case QC_SCT_NORMAL:
        case QC_SCT_ZERO_ALLOC:
        case QC_SCT_UNALLOCATED_ALLOC:
            if (w->extl2) {
                unsigned first = ctz32((uint32_t)(bitmap & L2_BITMAP_ALL_ALLOC));
                cow_start_from = (sc_index < first ? sc_index : first) << w->subcluster_bits;
            } else {
                cow_start_from = 0;
            }
            break;
        default:   /* ZERO_PLAIN, UNALLOCATED_PLAIN */
            cow_start_from = sc_index << w->subcluster_bits;
            break;
        }
    } else {
        cow_start_from = type == QC_SCT_NORMAL ? cow_start_to : sc_index << w->subcluster_bits;
    }

    l2_index += nb_clusters - 1;
    entry = qc_w_get_l2_entry(w, slice, l2_index);
    bitmap = qc_w_get_l2_bitmap(w, slice, l2_index);
    sc_index = qc_w_sc_index(w, guest + bytes - 1);
    type = qc_w_subcluster_type(w, entry, bitmap, sc_index);
    if (!keep_old) {
        uint64_t cs = w->cluster_size;
        switch (type) {
        case QC_SCT_COMPRESSED:
            cow_end_to = (unsigned)((cow_end_from + cs - 1) & ~(cs - 1));
            break;
        case QC_SCT_NORMAL:
        case QC_SCT_ZERO_ALLOC:
        case QC_SCT_UNALLOCATED_ALLOC:
            cow_end_to = (unsigned)((cow_end_from + cs - 1) & ~(cs - 1));
            if (w->extl2) {
                unsigned trailing = clz32((uint32_t)(bitmap & L2_BITMAP_ALL_ALLOC));
                unsigned after = w->subclusters - sc_index - 1;
                cow_end_to -= (after < trailing ? after : trailing) << w->subcluster_bits;
            }
            break;
        default:
            cow_end_to = (unsigned)((cow_end_from + w->subcluster_size - 1) &
                                    ~(w->subcluster_size - 1));
            break;
        }
    } else {
        cow_end_to = type == QC_SCT_NORMAL
                     ? cow_end_from
                     : (unsigned)((cow_end_from + w->subcluster_size - 1) & ~(w->subcluster_size - 1));
    }

    nm = calloc(1, sizeof *nm);
    if (!nm)
        return QC_E_NOMEM;
    nm->next = *m;
    nm->alloc_offset = host_cluster;
    nm->offset = qc_w_start_of_cluster(w, guest);
    nm->nb_clusters = nb_clusters;
    nm->keep_old = keep_old;
    nm->cow_start.offset = cow_start_from;
    nm->cow_start.nb_bytes = cow_start_to - cow_start_from;
    nm->cow_end.offset = cow_end_from;
    nm->cow_end.nb_bytes = cow_end_to - cow_end_from;
    *m = nm;
    return 0;
}

static int handle_copied(struct qc_writer *w, uint64_t guest, uint64_t *host,
                         uint64_t *bytes, struct qc_l2meta **m)
{
    uint64_t nb = qc_w_size_to_clusters(w, qc_w_offset_into_cluster(w, guest) + *bytes);
    uint64_t entry, cluster_offset;
    unsigned l2_index = qc_w_l2_slice_index(w, guest), keep;
    uint8_t *slice;
    int r;

    if (nb > w->l2_slice_size - l2_index)
        nb = w->l2_slice_size - l2_index;
    if (nb > QC_REQUEST_MAX_BYTES >> w->cluster_bits)
        nb = QC_REQUEST_MAX_BYTES >> w->cluster_bits;
    r = get_cluster_table(w, guest, &slice, &l2_index);
    if (r < 0)
        return r;
    entry = qc_w_get_l2_entry(w, slice, l2_index);
    cluster_offset = entry & QC_L2E_OFFSET_MASK;
    if (!cluster_needs_new_alloc(w, entry)) {
        if (qc_w_offset_into_cluster(w, cluster_offset)) {
            r = qc_w_corruption(w, true, "%s cluster offset %#llx unaligned (guest offset: %#llx)",
                                (entry & QC_OFLAG_ZERO) ? "Preallocated zero" : "Data",
                                (unsigned long long)cluster_offset, (unsigned long long)guest);
            goto out;
        }
        if (*host != QC_INV_OFFSET && cluster_offset != *host) {
            *bytes = 0;
            r = 0;
            goto out;
        }
        keep = count_single_write_clusters(w, (unsigned)nb, slice, l2_index, false);
        {
            uint64_t lim = (uint64_t)keep * w->cluster_size - qc_w_offset_into_cluster(w, guest);
            if (*bytes > lim)
                *bytes = lim;
        }
        r = calculate_l2_meta(w, cluster_offset, guest, *bytes, slice, m, true);
        if (r < 0)
            goto out;
        r = 1;
    } else {
        r = 0;
    }
out:
    qc_cache_put(&w->l2c, &slice);
    if (r > 0)
        *host = cluster_offset + qc_w_offset_into_cluster(w, guest);
    return r;
}

static int handle_alloc(struct qc_writer *w, uint64_t guest, uint64_t *host,
                        uint64_t *bytes, struct qc_l2meta **m)
{
    uint64_t nb = qc_w_size_to_clusters(w, qc_w_offset_into_cluster(w, guest) + *bytes);
    uint64_t alloc_offset, requested, avail, nb_bytes;
    unsigned l2_index = qc_w_l2_slice_index(w, guest);
    uint8_t *slice;
    int r;

    if (nb > w->l2_slice_size - l2_index)
        nb = w->l2_slice_size - l2_index;
    if (nb > QC_REQUEST_MAX_BYTES >> w->cluster_bits)
        nb = QC_REQUEST_MAX_BYTES >> w->cluster_bits;
    r = get_cluster_table(w, guest, &slice, &l2_index);
    if (r < 0)
        return r;
    nb = count_single_write_clusters(w, (unsigned)nb, slice, l2_index, true);
    if (nb == 0) {
        r = -EIO;   /* cannot happen: handle_copied found nothing in place */
        goto out;
    }
    if (*host == QC_INV_OFFSET) {
        int64_t off = qc_alloc_clusters(w, nb * w->cluster_size);
        if (off < 0) {
            r = (int)off;
            goto out;
        }
        alloc_offset = (uint64_t)off;
    } else {
        int64_t n;
        alloc_offset = qc_w_start_of_cluster(w, *host);
        n = qc_alloc_clusters_at(w, alloc_offset, nb);
        if (n < 0) {
            r = (int)n;
            goto out;
        }
        nb = (uint64_t)n;
    }
    if (nb == 0) {
        *bytes = 0;
        r = 0;
        goto out;
    }
    requested = *bytes + qc_w_offset_into_cluster(w, guest);
    avail = nb << w->cluster_bits;
    nb_bytes = requested < avail ? requested : avail;
    *host = alloc_offset + qc_w_offset_into_cluster(w, guest);
    if (*bytes > nb_bytes - qc_w_offset_into_cluster(w, guest))
        *bytes = nb_bytes - qc_w_offset_into_cluster(w, guest);
    r = calculate_l2_meta(w, alloc_offset, guest, *bytes, slice, m, false);
    if (r < 0)
        goto out;
    r = 1;
out:
    qc_cache_put(&w->l2c, &slice);
    return r;
}

int qc_alloc_host_offset(struct qc_writer *w, uint64_t offset, uint64_t *bytes,
                         uint64_t *host, struct qc_l2meta **m)
{
    uint64_t start = offset, remaining = *bytes, cluster_offset = QC_INV_OFFSET, cur = 0;
    int r;

    *host = QC_INV_OFFSET;
    *m = NULL;
    for (;;) {
        if (*host == QC_INV_OFFSET && cluster_offset != QC_INV_OFFSET)
            *host = cluster_offset;
        start += cur;
        remaining -= cur;
        if (cluster_offset != QC_INV_OFFSET)
            cluster_offset += cur;
        if (remaining == 0)
            break;
        cur = remaining;
        r = handle_copied(w, start, &cluster_offset, &cur, m);
        if (r < 0)
            return r;
        if (r)
            continue;
        if (cur == 0)
            break;
        r = handle_alloc(w, start, &cluster_offset, &cur, m);
        if (r < 0)
            return r;
        if (r)
            continue;
        break;
    }
    *bytes -= remaining;
    return *bytes ? 0 : -EIO;
}

/* --- entering new clusters --- */

/* One copy-on-write region, checked for overlaps as QEMU's
 * do_perform_cow_write does. */
static int cow_write(struct qc_writer *w, uint64_t host, const uint8_t *buf, unsigned len)
{
    int r = qc_w_pre_write(w, 0, host, len);
    return r < 0 ? r : qc_file_write(&w->img.file, host, buf, len, QC_EV_COW_WRITE);
}

static int perform_cow(struct qc_writer *w, struct qc_l2meta *m)
{
    struct qc_cow_region *start = &m->cow_start, *end = &m->cow_end;
    unsigned data_bytes = end->offset - (start->offset + start->nb_bytes);
    size_t bufsize;
    uint8_t *buf, *end_buf;
    bool merge_reads;
    int r = 0;

    if ((start->nb_bytes == 0 && end->nb_bytes == 0) || m->skip_cow)
        return 0;
    merge_reads = start->nb_bytes && end->nb_bytes && data_bytes <= 16384;
    bufsize = merge_reads ? (size_t)start->nb_bytes + data_bytes + end->nb_bytes
                          : (size_t)start->nb_bytes + end->nb_bytes;
    buf = malloc(bufsize ? bufsize : 1);
    if (!buf)
        return QC_E_NOMEM;
    end_buf = buf + bufsize - end->nb_bytes;

    /* the old content, read through the image as it still is */
    if (merge_reads) {
        qc_file_event(&w->img.file, QC_EV_COW_READ);
        r = qc_w_preadv(w, m->offset + start->offset, buf, bufsize);
    } else {
        if (start->nb_bytes) {
            qc_file_event(&w->img.file, QC_EV_COW_READ);
            r = qc_w_preadv(w, m->offset + start->offset, buf, start->nb_bytes);
        }
        if (r == 0 && end->nb_bytes) {
            qc_file_event(&w->img.file, QC_EV_COW_READ);
            r = qc_w_preadv(w, m->offset + end->offset, end_buf, end->nb_bytes);
        }
    }
    if (r < 0)
        goto out;

    if (m->data) {
        /* head, guest data and tail in one write */
        size_t total = (size_t)start->nb_bytes + data_bytes + end->nb_bytes;
        uint8_t *all = malloc(total);
        if (!all) {
            r = QC_E_NOMEM;
            goto out;
        }
        memcpy(all, buf, start->nb_bytes);
        memcpy(all + start->nb_bytes, m->data, data_bytes);
        memcpy(all + start->nb_bytes + data_bytes, end_buf, end->nb_bytes);
        r = qc_w_pre_write(w, 0, m->alloc_offset + start->offset, total);
        if (r == 0) {
            qc_file_event(&w->img.file, QC_EV_WRITE_AIO);
            r = qc_file_write(&w->img.file, m->alloc_offset + start->offset, all, total,
                              QC_EV_COW_WRITE);
        }
        free(all);
    } else {
        if (start->nb_bytes)
            r = cow_write(w, m->alloc_offset + start->offset, buf, start->nb_bytes);
        if (r == 0 && end->nb_bytes)
            r = cow_write(w, m->alloc_offset + end->offset, end_buf, end->nb_bytes);
    }
out:
    /* the copied data must be stable before an L2 entry points at it */
    if (r == 0)
        qc_cache_depends_on_flush(&w->l2c);
    free(buf);
    return r;
}

int qc_link_l2(struct qc_writer *w, struct qc_l2meta *m)
{
    uint64_t *old = calloc(m->nb_clusters, sizeof *old);
    unsigned l2_index, j = 0;
    uint8_t *slice;
    int r;

    if (!old)
        return QC_E_NOMEM;
    r = perform_cow(w, m);
    if (r < 0)
        goto out;
    if (w->use_lazy_refcounts) {
        r = qc_w_mark_dirty(w);
        if (r < 0)
            goto out;
    }
    if (qc_w_need_accurate_refcounts(w) && !w->opt.unsafe_order) {
        r = qc_cache_set_dependency(&w->l2c, &w->rbc);
        if (r < 0)
            goto out;
    }
    r = get_cluster_table(w, m->offset, &slice, &l2_index);
    if (r < 0)
        goto out;
    qc_cache_mark_dirty(&w->l2c, slice);
    for (unsigned i = 0; i < m->nb_clusters; i++) {
        uint64_t off = m->alloc_offset + ((uint64_t)i << w->cluster_bits);
        uint64_t e = qc_w_get_l2_entry(w, slice, l2_index + i);
        if (e != 0)
            old[j++] = e;
        qc_w_set_l2_entry(w, slice, l2_index + i, off | QC_OFLAG_COPIED);
        if (w->extl2 && !m->prealloc) {
            uint64_t bitmap = qc_w_get_l2_bitmap(w, slice, l2_index + i);
            uint64_t from = m->cow_start.offset, to = (uint64_t)m->cow_end.offset + m->cow_end.nb_bytes;
            uint64_t cfrom = (uint64_t)i << w->cluster_bits, cto = (uint64_t)(i + 1) << w->cluster_bits;
            unsigned first, last;
            if (from < cfrom)
                from = cfrom;
            if (to > cto)
                to = cto;
            first = qc_w_sc_index(w, from);
            last = qc_w_sc_index(w, to - 1);
            bitmap |= sub_alloc_range(first, last + 1);
            bitmap &= ~sub_zero_range(first, last + 1);
            qc_w_set_l2_bitmap(w, slice, l2_index + i, bitmap);
        }
    }
    qc_cache_put(&w->l2c, &slice);
    /* a copy on write: the old clusters lose a reference (not discarded,
     * a later write reuses them) */
    if (!m->keep_old)
        for (unsigned i = 0; i < j; i++)
            qc_free_any_cluster(w, old[i], QC_DISCARD_NEVER);
    r = 0;
out:
    free(old);
    return r;
}

void qc_alloc_abort(struct qc_writer *w, struct qc_l2meta *m)
{
    if (!m->keep_old)
        qc_free_clusters(w, m->alloc_offset, (uint64_t)m->nb_clusters << w->cluster_bits,
                         QC_DISCARD_NEVER);
}

/* --- compressed clusters --- */

int qc_alloc_compressed(struct qc_writer *w, uint64_t offset, uint64_t size, uint64_t *host)
{
    unsigned l2_index;
    uint8_t *slice;
    uint64_t entry, desc;
    int64_t coff;
    int r;

    r = get_cluster_table(w, offset, &slice, &l2_index);
    if (r < 0)
        return r;
    entry = qc_w_get_l2_entry(w, slice, l2_index);
    if (entry & QC_L2E_OFFSET_MASK) {
        qc_cache_put(&w->l2c, &slice);
        return -EIO;   /* compression never overwrites */
    }
    coff = qc_alloc_bytes(w, size);
    if (coff < 0) {
        qc_cache_put(&w->l2c, &slice);
        return (int)coff;
    }
    if (!qc_compressed_encode(&w->cgeom, (uint64_t)coff, size, &desc)) {
        qc_cache_put(&w->l2c, &slice);
        return -EIO;
    }
    qc_file_event(&w->img.file, QC_EV_L2_UPDATE_COMPRESSED);
    qc_cache_mark_dirty(&w->l2c, slice);
    qc_w_set_l2_entry(w, slice, l2_index, desc | QC_OFLAG_COMPRESSED);
    qc_w_set_l2_bitmap(w, slice, l2_index, 0);
    qc_cache_put(&w->l2c, &slice);
    *host = (uint64_t)coff;
    return 0;
}

/* --- discard and zeroing --- */

static bool cluster_is_allocated(enum qc_cluster_type t)
{
    return t == QC_CT_COMPRESSED || t == QC_CT_NORMAL || t == QC_CT_ZERO_ALLOC;
}

static int64_t discard_in_l2_slice(struct qc_writer *w, uint64_t offset, uint64_t nb,
                                   enum qc_discard_type type, bool full)
{
    unsigned l2_index;
    uint8_t *slice;
    int r;

    r = get_cluster_table(w, offset, &slice, &l2_index);
    if (r < 0)
        return r;
    if (nb > w->l2_slice_size - l2_index)
        nb = w->l2_slice_size - l2_index;
    for (unsigned i = 0; i < nb; i++) {
        uint64_t oe = qc_w_get_l2_entry(w, slice, l2_index + i);
        uint64_t ob = qc_w_get_l2_bitmap(w, slice, l2_index + i);
        uint64_t ne = oe, nbm = ob;
        enum qc_cluster_type ct = qc_w_cluster_type(w, oe);

        if (full) {
            ne = nbm = 0;
        } else if (w->backing || cluster_is_allocated(ct)) {
            if (w->extl2) {
                ne = 0;
                nbm = L2_BITMAP_ALL_ZEROES;
            } else {
                ne = w->version >= 3 ? QC_OFLAG_ZERO : 0;
            }
        }
        if (oe == ne && ob == nbm)
            continue;
        qc_cache_mark_dirty(&w->l2c, slice);
        qc_w_set_l2_entry(w, slice, l2_index + i, ne);
        qc_w_set_l2_bitmap(w, slice, l2_index + i, nbm);
        qc_free_any_cluster(w, oe, type);
    }
    qc_cache_put(&w->l2c, &slice);
    return (int64_t)nb;
}

int qc_cluster_discard(struct qc_writer *w, uint64_t offset, uint64_t bytes,
                       enum qc_discard_type type, bool full)
{
    uint64_t nb = qc_w_size_to_clusters(w, bytes);
    int r = 0;

    w->cache_discards = true;
    while (nb > 0) {
        int64_t n = discard_in_l2_slice(w, offset, nb, type, full);
        if (n < 0) {
            r = (int)n;
            break;
        }
        nb -= (uint64_t)n;
        offset += (uint64_t)n * w->cluster_size;
    }
    w->cache_discards = false;
    qc_process_discards(w, r);
    return r;
}

static int64_t zero_in_l2_slice(struct qc_writer *w, uint64_t offset, uint64_t nb, bool may_unmap)
{
    unsigned l2_index;
    uint8_t *slice;
    int r;

    r = get_cluster_table(w, offset, &slice, &l2_index);
    if (r < 0)
        return r;
    if (nb > w->l2_slice_size - l2_index)
        nb = w->l2_slice_size - l2_index;
    for (unsigned i = 0; i < nb; i++) {
        uint64_t oe = qc_w_get_l2_entry(w, slice, l2_index + i);
        uint64_t ob = qc_w_get_l2_bitmap(w, slice, l2_index + i);
        enum qc_cluster_type ct = qc_w_cluster_type(w, oe);
        bool unmap = ct == QC_CT_COMPRESSED || (may_unmap && cluster_is_allocated(ct));
        uint64_t ne = unmap ? 0 : oe, nbm = ob;

        if (w->extl2)
            nbm = L2_BITMAP_ALL_ZEROES;
        else
            ne |= QC_OFLAG_ZERO;
        if (oe == ne && ob == nbm)
            continue;
        qc_cache_mark_dirty(&w->l2c, slice);
        qc_w_set_l2_entry(w, slice, l2_index + i, ne);
        qc_w_set_l2_bitmap(w, slice, l2_index + i, nbm);
        if (unmap)
            qc_free_any_cluster(w, oe, QC_DISCARD_REQUEST);
    }
    qc_cache_put(&w->l2c, &slice);
    return (int64_t)nb;
}

static int zero_l2_subclusters(struct qc_writer *w, uint64_t offset, unsigned nb_sc)
{
    unsigned l2_index, sc = qc_w_sc_index(w, offset);
    uint64_t ob, nbm;
    uint8_t *slice;
    int r;

    r = get_cluster_table(w, offset, &slice, &l2_index);
    if (r < 0)
        return r;
    switch (qc_w_cluster_type(w, qc_w_get_l2_entry(w, slice, l2_index))) {
    case QC_CT_COMPRESSED:
        r = -ENOTSUP;   /* a compressed cluster cannot be zeroed in part */
        goto out;
    case QC_CT_NORMAL:
    case QC_CT_UNALLOCATED:
        break;
    default:
        r = -EIO;
        goto out;
    }
    ob = nbm = qc_w_get_l2_bitmap(w, slice, l2_index);
    nbm |= sub_zero_range(sc, sc + nb_sc);
    nbm &= ~sub_alloc_range(sc, sc + nb_sc);
    if (ob != nbm) {
        qc_w_set_l2_bitmap(w, slice, l2_index, nbm);
        qc_cache_mark_dirty(&w->l2c, slice);
    }
    r = 0;
out:
    qc_cache_put(&w->l2c, &slice);
    return r;
}

int qc_subcluster_zeroize(struct qc_writer *w, uint64_t offset, uint64_t bytes, bool may_unmap)
{
    uint64_t end = offset + bytes, head, tail, nb;
    int r = 0;

    if (w->version < 3) {
        if (!w->backing)
            return qc_cluster_discard(w, offset, bytes, QC_DISCARD_REQUEST, false);
        return -ENOTSUP;
    }
    {
        uint64_t up = (offset + w->cluster_size - 1) & ~(w->cluster_size - 1);
        head = (end < up ? end : up) - offset;
    }
    offset += head;
    if (end >= w->size) {
        tail = 0;
    } else {
        uint64_t soc = qc_w_start_of_cluster(w, end);
        tail = end - (offset > soc ? offset : soc);
    }
    end -= tail;

    w->cache_discards = true;
    if (head) {
        r = zero_l2_subclusters(w, offset - head,
                                (unsigned)((head + w->subcluster_size - 1) >> w->subcluster_bits));
        if (r < 0)
            goto fail;
    }
    nb = qc_w_size_to_clusters(w, end - offset);
    while (nb > 0) {
        int64_t n = zero_in_l2_slice(w, offset, nb, may_unmap);
        if (n < 0) {
            r = (int)n;
            goto fail;
        }
        nb -= (uint64_t)n;
        offset += (uint64_t)n * w->cluster_size;
    }
    if (tail) {
        r = zero_l2_subclusters(w, end, (unsigned)((tail + w->subcluster_size - 1) >> w->subcluster_bits));
        if (r < 0)
            goto fail;
    }
    r = 0;
fail:
    w->cache_discards = false;
    qc_process_discards(w, r);
    return r;
}
