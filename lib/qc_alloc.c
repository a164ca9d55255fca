/*
 * Refcounts and cluster allocation as QEMU 7.2 does them
 * (docs/qemu-behaviour.md §4.3-§4.5, §4.11): first fit from a per-open
 * cursor, refcount blocks allocated on demand (self-describing when they
 * can be), reftable growth into new self-describing structures at the end
 * of the covered area, byte allocation for compressed clusters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_refcount.h"
#include "qc_writer_int.h"

static int update_refcount(struct qc_writer *w, uint64_t offset, uint64_t length,
                           uint64_t addend, bool decrease, enum qc_discard_type type);

int qc_refcount_load(struct qc_writer *w)
{
    const struct qc_header *h = &w->img.hdr;
    uint64_t n = (uint64_t)h->refcount_table_clusters << (w->cluster_bits - 3);
    uint8_t *raw;
    int r;

    w->reftable_size = n;
    w->reftable_offset = h->refcount_table_offset;
    w->reftable = calloc(n ? n : 1, sizeof *w->reftable);
    if (!w->reftable)
        return QC_E_NOMEM;
    if (n == 0)
        return 0;
    raw = malloc(n * 8);
    if (!raw)
        return QC_E_NOMEM;
    qc_file_event(&w->img.file, QC_EV_REFTABLE_LOAD);
    r = (int)qc_file_read_padded(&w->img.file, w->reftable_offset, raw, n * 8);
    if (r >= 0) {
        for (uint64_t i = 0; i < n; i++)
            w->reftable[i] = qc_be64(raw + 8 * i);
        r = 0;
    }
    free(raw);
    w->max_reftable_index = 0;
    for (uint64_t i = n; i-- > 1;) {
        if (w->reftable[i] & QC_REFT_OFFSET_MASK) {
            w->max_reftable_index = i;
            break;
        }
    }
    return r;
}

static void update_max_reftable_index(struct qc_writer *w)
{
    uint64_t i = w->reftable_size ? w->reftable_size - 1 : 0;
    while (i > 0 && !(w->reftable[i] & QC_REFT_OFFSET_MASK))
        i--;
    w->max_reftable_index = i;
}

int qc_get_refcount(struct qc_writer *w, uint64_t cluster_index, uint64_t *refcount)
{
    uint64_t ti = cluster_index >> w->refcount_block_bits;
    uint64_t rb;
    uint8_t *block;
    int r;

    *refcount = 0;
    if (ti >= w->reftable_size)
        return 0;
    rb = w->reftable[ti] & QC_REFT_OFFSET_MASK;
    if (!rb)
        return 0;
    if (qc_w_offset_into_cluster(w, rb))
        return qc_w_corruption(w, true, "Refblock offset %#llx unaligned (reftable index: %#llx)",
                               (unsigned long long)rb, (unsigned long long)ti);
    r = qc_cache_get(&w->rbc, rb, &block);
    if (r < 0)
        return r;
    *refcount = qc_refblock_get(block, w->refcount_order,
                                cluster_index & (w->refcount_block_size - 1));
    qc_cache_put(&w->rbc, &block);
    return 0;
}

static bool in_same_refcount_block(const struct qc_writer *w, uint64_t a, uint64_t b)
{
    unsigned shift = w->cluster_bits + w->refcount_block_bits;
    return (a >> shift) == (b >> shift);
}

/* Finds the first run of free clusters at or after the cursor; refcounts
 * are not changed.  Clusters beyond the reftable count as free. */
static int64_t alloc_clusters_noref(struct qc_writer *w, uint64_t size, uint64_t max)
{
    uint64_t n = qc_w_size_to_clusters(w, size), i, rc;
    int r;

    if (w->cache_discards)
        qc_process_discards(w, 0);
retry:
    for (i = 0; i < n; i++) {
        uint64_t idx = w->free_cluster_index++;
        r = qc_get_refcount(w, idx, &rc);
        if (r < 0)
            return r;
        if (rc != 0)
            goto retry;
    }
    if (w->free_cluster_index > 0 && w->free_cluster_index - 1 > (max >> w->cluster_bits))
        return -EFBIG;
    return (int64_t)((w->free_cluster_index - n) << w->cluster_bits);
}

/* The new-reftable path (QEMU's qcow2_refcount_area): refblocks covering
 * themselves and the new table, placed from START on, then the table, then
 * the header switch.  Returns the end of the new structures. */
