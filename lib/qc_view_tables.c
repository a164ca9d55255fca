/* Metadata tables: L1, L2, refcounts, snapshots, bitmaps, as text and JSON. */
#include "qc_view.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_jsonw.h"
#include "qc_l2.h"
#include "qc_refcount.h"
#include "qc_shown.h"
#include "qc_snapshot.h"
#include "qc_util.h"

/* Rows go either to a text stream or, streamed, into a JSON section. */
struct sink {
    FILE *out;                 /* text mode */
    struct qc_jw *jw;          /* JSON mode: inside the section's object */
    unsigned flags;            /* QC_TV_* */
    int status;                /* 1 once something could not be shown */
    struct json_object *notes; /* JSON: written as the section closes */
    char *error;               /* JSON: likewise */
    bool error_first;          /* the error came before the first note */
};

static void sink_note(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_note(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = qc_vasprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    if (s->out) {
        fprintf(s->out, "note: %s\n", qc_esc_qemu(msg));
    } else {
        if (!s->notes)
            s->notes = json_object_new_array();
        json_object_array_add(s->notes, qc_json_text(msg));
    }
    free(msg);
}

static void sink_error(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_error(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = qc_vasprintf(fmt, ap);
    va_end(ap);
    s->status = 1;
    if (!msg)
        return;
    if (s->out) {
        fprintf(s->out, "error: %s\n", qc_esc_qemu(msg));
        free(msg);
    } else {
        if (!s->error)
            s->error_first = !s->notes;
        free(s->error);
        s->error = msg;
    }
}

static void json_open(struct sink *s, struct qc_jw *w, const char *key, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->jw = w;
    s->flags = flags;
    qc_jw_begin_object(w, key);
}

/* Notes and the error come after the members streamed before them, in
 * the order they were first given. */
static int json_close(struct sink *s)
{
    if (s->error && s->error_first)
        qc_jw_text(s->jw, "error", s->error);
    if (s->notes)
        qc_jw_value(s->jw, "notes", s->notes);
    if (s->error && !s->error_first)
        qc_jw_text(s->jw, "error", s->error);
    qc_jw_end_object(s->jw);
    json_object_put(s->notes);
    free(s->error);
    return s->status;
}

static void text_open(struct sink *s, FILE *out, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->out = out;
    s->flags = flags;
}

/* --- runs of empty entries ------------------------------------------------ */

struct fold {
    uint64_t first, count;     /* the run of empty entries not yet shown */
};

/* Whether entry I is not shown now: an empty entry is hidden (--nonzero),
 * added to the run (the default), or shown (--unfold). */
static bool fold_take(const struct sink *s, struct fold *f, uint64_t i, bool empty)
{
    if (!empty)
        return false;
    if (s->flags & QC_TV_NONZERO)
        return true;
    if (s->flags & QC_TV_UNFOLD)
        return false;
    if (!f->count)
        f->first = i;
    f->count++;
    return true;
}

typedef void (*show_empty_fn)(struct sink *s, const void *ctx, uint64_t i);

/* Shows the pending run: one entry as itself (SHOW), more as one line
 * (PREFIX, the index range, SUFFIX, padded to WIDTH, then the count) or
 * one JSON object {first, last, count, empty}. */
static void fold_flush(struct sink *s, struct fold *f, const char *prefix, const char *suffix,
                       int width, show_empty_fn show, const void *ctx)
{
    uint64_t last = f->first + f->count - 1;

    if (f->count == 1) {
        show(s, ctx, f->first);
    } else if (f->count && s->out) {
        char range[80];
        snprintf(range, sizeof range, "%s%" PRIu64 "-%" PRIu64 "%s", prefix, f->first, last, suffix);
        fprintf(s->out, "%-*s (%" PRIu64 " empty entries)\n", width, range, f->count);
    } else if (f->count) {
        qc_jw_begin_object(s->jw, NULL);
        qc_jw_u64(s->jw, "first", f->first);
        qc_jw_u64(s->jw, "last", last);
        qc_jw_u64(s->jw, "count", f->count);
        qc_jw_bool(s->jw, "empty", true);
        qc_jw_end_object(s->jw);
    }
    f->count = 0;
}

/* Members of a small json-c object (a snapshot's row). */
static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, qc_json_u64(v));
}

static void add_bool(struct json_object *o, const char *k, bool v)
{
    json_object_object_add(o, k, json_object_new_boolean(v));
}

/* Bytes of [off, off+len) the file holds, read into BUF. */
static size_t read_avail(struct qc_image *img, uint64_t off, void *buf, size_t len)
{
    uint64_t size = img->file.size;
    size_t n;

    if (off >= size)
        return 0;
    n = size - off < len ? (size_t)(size - off) : len;
    if (n && qc_file_read(&img->file, off, buf, n) < 0)
        return 0;
    return n;
}

static bool past_eof(const struct qc_image *img, uint64_t off, uint64_t len)
{
    return !qc_file_has(&img->file, off, len);
}

static void hexstr(char *buf, size_t len, uint64_t v)
{
    snprintf(buf, len, "%#" PRIx64, v);
}

static bool geometry(struct sink *s, struct qc_image *img)
{
    if (!img->geometry_ok) {
        sink_error(s, "cannot walk tables: cluster_bits %u or refcount_order %u unsupported",
                   img->hdr.cluster_bits, img->hdr.refcount_order);
        return false;
    }
    return true;
}

/* L1 entries needed for the virtual size (later ones map VM state). */
static uint64_t l1_needed(const struct qc_image *img)
{
    unsigned shift = img->cluster_bits + img->l2_bits;
    uint64_t n = img->hdr.size >> shift;
    if (img->hdr.size & ((1ull << shift) - 1))
        n++;
    return n;
}

/* --- L1 -------------------------------------------------------------------- */

static void l1_flags(char *buf, size_t len, const struct qc_image *img,
                     const struct qc_l1_entry *e, uint64_t index)
{
    size_t k = 0;

    buf[0] = '\0';
#define ADD(...) k += (size_t)snprintf(buf + k, k < len ? len - k : 0, __VA_ARGS__)
    if (e->copied)
        ADD("%sCOPIED", k ? "," : "");
    if (e->reserved)
        ADD("%sreserved=%#" PRIx64, k ? "," : "", e->reserved);
    if (e->l2_offset & (img->cluster_size - 1))
        ADD("%sunaligned", k ? "," : "");
    if (e->l2_offset && past_eof(img, e->l2_offset, img->cluster_size))
        ADD("%spast-eof", k ? "," : "");
    if (index >= l1_needed(img))
        ADD("%svm-state", k ? "," : "");
#undef ADD
}

