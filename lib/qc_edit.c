/* Editing the header cluster: requests, the planned bytes, guards. */
#include "qc_util.h"
#include "qc_edit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qc_io.h"

#define HF_V3_END QC_HF_COMPRESSION_TYPE   /* fields of the 104-byte struct */

static const uint64_t v2_defaults[] = {
    [QC_HF_INCOMPATIBLE_FEATURES] = 0, [QC_HF_COMPATIBLE_FEATURES] = 0,
    [QC_HF_AUTOCLEAR_FEATURES] = 0, [QC_HF_REFCOUNT_ORDER] = 4,
    [QC_HF_HEADER_LENGTH] = QC_HEADER_V2_LEN,
};

static int fail(struct qc_edit *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct qc_edit *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof e->error, fmt, ap);
    va_end(ap);
    return code;
}

#define vfmt qc_vasprintf

static int log_add(struct qc_edit *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int log_add(struct qc_edit *e, const char *fmt, ...)
{
    char **v = realloc(e->log, (e->nlog + 1) * sizeof *v);
    va_list ap;

    if (!v)
        return QC_E_NOMEM;
    e->log = v;
    va_start(ap, fmt);
    v[e->nlog] = vfmt(fmt, ap);
    va_end(ap);
    if (!v[e->nlog])
        return QC_E_NOMEM;
    e->nlog++;
    return 0;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~7ull;
}

static uint64_t field_max(const struct qc_header_field_info *fi)
{
    return fi->size == 8 ? UINT64_MAX : (1ull << (fi->size * 8)) - 1;
}

static bool v3_only(int f)
{
    return f >= QC_HF_INCOMPATIBLE_FEATURES && f <= QC_HF_HEADER_LENGTH;
}

/* python's '%#x' (0 is "0x0") */
static void py_hex(char *buf, size_t len, uint64_t v)
{
    snprintf(buf, len, v ? "%#" PRIx64 : "0x0", v);
}

int qc_edit_init(struct qc_edit *e, struct qc_image *img)
{
    const uint8_t *b = img->cluster0;
    size_t n = img->cluster0_len;

    memset(e, 0, sizeof *e);
    e->img = img;
    if (n < QC_HEADER_V2_LEN)
        return fail(e, QC_E_FORMAT, "the file ends inside the header (%zu bytes)", n);
    e->loaded_v2 = qc_header_field_get(b, n, QC_HF_VERSION) == 2;
    if (!e->loaded_v2 && n < QC_HEADER_V3_MIN)
        return fail(e, QC_E_FORMAT, "the file ends inside the version 3 header (%zu bytes)", n);
    for (int f = 0; f < HF_V3_END; f++) {
        if (e->loaded_v2 && v3_only(f))
            e->old[f] = v2_defaults[f];
        else
            e->old[f] = qc_header_field_get(b, n, (enum qc_header_field)f);
    }
    if (!e->loaded_v2 && e->old[QC_HF_HEADER_LENGTH] > QC_HEADER_V3_MIN)
        e->old[QC_HF_COMPRESSION_TYPE] = qc_header_field_get(b, n, QC_HF_COMPRESSION_TYPE);
    memcpy(e->v, e->old, sizeof e->v);
    if (qc_ext_list_copy(&e->exts, &img->exts) < 0)
        return fail(e, QC_E_NOMEM, "out of memory");
    return 0;
}

static void plan_reset(struct qc_edit *e)
{
    free(e->before);
    free(e->after);
    free(e->regions);
    for (size_t i = 0; i < e->nguards; i++)
        free(e->guards[i].message);
    free(e->guards);
    free(e->note);
    free(e->qemu_refusal);
    e->before = e->after = NULL;
    e->regions = NULL;
    e->guards = NULL;
    e->note = e->qemu_refusal = NULL;
    e->nregions = e->nguards = 0;
    e->len = e->file_size = e->first = e->end = e->new_end = e->old_end = 0;
    e->rewrite = false;
}

void qc_edit_free(struct qc_edit *e)
{
    plan_reset(e);
    qc_ext_list_free(&e->exts);
    for (size_t i = 0; i < e->nlog; i++)
        free(e->log[i]);
    free(e->log);
    e->log = NULL;
    e->nlog = 0;
}

/* --- requests ------------------------------------------------------------ */

int qc_edit_set_field(struct qc_edit *e, enum qc_header_field f, uint64_t value)
{
    const struct qc_header_field_info *fi = qc_header_field_info(f);

    if (!fi)
        return fail(e, QC_E_RANGE, "unknown header field");
    if (value > field_max(fi))
        return fail(e, QC_E_RANGE, "%s is a %u-byte field: %" PRIu64 " does not fit",
                    fi->name, fi->size, value);
    e->v[f] = value;
    e->touched[f] = true;
    return 0;
}

int qc_edit_feature(struct qc_edit *e, enum qc_feature_group g, unsigned bit, bool set)
{
    enum qc_header_field f;

    if ((unsigned)g >= QC_FG_COUNT || bit > 63)
        return fail(e, QC_E_RANGE, "no such feature bit");
    f = (enum qc_header_field)(QC_HF_INCOMPATIBLE_FEATURES + g);
    if (set)
        e->v[f] |= 1ull << bit;
    else
        e->v[f] &= ~(1ull << bit);
    e->touched[f] = true;
    return 0;
}

static const char *ext_label(uint32_t magic)
{
    const char *n = qc_ext_name(magic);
    return n ? n : "unknown";
}

int qc_edit_add_ext(struct qc_edit *e, uint32_t magic, const uint8_t *data, size_t len)
{
    if (qc_ext_append(&e->exts, magic, data, len) < 0)
        return fail(e, QC_E_NOMEM, "out of memory");
    e->exts_changed = true;
    if (magic == QC_EXT_END)
        e->end_magic_added = true;
    return log_add(e, "extension %#" PRIx32 " (%s) added, length %zu", magic, ext_label(magic), len);
}

size_t qc_edit_del_ext(struct qc_edit *e, uint32_t magic)
{
    size_t n = qc_ext_remove(&e->exts, magic);

    if (n) {
        e->exts_changed = true;
        if (n == 1)
            log_add(e, "extension %#" PRIx32 " (%s) removed", magic, ext_label(magic));
        else
            log_add(e, "extension %#" PRIx32 " (%s) removed: %zu of them", magic,
                    ext_label(magic), n);
    }
    return n;
}

/* --- planning ------------------------------------------------------------ */

/* Why the extension area as read cannot be rewritten, or NULL. */
static const char *old_area_problem(const struct qc_edit *e)
{
    const struct qc_image *img = e->img;
    uint64_t ver = e->old[QC_HF_VERSION], hl = e->old[QC_HF_HEADER_LENGTH];
    uint64_t cb = e->old[QC_HF_CLUSTER_BITS], cs;
    uint64_t bfo = e->old[QC_HF_BACKING_FILE_OFFSET], bfs = e->old[QC_HF_BACKING_FILE_SIZE];

    if (ver != 2 && ver != 3)
        return "the version is neither 2 nor 3";
    if (cb < 9 || cb > 21)
        return "cluster_bits is outside 9..21";
    cs = 1ull << cb;
    if (ver == 3 && hl < QC_HEADER_V3_MIN)
        return "header_length is below 104";
    if (hl > cs)
        return "header_length exceeds the cluster size";
    if (hl > img->cluster0_len)
        return "the file ends inside the header";
    if (bfo && (bfo < hl || bfo > cs || bfs > cs - bfo))
        return "the backing file name does not lie between the header and the end of the header cluster";
    if (bfo && bfo + bfs > img->file.size)
        return "the file ends inside the backing file name";
    if (img->exts.status != QC_EXT_OK || img->exts.start != hl)
        return "the header extensions do not parse (see qc-dump --hex)";
    return NULL;
}

/* Why the requested header cannot hold an extension area, or NULL. */
static const char *new_layout_problem(const struct qc_edit *e)
{
    uint64_t ver = e->v[QC_HF_VERSION], hl = e->v[QC_HF_HEADER_LENGTH];
    uint64_t cb = e->v[QC_HF_CLUSTER_BITS];

    if (cb < 9 || cb > 21)
        return "cluster_bits would be outside 9..21";
    if (ver == 2)
        return hl == QC_HEADER_V2_LEN ? NULL : "a version 2 header is 72 bytes long";
    if (ver != 3)
        return "the version would be neither 2 nor 3";
    if (hl < QC_HEADER_V3_MIN)
        return "header_length would be below 104";
    if (hl > (1ull << cb))
        return "header_length would exceed the cluster size";
    return NULL;
}

/* Where the extension area as read ends: after its end marker (or last
 * extension) and after the backing file name, within the header cluster. */
static uint64_t old_area_end(const struct qc_edit *e)
{
    const struct qc_ext_list *l = &e->img->exts;
    uint64_t end = e->old[QC_HF_HEADER_LENGTH];
    uint64_t bfo = e->old[QC_HF_BACKING_FILE_OFFSET];
    uint64_t cs = 1ull << e->old[QC_HF_CLUSTER_BITS];

    if (l->end_marker != UINT64_MAX)
        end = l->end_marker + 8;
    else if (l->n)
        end = l->v[l->n - 1].offset + 8 + pad8(l->v[l->n - 1].length);
    if (bfo && bfo + e->old[QC_HF_BACKING_FILE_SIZE] > end)
        end = bfo + e->old[QC_HF_BACKING_FILE_SIZE];
    return end < cs ? end : cs;
}

static int push_region(struct qc_edit *e, uint64_t off, uint64_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int push_region(struct qc_edit *e, uint64_t off, uint64_t len, const char *fmt, ...)
{
    struct qc_edit_region *v;
    va_list ap;

    if (!len)
        return 0;
    v = realloc(e->regions, (e->nregions + 1) * sizeof *v);
    if (!v)
        return QC_E_NOMEM;
    e->regions = v;
    v += e->nregions++;
    v->off = off;
    v->len = len;
    va_start(ap, fmt);
    vsnprintf(v->name, sizeof v->name, fmt, ap);
    va_end(ap);
    return 0;
}

static int guard(struct qc_edit *e, enum qc_edit_guard kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int guard(struct qc_edit *e, enum qc_edit_guard kind, const char *fmt, ...)
{
    struct qc_edit_guard_hit *v = realloc(e->guards, (e->nguards + 1) * sizeof *v);
    va_list ap;

    if (!v)
        return QC_E_NOMEM;
    e->guards = v;
    v += e->nguards;
    v->kind = kind;
    va_start(ap, fmt);
    v->message = vfmt(fmt, ap);
    va_end(ap);
    if (!v->message)
        return QC_E_NOMEM;
    e->nguards++;
    return 0;
}

/* Is field F part of the header bytes the plan writes? */
static bool field_written(const struct qc_edit *e, int f, uint64_t hdr_len)
{
    const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)f);
    if (f == QC_HF_COMPRESSION_TYPE && e->v[QC_HF_HEADER_LENGTH] <= QC_HEADER_V3_MIN)
        return false;
    return fi->offset + fi->size <= hdr_len;
}

static uint64_t header_written_len(const struct qc_edit *e)
{
    if (e->rewrite)
        return e->v[QC_HF_HEADER_LENGTH];
    if (e->v[QC_HF_COMPRESSION_TYPE] != e->old[QC_HF_COMPRESSION_TYPE])
        return QC_HEADER_V3_MIN + 1;
    return e->loaded_v2 ? QC_HEADER_V2_LEN : QC_HEADER_V3_MIN;
}

static void pack_header(const struct qc_edit *e, uint8_t *out, uint64_t hdr_len)
{
    for (int f = 0; f < QC_HF_COUNT; f++)
        if (field_written(e, f, hdr_len))
            qc_header_field_put(out, hdr_len, (enum qc_header_field)f, e->v[f]);
}

static int alloc_buffers(struct qc_edit *e, uint64_t len)
{
    int64_t got;

    e->before = malloc(len);
    e->after = malloc(len);
    if (!e->before || !e->after)
        return fail(e, QC_E_NOMEM, "out of memory");
    got = qc_file_read_padded(&e->img->file, 0, e->before, (size_t)len);
    if (got < 0)
        return fail(e, (int)got, "cannot read the header cluster");
    e->len = len;
    e->file_size = (uint64_t)got;
    memcpy(e->after, e->before, len);
    return 0;
}

static int header_regions(struct qc_edit *e, uint64_t hdr_len)
{
    int r = 0;
    for (int f = 0; f < QC_HF_COUNT && r == 0; f++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)f);
        if (field_written(e, f, hdr_len))
            r = push_region(e, fi->offset, fi->size, "%s", fi->name);
    }
    if (r == 0 && e->rewrite && hdr_len > QC_HEADER_V3_MIN + 1)
        r = push_region(e, QC_HEADER_V3_MIN + 1, (hdr_len < QC_HEADER_V3_LEN ? hdr_len : QC_HEADER_V3_LEN)
                        - (QC_HEADER_V3_MIN + 1), "header padding");
    if (r == 0 && e->rewrite && hdr_len > QC_HEADER_V3_LEN)
        r = push_region(e, QC_HEADER_V3_LEN, hdr_len - QC_HEADER_V3_LEN, "unknown header fields");
    return r;
}

