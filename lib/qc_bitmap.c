#include "qc_util.h"
#include "qc_bitmap.h"

#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "qc_endian.h"
#include "qc_reader.h"

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

/* --- QEMU's loading rules ------------------------------------------------------ */

bool qc_bitmap_table_entry_valid(uint64_t e, unsigned cluster_bits)
{
    uint64_t off = e & QC_BMT_OFFSET_MASK;

    if (e & QC_BMT_RESERVED_MASK)
        return false;
    if (off && ((e & QC_BMT_ALL_ONES) || (off & ((1ull << cluster_bits) - 1))))
        return false;
    return true;
}

uint64_t qc_bitmap_table_size_needed(uint64_t disk_len, unsigned gran_bits,
                                     unsigned cluster_bits)
{
    uint64_t bytes;

    if (!disk_len)
        return 0;
    /* serialized in 64-bit words, each covering 64 granules */
    bytes = ((((disk_len - 1) >> gran_bits) >> 6) + 1) * 8;
    return (bytes + (1ull << cluster_bits) - 1) >> cluster_bits;
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

#define msg qc_asprintf

int qc_bitmap_dir_load_qemu(struct qc_file *f, uint64_t dir_offset, uint64_t dir_size,
                            uint32_t nb_bitmaps, unsigned cluster_bits, uint64_t disk_len,
                            struct qc_bitmap_dir *d, char **err)
{
    struct qc_reader rd;
    uint64_t pos = 0;
    uint32_t count = 0;
    int e = 0;

    memset(d, 0, sizeof *d);
    *err = NULL;
    if (dir_size == 0) {
        *err = msg("Requested bitmap directory size is zero");
        return -EINVAL;
    }
    if (dir_size > QC_BITMAP_MAX_DIR_SIZE) {
        *err = msg("Requested bitmap directory size is too big");
        return -EINVAL;
    }
    if (!qc_qemu_read_ok(dir_offset, dir_size)) {
        *err = msg("Failed to read bitmap directory: %s", strerror(EIO));
        return -EIO;
    }
    /* nb_bitmaps <= 65535 (extension rule); one more entry is looked at */
    d->v = calloc((size_t)nb_bitmaps + 1, sizeof *d->v);
    if (!d->v || qc_reader_init(&rd, f, 1 << 16) < 0) {
        free(d->v);
        d->v = NULL;
        return -ENOMEM;
    }
    while (pos < dir_size) {
        struct qc_bitmap b = { 0 };
        uint8_t h[QC_BITMAP_DIR_ENTRY_FIXED];
        int32_t esize;
        int64_t next;

        if (dir_size - pos < QC_BITMAP_DIR_ENTRY_FIXED)
            goto broken;
        if (++count > nb_bitmaps) {
            *err = msg("More bitmaps found than specified in header extension");
            e = -EINVAL;
            goto out;
        }
        if ((e = qc_reader_read(&rd, dir_offset + pos, h, sizeof h)) < 0)
            goto out;
        b.entry_offset = dir_offset + pos;
        b.table_offset = qc_be64(h);
        b.table_size = qc_be32(h + 8);
        b.flags = qc_be32(h + 12);
        b.type = h[16];
        b.granularity_bits = h[17];
        b.name_size = qc_be16(h + 18);
        b.extra_data_size = qc_be32(h + 20);
        /* QEMU sizes entries in an int: huge extra data wraps */
        esize = (int32_t)(uint32_t)(QC_BITMAP_DIR_ENTRY_FIXED + (uint64_t)b.name_size +
                                    b.extra_data_size);
        esize = (int32_t)(uint32_t)(((uint32_t)esize + 7u) & ~7u);
        next = (int64_t)pos + esize;
        if (next > (int64_t)dir_size)
            goto broken;
        if (b.extra_data_size != 0) {
            *err = msg("Bitmap extra data is not supported");
            e = -EINVAL;
            goto out;
        }
        b.entry_len = (size_t)esize;
        b.name = malloc((size_t)b.name_size + 1);
        if (!b.name) {
            e = -ENOMEM;
            goto out;
        }
        if ((e = qc_reader_read(&rd, dir_offset + pos + QC_BITMAP_DIR_ENTRY_FIXED,
                                b.name, b.name_size)) < 0) {
            free(b.name);
            goto out;
        }
        b.name[b.name_size] = '\0';
        if (!qc_bitmap_entry_valid(&b, 1ull << cluster_bits, disk_len)) {
            *err = msg("Bitmap '%s' doesn't satisfy the constraints", b.name);
            free(b.name);
            e = -EINVAL;
            goto out;
        }
        d->v[d->n++] = b;
        pos = (uint64_t)next;
    }
    if (count != nb_bitmaps) {
        *err = msg("Less bitmaps found than specified in header extension");
        e = -EINVAL;
        goto out;
    }
    if (pos != dir_size)
        goto broken;
    goto out;
broken:
    *err = msg("Broken bitmap directory");
    e = -EINVAL;
out:
    if (e < 0 && !*err)
        *err = msg("Failed to read bitmap directory: %s", qc_strerror(e));
    qc_reader_free(&rd);
    return e;
}

int qc_bitmap_table_load_qemu(struct qc_file *f, const struct qc_bitmap *b,
                              unsigned cluster_bits, uint64_t **table, uint32_t *bad_index)
{
    uint64_t bytes = (uint64_t)b->table_size * 8;
    uint8_t *raw;
    uint64_t *t;
    int e;

    *table = NULL;
    *bad_index = 0;
    if (!qc_qemu_read_ok(b->table_offset, bytes))
        return -EIO;
    /* table_size * cluster_size <= 512 MiB, so at most 8 MiB here */
    if (bytes > (8u << 20))
        return -EINVAL;
    raw = malloc(bytes ? bytes : 1);
    t = malloc(bytes ? bytes : 1);
    if (!raw || !t) {
        free(raw);
        free(t);
        return -ENOMEM;
    }
    if ((e = qc_file_read_qemu(f, b->table_offset, raw, (size_t)bytes)) < 0) {
        free(raw);
        free(t);
        return e;
    }
    for (uint32_t i = 0; i < b->table_size; i++) {
        t[i] = qc_be64(raw + 8 * (size_t)i);
        if (!qc_bitmap_table_entry_valid(t[i], cluster_bits)) {
            *bad_index = i;
            free(raw);
            free(t);
            return -EINVAL;
        }
    }
    free(raw);
    *table = t;
    return 0;
}
