/*
 * qcow2.py dump-header -j and dump-header-exts -j: json.dumps(indent=4) of
 * the header fields (in header order, version 2 defaults applied) and of
 * the extension list: each extension as name (qcow2.py's name or
 * "<unknown>"), magic, length and either data_str (the payload quoted when
 * printable, else "<binary>") or, for the bitmaps extension, data (the
 * extension's fields, then bitmap_directory: each entry's name, its fields
 * and bitmap_table, a list of {type, offset, reserved}).
 *
 * Only called for a file whose text dump read without an exception, so
 * every read here succeeds.
 */
#include "qc_pyscript.h"

#include <stdlib.h>
#include <string.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_ext.h"
#include "qc_header.h"
#include "qc_view.h"

#define PY_HEADER_LEN 104
#define BME_RESERVED_MASK 0xff000000000001feull

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *header_json(const uint8_t *raw, uint64_t *hdr_len, uint64_t *bfo,
                                       uint64_t *cluster_bits)
{
    struct json_object *o = json_object_new_object();
    uint64_t f[QC_HF_COUNT];

    qc_py_header_fields(raw, f);
    for (int i = 0; i <= QC_HF_HEADER_LENGTH; i++)
        add_u64(o, qc_header_field_info((enum qc_header_field)i)->name, f[i]);
    *hdr_len = f[QC_HF_HEADER_LENGTH];
    *bfo = f[QC_HF_BACKING_FILE_OFFSET];
    *cluster_bits = f[QC_HF_CLUSTER_BITS];
    return o;
}

static struct json_object *bitmap_table_json(struct qc_file *f, uint64_t off, uint32_t n)
{
    struct json_object *a = json_object_new_array();

    for (uint64_t t = 0; t < n; t++) {
        uint8_t eb[8];
        uint64_t ent;
        struct json_object *e = json_object_new_object();

        (void)qc_file_read(f, off + 8 * t, eb, 8);
        ent = qc_be64(eb);
        json_object_object_add(e, "type", json_object_new_string(
            qc_bitmap_table_kind_name(qc_bitmap_table_entry_kind(ent))));
        add_u64(e, "offset", ent & QC_BMT_OFFSET_MASK);
        add_u64(e, "reserved", ent & BME_RESERVED_MASK);
        json_object_array_add(a, e);
    }
    return a;
}

/* One directory entry at *CUR; moves *CUR past it (padded to 8). */
static struct json_object *bitmap_entry_json(struct qc_file *f, uint64_t *cur)
{
    struct json_object *o = json_object_new_object();
    uint8_t e[24];
    uint64_t name_off, have = 0;
    uint32_t extra;
    uint16_t name_size;
    char *name;

    (void)qc_file_read(f, *cur, e, 24);
    name_size = qc_be16(e + 18);
    extra = qc_be32(e + 20);
    name_off = *cur + 24 + extra;
    if (name_off < f->size)
        have = f->size - name_off < name_size ? f->size - name_off : name_size;
    name = calloc(1, (size_t)have + 1);
    if (name && have)
        (void)qc_file_read(f, name_off, name, (size_t)have);
    json_object_object_add(o, "name", json_object_new_string_len(name ? name : "",
                                                                   name ? (int)have : 0));
    free(name);
    add_u64(o, "bitmap_table_offset", qc_be64(e));
    add_u64(o, "bitmap_table_size", qc_be32(e + 8));
    add_u64(o, "flags", qc_be32(e + 12));
    add_u64(o, "type", e[16]);
    add_u64(o, "granularity_bits", e[17]);
    add_u64(o, "name_size", name_size);
    add_u64(o, "extra_data_size", extra);
    json_object_object_add(o, "bitmap_table", bitmap_table_json(f, qc_be64(e), qc_be32(e + 8)));
    *cur += (24ull + name_size + extra + 7) & ~7ull;
    return o;
}

static struct json_object *bitmaps_json(struct qc_file *f, uint64_t pos)
{
    struct json_object *o = json_object_new_object(), *dir = json_object_new_array();
    uint8_t b[24];
    uint64_t cur;

    (void)qc_file_read(f, pos, b, 24);
    add_u64(o, "nb_bitmaps", qc_be32(b));
    add_u64(o, "reserved32", qc_be32(b + 4));
    add_u64(o, "bitmap_directory_size", qc_be64(b + 8));
    add_u64(o, "bitmap_directory_offset", qc_be64(b + 16));
    cur = qc_be64(b + 16);
    for (uint32_t i = 0; i < qc_be32(b); i++)
        json_object_array_add(dir, bitmap_entry_json(f, &cur));
    json_object_object_add(o, "bitmap_directory", dir);
    return o;
}

static struct json_object *data_str_json(struct qc_file *f, uint64_t pos, uint64_t n)
{
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    struct json_object *s;
    char *quoted = NULL;

    if (!buf)
        return json_object_new_string("<binary>");
    (void)qc_file_read(f, pos, buf, (size_t)n);
    if (qc_py_printable(buf, (size_t)n) && (quoted = malloc((size_t)n + 3))) {
        quoted[0] = '\'';
        memcpy(quoted + 1, buf, (size_t)n);
        quoted[n + 1] = '\'';
        s = json_object_new_string_len(quoted, (int)n + 2);
    } else {
        s = json_object_new_string("<binary>");
    }
    free(quoted);
    free(buf);
    return s;
}

static struct json_object *exts_json(struct qc_file *f, uint64_t pos, uint64_t bfo,
                                     uint64_t cluster_bits)
{
    struct json_object *a = json_object_new_array();

    while ((cluster_bits >= 64 || pos < (1ull << cluster_bits)) && !(bfo && pos >= bfo)) {
        uint8_t h[8];
        uint32_t magic, len;
        const char *name;
        struct json_object *e;

        (void)qc_file_read(f, pos, h, 8);
        magic = qc_be32(h);
        len = qc_be32(h + 4);
        pos += 8;
        if (magic == 0)
            break;
        e = json_object_new_object();
        name = qc_ext_name(magic);
        json_object_object_add(e, "name", json_object_new_string(name ? name : "<unknown>"));
        add_u64(e, "magic", magic);
        add_u64(e, "length", len);
        if (magic == QC_EXT_BITMAPS) {
            json_object_object_add(e, "data", bitmaps_json(f, pos));
            pos += 24;
        } else {
            uint64_t padded = ((uint64_t)len + 7) & ~7ull, avail = f->size - pos;
            if (avail > padded)
                avail = padded;
            json_object_object_add(e, "data_str", data_str_json(f, pos, avail < len ? avail : len));
            pos += avail;
        }
        json_object_array_add(a, e);
    }
    return a;
}

void qc_pyscript_dump_json(FILE *out, struct qc_file *f, bool header)
{
    uint8_t raw[PY_HEADER_LEN];
    uint64_t hdr_len, bfo, cluster_bits;
    struct json_object *h, *x;

    (void)qc_file_read(f, 0, raw, sizeof raw);
    h = header_json(raw, &hdr_len, &bfo, &cluster_bits);
    x = exts_json(f, hdr_len, bfo, cluster_bits);
    if (header) {
        qc_json_print(out, h);
        fputc('\n', out);
    }
    qc_json_print(out, x);
    json_object_put(h);
    json_object_put(x);
}