static int plan_header_only(struct qc_edit *e)
{
    uint64_t w = header_written_len(e);
    int r;

    if ((r = alloc_buffers(e, w)) < 0)
        return r;
    pack_header(e, e->after, w);
    return header_regions(e, w) < 0 ? fail(e, QC_E_NOMEM, "out of memory") : 0;
}

static int plan_rewrite(struct qc_edit *e)
{
    uint64_t hl = e->v[QC_HF_HEADER_LENGTH];
    uint64_t old_hdr_end = e->loaded_v2 ? QC_HEADER_V2_LEN : e->old[QC_HF_HEADER_LENGTH];
    uint64_t bfo = e->old[QC_HF_BACKING_FILE_OFFSET], bfs = e->old[QC_HF_BACKING_FILE_SIZE];
    uint64_t pos = hl + qc_ext_list_size(&e->exts), off;
    int r;

    e->new_end = pos + (bfo ? bfs : 0);
    e->old_end = old_area_end(e);
    /* qcow2.py puts the backing file name right after the end marker */
    if (bfo)
        e->v[QC_HF_BACKING_FILE_OFFSET] = pos;
    if ((r = alloc_buffers(e, e->new_end > e->old_end ? e->new_end : e->old_end)) < 0)
        return r;

    /* header bytes past the old header end are new fields: zero */
    for (uint64_t j = QC_HEADER_V3_MIN; j < hl; j++)
        e->after[j] = j < old_hdr_end ? e->before[j] : 0;
    pack_header(e, e->after, hl);
    qc_ext_serialize(&e->exts, e->after + hl);
    if (bfo)
        memcpy(e->after + pos, e->before + bfo, bfs);
    if (e->old_end > e->new_end)
        memset(e->after + e->new_end, 0, e->old_end - e->new_end);

    if ((r = header_regions(e, hl)) < 0)
        return fail(e, r, "out of memory");
    off = hl;
    for (size_t i = 0; i < e->exts.n && r == 0; i++) {
        const struct qc_ext *x = &e->exts.v[i];
        r = push_region(e, off, 4, "ext[%zu].magic", i);
        r = r ? r : push_region(e, off + 4, 4, "ext[%zu].length", i);
        r = r ? r : push_region(e, off + 8, x->length, "ext[%zu].data", i);
        r = r ? r : push_region(e, off + 8 + x->length, pad8(x->length) - x->length,
                                "ext[%zu].padding", i);
        off += 8 + pad8(x->length);
    }
    r = r ? r : push_region(e, off, 8, "end of extensions");
    if (bfo)
        r = r ? r : push_region(e, pos, bfs, "backing file name");
    if (e->old_end > e->new_end)
        r = r ? r : push_region(e, e->new_end, e->old_end - e->new_end, "cleared (old extension area)");
    return r < 0 ? fail(e, r, "out of memory") : 0;
}

