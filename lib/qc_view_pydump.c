/*
 * qcow2.py's dump-header and dump-header-exts, byte for byte.
 *
 * qemu-iotests' script parses differently from QEMU: it always reads a
 * 104-byte header (defaults only for version 2), walks extensions from
 * header_length while the position is below min(cluster size, backing file
 * offset), reads each payload rounded up to 8 (short at the end of the file),
 * and in its current version decodes the bitmaps extension from the file
 * (24 bytes, whatever its length says), with the directory and tables.
 * Where the script would stop with an exception it prints nothing at all;
 * we print what could be read and report it through the return value.
 */
#include "qc_view.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_pyscript.h"

/* The header fields as qcow2.py's QcowHeader reads them from the first
 * bytes of the file: a version 2 image gets its defaults for the fields
 * version 2 does not have. */
void qc_py_header_fields(const uint8_t *raw, uint64_t f[QC_HF_COUNT])
{
    for (int i = 0; i <= QC_HF_HEADER_LENGTH; i++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
        f[i] = fi->size == 8 ? qc_be64(raw + fi->offset) : qc_be32(raw + fi->offset);
    }
    if (f[QC_HF_VERSION] == 2) {
        f[QC_HF_INCOMPATIBLE_FEATURES] = f[QC_HF_COMPATIBLE_FEATURES] = 0;
        f[QC_HF_AUTOCLEAR_FEATURES] = 0;
        f[QC_HF_REFCOUNT_ORDER] = 4;
        f[QC_HF_HEADER_LENGTH] = 72;
    }
}

#define PY_HEADER_LEN 104
/* Bound on bitmap table rows printed, against images whose bitmaps all
 * point at one huge table. */
#define PY_MAX_TABLE_ROWS (4u << 20)

struct py_ctx {
    FILE *out;
    struct qc_file *file;
    enum qc_dump_era era;
    uint64_t cluster_bits;
    uint64_t rows;
    struct qc_py_exc *exc;      /* where the script's exception is told, or NULL */
};

/* Records the exception the script would raise here; returns false. */
static bool py_raise(struct py_ctx *c, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool py_raise(struct py_ctx *c, const char *type, const char *fmt, ...)
{
    va_list ap;

    if (!c->exc || c->exc->type[0])
        return false;
    snprintf(c->exc->type, sizeof c->exc->type, "%s", type);
    va_start(ap, fmt);
    vsnprintf(c->exc->msg, sizeof c->exc->msg, fmt, ap);
    va_end(ap);
    return false;
}

static void py_hex(char *buf, size_t len, uint64_t v)
{
    if (v == 0)
        snprintf(buf, len, "0x0");
    else
        snprintf(buf, len, "%#" PRIx64, v);
}

static void field_line(FILE *out, const char *name, const char *value)
{
    fprintf(out, "%-25s %s\n", name, value);
}

static void field_u64(FILE *out, const char *name, uint64_t v)
{
    fprintf(out, "%-25s %" PRIu64 "\n", name, v);
}

static void field_hex(FILE *out, const char *name, uint64_t v)
{
    char b[32];
    py_hex(b, sizeof b, v);
    field_line(out, name, b);
}

static void mask_list(char *buf, size_t len, uint64_t mask)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    const char *sep = "";
    for (unsigned b = 0; b < 64; b++) {
        if (mask & (1ull << b)) {
            used += (size_t)snprintf(buf + used, len - used, "%s%u", sep, b);
            sep = ", ";
        }
    }
    snprintf(buf + used, len - used, "]");
}

/* cluster_size = 1 << cluster_bits in python's unbounded integers */
static bool offset_below_cluster_size(uint64_t cluster_bits, uint64_t off)
{
    return cluster_bits >= 64 || off < (1ull << cluster_bits);
}

static uint64_t py_cluster_size_or_max(uint64_t cluster_bits)
{
    return cluster_bits >= 64 ? UINT64_MAX : 1ull << cluster_bits;
}

/* Reads exactly LEN bytes at OFF, or fails as python's struct.unpack would. */
static bool py_read(struct py_ctx *c, uint64_t off, void *buf, size_t len)
{
    if (qc_file_read(c->file, off, buf, len) == 0)
        return true;
    return py_raise(c, "struct.error", "unpack requires a buffer of %zu bytes", len);
}