static void show_l1_entry(struct sink *s, const struct qc_image *img, uint64_t i, uint64_t raw)
{
    struct qc_l1_entry e = qc_l1_entry_decode(raw);
    char flags[128], off[24];

    l1_flags(flags, sizeof flags, img, &e, i);
    if (s->out) {
        if (e.l2_offset)
            hexstr(off, sizeof off, e.l2_offset);
        else
            strcpy(off, "-");
        fprintf(s->out, "%-8" PRIu64 " %-18s 0x%016" PRIx64 " %s\n", i, off, e.raw, flags);
        return;
    }
    qc_jw_begin_object(s->jw, NULL);
    qc_jw_u64(s->jw, "index", i);
    qc_jw_u64(s->jw, "raw", e.raw);
    qc_jw_u64(s->jw, "l2_offset", e.l2_offset);
    qc_jw_bool(s->jw, "copied", e.copied);
    qc_jw_u64(s->jw, "reserved", e.reserved);
    qc_jw_bool(s->jw, "unaligned", (e.l2_offset & (img->cluster_size - 1)) != 0);
    qc_jw_bool(s->jw, "past_eof", e.l2_offset && past_eof(img, e.l2_offset, img->cluster_size));
    qc_jw_bool(s->jw, "vm_state", i >= l1_needed(img));
    qc_jw_end_object(s->jw);
}

static void show_empty_l1(struct sink *s, const void *img, uint64_t i)
{
    show_l1_entry(s, img, i, 0);
}

static void walk_l1(struct sink *s, struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    uint8_t buf[8 * 4096];
    struct fold f = { 0, 0 };
    bool short_read = false;
    uint64_t i = 0;

    if (!geometry(s, img))
        return;
    if (s->out) {
        fprintf(s->out, "L1 table at %#" PRIx64 ": %u entries (%" PRIu64 " needed for the virtual size), "
                "each an L2 table of %" PRIu64 " entries covering %#" PRIx64 " bytes\n",
                h->l1_table_offset, h->l1_size, l1_needed(img), img->l2_entries,
                img->l2_entries << img->cluster_bits);
        fprintf(s->out, "%-8s %-18s %-18s %s\n", "index", "L2 offset", "raw", "flags");
    } else {
        qc_jw_u64(s->jw, "offset", h->l1_table_offset);
        qc_jw_u64(s->jw, "size", h->l1_size);
        qc_jw_u64(s->jw, "needed", l1_needed(img));
        qc_jw_begin_array(s->jw, "entries");
    }
    /* the entries the file holds, read a chunk at a time */
    while (i < h->l1_size && !short_read) {
        uint64_t pos = h->l1_table_offset + 8 * i;
        size_t want = (size_t)((h->l1_size - i) < 4096 ? (h->l1_size - i) : 4096) * 8;
        size_t got = pos < h->l1_table_offset ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            uint64_t raw = qc_be64(buf + 8 * j);
            if (fold_take(s, &f, i, raw == 0))
                continue;
            fold_flush(s, &f, "", "", 8, show_empty_l1, img);
            show_l1_entry(s, img, i, raw);
        }
        short_read = n * 8 < want;
    }
    fold_flush(s, &f, "", "", 8, show_empty_l1, img);
    if (s->jw)
        qc_jw_end_array(s->jw);
    if (short_read)
        sink_note(s, "L1 entries %" PRIu64 "-%u lie past the end of the file (QEMU reads them as 0)",
                  i, h->l1_size - 1);
}

/* --- L2 -------------------------------------------------------------------- */

static const char *l2_type(const struct qc_l2_entry *e, bool extl2)
{
    if (extl2 && e->type != QC_CT_COMPRESSED &&
        qc_l2_subcluster_type(e, true, 0) == QC_SCT_INVALID)
        return "invalid";
    switch (e->type) {
    case QC_CT_ZERO_PLAIN: return "zero-plain";
    case QC_CT_ZERO_ALLOC: return "zero-alloc";
    default: return qc_cluster_type_name(e->type);
    }
}

/* One character per subcluster: D allocated, Z reads as zero, . neither,
 * ! both (invalid). */
static void subcluster_map(char *buf, uint64_t bitmap)
{
    for (unsigned i = 0; i < 32; i++) {
        bool a = bitmap & (1ull << i), z = bitmap & (1ull << (32 + i));
        buf[i] = a && z ? '!' : a ? 'D' : z ? 'Z' : '.';
    }
    buf[32] = '\0';
}

/* One L2 table being shown. */
struct l2_ctx {
    const struct qc_image *img;
    const uint8_t *table;
    uint64_t guest0;           /* guest offset of its first entry */
    bool extl2, data_file;
    struct qc_compressed_geom g;
};

static void l2_flags(char *flags, size_t len, const struct l2_ctx *c, const struct qc_l2_entry *e,
                     const struct qc_compressed_desc *d)
{
    const struct qc_image *img = c->img;
    uint64_t cs = img->cluster_size;
    size_t k = 0;

    flags[0] = '\0';
#define FL(...) k += (size_t)snprintf(flags + k, k < len ? len - k : 0, __VA_ARGS__)
    if (e->copied)
        FL("%sCOPIED", k ? "," : "");
    if (e->type == QC_CT_COMPRESSED) {
        if (d->offset >= img->file.size)
            FL("%spast-eof", k ? "," : "");
        else if (past_eof(img, d->offset, d->size))
            FL("%send-past-eof", k ? "," : "");
        if (c->extl2 && e->bitmap)
            FL("%sbitmap-set", k ? "," : "");
        return;
    }
    if (e->reserved)
        FL("%sreserved=%#" PRIx64, k ? "," : "", e->reserved);
    if (c->extl2 && (e->raw & QC_OFLAG_ZERO))
        FL("%sbit0", k ? "," : "");
    if (e->offset & (cs - 1))
        FL("%sunaligned", k ? "," : "");
    if (e->offset && !c->data_file && past_eof(img, e->offset, cs))
        FL("%spast-eof", k ? "," : "");
#undef FL
}

