#include "qc_refcount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_io.h"

uint64_t qc_refblock_get(const uint8_t *b, unsigned order, uint64_t i)
{
    switch (order) {
    case 0: return (b[i / 8] >> (i % 8)) & 1;
    case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
    case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
    case 3: return b[i];
    case 4: return qc_be16(b + 2 * i);
    case 5: return qc_be32(b + 4 * i);
    default: return qc_be64(b + 8 * i);
    }
}

void qc_refblock_set(uint8_t *b, unsigned order, uint64_t i, uint64_t v)
{
    unsigned shift;
    uint8_t mask;

    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        unsigned per = 8 / bits;
        shift = bits * (unsigned)(i % per);
        mask = (uint8_t)(((1u << bits) - 1) << shift);
        b[i / per] = (uint8_t)((b[i / per] & ~mask) | ((v << shift) & mask));
        break;
    }
    case 3: b[i] = (uint8_t)v; break;
    case 4: qc_put_be16(b + 2 * i, (uint16_t)v); break;
    case 5: qc_put_be32(b + 4 * i, (uint32_t)v); break;
    default: qc_put_be64(b + 8 * i, v); break;
    }
}

/* --- on-disk refcounts ----------------------------------------------------- */

int qc_refcount_disk_open(struct qc_refcount_disk *d, struct qc_file *f,
                          unsigned cluster_bits, unsigned order,
                          uint64_t table_offset, uint64_t table_clusters)
{
    uint64_t bytes = table_clusters << cluster_bits;
    uint64_t in_file;
    uint8_t *raw;
    int r;

    memset(d, 0, sizeof *d);
    d->file = f;
    d->cluster_bits = cluster_bits;
    d->order = order;
    d->rb_bits = cluster_bits + 3 - order;
    d->table_offset = table_offset;
    d->nentries = bytes / 8;
    d->blk_off = UINT64_MAX;
    if (bytes && !qc_qemu_read_ok(table_offset, bytes))
        return -EIO;
    /* only what the file holds is kept; QEMU reads zeros for the rest */
    in_file = table_offset < f->size ? f->size - table_offset : 0;
    if (in_file > bytes)
        in_file = bytes;
    d->nstored = in_file / 8;
    if (in_file % 8)
        d->nstored++;
    if (!d->nstored)
        return 0;
    raw = calloc(d->nstored, 8);
    d->table = malloc(d->nstored * sizeof(uint64_t));
    if (!raw || !d->table) {
        free(raw);
        qc_refcount_disk_close(d);
        return QC_E_NOMEM;
    }
    r = qc_file_read_qemu(f, table_offset, raw, (size_t)(d->nstored * 8));
    if (r < 0) {
        free(raw);
        qc_refcount_disk_close(d);
        return r;
    }
    for (uint64_t i = 0; i < d->nstored; i++)
        d->table[i] = qc_be64(raw + 8 * i);
    free(raw);
    return 0;
}

void qc_refcount_disk_close(struct qc_refcount_disk *d)
{
    free(d->table);
    free(d->blk);
    d->table = NULL;
    d->blk = NULL;
    d->nstored = 0;
    d->blk_off = UINT64_MAX;
}

enum qc_refblock_state qc_refcount_disk_block_state(const struct qc_refcount_disk *d,
                                                    uint64_t index, uint64_t *offset)
{
    uint64_t off;

    *offset = 0;
    if (index >= d->nentries)
        return QC_RB_ABSENT;
    off = qc_refcount_disk_entry(d, index) & QC_REFT_OFFSET_MASK;
    *offset = off;
    if (!off)
        return QC_RB_ABSENT;
    if (off & ((1ull << d->cluster_bits) - 1))
        return QC_RB_UNALIGNED;
    if (!qc_qemu_read_ok(off, 1ull << d->cluster_bits))
        return QC_RB_UNREADABLE;
    return QC_RB_PRESENT;
}

int qc_refcount_disk_get(struct qc_refcount_disk *d, uint64_t cluster, uint64_t *value)
{
    uint64_t index = cluster >> d->rb_bits, off;
    uint64_t cs = 1ull << d->cluster_bits;
    int r;

    *value = 0;
    switch (qc_refcount_disk_block_state(d, index, &off)) {
    case QC_RB_ABSENT:
        return 0;
    case QC_RB_UNALIGNED:
        if (!d->signaled && d->signal)
            d->signal(d->opaque, off, index);
        d->signaled = true;
        return -EIO;
    case QC_RB_UNREADABLE:
        return -EIO;
    case QC_RB_PRESENT:
        break;
    }
    if (d->blk_off != off) {
        if (!d->blk && !(d->blk = malloc(cs)))
            return QC_E_NOMEM;
        r = qc_file_read_qemu(d->file, off, d->blk, (size_t)cs);
        if (r < 0) {
            d->blk_off = UINT64_MAX;
            return r;
        }
        d->blk_off = off;
    }
    *value = qc_refblock_get(d->blk, d->order, cluster & ((1ull << d->rb_bits) - 1));
    return 0;
}