/* Streams the payload: quoted when every byte is printable, else <binary>. */
static void print_data(struct py_ctx *c, uint64_t off, uint64_t n)
{
    uint8_t buf[65536];
    bool printable = true;

    for (uint64_t done = 0; done < n && printable;) {
        size_t k = n - done < sizeof buf ? (size_t)(n - done) : sizeof buf;
        if (qc_file_read(c->file, off + done, buf, k) < 0)
            return;
        printable = qc_py_printable(buf, k);
        done += k;
    }
    if (!printable) {
        field_line(c->out, "data", "<binary>");
        return;
    }
    fprintf(c->out, "%-25s '", "data");
    for (uint64_t done = 0; done < n;) {
        size_t k = n - done < sizeof buf ? (size_t)(n - done) : sizeof buf;
        if (qc_file_read(c->file, off + done, buf, k) < 0)
            break;
        fwrite(buf, 1, k, c->out);
        done += k;
    }
    fprintf(c->out, "'\n");
}

static void bitmap_flags(char *buf, size_t len, uint32_t flags)
{
    char v[32];
    size_t used;
    const char *sep = "";

    py_hex(v, sizeof v, flags);
    used = (size_t)snprintf(buf, len, "%s ([", v);
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(flags & (1u << bit)))
            continue;
        if (bit == 0)
            used += (size_t)snprintf(buf + used, len - used, "%s'in-use'", sep);
        else if (bit == 1)
            used += (size_t)snprintf(buf + used, len - used, "%s'auto'", sep);
        else
            used += (size_t)snprintf(buf + used, len - used, "%s'bit-%u'", sep, bit);
        sep = ", ";
    }
    snprintf(buf + used, len - used, "])");
}

/* The current script's bitmaps extension: 24 bytes at POS, then the
 * directory and every bitmap table.  Returns false where the script fails. */
static bool print_bitmaps(struct py_ctx *c, uint64_t pos)
{
    uint8_t b[24];
    uint32_t nb;
    uint64_t dir_off, cur;

    if (!py_read(c, pos, b, 24))
        return false;
    nb = qc_be32(b);
    dir_off = qc_be64(b + 16);
    field_u64(c->out, "nb_bitmaps", nb);
    field_u64(c->out, "reserved32", qc_be32(b + 4));
    field_hex(c->out, "bitmap_directory_size", qc_be64(b + 8));
    field_hex(c->out, "bitmap_directory_offset", dir_off);

    cur = dir_off;
    for (uint32_t i = 0; i < nb; i++) {
        uint8_t e[24];
        uint64_t table_off, name_off, entry_start = cur;
        uint32_t table_size, flags, extra;
        uint16_t name_size;
        char flagbuf[512];
        uint8_t name[65536];
        uint64_t name_have;

        if (cur > (uint64_t)INT64_MAX)
            return py_raise(c, "ValueError", "cannot fit 'int' into an offset-sized integer");
        if (!py_read(c, cur, e, 24))
            return false;
        table_off = qc_be64(e);
        table_size = qc_be32(e + 8);
        flags = qc_be32(e + 12);
        name_size = qc_be16(e + 18);
        extra = qc_be32(e + 20);
        name_off = cur + 24 + extra;
        name_have = name_off < c->file->size ? c->file->size - name_off : 0;
        if (name_have > name_size)
            name_have = name_size;
        if (name_have && !py_read(c, name_off, name, (size_t)name_have))
            return false;
        for (uint64_t k = 0; k < name_have; k++)
            if (name[k] >= 0x80)    /* the script decodes names as strict ASCII */
                return py_raise(c, "UnicodeDecodeError", "'ascii' codec can't decode byte "
                                "%#x in position %" PRIu64 ": ordinal not in range(128)",
                                name[k], k);
        cur = entry_start + ((24ull + name_size + extra + 7) & ~7ull);

        fprintf(c->out, "\n%-25s ", "Bitmap name");
        fwrite(name, 1, (size_t)name_have, c->out);
        fprintf(c->out, "\n");
        field_hex(c->out, "bitmap_table_offset", table_off);
        field_u64(c->out, "bitmap_table_size", table_size);
        bitmap_flags(flagbuf, sizeof flagbuf, flags);
        field_line(c->out, "flags", flagbuf);
        field_u64(c->out, "type", e[16]);
        field_u64(c->out, "granularity_bits", e[17]);
        field_u64(c->out, "name_size", name_size);
        field_u64(c->out, "extra_data_size", extra);
        fprintf(c->out, "Bitmap table   type            size         offset\n");
        for (uint64_t t = 0; t < table_size; t++) {
            uint8_t eb[8];
            uint64_t ent;
            enum qc_bmt_kind k;
            if (++c->rows > PY_MAX_TABLE_ROWS)
                return py_raise(c, "MemoryError", "bitmap tables too large");
            if (table_off > (uint64_t)INT64_MAX - 8 * t)
                return py_raise(c, "ValueError", "cannot fit 'int' into an offset-sized integer");
            if (!py_read(c, table_off + 8 * t, eb, 8))
                return false;
            ent = qc_be64(eb);
            k = qc_bitmap_table_entry_kind(ent);
            fprintf(c->out, "%-14" PRIu64 " %-15s %-12" PRIu64 " %" PRIu64 "\n", t,
                    qc_bitmap_table_kind_name(k),
                    k == QC_BMT_SERIALIZED ? py_cluster_size_or_max(c->cluster_bits) : (uint64_t)0,
                    (uint64_t)(ent & QC_BMT_OFFSET_MASK));
        }
    }
    return true;
}