static void l2_entry_text(struct sink *s, const struct l2_ctx *c, uint64_t i,
                          const struct qc_l2_entry *e, const struct qc_compressed_desc *d)
{
    char host[24] = "-", flags[160], details[160], gs[24];

    l2_flags(flags, sizeof flags, c, e, d);
    if (e->type == QC_CT_COMPRESSED) {
        hexstr(host, sizeof host, d->offset);
        snprintf(details, sizeof details, "sectors=%" PRIu64 " bytes=%" PRIu64 " raw=0x%016" PRIx64,
                 d->nb_sectors, d->size, e->raw);
    } else if (c->extl2) {
        char map[33];
        subcluster_map(map, e->bitmap);
        snprintf(details, sizeof details, "bitmap=0x%016" PRIx64 " [%s] raw=0x%016" PRIx64,
                 e->bitmap, map, e->raw);
    } else {
        snprintf(details, sizeof details, "raw=0x%016" PRIx64, e->raw);
    }
    if (e->type != QC_CT_COMPRESSED && e->offset)
        hexstr(host, sizeof host, e->offset);
    hexstr(gs, sizeof gs, c->guest0 + (i << c->img->cluster_bits));
    fprintf(s->out, "%-6" PRIu64 " %-18s %-11s %-18s %-22s %s\n", i, gs, l2_type(e, c->extl2), host,
            flags[0] ? flags : "-", details);
}

static void l2_entry_json(struct sink *s, const struct l2_ctx *c, uint64_t i,
                          const struct qc_l2_entry *e, const struct qc_compressed_desc *d)
{
    struct qc_jw *w = s->jw;

    qc_jw_begin_object(w, NULL);
    qc_jw_u64(w, "index", i);
    qc_jw_u64(w, "guest_offset", c->guest0 + (i << c->img->cluster_bits));
    qc_jw_u64(w, "raw", e->raw);
    qc_jw_text(w, "type", l2_type(e, c->extl2));
    qc_jw_bool(w, "copied", e->copied);
    if (e->type == QC_CT_COMPRESSED) {
        qc_jw_begin_object(w, "compressed");
        qc_jw_u64(w, "offset", d->offset);
        qc_jw_u64(w, "sectors", d->nb_sectors);
        qc_jw_u64(w, "bytes", d->size);
        qc_jw_end_object(w);
    } else {
        qc_jw_u64(w, "host_offset", e->offset);
        qc_jw_u64(w, "reserved", e->reserved);
        qc_jw_bool(w, "unaligned", (e->offset & (c->img->cluster_size - 1)) != 0);
    }
    if (c->extl2) {
        char map[33];
        subcluster_map(map, e->bitmap);
        qc_jw_u64(w, "bitmap", e->bitmap);
        qc_jw_text(w, "subclusters", map);
    }
    qc_jw_end_object(w);
}

static void show_l2_entry(struct sink *s, const void *ctx, uint64_t i)
{
    const struct l2_ctx *c = ctx;
    struct qc_l2_entry e = qc_l2_table_entry(c->table, c->extl2, c->data_file, (size_t)i);
    struct qc_compressed_desc d = { 0, 0, 0 };

    if (e.type == QC_CT_COMPRESSED)
        d = qc_compressed_decode(&c->g, e.raw & ~(QC_OFLAG_COPIED | QC_OFLAG_COMPRESSED));
    if (s->out)
        l2_entry_text(s, c, i, &e, &d);
    else
        l2_entry_json(s, c, i, &e, &d);
}

/* The entries of the L2 table read into TABLE (GOT bytes of it). */
static void l2_entries(struct sink *s, const struct l2_ctx *c, size_t got)
{
    size_t n = got / c->img->l2_entry_size;
    struct fold f = { 0, 0 };

    if (s->out)
        fprintf(s->out, "%-6s %-18s %-11s %-18s %-22s %s\n", "index", "guest offset", "type",
                "host offset", "flags", "details");
    else
        qc_jw_begin_array(s->jw, "entries");
    for (size_t i = 0; i < n; i++) {
        struct qc_l2_entry e = qc_l2_table_entry(c->table, c->extl2, c->data_file, i);
        if (fold_take(s, &f, i, e.raw == 0 && e.bitmap == 0))
            continue;
        fold_flush(s, &f, "", "", 6, show_l2_entry, c);
        show_l2_entry(s, c, i);
    }
    fold_flush(s, &f, "", "", 6, show_l2_entry, c);
    if (s->jw)
        qc_jw_end_array(s->jw);
}

/* The table shown before (SAME: for L1 entry PREV) or the cluster at PREV
 * it overlaps, in place of the entries. */
static void l2_shown_before(struct sink *s, enum qc_shown_kind k, uint64_t prev)
{
    if (s->jw)
        qc_jw_u64(s->jw, k == QC_SHOWN_SAME ? "duplicate_of" : "overlaps", prev);
    else if (k == QC_SHOWN_SAME)
        fprintf(s->out, "  the table shown above for L1 entry %" PRIu64 "\n", prev);
    else
        fprintf(s->out, "  overlaps the table shown above in the cluster at %#" PRIx64
                "; not shown again\n", prev);
}