/* QEMU's first refusal for a read-only open of the header in BUF (the
 * header checks of docs/qemu-behaviour.md §1.1, names from the feature
 * table in EXTS); NULL when it opens. */
static char *header_open_error(const struct qc_image *img, const uint8_t *buf, uint64_t len,
                               const struct qc_ext_list *exts)
{
    /* the header checks read at most the 112-byte struct and header_length */
    uint64_t n = len > QC_HEADER_V3_LEN ? len : QC_HEADER_V3_LEN;
    uint64_t hl = qc_header_field_get(buf, len, QC_HF_HEADER_LENGTH);
    const struct qc_ext *fx = qc_ext_find(exts, QC_EXT_FEATURE_TABLE);
    struct qc_feature_table ft = { 0 };
    struct qc_problems p = { 0 };
    struct qc_header h;
    uint8_t *whole;
    char *msg = NULL;

    if (hl > n)
        n = hl;
    if (n > img->cluster0_len)
        n = img->cluster0_len > len ? img->cluster0_len : len;
    if (!(whole = malloc(n ? n : 1)))
        return NULL;
    /* the header as the file will hold it: the planned bytes over the rest */
    memset(whole, 0, n);
    memcpy(whole, img->cluster0, img->cluster0_len < n ? img->cluster0_len : n);
    memcpy(whole, buf, len);
    if (fx && qc_feature_table_parse(&ft, fx->data, fx->avail) < 0)
        ft.n = 0;
    if (qc_header_parse(&h, whole, n) != QC_E_NOMEM) {
        qc_header_validate(&h, &ft, false, &p);
        for (size_t i = 0; i < p.n && !msg; i++)
            if (p.v[i].severity == QC_SEV_ERROR && p.v[i].message)
                msg = strdup(p.v[i].message);
    }
    qc_problems_free(&p);
    qc_feature_table_free(&ft);
    qc_header_free(&h);
    free(whole);
    return msg;
}