static int64_t refcount_area(struct qc_writer *w, uint64_t start, uint64_t additional,
                             bool exact, uint64_t new_index, uint64_t new_block)
{
    uint64_t cs = w->cluster_size, total, table_size, table_clusters, area_index;
    uint64_t additional_blocks = 0, table_offset, end_offset, block_offset, i;
    uint64_t *nt;
    uint8_t *raw = NULL, hdr[12];
    int r;

    qc_refcount_metadata_size(start / cs + additional, cs, w->refcount_order, !exact, &total);
    if (total > QC_MAX_REFTABLE_SIZE)
        return -EFBIG;
    area_index = (start / cs) / w->refcount_block_size;
    table_size = exact ? total : total + (total + 1) / 2;
    table_size = (table_size + cs / 8 - 1) / (cs / 8) * (cs / 8);
    table_clusters = table_size * 8 / cs;
    if (table_size > QC_MAX_REFTABLE_SIZE)
        return -EFBIG;
    nt = calloc(table_size, sizeof *nt);
    if (!nt)
        return QC_E_NOMEM;
    if (table_size > w->max_reftable_index)
        memcpy(nt, w->reftable, (w->max_reftable_index + 1) * 8);
    else
        memcpy(nt, w->reftable, table_size * 8);
    if (new_block)
        nt[new_index] = new_block;
    for (i = area_index; i < total; i++)
        if (!nt[i])
            additional_blocks++;
    table_offset = start + additional_blocks * cs;
    end_offset = table_offset + table_clusters * cs;

    block_offset = start;
    for (i = area_index; i < total; i++) {
        uint8_t *block;
        uint64_t first;

        if (nt[i]) {
            r = qc_cache_get(&w->rbc, nt[i], &block);
            if (r < 0)
                goto fail;
        } else {
            r = qc_cache_get_empty(&w->rbc, block_offset, &block);
            if (r < 0)
                goto fail;
            memset(block, 0, cs);
            qc_cache_mark_dirty(&w->rbc, block);
            nt[i] = block_offset;
            block_offset += cs;
        }
        first = i * w->refcount_block_size * cs;
        if (first < end_offset) {
            uint64_t j = first < start ? (start - first) / cs : 0;
            uint64_t end = (end_offset - first) / cs;
            if (end > w->refcount_block_size)
                end = w->refcount_block_size;
            for (; j < end; j++)
                qc_refblock_set(block, w->refcount_order, j, 1);
            qc_cache_mark_dirty(&w->rbc, block);
        }
        qc_cache_put(&w->rbc, &block);
    }

    qc_file_event(&w->img.file, QC_EV_REFBLOCK_ALLOC_WRITE_BLOCKS);
    r = qc_cache_flush(&w->rbc);
    if (r < 0)
        goto fail;

    raw = calloc(table_size, 8);
    if (!raw) {
        r = QC_E_NOMEM;
        goto fail;
    }
    for (i = 0; i < total; i++)
        qc_put_be64(raw + 8 * i, nt[i]);
    r = qc_file_write(&w->img.file, table_offset, raw, table_size * 8,
                      QC_EV_REFBLOCK_ALLOC_WRITE_TABLE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    free(raw);
    if (r < 0)
        goto fail;

    qc_put_be64(hdr, table_offset);
    qc_put_be32(hdr + 8, (uint32_t)table_clusters);
    r = qc_file_write(&w->img.file, 48, hdr, sizeof hdr, QC_EV_REFBLOCK_ALLOC_SWITCH_TABLE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    if (r < 0)
        goto fail;

    {
        uint64_t old_offset = w->reftable_offset, old_size = w->reftable_size;
        free(w->reftable);
        w->reftable = nt;
        w->reftable_size = table_size;
        w->reftable_offset = table_offset;
        update_max_reftable_index(w);
        qc_free_clusters(w, old_offset, old_size * 8, QC_DISCARD_OTHER);
    }
    return (int64_t)end_offset;

fail:
    free(nt);
    return r;
}

/* The refcount block for CLUSTER_INDEX, allocating it (and growing the
 * reftable) when there is none.  After an allocation returns -EAGAIN: the
 * new block may sit where the caller meant to put its clusters. */
static int alloc_refcount_block(struct qc_writer *w, uint64_t cluster_index, uint8_t **block)
{
    uint64_t ti = cluster_index >> w->refcount_block_bits;
    int64_t new_block;
    int r;

    qc_file_event(&w->img.file, QC_EV_REFBLOCK_ALLOC);
    if (ti < w->reftable_size) {
        uint64_t rb = w->reftable[ti] & QC_REFT_OFFSET_MASK;
        if (rb) {
            if (qc_w_offset_into_cluster(w, rb))
                return qc_w_corruption(w, true,
                                       "Refblock offset %#llx unaligned (reftable index: %#llx)",
                                       (unsigned long long)rb, (unsigned long long)ti);
            qc_file_event(&w->img.file, QC_EV_REFBLOCK_LOAD);
            return qc_cache_get(&w->rbc, rb, block);
        }
    }

    *block = NULL;
    /* the reftable is about to change, and it may depend on L2 tables */
    r = qc_cache_flush(&w->l2c);
    if (r < 0)
        return r;
    new_block = alloc_clusters_noref(w, w->cluster_size, INT64_MAX);
    if (new_block < 0)
        return (int)new_block;
    if (new_block == 0)
        return qc_w_corruption(w, true, "Preventing invalid allocation of refcount block at offset 0");

    if (in_same_refcount_block(w, (uint64_t)new_block, cluster_index << w->cluster_bits)) {
        r = qc_cache_get_empty(&w->rbc, (uint64_t)new_block, block);
        if (r < 0)
            goto fail;
        memset(*block, 0, w->cluster_size);
        qc_refblock_set(*block, w->refcount_order,
                        ((uint64_t)new_block >> w->cluster_bits) & (w->refcount_block_size - 1), 1);
    } else {
        /* described by another block: at most two levels of recursion */
        r = update_refcount(w, (uint64_t)new_block, w->cluster_size, 1, false, QC_DISCARD_NEVER);
        if (r < 0)
            goto fail;
        r = qc_cache_flush(&w->rbc);
        if (r < 0)
            goto fail;
        r = qc_cache_get_empty(&w->rbc, (uint64_t)new_block, block);
        if (r < 0)
            goto fail;
        memset(*block, 0, w->cluster_size);
    }

    qc_file_event(&w->img.file, QC_EV_REFBLOCK_ALLOC_WRITE);
    qc_cache_mark_dirty(&w->rbc, *block);
    r = qc_cache_flush(&w->rbc);
    if (r < 0)
        goto fail;

    if (ti < w->reftable_size) {
        uint8_t be[8];
        qc_put_be64(be, (uint64_t)new_block);
        r = qc_file_write(&w->img.file, w->reftable_offset + ti * 8, be, 8,
                          QC_EV_REFBLOCK_ALLOC_HOOKUP);
        if (r == 0)
            r = qc_file_flush(&w->img.file);
        if (r < 0)
            goto fail;
        w->reftable[ti] = (uint64_t)new_block;
        if (ti > w->max_reftable_index)
            w->max_reftable_index = ti;
        return -EAGAIN;
    }

    qc_cache_put(&w->rbc, block);
    qc_file_event(&w->img.file, QC_EV_REFTABLE_GROW);
    {
        uint64_t a = cluster_index + 1, b = ((uint64_t)new_block >> w->cluster_bits) + 1;
        uint64_t blocks_used = ((a > b ? a : b) + w->refcount_block_size - 1) / w->refcount_block_size;
        uint64_t meta = blocks_used * w->refcount_block_size * w->cluster_size;
        int64_t e = refcount_area(w, meta, 0, false, ti, (uint64_t)new_block);
        if (e < 0)
            return (int)e;
    }
    qc_file_event(&w->img.file, QC_EV_REFBLOCK_LOAD);
    r = qc_cache_get(&w->rbc, (uint64_t)new_block, block);
    if (r < 0)
        return r;
    return -EAGAIN;

fail:
    if (*block)
        qc_cache_put(&w->rbc, block);
    return r;
}

static int queue_discard(struct qc_writer *w, uint64_t offset, uint64_t length)
{
    struct qc_discard_region *d = NULL;

    for (size_t i = 0; i < w->ndiscards; i++) {
        struct qc_discard_region *x = &w->discards[i];
        uint64_t ns = offset < x->offset ? offset : x->offset;
        uint64_t ne = offset + length > x->offset + x->bytes ? offset + length : x->offset + x->bytes;
        if (ne - ns <= length + x->bytes) {
            x->offset = ns;
            x->bytes = ne - ns;
            d = x;
            break;
        }
    }
    if (!d) {
        if (w->ndiscards == w->discards_cap) {
            size_t cap = w->discards_cap ? w->discards_cap * 2 : 16;
            struct qc_discard_region *v = realloc(w->discards, cap * sizeof *v);
            if (!v)
                return QC_E_NOMEM;   /* discards are advisory: dropping one is harmless */
            w->discards = v;
            w->discards_cap = cap;
        }
        d = &w->discards[w->ndiscards++];
        d->offset = offset;
        d->bytes = length;
    }
    /* merge regions that have become adjacent */
    for (size_t i = 0; i < w->ndiscards;) {
        struct qc_discard_region *p = &w->discards[i];
        if (p == d || p->offset > d->offset + d->bytes || d->offset > p->offset + p->bytes) {
            i++;
            continue;
        }
        if (p->offset < d->offset)
            d->offset = p->offset;
        d->bytes += p->bytes;
        memmove(p, p + 1, (w->ndiscards - i - 1) * sizeof *p);
        w->ndiscards--;
        if (d > p)
            d--;
    }
    return 0;
}

void qc_process_discards(struct qc_writer *w, int ret)
{
    for (size_t i = 0; i < w->ndiscards; i++)
        if (ret >= 0)
            qc_file_discard(&w->img.file, w->discards[i].offset, w->discards[i].bytes,
                            QC_EV_NONE);
    w->ndiscards = 0;
}

static int update_refcount(struct qc_writer *w, uint64_t offset, uint64_t length,
                           uint64_t addend, bool decrease, enum qc_discard_type type)
{
    uint64_t start, last, co = 0;
    uint64_t old_ti = UINT64_MAX;
    uint8_t *block = NULL;
    int r = 0;

    if (length == 0)
        return 0;
    if (decrease) {
        r = qc_cache_set_dependency(&w->rbc, &w->l2c);
        if (r < 0)
            return r;
    }
    start = qc_w_start_of_cluster(w, offset);
    last = qc_w_start_of_cluster(w, offset + length - 1);
    for (co = start; co <= last; co += w->cluster_size) {
        uint64_t ci = co >> w->cluster_bits, ti = ci >> w->refcount_block_bits;
        uint64_t bi, rc;

        if (ti != old_ti) {
            if (block)
                qc_cache_put(&w->rbc, &block);
            r = alloc_refcount_block(w, ci, &block);
            if (r == -EAGAIN && w->free_cluster_index > (start >> w->cluster_bits))
                w->free_cluster_index = start >> w->cluster_bits;
            if (r < 0)
                goto fail;
        }
        old_ti = ti;
        qc_cache_mark_dirty(&w->rbc, block);
        bi = ci & (w->refcount_block_size - 1);
        rc = qc_refblock_get(block, w->refcount_order, bi);
        if (decrease ? rc < addend : (rc + addend < rc || rc + addend > w->refcount_max)) {
            r = -EINVAL;
            goto fail;
        }
        rc = decrease ? rc - addend : rc + addend;
        if (rc == 0 && ci < w->free_cluster_index)
            w->free_cluster_index = ci;
        qc_refblock_set(block, w->refcount_order, bi, rc);
        if (rc == 0) {
            /* QEMU looks the freed cluster up by the start of the range */
            uint8_t *t = qc_cache_lookup(&w->rbc, offset);
            if (t) {
                qc_cache_put(&w->rbc, &block);
                old_ti = UINT64_MAX;
                qc_cache_discard(&w->rbc, t);
            }
            t = qc_cache_lookup(&w->l2c, offset);
            if (t)
                qc_cache_discard(&w->l2c, t);
            if (w->discard_passthrough[type])
                queue_discard(w, co, w->cluster_size);
        }
    }
    r = 0;
fail:
    if (!w->cache_discards)
        qc_process_discards(w, r);
    if (block)
        qc_cache_put(&w->rbc, &block);
    if (r < 0 && co > offset) {
        /* undo what was done (may succeed, e.g. after -ENOSPC) */
        (void)update_refcount(w, offset, co - offset, addend, !decrease, QC_DISCARD_NEVER);
    }
    return r;
}

int64_t qc_alloc_clusters(struct qc_writer *w, uint64_t size)
{
    int64_t off;
    int r;

    qc_file_event(&w->img.file, QC_EV_CLUSTER_ALLOC);
    do {
        off = alloc_clusters_noref(w, size, QC_MAX_CLUSTER_OFFSET);
        if (off < 0)
            return off;
        r = update_refcount(w, (uint64_t)off, size, 1, false, QC_DISCARD_NEVER);
    } while (r == -EAGAIN);
    return r < 0 ? r : off;
}

int64_t qc_alloc_clusters_at(struct qc_writer *w, uint64_t offset, uint64_t nb_clusters)
{
    uint64_t i, rc;
    int r;

    if (nb_clusters == 0)
        return 0;
    do {
        uint64_t ci = offset >> w->cluster_bits;
        for (i = 0; i < nb_clusters; i++) {
            r = qc_get_refcount(w, ci++, &rc);
            if (r < 0)
                return r;
            if (rc != 0)
                break;
        }
        r = update_refcount(w, offset, i << w->cluster_bits, 1, false, QC_DISCARD_NEVER);
    } while (r == -EAGAIN);
    return r < 0 ? r : (int64_t)i;
}

int64_t qc_alloc_bytes(struct qc_writer *w, uint64_t size)
{
    uint64_t offset, free_in_cluster, rc;
    uint64_t max = w->cgeom.offset_mask < QC_MAX_CLUSTER_OFFSET ? w->cgeom.offset_mask
                                                                 : QC_MAX_CLUSTER_OFFSET;
    int r;

    qc_file_event(&w->img.file, QC_EV_CLUSTER_ALLOC_BYTES);
    if (size == 0 || size > w->cluster_size)
        return -EINVAL;
    offset = w->free_byte_offset;
    if (offset) {
        r = qc_get_refcount(w, offset >> w->cluster_bits, &rc);
        if (r < 0)
            return r;
        if (rc == w->refcount_max)
            offset = 0;
    }
    free_in_cluster = w->cluster_size - qc_w_offset_into_cluster(w, offset);
    do {
        if (!offset || free_in_cluster < size) {
            int64_t nc = alloc_clusters_noref(w, w->cluster_size, max);
            if (nc < 0)
                return nc;
            if (nc == 0)
                return qc_w_corruption(w, true,
                                       "Preventing invalid allocation of compressed cluster at offset 0");
            if (!offset || ((offset + w->cluster_size - 1) & ~(w->cluster_size - 1)) != (uint64_t)nc) {
                offset = (uint64_t)nc;
                free_in_cluster = w->cluster_size;
            } else {
                free_in_cluster += w->cluster_size;
            }
        }
        r = update_refcount(w, offset, size, 1, false, QC_DISCARD_NEVER);
        if (r < 0)
            offset = 0;
    } while (r == -EAGAIN);
    if (r < 0)
        return r;
    /* the refcount must reach the file before the L2 entry that uses it */
    if (!w->opt.unsafe_order) {
        r = qc_cache_set_dependency(&w->l2c, &w->rbc);
        if (r < 0)
            return r;
    }
    w->free_byte_offset = offset + size;
    if (!qc_w_offset_into_cluster(w, w->free_byte_offset))
        w->free_byte_offset = 0;
    return (int64_t)offset;
}

void qc_free_clusters(struct qc_writer *w, uint64_t offset, uint64_t size,
                      enum qc_discard_type type)
{
    int r;

    qc_file_event(&w->img.file, QC_EV_CLUSTER_FREE);
    r = update_refcount(w, offset, size, 1, true, type);
    if (r < 0)
        fprintf(stderr, "qcow2_free_clusters failed: %s\n", strerror(r > -1000 ? -r : EIO));
}

void qc_free_any_cluster(struct qc_writer *w, uint64_t entry, enum qc_discard_type type)
{
    switch (qc_w_cluster_type(w, entry)) {
    case QC_CT_COMPRESSED: {
        struct qc_compressed_desc d = qc_compressed_decode(&w->cgeom, entry);
        qc_free_clusters(w, d.offset, d.size, type);
        break;
    }
    case QC_CT_NORMAL:
    case QC_CT_ZERO_ALLOC:
        if (qc_w_offset_into_cluster(w, entry & QC_L2E_OFFSET_MASK))
            qc_w_corruption(w, false, "Cannot free unaligned cluster %#llx",
                            (unsigned long long)(entry & QC_L2E_OFFSET_MASK));
        else
            qc_free_clusters(w, entry & QC_L2E_OFFSET_MASK, w->cluster_size, type);
        break;
    default:
        break;
    }
}

int qc_write_caches(struct qc_writer *w)
{
    int r = qc_cache_write(&w->l2c);
    if (r < 0)
        return r;
    if (qc_w_need_accurate_refcounts(w))
        r = qc_cache_write(&w->rbc);
    return r;
}

int qc_flush_caches(struct qc_writer *w)
{
    int r = qc_write_caches(w);
    if (r < 0)
        return r;
    return qc_file_flush(&w->img.file);
}

uint64_t qc_refcount_metadata_size(uint64_t clusters, uint64_t cs, unsigned order,
                                   bool generous, uint64_t *refblock_count)
{
    uint64_t per_table_cluster = cs / 8;
    uint64_t per_block = cs * 8 / (1u << order);
    uint64_t table = 0, blocks = 0, last, n = 0;

    do {
        last = n;
        blocks = (clusters + table + blocks + per_block - 1) / per_block;
        table = (blocks + per_table_cluster - 1) / per_table_cluster;
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += (table + 1) / 2;
            n = 0;
            generous = false;
        }
    } while (n != last);
    if (refblock_count)
        *refblock_count = blocks;
    return (blocks + table) * cs;
}