static void walk_one_l2(struct sink *s, struct qc_image *img, struct qc_shown *shown,
                        uint8_t *table, uint64_t l1_index, uint64_t l1_raw)
{
    uint64_t l2off = l1_raw & QC_L1E_OFFSET_MASK, cs = img->cluster_size, prev = 0;
    struct l2_ctx c = { img, table, (l1_index << img->l2_bits) << img->cluster_bits,
                        img->extended_l2,
                        (img->hdr.incompatible_features & QC_INCOMPAT_DATA_FILE) != 0,
                        qc_compressed_geom(img->cluster_bits) };
    enum qc_shown_kind k;
    size_t got;

    if (s->jw) {
        qc_jw_begin_object(s->jw, NULL);
        qc_jw_u64(s->jw, "l1_index", l1_index);
        qc_jw_u64(s->jw, "offset", l2off);
    }
    if (!l2off) {
        if (s->out)
            fprintf(s->out, "L1 entry %" PRIu64 ": no L2 table\n", l1_index);
        else
            qc_jw_end_object(s->jw);
        return;
    }
    if (s->out)
        fprintf(s->out, "L2 table of L1 entry %" PRIu64 " at %#" PRIx64 "%s: %" PRIu64
                " entries of %u bytes, guest %#" PRIx64 "-%#" PRIx64 "\n",
                l1_index, l2off, (l2off & (cs - 1)) ? " (unaligned)" : "", img->l2_entries,
                img->l2_entry_size, c.guest0, c.guest0 + (img->l2_entries << img->cluster_bits) - 1);
    else
        qc_jw_bool(s->jw, "unaligned", (l2off & (cs - 1)) != 0);
    k = qc_shown_claim(shown, l2off, cs, l1_index, &prev);
    if (k != QC_SHOWN_NEW) {
        l2_shown_before(s, k, prev);
        if (s->jw)
            qc_jw_end_object(s->jw);
        return;
    }
    got = read_avail(img, l2off, table, (size_t)cs);
    l2_entries(s, &c, got);
    if (s->jw)
        qc_jw_end_object(s->jw);
    if (got < cs)
        sink_note(s, "L2 entries %zu-%" PRIu64 " of the table at %#" PRIx64
                  " lie past the end of the file (QEMU reads them as 0)",
                  got / img->l2_entry_size, img->l2_entries - 1, l2off);
}

static void walk_l2(struct sink *s, struct qc_image *img, bool all, uint64_t index)
{
    const struct qc_header *h = &img->hdr;
    struct qc_shown shown;
    uint8_t raw[8], *table;

    if (s->jw)
        qc_jw_begin_array(s->jw, "tables");
    if (!geometry(s, img))
        goto out;
    if (!all && index >= h->l1_size) {
        sink_error(s, "L1 index %" PRIu64 " is beyond the L1 table (%u entries)", index, h->l1_size);
        goto out;
    }
    table = malloc((size_t)img->cluster_size);
    if (!table || qc_shown_init(&shown, img->file.size, img->cluster_bits) < 0) {
        free(table);
        sink_error(s, "out of memory");
        goto out;
    }
    for (uint64_t i = all ? 0 : index; i < (all ? h->l1_size : index + 1); i++) {
        uint64_t pos = h->l1_table_offset + 8 * i, e;
        if (pos < h->l1_table_offset || read_avail(img, pos, raw, 8) < 8) {
            sink_note(s, "L1 entry %" PRIu64 " lies past the end of the file", i);
            break;
        }
        e = qc_be64(raw);
        if (all && !(e & QC_L1E_OFFSET_MASK))
            continue;
        walk_one_l2(s, img, &shown, table, i, e);
    }
    qc_shown_free(&shown);
    free(table);
out:
    if (s->jw)
        qc_jw_end_array(s->jw);
}

/* --- refcounts ------------------------------------------------------------- */

/* One refcount block being shown. */
struct refblock_ctx {
    const struct qc_image *img;
    const uint8_t *block;
    uint64_t first;            /* the cluster its first refcount is for */
};

static void show_refcount(struct sink *s, const void *ctx, uint64_t cl)
{
    const struct refblock_ctx *c = ctx;
    uint64_t rc = qc_refblock_get(c->block, c->img->refcount_order, cl - c->first);

    if (s->out) {
        fprintf(s->out, "  %-14" PRIu64 " %#-18" PRIx64 " %" PRIu64 "\n", cl,
                cl << c->img->cluster_bits, rc);
        return;
    }
    qc_jw_begin_object(s->jw, NULL);
    qc_jw_u64(s->jw, "cluster", cl);
    qc_jw_u64(s->jw, "refcount", rc);
    qc_jw_end_object(s->jw);
}

/* The refcounts of the block read into C->block (GOT bytes of it). */
static void refblock_entries(struct sink *s, const struct refblock_ctx *c, size_t got)
{
    const struct qc_image *img = c->img;
    struct fold f = { 0, 0 };
    /* only whole entries the file holds */
    uint64_t n = ((uint64_t)got * 8) >> img->refcount_order;

    if (n > img->refblock_entries)
        n = img->refblock_entries;
    if (s->out)
        fprintf(s->out, "  %-14s %-18s %s\n", "cluster", "host offset", "refcount");
    else
        qc_jw_begin_array(s->jw, "refcounts");
    for (uint64_t k = 0; k < n; k++) {
        uint64_t cl = c->first + k;
        if (fold_take(s, &f, cl, qc_refblock_get(c->block, img->refcount_order, k) == 0))
            continue;
        fold_flush(s, &f, "  ", "", 16, show_refcount, c);
        show_refcount(s, c, cl);
    }
    fold_flush(s, &f, "  ", "", 16, show_refcount, c);
    if (s->jw)
        qc_jw_end_array(s->jw);
}

static void reftable_row(struct sink *s, const struct qc_image *img, uint64_t i, uint64_t raw)
{
    uint64_t off = raw & QC_REFT_OFFSET_MASK, reserved = raw & QC_REFT_RESERVED_MASK;
    uint64_t per = img->refblock_entries, first = i * per;
    bool unaligned = (off & (img->cluster_size - 1)) != 0;
    bool beyond = off && past_eof(img, off, img->cluster_size);

    if (s->jw) {
        qc_jw_u64(s->jw, "index", i);
        qc_jw_u64(s->jw, "raw", raw);
        qc_jw_u64(s->jw, "block_offset", off);
        qc_jw_u64(s->jw, "reserved", reserved);
        qc_jw_bool(s->jw, "unaligned", unaligned);
        qc_jw_bool(s->jw, "past_eof", beyond);
        return;
    }
    fprintf(s->out, "reftable[%" PRIu64 "] = 0x%016" PRIx64 ": ", i, raw);
    if (!off)
        fprintf(s->out, "no refcount block (clusters %" PRIu64 "-%" PRIu64 " have refcount 0)",
                first, first + per - 1);
    else
        fprintf(s->out, "refcount block at %#" PRIx64 " for clusters %" PRIu64 "-%" PRIu64,
                off, first, first + per - 1);
    if (reserved)
        fprintf(s->out, " reserved=%#" PRIx64, reserved);
    if (unaligned)
        fprintf(s->out, " unaligned");
    if (beyond)
        fprintf(s->out, " past-eof");
    fputc('\n', s->out);
}

static void show_empty_reftable(struct sink *s, const void *img, uint64_t i)
{
    if (s->jw)
        qc_jw_begin_object(s->jw, NULL);
    reftable_row(s, img, i, 0);
    if (s->jw)
        qc_jw_end_object(s->jw);
}