static const char *incompat_consequence(unsigned bit)
{
    switch (bit) {
    case 0: return "QEMU will take the refcounts for stale and rebuild them on its next read-write open";
    case 1: return "QEMU will refuse to open the image read/write";
    case 2: return "QEMU will look for the guest data in an external data file";
    case 3: return "QEMU will decompress clusters with the compression type in header byte 104";
    case 4: return "QEMU will read every L2 entry as an extended (16-byte) entry, which changes the whole mapping";
    default: return "QEMU will refuse to open the image";
    }
}

/* QEMU's refusal when bit B alone is added to the incompatible bits as
 * they were (the other requests applied), if it differs from OLD_ERR. */
static char *bit_refusal(const struct qc_edit *e, unsigned b, const char *old_err)
{
    uint8_t *buf = malloc(e->len);
    char *msg;

    if (!buf)
        return NULL;
    memcpy(buf, e->after, e->len);
    qc_header_field_put(buf, e->len, QC_HF_INCOMPATIBLE_FEATURES,
                        e->old[QC_HF_INCOMPATIBLE_FEATURES] | (1ull << b));
    msg = header_open_error(e->img, buf, e->len, &e->exts);
    free(buf);
    if (msg && old_err && strcmp(msg, old_err) == 0) {
        free(msg);
        msg = NULL;
    }
    return msg;
}

