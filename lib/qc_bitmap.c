#include "qc_bitmap.h"

#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"

int qc_bitmap_dir_parse(struct qc_bitmap_dir *d, const uint8_t *buf, size_t len,
                        uint64_t dir_offset, uint32_t nb)
{
    size_t off = 0;

    memset(d, 0, sizeof *d);
    /* each entry takes at least 24 bytes, so LEN bounds the count */
    if (nb > len / QC_BITMAP_DIR_ENTRY_FIXED + 1)
        nb = (uint32_t)(len / QC_BITMAP_DIR_ENTRY_FIXED + 1);
    d->v = calloc(nb ? nb : 1, sizeof *d->v);
    if (!d->v)
        return QC_E_NOMEM;
    for (uint32_t i = 0; i < nb; i++) {
        struct qc_bitmap *b = &d->v[d->n];
        size_t name_off, raw, name_have;

        if (len - off < QC_BITMAP_DIR_ENTRY_FIXED) {
            d->truncated = true;
            break;
        }
        b->entry_offset = dir_offset + off;
        b->table_offset = qc_be64(buf + off);
        b->table_size = qc_be32(buf + off + 8);
        b->flags = qc_be32(buf + off + 12);
        b->type = buf[off + 16];
        b->granularity_bits = buf[off + 17];
        b->name_size = qc_be16(buf + off + 18);
        b->extra_data_size = qc_be32(buf + off + 20);
        name_off = off + QC_BITMAP_DIR_ENTRY_FIXED + b->extra_data_size;
        raw = QC_BITMAP_DIR_ENTRY_FIXED + (size_t)b->extra_data_size + b->name_size;
        name_have = name_off < len ? len - name_off : 0;
        if (name_have > b->name_size)
            name_have = b->name_size;
        b->name = malloc(name_have + 1);
        if (!b->name)
            return QC_E_NOMEM;
        if (name_have)
            memcpy(b->name, buf + name_off, name_have);
        b->name[name_have] = '\0';
        b->entry_len = (raw + 7) & ~(size_t)7;
        d->n++;
        if (b->entry_len > len - off) {
            d->truncated = true;
            break;
        }
        off += b->entry_len;
    }
    return 0;
}

void qc_bitmap_dir_free(struct qc_bitmap_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].name);
    free(d->v);
    memset(d, 0, sizeof *d);
}

enum qc_bmt_kind qc_bitmap_table_entry_kind(uint64_t e)
{
    uint64_t off = e & QC_BMT_OFFSET_MASK;
    if (off == 0)
        return (e & QC_BMT_ALL_ONES) ? QC_BMT_ALL_ONES_KIND : QC_BMT_ALL_ZEROES;
    if (e & QC_BMT_ALL_ONES)
        return QC_BMT_INVALID;
    return QC_BMT_SERIALIZED;
}

const char *qc_bitmap_table_kind_name(enum qc_bmt_kind k)
{
    switch (k) {
    case QC_BMT_ALL_ZEROES: return "all-zeroes";
    case QC_BMT_ALL_ONES_KIND: return "all-ones";
    case QC_BMT_SERIALIZED: return "serialized";
    default: return "invalid";
    }
}

bool qc_bitmap_entry_valid(const struct qc_bitmap *b, uint64_t cs, uint64_t disk_size)
{
    uint64_t phys;

    if (b->table_size == 0 || b->table_offset == 0 || (b->table_offset & (cs - 1)) ||
        b->table_size > QC_BITMAP_MAX_TABLE_SIZE ||
        b->granularity_bits > QC_BITMAP_MAX_GRANULARITY ||
        b->granularity_bits < QC_BITMAP_MIN_GRANULARITY ||
        (b->flags & QC_BITMAP_RESERVED_FLAGS) || b->name_size > QC_BITMAP_MAX_NAME_SIZE ||
        b->type != 1)
        return false;
    phys = (uint64_t)b->table_size * cs;
    if (phys > QC_BITMAP_MAX_PHYS_SIZE)
        return false;
    /* a bitmap not in use must cover the disk */
    if (!(b->flags & QC_BME_FLAG_IN_USE) && disk_size > ((phys * 8) << b->granularity_bits))
        return false;
    return true;
}

bool qc_bitmap_table_entry_valid(uint64_t e, uint64_t cs)
{
    uint64_t off = e & QC_BMT_OFFSET_MASK;

    if (e & QC_BMT_RESERVED_MASK)
        return false;
    return !off || (!(e & QC_BMT_ALL_ONES) && !(off & (cs - 1)));
}

uint64_t qc_bitmap_table_size_needed(uint64_t disk_size, unsigned gran, uint64_t cs)
{
    uint64_t bits = ((disk_size - 1) >> gran) + 1;
    uint64_t words = ((bits - 1) >> 6) + 1;
    return (words * 8 + cs - 1) / cs;
}