/* Reftable entry I naming the block at OFF, and the block, unless it was
 * shown before. */
static void reftable_entry(struct sink *s, struct qc_image *img, struct qc_shown *shown,
                           uint8_t *block, uint64_t i, uint64_t raw)
{
    uint64_t off = raw & QC_REFT_OFFSET_MASK, cs = img->cluster_size, prev = 0;
    struct refblock_ctx c = { img, block, i * img->refblock_entries };
    enum qc_shown_kind k;
    size_t got;

    if (s->jw)
        qc_jw_begin_object(s->jw, NULL);
    reftable_row(s, img, i, raw);
    if (!off) {
        if (s->jw)
            qc_jw_end_object(s->jw);
        return;
    }
    k = qc_shown_claim(shown, off, cs, i, &prev);
    if (k == QC_SHOWN_SAME && s->out)
        fprintf(s->out, "  the block shown above for reftable[%" PRIu64 "]\n", prev);
    else if (k == QC_SHOWN_OVERLAP && s->out)
        fprintf(s->out, "  overlaps the block shown above in the cluster at %#" PRIx64
                "; not shown again\n", prev);
    else if (k != QC_SHOWN_NEW)
        qc_jw_u64(s->jw, k == QC_SHOWN_SAME ? "duplicate_of" : "overlaps", prev);
    if (k == QC_SHOWN_NEW) {
        got = read_avail(img, off, block, (size_t)cs);
        refblock_entries(s, &c, got);
        if (got < cs)
            sink_note(s, "the refcount block at %#" PRIx64 " ends past the end of the file "
                      "(%zu of %" PRIu64 " bytes present)", off, got, cs);
    }
    if (s->jw)
        qc_jw_end_object(s->jw);
}

static void refcounts_heading(struct sink *s, const struct qc_image *img, uint64_t entries)
{
    const struct qc_header *h = &img->hdr;

    if (s->out) {
        fprintf(s->out, "Refcount table at %#" PRIx64 ": %u cluster(s), %" PRIu64
                " entries; refcount_bits %u, %" PRIu64 " refcounts per block\n",
                h->refcount_table_offset, h->refcount_table_clusters, entries,
                img->refcount_bits, img->refblock_entries);
        return;
    }
    qc_jw_u64(s->jw, "offset", h->refcount_table_offset);
    qc_jw_u64(s->jw, "clusters", h->refcount_table_clusters);
    qc_jw_u64(s->jw, "entries", entries);
    qc_jw_u64(s->jw, "refcount_bits", img->refcount_bits);
    qc_jw_u64(s->jw, "refcounts_per_block", img->refblock_entries);
}

/* The reftable entries the file holds, a chunk at a time. */
static void reftable_entries(struct sink *s, struct qc_image *img, struct qc_shown *shown,
                             uint8_t *block, uint64_t entries)
{
    uint64_t toff = img->hdr.refcount_table_offset, i = 0;
    uint8_t buf[8 * 512];
    struct fold f = { 0, 0 };
    bool short_read = false;

    while (i < entries && !short_read) {
        uint64_t pos = toff + 8 * i;
        size_t want = (size_t)((entries - i) < 512 ? (entries - i) : 512) * 8;
        size_t got = pos < toff ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            uint64_t raw = qc_be64(buf + 8 * j);
            if (fold_take(s, &f, i, raw == 0))
                continue;
            fold_flush(s, &f, "reftable[", "]:", 0, show_empty_reftable, img);
            reftable_entry(s, img, shown, block, i, raw);
        }
        short_read = n * 8 < want;
    }
    fold_flush(s, &f, "reftable[", "]:", 0, show_empty_reftable, img);
    if (short_read)
        sink_note(s, "reftable entries %" PRIu64 "-%" PRIu64 " lie past the end of the file",
                  i, entries - 1);
}

static void walk_refcounts(struct sink *s, struct qc_image *img)
{
    uint64_t entries = (uint64_t)img->hdr.refcount_table_clusters * img->cluster_size / 8;
    struct qc_shown shown;
    uint8_t *block;

    if (!geometry(s, img))
        return;
    refcounts_heading(s, img, entries);
    if (s->jw)
        qc_jw_begin_array(s->jw, "table");
    block = malloc((size_t)img->cluster_size);
    if (!block || qc_shown_init(&shown, img->file.size, img->cluster_bits) < 0) {
        free(block);
        sink_error(s, "out of memory");
    } else {
        reftable_entries(s, img, &shown, block, entries);
        qc_shown_free(&shown);
        free(block);
    }
    if (s->jw)
        qc_jw_end_array(s->jw);
}

/* --- snapshots --------------------------------------------------------------- */

static void snapshot_date(char *buf, size_t len, uint32_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;

    if (localtime_r(&t, &tm))
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    else
        snprintf(buf, len, "?");
}

static void vm_clock(char *buf, size_t len, uint64_t ns)
{
    uint64_t ms = ns / 1000000, s = ms / 1000;
    snprintf(buf, len, "%02" PRIu64 ":%02u:%02u.%03u", s / 3600, (unsigned)(s / 60 % 60),
             (unsigned)(s % 60), (unsigned)(ms % 1000));
}

static char *hex_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n * 3 + 1);
    size_t k = 0;

    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, 4, "%s%02x", i ? " " : "", p[i]);
    s[k] = '\0';
    return s;
}