static int plan_guards(struct qc_edit *e, uint64_t hdr_len, const char *old_err)
{
    const int masks[] = { QC_HF_INCOMPATIBLE_FEATURES, QC_HF_COMPATIBLE_FEATURES,
                          QC_HF_AUTOCLEAR_FEATURES };
    bool masks_touched = false, masks_written = field_written(e, QC_HF_INCOMPATIBLE_FEATURES, hdr_len);
    uint64_t inc_old = e->old[QC_HF_INCOMPATIBLE_FEATURES], inc = e->v[QC_HF_INCOMPATIBLE_FEATURES];
    uint64_t cs = 1ull << (e->v[QC_HF_CLUSTER_BITS] & 63);
    char *refusal;
    int r = 0;

    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++)
        masks_touched |= e->touched[masks[i]];
    if (e->loaded_v2 && masks_touched && !(masks_written && e->v[QC_HF_VERSION] == 3))
        r = guard(e, QC_GUARD_V2_FEATURES, "a version 2 image has no feature bits (they came with "
                  "version 3): nothing is written for them");

    if (masks_written && !e->loaded_v2) {
        uint64_t newly = inc & ~inc_old;
        for (unsigned b = 0; b < 64 && r == 0; b++) {
            const char *name;
            if (!(newly & (1ull << b)))
                continue;
            name = qc_feature_short_name(QC_FG_INCOMPATIBLE, b);
            refusal = b > 1 ? bit_refusal(e, b, old_err) : NULL;
            if (refusal)
                r = guard(e, QC_GUARD_INCOMPAT_SET,
                          "setting incompatible bit %u (%s): QEMU will refuse to open the image: %s",
                          b, name ? name : "unknown", refusal);
            else
                r = guard(e, QC_GUARD_INCOMPAT_SET, "setting incompatible bit %u (%s): %s",
                          b, name ? name : "unknown", incompat_consequence(b));
            free(refusal);
        }
        if (r == 0 && (inc_old & QC_INCOMPAT_DIRTY)) {
            bool dirty_cleared = !(inc & QC_INCOMPAT_DIRTY);
            bool lazy_cleared = (e->old[QC_HF_COMPATIBLE_FEATURES] & QC_COMPAT_LAZY_REFCOUNTS) &&
                                !(e->v[QC_HF_COMPATIBLE_FEATURES] & QC_COMPAT_LAZY_REFCOUNTS);
            if (dirty_cleared || lazy_cleared)
                r = guard(e, QC_GUARD_DIRTY_CLEAR,
                          "the image is dirty: its refcounts may be stale and must be repaired first "
                          "(qemu-img check -r all); clearing %s now would make QEMU trust them",
                          dirty_cleared && lazy_cleared ? "the dirty bit and lazy_refcounts"
                          : dirty_cleared ? "the dirty bit" : "lazy_refcounts");
        }
    }
    if (r == 0 && e->rewrite && e->new_end > cs)
        r = guard(e, QC_GUARD_EXT_FIT, "the header extensions%s would end at byte %" PRIu64
                  ", past the end of the header cluster (%" PRIu64 " bytes)",
                  e->old[QC_HF_BACKING_FILE_OFFSET] ? " and the backing file name" : "",
                  e->new_end, cs);
    if (r == 0 && e->end_magic_added)
        r = guard(e, QC_GUARD_END_MAGIC, "magic 0 marks the end of the header extensions: "
                  "QEMU would stop reading there and no longer see the extensions after it");
    return r < 0 ? fail(e, r, "out of memory") : 0;
}

