/* Metadata tables: L1, L2, refcounts, snapshots, bitmaps, as text and JSON. */
#include "qc_view.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_l2.h"
#include "qc_refcount.h"
#include "qc_snapshot.h"
#include "qc_util.h"

/* Rows go either to a text stream or into a JSON section object. */
struct sink {
    FILE *out;                 /* text mode */
    struct json_object *obj;   /* JSON mode: the section */
    int status;                /* 1 once something could not be shown */
};

static void sink_note(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_note(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return;
    if (s->out) {
        fprintf(s->out, "note: %s\n", qc_esc_qemu(msg));
    } else {
        struct json_object *notes;
        if (!json_object_object_get_ex(s->obj, "notes", &notes)) {
            notes = json_object_new_array();
            json_object_object_add(s->obj, "notes", notes);
        }
        json_object_array_add(notes, qc_json_text(msg));
    }
    free(msg);
}

static void sink_error(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sink_error(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    s->status = 1;
    if (!msg)
        return;
    if (s->out)
        fprintf(s->out, "error: %s\n", qc_esc_qemu(msg));
    else
        json_object_object_add(s->obj, "error", qc_json_text(msg));
    free(msg);
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, qc_json_u64(v));
}

static void add_bool(struct json_object *o, const char *k, bool v)
{
    json_object_object_add(o, k, json_object_new_boolean(v));
}

static struct json_object *sink_array(struct sink *s, const char *key)
{
    struct json_object *a;

    if (!s->obj)
        return NULL;
    if (!json_object_object_get_ex(s->obj, key, &a)) {
        a = json_object_new_array();
        json_object_object_add(s->obj, key, a);
    }
    return a;
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

static void walk_l1(struct sink *s, struct qc_image *img, bool nonzero)
{
    const struct qc_header *h = &img->hdr;
    uint8_t buf[8 * 4096];
    struct json_object *rows;

    if (!geometry(s, img))
        return;
    if (s->out) {
        fprintf(s->out, "L1 table at %#" PRIx64 ": %u entries (%" PRIu64 " needed for the virtual size), "
                "each an L2 table of %" PRIu64 " entries covering %#" PRIx64 " bytes\n",
                h->l1_table_offset, h->l1_size, l1_needed(img), img->l2_entries,
                img->l2_entries << img->cluster_bits);
        fprintf(s->out, "%-8s %-18s %-18s %s\n", "index", "L2 offset", "raw", "flags");
    } else {
        add_u64(s->obj, "offset", h->l1_table_offset);
        add_u64(s->obj, "size", h->l1_size);
        add_u64(s->obj, "needed", l1_needed(img));
    }
    rows = sink_array(s, "entries");
    for (uint64_t i = 0; i < h->l1_size;) {
        uint64_t pos = h->l1_table_offset + 8 * i;
        size_t want = (size_t)((h->l1_size - i) < 4096 ? (h->l1_size - i) : 4096) * 8;
        size_t got = pos < h->l1_table_offset ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            struct qc_l1_entry e = qc_l1_entry_decode(qc_be64(buf + 8 * j));
            char flags[128], off[24];
            if (nonzero && e.raw == 0)
                continue;
            l1_flags(flags, sizeof flags, img, &e, i);
            if (s->out) {
                if (e.l2_offset)
                    hexstr(off, sizeof off, e.l2_offset);
                else
                    strcpy(off, "-");
                fprintf(s->out, "%-8" PRIu64 " %-18s 0x%016" PRIx64 " %s\n", i, off, e.raw, flags);
            } else {
                struct json_object *r = json_object_new_object();
                add_u64(r, "index", i);
                add_u64(r, "raw", e.raw);
                add_u64(r, "l2_offset", e.l2_offset);
                add_bool(r, "copied", e.copied);
                add_u64(r, "reserved", e.reserved);
                add_bool(r, "unaligned", (e.l2_offset & (img->cluster_size - 1)) != 0);
                add_bool(r, "past_eof", e.l2_offset && past_eof(img, e.l2_offset, img->cluster_size));
                add_bool(r, "vm_state", i >= l1_needed(img));
                json_object_array_add(rows, r);
            }
        }
        if (n * 8 < want) {
            sink_note(s, "L1 entries %" PRIu64 "-%u lie past the end of the file (QEMU reads them as 0)",
                      i, h->l1_size - 1);
            break;
        }
    }
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

static void walk_one_l2(struct sink *s, struct qc_image *img, uint64_t l1_index,
                        uint64_t l1_raw, bool nonzero, struct json_object *tables)
{
    uint64_t l2off = l1_raw & QC_L1E_OFFSET_MASK, cs = img->cluster_size;
    unsigned esz = img->l2_entry_size;
    bool extl2 = img->extended_l2;
    bool data_file = (img->hdr.incompatible_features & QC_INCOMPAT_DATA_FILE) != 0;
    struct qc_compressed_geom g = qc_compressed_geom(img->cluster_bits);
    uint64_t guest0 = (l1_index << img->l2_bits) << img->cluster_bits;
    struct json_object *t = NULL, *rows = NULL;
    uint8_t *table;
    size_t got, n;

    if (tables) {
        t = json_object_new_object();
        add_u64(t, "l1_index", l1_index);
        add_u64(t, "offset", l2off);
        json_object_array_add(tables, t);
    }
    if (!l2off) {
        if (s->out)
            fprintf(s->out, "L1 entry %" PRIu64 ": no L2 table\n", l1_index);
        return;
    }
    if (s->out)
        fprintf(s->out, "L2 table of L1 entry %" PRIu64 " at %#" PRIx64 "%s: %" PRIu64
                " entries of %u bytes, guest %#" PRIx64 "-%#" PRIx64 "\n",
                l1_index, l2off, (l2off & (cs - 1)) ? " (unaligned)" : "", img->l2_entries, esz,
                guest0, guest0 + (img->l2_entries << img->cluster_bits) - 1);
    else {
        add_bool(t, "unaligned", (l2off & (cs - 1)) != 0);
        rows = json_object_new_array();
        json_object_object_add(t, "entries", rows);
    }
    table = malloc((size_t)cs);
    if (!table) {
        sink_error(s, "out of memory");
        return;
    }
    got = read_avail(img, l2off, table, (size_t)cs);
    n = got / esz;
    if (s->out)
        fprintf(s->out, "%-6s %-18s %-11s %-18s %-22s %s\n", "index", "guest offset", "type",
                "host offset", "flags", "details");
    for (size_t i = 0; i < n; i++) {
        struct qc_l2_entry e = qc_l2_table_entry(table, extl2, data_file, i);
        uint64_t guest = guest0 + ((uint64_t)i << img->cluster_bits);
        char host[24] = "-", flags[160] = "", details[160] = "";
        size_t k = 0;
        struct qc_compressed_desc d = { 0, 0, 0 };
        bool comp = e.type == QC_CT_COMPRESSED;

        if (nonzero && e.raw == 0 && e.bitmap == 0)
            continue;
#define FL(...) k += (size_t)snprintf(flags + k, k < sizeof flags ? sizeof flags - k : 0, __VA_ARGS__)
        if (e.copied)
            FL("%sCOPIED", k ? "," : "");
        if (comp) {
            d = qc_compressed_decode(&g, e.raw & ~(QC_OFLAG_COPIED | QC_OFLAG_COMPRESSED));
            hexstr(host, sizeof host, d.offset);
            if (d.offset >= img->file.size)
                FL("%spast-eof", k ? "," : "");
            else if (past_eof(img, d.offset, d.size))
                FL("%send-past-eof", k ? "," : "");
            if (extl2 && e.bitmap)
                FL("%sbitmap-set", k ? "," : "");
        } else {
            if (e.offset)
                hexstr(host, sizeof host, e.offset);
            if (e.reserved)
                FL("%sreserved=%#" PRIx64, k ? "," : "", e.reserved);
            if (extl2 && (e.raw & QC_OFLAG_ZERO))
                FL("%sbit0", k ? "," : "");
            if (e.offset & (cs - 1))
                FL("%sunaligned", k ? "," : "");
            if (e.offset && !data_file && past_eof(img, e.offset, cs))
                FL("%spast-eof", k ? "," : "");
        }
#undef FL
        if (comp)
            snprintf(details, sizeof details, "sectors=%" PRIu64 " bytes=%" PRIu64 " raw=0x%016" PRIx64,
                     d.nb_sectors, d.size, e.raw);
        else if (extl2) {
            char map[33];
            subcluster_map(map, e.bitmap);
            snprintf(details, sizeof details, "bitmap=0x%016" PRIx64 " [%s] raw=0x%016" PRIx64,
                     e.bitmap, map, e.raw);
        } else
            snprintf(details, sizeof details, "raw=0x%016" PRIx64, e.raw);
        if (s->out) {
            char gs[24];
            hexstr(gs, sizeof gs, guest);
            fprintf(s->out, "%-6zu %-18s %-11s %-18s %-22s %s\n", i, gs, l2_type(&e, extl2), host,
                    flags[0] ? flags : "-", details);
        } else {
            struct json_object *r = json_object_new_object();
            add_u64(r, "index", i);
            add_u64(r, "guest_offset", guest);
            add_u64(r, "raw", e.raw);
            json_object_object_add(r, "type", json_object_new_string(l2_type(&e, extl2)));
            add_bool(r, "copied", e.copied);
            if (comp) {
                struct json_object *c = json_object_new_object();
                add_u64(c, "offset", d.offset);
                add_u64(c, "sectors", d.nb_sectors);
                add_u64(c, "bytes", d.size);
                json_object_object_add(r, "compressed", c);
            } else {
                add_u64(r, "host_offset", e.offset);
                add_u64(r, "reserved", e.reserved);
                add_bool(r, "unaligned", (e.offset & (cs - 1)) != 0);
            }
            if (extl2) {
                char map[33];
                subcluster_map(map, e.bitmap);
                add_u64(r, "bitmap", e.bitmap);
                json_object_object_add(r, "subclusters", json_object_new_string(map));
            }
            json_object_array_add(rows, r);
        }
    }
    if (got < cs)
        sink_note(s, "L2 entries %zu-%" PRIu64 " of the table at %#" PRIx64
                  " lie past the end of the file (QEMU reads them as 0)",
                  n, img->l2_entries - 1, l2off);
    free(table);
}

static void walk_l2(struct sink *s, struct qc_image *img, bool all, uint64_t index, bool nonzero)
{
    const struct qc_header *h = &img->hdr;
    struct json_object *tables = sink_array(s, "tables");
    uint8_t raw[8];

    if (!geometry(s, img))
        return;
    if (!all && index >= h->l1_size) {
        sink_error(s, "L1 index %" PRIu64 " is beyond the L1 table (%u entries)", index, h->l1_size);
        return;
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
        walk_one_l2(s, img, i, e, nonzero, tables);
    }
}

/* --- refcounts ------------------------------------------------------------- */

static void walk_refcounts(struct sink *s, struct qc_image *img, bool nonzero)
{
    const struct qc_header *h = &img->hdr;
    uint64_t cs = img->cluster_size, per = img->refblock_entries;
    uint64_t entries = (uint64_t)h->refcount_table_clusters * cs / 8;
    struct json_object *rows;
    uint8_t *block = NULL, buf[8 * 512];

    if (!geometry(s, img))
        return;
    if (s->out)
        fprintf(s->out, "Refcount table at %#" PRIx64 ": %u cluster(s), %" PRIu64
                " entries; refcount_bits %u, %" PRIu64 " refcounts per block\n",
                h->refcount_table_offset, h->refcount_table_clusters, entries,
                img->refcount_bits, per);
    else {
        add_u64(s->obj, "offset", h->refcount_table_offset);
        add_u64(s->obj, "clusters", h->refcount_table_clusters);
        add_u64(s->obj, "entries", entries);
        add_u64(s->obj, "refcount_bits", img->refcount_bits);
        add_u64(s->obj, "refcounts_per_block", per);
    }
    rows = sink_array(s, "table");
    block = malloc((size_t)cs);
    if (!block) {
        sink_error(s, "out of memory");
        return;
    }
    for (uint64_t i = 0; i < entries;) {
        uint64_t pos = h->refcount_table_offset + 8 * i;
        size_t want = (size_t)((entries - i) < 512 ? (entries - i) : 512) * 8;
        size_t got = pos < h->refcount_table_offset ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            uint64_t raw = qc_be64(buf + 8 * j), off = raw & QC_REFT_OFFSET_MASK;
            uint64_t reserved = raw & QC_REFT_RESERVED_MASK, first = i * per;
            bool unaligned = (off & (cs - 1)) != 0, beyond = off && past_eof(img, off, cs);
            struct json_object *r = NULL, *rcs = NULL;
            size_t bgot;

            if (nonzero && raw == 0)
                continue;
            if (s->out) {
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
            } else {
                r = json_object_new_object();
                add_u64(r, "index", i);
                add_u64(r, "raw", raw);
                add_u64(r, "block_offset", off);
                add_u64(r, "reserved", reserved);
                add_bool(r, "unaligned", unaligned);
                add_bool(r, "past_eof", beyond);
                json_object_array_add(rows, r);
            }
            if (!off)
                continue;
            bgot = read_avail(img, off, block, (size_t)cs);
            if (r) {
                rcs = json_object_new_array();
                json_object_object_add(r, "refcounts", rcs);
            } else {
                fprintf(s->out, "  %-14s %-18s %s\n", "cluster", "host offset", "refcount");
            }
            /* only whole entries the file holds */
            for (uint64_t k = 0; k < per && ((k + 1) << img->refcount_order) <= (uint64_t)bgot * 8; k++) {
                uint64_t rc = qc_refblock_get(block, img->refcount_order, k);
                uint64_t cl = first + k;
                if (nonzero && rc == 0)
                    continue;
                if (s->out) {
                    fprintf(s->out, "  %-14" PRIu64 " %#-18" PRIx64 " %" PRIu64 "\n", cl,
                            cl << img->cluster_bits, rc);
                } else {
                    struct json_object *o = json_object_new_object();
                    add_u64(o, "cluster", cl);
                    add_u64(o, "refcount", rc);
                    json_object_array_add(rcs, o);
                }
            }
            if (bgot < cs)
                sink_note(s, "the refcount block at %#" PRIx64 " ends past the end of the file "
                          "(%zu of %" PRIu64 " bytes present)", off, bgot, cs);
        }
        if (n * 8 < want) {
            sink_note(s, "reftable entries %" PRIu64 "-%" PRIu64 " lie past the end of the file",
                      i, entries - 1);
            break;
        }
    }
    free(block);
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

static void walk_snapshots(struct sink *s, struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    struct json_object *rows;
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
        add_u64(s->obj, "offset", h->snapshots_offset);
        add_u64(s->obj, "nb_snapshots", h->nb_snapshots);
    }
    rows = sink_array(s, "snapshots");
    if (!h->nb_snapshots)
        return;
    want = (uint64_t)h->nb_snapshots * (QC_SNAPSHOT_ENTRY_FIXED + QC_SNAPSHOT_MAX_EXTRA + 2 * 65535 + 8);
    if (want > cap)
        want = cap;
    if (h->snapshots_offset < img->file.size && want > img->file.size - h->snapshots_offset)
        want = img->file.size - h->snapshots_offset;
    buf = malloc(want ? (size_t)want : 1);
    if (!buf) {
        sink_error(s, "out of memory");
        return;
    }
    got = read_avail(img, h->snapshots_offset, buf, (size_t)want);
    if (qc_snapshot_table_parse(&t, buf, got, h->snapshots_offset, h->nb_snapshots) < 0) {
        free(buf);
        qc_snapshot_table_free(&t);
        sink_error(s, "out of memory");
        return;
    }
    for (size_t i = 0; i < t.n; i++) {
        const struct qc_snapshot *sn = &t.v[i];
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
            json_object_array_add(rows, r);
        }
        free(extra);
    }
    if (t.n < h->nb_snapshots)
        sink_note(s, "snapshot %zu and later do not fit in the file (%u announced)", t.n,
                  h->nb_snapshots);
    qc_snapshot_table_free(&t);
    free(buf);
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

static void walk_bitmap_table(struct sink *s, struct qc_image *img, const struct qc_bitmap *b,
                              struct json_object *jb, bool nonzero)
{
    struct json_object *rows = NULL;
    uint8_t buf[8 * 512];
    uint64_t cs = img->cluster_size;

    if (jb) {
        rows = json_object_new_array();
        json_object_object_add(jb, "table", rows);
    } else {
        fprintf(s->out, "  %-8s %-12s %-18s %s\n", "index", "kind", "data offset", "raw");
    }
    for (uint64_t i = 0; i < b->table_size;) {
        uint64_t pos = b->table_offset + 8 * i;
        size_t want = (size_t)((b->table_size - i) < 512 ? (b->table_size - i) : 512) * 8;
        size_t got = pos < b->table_offset ? 0 : read_avail(img, pos, buf, want);
        size_t n = got / 8;

        for (size_t j = 0; j < n; j++, i++) {
            uint64_t e = qc_be64(buf + 8 * j), off = e & QC_BMT_OFFSET_MASK;
            enum qc_bmt_kind k = qc_bitmap_table_entry_kind(e);
            char o[24] = "-";
            if (nonzero && e == 0)
                continue;
            if (off)
                hexstr(o, sizeof o, off);
            if (!jb) {
                fprintf(s->out, "  %-8" PRIu64 " %-12s %-18s 0x%016" PRIx64 "%s%s%s\n", i,
                        qc_bitmap_table_kind_name(k), o, e,
                        (e & QC_BMT_RESERVED_MASK) ? " reserved-bits" : "",
                        (off & (cs - 1)) ? " unaligned" : "",
                        off && past_eof(img, off, cs) ? " past-eof" : "");
            } else {
                struct json_object *r = json_object_new_object();
                add_u64(r, "index", i);
                add_u64(r, "raw", e);
                json_object_object_add(r, "kind", json_object_new_string(qc_bitmap_table_kind_name(k)));
                add_u64(r, "offset", off);
                add_u64(r, "reserved", e & QC_BMT_RESERVED_MASK);
                json_object_array_add(rows, r);
            }
        }
        if (n * 8 < want) {
            sink_note(s, "bitmap '%s': table entries %" PRIu64 "-%u lie past the end of the file",
                      b->name, i, b->table_size - 1);
            break;
        }
    }
}

static void walk_bitmaps(struct sink *s, struct qc_image *img, bool nonzero)
{
    const struct qc_ext *ext = NULL;
    struct qc_ext_bitmaps eb;
    struct qc_bitmap_dir d;
    struct json_object *rows;
    uint8_t *dir;
    size_t got;
    bool consistent = (img->hdr.autoclear_features & QC_AUTOCLEAR_BITMAPS) != 0;

    for (size_t i = 0; i < img->exts.n; i++)
        if (img->exts.v[i].magic == QC_EXT_BITMAPS)
            ext = &img->exts.v[i];
    if (!ext || !qc_ext_bitmaps_decode(ext, &eb)) {
        if (s->out)
            fprintf(s->out, "No bitmaps extension%s\n", ext ? " (its payload is cut short)" : "");
        else
            add_bool(s->obj, "present", false);
        return;
    }
    if (s->out) {
        fprintf(s->out, "Bitmaps extension at %#" PRIx64 ": %u bitmap(s), directory at %#" PRIx64
                ", %" PRIu64 " bytes%s\n", ext->offset, eb.nb_bitmaps, eb.directory_offset,
                eb.directory_size,
                consistent ? "" : " (autoclear bit 0 clear: QEMU ignores the bitmaps)");
        if (eb.reserved32)
            fprintf(s->out, "reserved field: %#x\n", eb.reserved32);
    } else {
        add_bool(s->obj, "present", true);
        add_u64(s->obj, "nb_bitmaps", eb.nb_bitmaps);
        add_u64(s->obj, "directory_offset", eb.directory_offset);
        add_u64(s->obj, "directory_size", eb.directory_size);
        add_u64(s->obj, "reserved32", eb.reserved32);
        add_bool(s->obj, "consistent", consistent);
    }
    rows = sink_array(s, "bitmaps");
    if (eb.directory_size > 1024ull * 65535) {
        sink_error(s, "bitmap directory size %" PRIu64 " is above QEMU's limit (67107840)",
                   eb.directory_size);
        return;
    }
    dir = malloc(eb.directory_size ? (size_t)eb.directory_size : 1);
    if (!dir) {
        sink_error(s, "out of memory");
        return;
    }
    got = read_avail(img, eb.directory_offset, dir, (size_t)eb.directory_size);
    if (got < eb.directory_size)
        sink_note(s, "the bitmap directory ends past the end of the file (%zu of %" PRIu64 " bytes present)",
                  got, eb.directory_size);
    if (qc_bitmap_dir_parse(&d, dir, got, eb.directory_offset, eb.nb_bitmaps) < 0) {
        qc_bitmap_dir_free(&d);
        free(dir);
        sink_error(s, "out of memory");
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        const struct qc_bitmap *b = &d.v[i];
        char flags[160];

        bitmap_flag_names(flags, sizeof flags, b->flags);
        if (s->out) {
            fprintf(s->out, "\nBitmap %zu '%s' (entry at %#" PRIx64 ")\n", i, qc_esc(b->name), b->entry_offset);
            fprintf(s->out, "  %-18s %#" PRIx64 "%s\n", "table_offset", b->table_offset,
                    (b->table_offset & (img->cluster_size - 1)) ? " (unaligned)" : "");
            fprintf(s->out, "  %-18s %u\n", "table_size", b->table_size);
            fprintf(s->out, "  %-18s %s\n", "flags", flags);
            fprintf(s->out, "  %-18s %u%s\n", "type", b->type, b->type == 1 ? " (dirty tracking)" : " (unknown)");
            fprintf(s->out, "  %-18s %u (%" PRIu64 " bytes)\n", "granularity_bits", b->granularity_bits,
                    b->granularity_bits < 64 ? (uint64_t)1 << b->granularity_bits : 0);
            fprintf(s->out, "  %-18s %u\n", "name_size", b->name_size);
            fprintf(s->out, "  %-18s %u\n", "extra_data_size", b->extra_data_size);
            walk_bitmap_table(s, img, b, NULL, nonzero);
        } else {
            struct json_object *r = json_object_new_object();
            add_u64(r, "entry_offset", b->entry_offset);
            json_object_object_add(r, "name", qc_json_text(b->name));
            add_u64(r, "table_offset", b->table_offset);
            add_u64(r, "table_size", b->table_size);
            add_u64(r, "flags", b->flags);
            add_bool(r, "in_use", b->flags & QC_BME_FLAG_IN_USE);
            add_bool(r, "auto", b->flags & QC_BME_FLAG_AUTO);
            add_u64(r, "type", b->type);
            add_u64(r, "granularity_bits", b->granularity_bits);
            add_u64(r, "extra_data_size", b->extra_data_size);
            walk_bitmap_table(s, img, b, r, nonzero);
            json_object_array_add(rows, r);
        }
    }
    if (d.truncated)
        sink_note(s, "the directory ends inside entry %zu", d.n);
    if (d.n < eb.nb_bitmaps && !d.truncated)
        sink_note(s, "the directory holds %zu of %u bitmaps", d.n, eb.nb_bitmaps);
    qc_bitmap_dir_free(&d);
    free(dir);
}

/* --- entry points ------------------------------------------------------------ */

int qc_view_l1(FILE *out, struct qc_image *img, bool nonzero)
{
    struct sink s = { out, NULL, 0 };
    walk_l1(&s, img, nonzero);
    return s.status;
}

int qc_view_l2(FILE *out, struct qc_image *img, bool all, uint64_t index, bool nonzero)
{
    struct sink s = { out, NULL, 0 };
    walk_l2(&s, img, all, index, nonzero);
    return s.status;
}

int qc_view_refcounts(FILE *out, struct qc_image *img, bool nonzero)
{
    struct sink s = { out, NULL, 0 };
    walk_refcounts(&s, img, nonzero);
    return s.status;
}

int qc_view_snapshots(FILE *out, struct qc_image *img)
{
    struct sink s = { out, NULL, 0 };
    walk_snapshots(&s, img);
    return s.status;
}

int qc_view_bitmaps(FILE *out, struct qc_image *img, bool nonzero)
{
    struct sink s = { out, NULL, 0 };
    walk_bitmaps(&s, img, nonzero);
    return s.status;
}

struct json_object *qc_json_l1(struct qc_image *img, bool nonzero)
{
    struct sink s = { NULL, json_object_new_object(), 0 };
    walk_l1(&s, img, nonzero);
    return s.obj;
}

struct json_object *qc_json_l2(struct qc_image *img, bool all, uint64_t index, bool nonzero)
{
    struct sink s = { NULL, json_object_new_object(), 0 };
    walk_l2(&s, img, all, index, nonzero);
    return s.obj;
}

struct json_object *qc_json_refcounts(struct qc_image *img, bool nonzero)
{
    struct sink s = { NULL, json_object_new_object(), 0 };
    walk_refcounts(&s, img, nonzero);
    return s.obj;
}

struct json_object *qc_json_snapshots(struct qc_image *img)
{
    struct sink s = { NULL, json_object_new_object(), 0 };
    walk_snapshots(&s, img);
    return s.obj;
}

struct json_object *qc_json_bitmaps(struct qc_image *img, bool nonzero)
{
    struct sink s = { NULL, json_object_new_object(), 0 };
    walk_bitmaps(&s, img, nonzero);
    return s.obj;
}