static void show_snapshot(struct sink *s, const struct qc_image *img, const struct qc_snapshot *sn,
                          size_t i)
{
    const struct qc_header *h = &img->hdr;
    char date[64], clock[48], *extra = hex_bytes(sn->extra, sn->extra_data_size);
    uint64_t vmsize = sn->has_vm_state_size_large ? sn->vm_state_size_large : sn->vm_state_size;
    bool l1_beyond = past_eof(img, sn->l1_table_offset, (uint64_t)sn->l1_size * 8);

    snapshot_date(date, sizeof date, sn->date_sec);
    vm_clock(clock, sizeof clock, sn->vm_clock_nsec);
    if (s->out) {
        fprintf(s->out, "\nSnapshot %zu (entry at %#" PRIx64 ", %" PRIu64 " bytes)\n", i,
                sn->entry_offset, sn->entry_len);
        fprintf(s->out, "  %-18s %s\n", "id", qc_esc(sn->id_str));
        fprintf(s->out, "  %-18s %s\n", "name", qc_esc(sn->name));
        fprintf(s->out, "  %-18s %#" PRIx64 "%s%s\n", "l1_table_offset", sn->l1_table_offset,
                (sn->l1_table_offset & (img->cluster_size - 1)) ? " (unaligned)" : "",
                l1_beyond ? " (past the end of the file)" : "");
        fprintf(s->out, "  %-18s %u\n", "l1_size", sn->l1_size);
        fprintf(s->out, "  %-18s %" PRIu64 " (32-bit field: %u)\n", "vm_state_size", vmsize,
                sn->vm_state_size);
        if (sn->has_disk_size)
            fprintf(s->out, "  %-18s %" PRIu64 "\n", "disk_size", sn->disk_size);
        else
            fprintf(s->out, "  %-18s (not stored: the virtual size, %" PRIu64 ")\n", "disk_size",
                    h->size);
        fprintf(s->out, "  %-18s %s (date_sec %u, date_nsec %u)\n", "date", date, sn->date_sec,
                sn->date_nsec);
        fprintf(s->out, "  %-18s %s (%" PRIu64 " ns)\n", "vm_clock", clock, sn->vm_clock_nsec);
        if (sn->has_icount && sn->icount != UINT64_MAX)
            fprintf(s->out, "  %-18s %" PRIu64 "\n", "icount", sn->icount);
        else
            fprintf(s->out, "  %-18s none\n", "icount");
        fprintf(s->out, "  %-18s %u%s\n", "extra_data_size", sn->extra_data_size,
                sn->extra_data_size > QC_SNAPSHOT_MAX_EXTRA ? " (more than QEMU accepts: 1024)" : "");
        if (sn->extra_data_size)
            fprintf(s->out, "  %-18s %s\n", "extra_data", extra ? extra : "");
    } else {
        struct json_object *r = json_object_new_object();
        add_u64(r, "entry_offset", sn->entry_offset);
        json_object_object_add(r, "id", qc_json_text(sn->id_str));
        json_object_object_add(r, "name", qc_json_text(sn->name));
        add_u64(r, "l1_table_offset", sn->l1_table_offset);
        add_u64(r, "l1_size", sn->l1_size);
        add_u64(r, "vm_state_size", vmsize);
        add_u64(r, "vm_state_size32", sn->vm_state_size);
        if (sn->has_disk_size)
            add_u64(r, "disk_size", sn->disk_size);
        add_u64(r, "date_sec", sn->date_sec);
        add_u64(r, "date_nsec", sn->date_nsec);
        json_object_object_add(r, "date", json_object_new_string(date));
        add_u64(r, "vm_clock_nsec", sn->vm_clock_nsec);
        if (sn->has_icount)
            add_u64(r, "icount", sn->icount);
        add_u64(r, "extra_data_size", sn->extra_data_size);
        json_object_object_add(r, "extra_data", json_object_new_string(extra ? extra : ""));
        add_bool(r, "l1_past_eof", l1_beyond);
        qc_jw_value(s->jw, NULL, r);
        json_object_put(r);
    }
    free(extra);
}

static void walk_snapshots(struct sink *s, struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    /* the largest table QEMU accepts, plus one entry of the largest size */
    uint64_t cap = QC_SNAPSHOT_TABLE_MAX + QC_SNAPSHOT_ENTRY_FIXED + QC_SNAPSHOT_MAX_EXTRA + 2 * 65535 + 8;
    struct qc_snapshot_table t;
    uint8_t *buf;
    size_t got;
    uint64_t want;

    if (s->out)
        fprintf(s->out, "Snapshot table at %#" PRIx64 ": %u snapshot(s)\n", h->snapshots_offset,
                h->nb_snapshots);
    else {
        qc_jw_u64(s->jw, "offset", h->snapshots_offset);
        qc_jw_u64(s->jw, "nb_snapshots", h->nb_snapshots);
        qc_jw_begin_array(s->jw, "snapshots");
    }
    if (!h->nb_snapshots)
        goto out;
    want = (uint64_t)h->nb_snapshots * (QC_SNAPSHOT_ENTRY_FIXED + QC_SNAPSHOT_MAX_EXTRA + 2 * 65535 + 8);
    if (want > cap)
        want = cap;
    /* what the file holds of it, never more */
    if (h->snapshots_offset >= img->file.size)
        want = 0;
    else if (want > img->file.size - h->snapshots_offset)
        want = img->file.size - h->snapshots_offset;
    buf = malloc(want ? (size_t)want : 1);
    if (!buf) {
        sink_error(s, "out of memory");
        goto out;
    }
    got = read_avail(img, h->snapshots_offset, buf, (size_t)want);
    if (qc_snapshot_table_parse(&t, buf, got, h->snapshots_offset, h->nb_snapshots) < 0) {
        free(buf);
        qc_snapshot_table_free(&t);
        sink_error(s, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < t.n; i++)
        show_snapshot(s, img, &t.v[i], i);
    if (t.n < h->nb_snapshots)
        sink_note(s, "snapshot %zu and later do not fit in the file (%u announced)", t.n,
                  h->nb_snapshots);
    qc_snapshot_table_free(&t);
    free(buf);
out:
    if (s->jw)
        qc_jw_end_array(s->jw);
}

/* --- bitmaps --------------------------------------------------------------- */

static void bitmap_flag_names(char *buf, size_t len, uint32_t flags)
{
    size_t k = (size_t)snprintf(buf, len, "%#x", flags);
    const char *sep = " (";

    for (unsigned b = 0; b < 32; b++) {
        if (!(flags & (1u << b)))
            continue;
        if (b == 0)
            k += (size_t)snprintf(buf + k, k < len ? len - k : 0, "%sin-use", sep);
        else if (b == 1)
            k += (size_t)snprintf(buf + k, k < len ? len - k : 0, "%sauto", sep);
        else if (b == 2)
            k += (size_t)snprintf(buf + k, k < len ? len - k : 0, "%sextra-data-compatible", sep);
        else
            k += (size_t)snprintf(buf + k, k < len ? len - k : 0, "%sbit-%u", sep, b);
        sep = ", ";
    }
    if (flags)
        snprintf(buf + k, k < len ? len - k : 0, ")");
}

struct bmt_ctx {
    const struct qc_image *img;
    const struct qc_bitmap *b;
};

static void show_bitmap_entry(struct sink *s, const struct bmt_ctx *c, uint64_t i, uint64_t e)
{
    uint64_t off = e & QC_BMT_OFFSET_MASK, cs = c->img->cluster_size;
    enum qc_bmt_kind k = qc_bitmap_table_entry_kind(e);
    char o[24] = "-";

    if (s->jw) {
        qc_jw_begin_object(s->jw, NULL);
        qc_jw_u64(s->jw, "index", i);
        qc_jw_u64(s->jw, "raw", e);
        qc_jw_text(s->jw, "kind", qc_bitmap_table_kind_name(k));
        qc_jw_u64(s->jw, "offset", off);
        qc_jw_u64(s->jw, "reserved", e & QC_BMT_RESERVED_MASK);
        qc_jw_end_object(s->jw);
        return;
    }
    if (off)
        hexstr(o, sizeof o, off);
    fprintf(s->out, "  %-8" PRIu64 " %-12s %-18s 0x%016" PRIx64 "%s%s%s\n", i,
            qc_bitmap_table_kind_name(k), o, e,
            (e & QC_BMT_RESERVED_MASK) ? " reserved-bits" : "",
            (off & (cs - 1)) ? " unaligned" : "",
            off && past_eof(c->img, off, cs) ? " past-eof" : "");
}

static void show_empty_bitmap_entry(struct sink *s, const void *ctx, uint64_t i)
{
    show_bitmap_entry(s, ctx, i, 0);
}

/* The entries of bitmap B's table the file holds, a chunk at a time. */
static void bitmap_table_entries(struct sink *s, struct qc_image *img, const struct qc_bitmap *b)
{
    struct bmt_ctx c = { img, b };
    struct fold f = { 0, 0 };
    uint8_t buf[8 * 512];
    bool short_read = false;
    uint64_t i = 0;

    if (s->jw)
        qc_jw_begin_array(s->jw, "table");
    else
        fprintf(s->out, "  %-8s %-12s %-18s %s\n", "index", "kind", "data offset", "raw");
    while (i < b->table_size && !short_read) {
        uint64_t pos = b->table_offset + 8 * i;
        size_t want = (size_t)((b->table_size - i) < 512 ? (b->table_size - i) : 512) * 8;
        size_t got = pos < b->table_offset ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            uint64_t e = qc_be64(buf + 8 * j);
            if (fold_take(s, &f, i, e == 0))
                continue;
            fold_flush(s, &f, "  ", "", 10, show_empty_bitmap_entry, &c);
            show_bitmap_entry(s, &c, i, e);
        }
        short_read = n * 8 < want;
    }
    fold_flush(s, &f, "  ", "", 10, show_empty_bitmap_entry, &c);
    if (s->jw)
        qc_jw_end_array(s->jw);
    if (short_read)
        sink_note(s, "bitmap '%s': table entries %" PRIu64 "-%u lie past the end of the file",
                  b->name, i, b->table_size - 1);
}