int qc_edit_plan(struct qc_edit *e)
{
    const char *old_bad, *new_bad;
    bool hl_changed;
    uint64_t hdr_len, must_end;
    char *old_err;
    int r;

    plan_reset(e);
    old_bad = old_area_problem(e);
    new_bad = new_layout_problem(e);
    hl_changed = e->v[QC_HF_HEADER_LENGTH] != e->old[QC_HF_HEADER_LENGTH];
    if (e->exts_changed && (old_bad || new_bad))
        return fail(e, QC_E_FORMAT, "the header extensions cannot be rewritten: %s",
                    old_bad ? old_bad : new_bad);
    if (e->v[QC_HF_COMPRESSION_TYPE] != e->old[QC_HF_COMPRESSION_TYPE] &&
        e->v[QC_HF_HEADER_LENGTH] <= QC_HEADER_V3_MIN)
        return fail(e, QC_E_RANGE, "compression_type is a header field only when header_length "
                    "is above 104");
    e->rewrite = e->exts_changed || (hl_changed && !old_bad && !new_bad);
    if (hl_changed && !e->rewrite &&
        asprintf(&e->note, "the header extensions stay where they are: %s",
                 old_bad ? old_bad : new_bad) < 0)
        e->note = NULL;

    r = e->rewrite ? plan_rewrite(e) : plan_header_only(e);
    if (r < 0)
        return r;
    hdr_len = header_written_len(e);

    /* the span: every changed byte, and every planned byte past the end of
     * the file (the file grows) */
    e->first = e->len;
    e->end = 0;
    for (uint64_t i = 0; i < e->len; i++) {
        if (e->before[i] != e->after[i]) {
            if (e->first == e->len)
                e->first = i;
            e->end = i + 1;
        }
    }
    must_end = e->rewrite ? e->new_end : hdr_len;
    if (e->file_size < must_end) {
        if (e->first > e->file_size)
            e->first = e->file_size;
        if (e->end < must_end)
            e->end = must_end;
    }
    if (e->first >= e->end)
        e->first = e->end = 0;

    old_err = header_open_error(e->img, e->img->cluster0, e->img->cluster0_len, &e->img->exts);
    e->qemu_refusal = header_open_error(e->img, e->after, e->len, &e->exts);
    if (e->qemu_refusal && old_err && strcmp(old_err, e->qemu_refusal) == 0) {
        free(e->qemu_refusal);
        e->qemu_refusal = NULL;
    }
    r = plan_guards(e, hdr_len, old_err);
    free(old_err);
    return r;
}

int qc_edit_write(struct qc_edit *e, struct qc_file *f)
{
    int r;

    if (e->first == e->end)
        return 0;
    r = qc_file_write(f, e->first, e->after + e->first, (size_t)(e->end - e->first),
                      QC_EV_HEADER_UPDATE);
    if (r == 0)
        r = qc_file_flush(f);
    return r;
}