/* The extension walk; returns 0, or 1 where the script would have failed. */
static int print_extensions(struct py_ctx *c, uint64_t start, uint64_t bfo)
{
    uint64_t end_is_bfo = bfo != 0;
    uint64_t pos = start;

    for (;;) {
        uint8_t h[8];
        uint32_t magic, len;
        uint64_t padded, avail;
        char v[64];

        /* while position < min(cluster_size, backing_file_offset) */
        if (!offset_below_cluster_size(c->cluster_bits, pos))
            break;
        if (end_is_bfo && pos >= bfo)
            break;
        if (!py_read(c, pos, h, 8))
            return 1;
        magic = qc_be32(h);
        len = qc_be32(h + 4);
        pos += 8;
        if (magic == 0)
            break;

        fprintf(c->out, "Header extension:\n");
        py_hex(v, sizeof v, magic);
        if (c->era == QC_ERA_CURRENT) {
            const char *name = qc_ext_name(magic);
            fprintf(c->out, "%-25s %s (%s)\n", "magic", v, name ? name : "<unknown>");
        } else {
            field_line(c->out, "magic", v);
        }
        field_u64(c->out, "length", len);

        if (c->era == QC_ERA_CURRENT && magic == QC_EXT_BITMAPS) {
            if (!print_bitmaps(c, pos))
                return 1;
            pos += 24;
        } else {
            padded = ((uint64_t)len + 7) & ~7ull;
            avail = c->file->size - pos;     /* pos + 8 <= size held above */
            if (avail > padded)
                avail = padded;
            print_data(c, pos, avail < len ? avail : len);
            pos += avail;
        }
        fprintf(c->out, "\n");
    }
    return 0;
}

static int py_dump(FILE *out, struct qc_file *file, enum qc_dump_era era, bool header,
                   struct qc_py_exc *exc)
{
    uint8_t raw[PY_HEADER_LEN];
    struct py_ctx c = { out, file, era, 0, 0, exc };
    uint64_t f[QC_HF_COUNT];
    int r;

    if (!py_read(&c, 0, raw, sizeof raw))
        return 1;   /* struct.error: the script prints nothing */
    qc_py_header_fields(raw, f);
    c.cluster_bits = f[QC_HF_CLUSTER_BITS];

    if (header) {
        for (int i = 0; i <= QC_HF_HEADER_LENGTH; i++) {
            const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
            char v[256];
            if (fi->feature_mask && era == QC_ERA_CURRENT)
                mask_list(v, sizeof v, f[i]);
            else if (fi->hex || fi->feature_mask)
                py_hex(v, sizeof v, f[i]);
            else
                snprintf(v, sizeof v, "%" PRIu64, f[i]);
            field_line(out, fi->name, v);
        }
        fprintf(out, "\n");
    }
    r = print_extensions(&c, f[QC_HF_HEADER_LENGTH], f[QC_HF_BACKING_FILE_OFFSET]);
    return r;
}

int qc_view_header(FILE *out, struct qc_image *img, enum qc_dump_era era)
{
    return py_dump(out, &img->file, era, true, NULL);
}

int qc_view_exts(FILE *out, struct qc_image *img, enum qc_dump_era era)
{
    return py_dump(out, &img->file, era, false, NULL);
}

int qc_pyscript_dump_text(FILE *out, struct qc_file *file, bool header, struct qc_py_exc *exc)
{
    return py_dump(out, file, QC_ERA_CURRENT, header, exc);
}