/* Bitmap I's table, unless a bitmap before it showed it (or part of it). */
static void walk_bitmap_table(struct sink *s, struct qc_image *img, struct qc_shown *shown,
                              const struct qc_bitmap *b, size_t i)
{
    uint64_t prev = 0;
    enum qc_shown_kind k = qc_shown_claim(shown, b->table_offset, (uint64_t)b->table_size * 8, i,
                                          &prev);

    if (k == QC_SHOWN_NEW)
        bitmap_table_entries(s, img, b);
    else if (s->jw)
        qc_jw_u64(s->jw, k == QC_SHOWN_SAME ? "duplicate_of" : "overlaps", prev);
    else if (k == QC_SHOWN_SAME)
        fprintf(s->out, "  the table shown above for bitmap %" PRIu64 "\n", prev);
    else
        fprintf(s->out, "  overlaps the table shown above in the cluster at %#" PRIx64
                "; not shown again\n", prev);
}

static void show_bitmap(struct sink *s, struct qc_image *img, struct qc_shown *shown,
                        const struct qc_bitmap *b, size_t i)
{
    struct qc_jw *w = s->jw;
    char flags[160];

    if (w) {
        qc_jw_begin_object(w, NULL);
        qc_jw_u64(w, "entry_offset", b->entry_offset);
        qc_jw_text(w, "name", b->name);
        qc_jw_u64(w, "table_offset", b->table_offset);
        qc_jw_u64(w, "table_size", b->table_size);
        qc_jw_u64(w, "flags", b->flags);
        qc_jw_bool(w, "in_use", b->flags & QC_BME_FLAG_IN_USE);
        qc_jw_bool(w, "auto", b->flags & QC_BME_FLAG_AUTO);
        qc_jw_u64(w, "type", b->type);
        qc_jw_u64(w, "granularity_bits", b->granularity_bits);
        qc_jw_u64(w, "extra_data_size", b->extra_data_size);
        walk_bitmap_table(s, img, shown, b, i);
        qc_jw_end_object(w);
        return;
    }
    bitmap_flag_names(flags, sizeof flags, b->flags);
    fprintf(s->out, "\nBitmap %zu '%s' (entry at %#" PRIx64 ")\n", i, qc_esc(b->name),
            b->entry_offset);
    fprintf(s->out, "  %-18s %#" PRIx64 "%s\n", "table_offset", b->table_offset,
            (b->table_offset & (img->cluster_size - 1)) ? " (unaligned)" : "");
    fprintf(s->out, "  %-18s %u\n", "table_size", b->table_size);
    fprintf(s->out, "  %-18s %s\n", "flags", flags);
    fprintf(s->out, "  %-18s %u%s\n", "type", b->type, b->type == 1 ? " (dirty tracking)" : " (unknown)");
    fprintf(s->out, "  %-18s %u (%" PRIu64 " bytes)\n", "granularity_bits", b->granularity_bits,
            b->granularity_bits < 64 ? (uint64_t)1 << b->granularity_bits : 0);
    fprintf(s->out, "  %-18s %u\n", "name_size", b->name_size);
    fprintf(s->out, "  %-18s %u\n", "extra_data_size", b->extra_data_size);
    walk_bitmap_table(s, img, shown, b, i);
}