/* --- listings ------------------------------------------------------------ */

static void field_value(char *buf, size_t len, int f, uint64_t v)
{
    const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)f);
    if (fi->hex || fi->feature_mask)
        py_hex(buf, len, v);
    else
        snprintf(buf, len, "%" PRIu64, v);
}

void qc_edit_print_summary(FILE *out, const struct qc_edit *e)
{
    uint64_t hdr_len = header_written_len(e);

    for (int f = 0; f < QC_HF_COUNT; f++) {
        char a[32], b[32];
        if (e->v[f] == e->old[f])
            continue;
        field_value(a, sizeof a, f, e->old[f]);
        field_value(b, sizeof b, f, e->v[f]);
        fprintf(out, "%s: %s -> %s%s\n", qc_header_field_info((enum qc_header_field)f)->name,
                a, b, field_written(e, f, hdr_len) ? "" : " (not part of the header written)");
    }
    for (size_t i = 0; i < e->nlog; i++)
        fprintf(out, "%s\n", e->log[i]);
    if (e->rewrite) {
        uint64_t hl = e->v[QC_HF_HEADER_LENGTH];
        fprintf(out, "header extensions written at %#" PRIx64 "..%#" PRIx64, hl,
                hl + qc_ext_list_size(&e->exts));
        if (hl != e->old[QC_HF_HEADER_LENGTH])
            fprintf(out, " (were at %#" PRIx64 ")", e->old[QC_HF_HEADER_LENGTH]);
        fprintf(out, "\n");
        if (e->old_end > e->new_end)
            fprintf(out, "%" PRIu64 " bytes of the old extension area cleared at %#" PRIx64
                    "..%#" PRIx64 "\n", e->old_end - e->new_end, e->new_end, e->old_end);
    }
    if (e->first == e->end)
        fprintf(out, "no byte changes\n");
}

static const struct qc_edit_region *region_at(const struct qc_edit *e, uint64_t off,
                                              uint64_t *stop)
{
    *stop = UINT64_MAX;
    for (size_t i = 0; i < e->nregions; i++) {
        const struct qc_edit_region *r = &e->regions[i];
        if (off >= r->off && off < r->off + r->len) {
            *stop = r->off + r->len;
            return r;
        }
        if (r->off > off && r->off < *stop)
            *stop = r->off;
    }
    return NULL;
}

static void hex_cell(FILE *out, const uint8_t *p, uint64_t off, uint64_t n, uint64_t present)
{
    char buf[8 * 3 + 1];
    size_t used = 0;
    for (uint64_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, i ? " %02x" : "%02x", p[i]);
    if (off + n > present) {
        /* bytes past the end of the file do not exist yet */
        used = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (off + i < present)
                used += (size_t)snprintf(buf + used, sizeof buf - used, i ? " %02x" : "%02x", p[i]);
            else
                used += (size_t)snprintf(buf + used, sizeof buf - used, i ? " --" : "--");
        }
    }
    fprintf(out, "%-23s", buf);
}

void qc_edit_print_diff(FILE *out, const struct qc_edit *e)
{
    uint64_t o = e->first, end = e->end, stop;
    const struct qc_edit_region *r;

    if (e->first == e->end)
        return;
    /* whole fields: from the start of the first changed one to the end of
     * the last */
    if ((r = region_at(e, o, &stop)))
        o = r->off;
    if ((r = region_at(e, end - 1, &stop)))
        end = r->off + r->len;
    fprintf(out, "%-8s  %-23s  %-23s  %s\n", "offset", "before", "after", "field");
    while (o < end) {
        uint64_t n;
        bool differs = false;

        r = region_at(e, o, &stop);
        n = end - o;
        if (n > 8)
            n = 8;
        if (stop - o < n)
            n = stop - o;
        for (uint64_t i = 0; i < n; i++)
            differs |= e->before[o + i] != e->after[o + i] || o + i >= e->file_size;
        if (differs) {
            fprintf(out, "%08" PRIx64 "  ", o);
            hex_cell(out, e->before + o, o, n, e->file_size);
            fprintf(out, "  ");
            hex_cell(out, e->after + o, o, n, UINT64_MAX);
            fprintf(out, "  %s\n", r ? r->name : "");
        }
        o += n;
    }
}