static const struct qc_ext *bitmaps_ext(const struct qc_image *img)
{
    const struct qc_ext *ext = NULL;

    for (size_t i = 0; i < img->exts.n; i++)
        if (img->exts.v[i].magic == QC_EXT_BITMAPS)
            ext = &img->exts.v[i];
    return ext;
}

static void bitmaps_heading(struct sink *s, const struct qc_ext *ext, const struct qc_ext_bitmaps *eb,
                            bool consistent)
{
    if (s->out) {
        fprintf(s->out, "Bitmaps extension at %#" PRIx64 ": %u bitmap(s), directory at %#" PRIx64
                ", %" PRIu64 " bytes%s\n", ext->offset, eb->nb_bitmaps, eb->directory_offset,
                eb->directory_size,
                consistent ? "" : " (autoclear bit 0 clear: QEMU ignores the bitmaps)");
        if (eb->reserved32)
            fprintf(s->out, "reserved field: %#x\n", eb->reserved32);
        return;
    }
    qc_jw_bool(s->jw, "present", true);
    qc_jw_u64(s->jw, "nb_bitmaps", eb->nb_bitmaps);
    qc_jw_u64(s->jw, "directory_offset", eb->directory_offset);
    qc_jw_u64(s->jw, "directory_size", eb->directory_size);
    qc_jw_u64(s->jw, "reserved32", eb->reserved32);
    qc_jw_bool(s->jw, "consistent", consistent);
}

/* Each bitmap of the directory read into DIR (GOT bytes of it). */
static void bitmap_dir(struct sink *s, struct qc_image *img, const struct qc_ext_bitmaps *eb,
                       const uint8_t *dir, size_t got)
{
    struct qc_bitmap_dir d;
    struct qc_shown shown;

    if (qc_bitmap_dir_parse(&d, dir, got, eb->directory_offset, eb->nb_bitmaps) < 0 ||
        qc_shown_init(&shown, img->file.size, img->cluster_bits) < 0) {
        qc_bitmap_dir_free(&d);
        sink_error(s, "out of memory");
        return;
    }
    for (size_t i = 0; i < d.n; i++)
        show_bitmap(s, img, &shown, &d.v[i], i);
    if (d.truncated)
        sink_note(s, "the directory ends inside entry %zu", d.n);
    if (d.n < eb->nb_bitmaps && !d.truncated)
        sink_note(s, "the directory holds %zu of %u bitmaps", d.n, eb->nb_bitmaps);
    qc_shown_free(&shown);
    qc_bitmap_dir_free(&d);
}

static void walk_bitmaps(struct sink *s, struct qc_image *img)
{
    const struct qc_ext *ext = bitmaps_ext(img);
    struct qc_ext_bitmaps eb;
    uint8_t *dir;
    size_t got, want;

    if (!ext || !qc_ext_bitmaps_decode(ext, &eb)) {
        if (s->out)
            fprintf(s->out, "No bitmaps extension%s\n", ext ? " (its payload is cut short)" : "");
        else
            qc_jw_bool(s->jw, "present", false);
        return;
    }
    bitmaps_heading(s, ext, &eb, (img->hdr.autoclear_features & QC_AUTOCLEAR_BITMAPS) != 0);
    if (s->jw)
        qc_jw_begin_array(s->jw, "bitmaps");
    if (eb.directory_size > 1024ull * 65535) {
        sink_error(s, "bitmap directory size %" PRIu64 " is above QEMU's limit (67107840)",
                   eb.directory_size);
        goto out;
    }
    /* what the file holds of the directory, never more */
    want = (size_t)eb.directory_size;
    if (eb.directory_offset >= img->file.size)
        want = 0;
    else if (want > img->file.size - eb.directory_offset)
        want = (size_t)(img->file.size - eb.directory_offset);
    dir = malloc(want ? want : 1);
    if (!dir) {
        sink_error(s, "out of memory");
        goto out;
    }
    got = read_avail(img, eb.directory_offset, dir, want);
    if (got < eb.directory_size)
        sink_note(s, "the bitmap directory ends past the end of the file (%zu of %" PRIu64 " bytes present)",
                  got, eb.directory_size);
    bitmap_dir(s, img, &eb, dir, got);
    free(dir);
out:
    if (s->jw)
        qc_jw_end_array(s->jw);
}

/* --- entry points ------------------------------------------------------------ */

int qc_view_l1(FILE *out, struct qc_image *img, unsigned flags)
{
    struct sink s;

    text_open(&s, out, flags);
    walk_l1(&s, img);
    return s.status;
}

int qc_view_l2(FILE *out, struct qc_image *img, bool all, uint64_t index, unsigned flags)
{
    struct sink s;

    text_open(&s, out, flags);
    walk_l2(&s, img, all, index);
    return s.status;
}

int qc_view_refcounts(FILE *out, struct qc_image *img, unsigned flags)
{
    struct sink s;

    text_open(&s, out, flags);
    walk_refcounts(&s, img);
    return s.status;
}

int qc_view_snapshots(FILE *out, struct qc_image *img)
{
    struct sink s;

    text_open(&s, out, 0);
    walk_snapshots(&s, img);
    return s.status;
}

int qc_view_bitmaps(FILE *out, struct qc_image *img, unsigned flags)
{
    struct sink s;

    text_open(&s, out, flags);
    walk_bitmaps(&s, img);
    return s.status;
}

int qc_json_l1(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags)
{
    struct sink s;

    json_open(&s, w, key, flags);
    walk_l1(&s, img);
    return json_close(&s);
}

int qc_json_l2(struct qc_jw *w, const char *key, struct qc_image *img, bool all, uint64_t index,
               unsigned flags)
{
    struct sink s;

    json_open(&s, w, key, flags);
    walk_l2(&s, img, all, index);
    return json_close(&s);
}

int qc_json_refcounts(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags)
{
    struct sink s;

    json_open(&s, w, key, flags);
    walk_refcounts(&s, img);
    return json_close(&s);
}

int qc_json_snapshots(struct qc_jw *w, const char *key, struct qc_image *img)
{
    struct sink s;

    json_open(&s, w, key, 0);
    walk_snapshots(&s, img);
    return json_close(&s);
}

int qc_json_bitmaps(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags)
{
    struct sink s;

    json_open(&s, w, key, flags);
    walk_bitmaps(&s, img);
    return json_close(&s);
}
