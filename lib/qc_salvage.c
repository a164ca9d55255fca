/* qc-salvage's engine: header, structures and the walk through intact
 * tables (qc_salvage.h).  Orphan tables are placed in qc_salvage_orphan.c. */
#include "qc_salvage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_compress.h"
#include "qc_endian.h"
#include "qc_header.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_salvage_int.h"
#include "qc_scan.h"
#include "qc_snapshot.h"

#define QCOW2_MAGIC 0x514649fbu
/* QEMU's limit on the number of snapshots */
#define MAX_SNAPSHOTS 65536u
/* what is read of a snapshot table at most */
#define MAX_SNAPTABLE_BYTES (64u << 20)

const char *qc_salvage_status_name(enum qc_salvage_status s)
{
    switch (s) {
    case QC_SV_UNALLOCATED: return "unallocated";
    case QC_SV_KNOWN: return "known";
    case QC_SV_RECONSTRUCTED: return "reconstructed";
    case QC_SV_LOST: return "lost";
    }
    return "lost";
}

void qc_salvage_init(struct qc_salvage *s)
{
    memset(s, 0, sizeof(*s));
}

void qc_salvage_free(struct qc_salvage *s)
{
    free(s->r);
    free(s->d);
    free(s->o);
    free(s->cls);
    free(s->role);
    memset(s, 0, sizeof(*s));
}

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return QC_E_NOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

int qc_salvage_add_range(struct qc_salvage *s, uint64_t guest, uint64_t len,
                         enum qc_salvage_status st, uint64_t entry, uint64_t host,
                         const char *evidence)
{
    if (guest >= s->virtual_size || len == 0)
        return 0;
    if (len > s->virtual_size - guest)
        len = s->virtual_size - guest;
    if (grow((void **)&s->r, &s->cap_r, s->nr, sizeof(*s->r)))
        return QC_E_NOMEM;
    s->r[s->nr++] = (struct qc_salvage_range){ guest, len, st, entry, host, evidence, 0 };
    return 0;
}

int qc_salvage_add_damage(struct qc_salvage *s, const char *structure, uint64_t offset,
                          const char *problem, const char *instead)
{
    if (grow((void **)&s->d, &s->cap_d, s->nd, sizeof(*s->d)))
        return QC_E_NOMEM;
    struct qc_salvage_damage *d = &s->d[s->nd++];
    snprintf(d->structure, sizeof(d->structure), "%s", structure);
    d->offset = offset;
    snprintf(d->problem, sizeof(d->problem), "%s", problem);
    snprintf(d->instead, sizeof(d->instead), "%s", instead);
    return 0;
}

int qc_salvage_add_orphan(struct qc_salvage *s, uint64_t host, const char *looks_like)
{
    if (grow((void **)&s->o, &s->cap_o, s->no, sizeof(*s->o)))
        return QC_E_NOMEM;
    s->o[s->no++] = (struct qc_salvage_orphan){ host, looks_like };
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct qc_salvage_range *x = a, *y = b;
    return x->guest < y->guest ? -1 : x->guest > y->guest;
}

/* Sorts the ranges; where two overlap (a lost span over a mapped cluster)
 * the later one is cut or dropped, so that what is left never overlaps. */
int qc_salvage_sort(struct qc_salvage *s)
{
    if (s->nr == 0)
        return 0;
    qsort(s->r, s->nr, sizeof(*s->r), cmp_range);
    size_t w = 0;
    uint64_t end = 0;
    for (size_t i = 0; i < s->nr; i++) {
        struct qc_salvage_range r = s->r[i];
        if (w > 0 && r.guest < end) {
            if (r.guest + r.len <= end)
                continue;
            r.len -= end - r.guest;
            r.guest = end;
            if (r.status != QC_SV_LOST)
                r.status = QC_SV_LOST;   /* a mapped cluster cut in two: trust neither */
        }
        s->r[w++] = r;
        end = r.guest + r.len;
    }
    s->nr = w;
    return 0;
}

/* The header, if it is one QEMU could have written. */
static bool header_sane(const struct qc_header *h, uint64_t file_size)
{
    if (h->magic != QCOW2_MAGIC || (h->version != 2 && h->version != 3))
        return false;
    if (h->cluster_bits < 9 || h->cluster_bits > 21 || h->size == 0)
        return false;
    if (h->size > (1ull << 62))
        return false;
    (void)file_size;
    return true;
}

static int read_header(struct qc_salvage *s, struct qc_header *h, bool *sane)
{
    size_t len = s->f->size < (1u << 21) ? (size_t)s->f->size : (1u << 21);
    *sane = false;
    if (len < 72)
        return 0;
    uint8_t *buf = malloc(len);
    if (!buf)
        return QC_E_NOMEM;
    int rc = qc_file_read(s->f, 0, buf, len);
    if (rc == 0 && qc_header_parse(h, buf, len) == 0)
        *sane = header_sane(h, s->f->size);
    free(buf);
    return rc;
}

/* Geometry from a sane header; refuses what salvage cannot read. */
static int header_geometry(struct qc_salvage *s, const struct qc_header *h)
{
    if (h->crypt_method != 0) {
        snprintf(s->err, sizeof(s->err),
                 "the image is encrypted: guest data cannot be salvaged without the key");
        return -EINVAL;
    }
    if (h->version == 3 && (h->incompatible_features & (1ull << 2))) {
        snprintf(s->err, sizeof(s->err),
                 "the image keeps its data in an external data file: not supported");
        return -EINVAL;
    }
    s->header_ok = true;
    s->cluster_bits = h->cluster_bits;
    s->virtual_size = h->size;
    s->extl2 = h->version == 3 && (h->incompatible_features & (1ull << 4));
    s->compression_type = h->compression_type;
    s->compression_known = true;
    s->has_backing = h->backing_file_offset != 0 && h->backing_file_size != 0;
    s->backing_name_offset = h->backing_file_offset;
    s->backing_name_size = h->backing_file_size;
    return 0;
}

static int classify_clusters(struct qc_salvage *s)
{
    uint64_t cs = s->cluster_size;
    s->nclusters = s->f->size / cs + (s->f->size % cs != 0);
    s->cls = calloc(s->nclusters ? s->nclusters : 1, 1);
    s->role = calloc(s->nclusters ? s->nclusters : 1, 1);
    uint8_t *buf = malloc(cs);
    if (!s->cls || !s->role || !buf) {
        free(buf);
        return QC_E_NOMEM;
    }
    for (uint64_t i = 0; i < s->nclusters; i++) {
        int64_t got = qc_file_read_padded(s->f, i * cs, buf, cs);
        if (got < 0) {
            free(buf);
            return (int)got;
        }
        s->cls[i] = (uint8_t)qc_scan_classify(buf, cs, s->cluster_bits, s->f->size);
        if (s->progress && (i % 256 == 0 || i + 1 == s->nclusters))
            s->progress(s->progress_opaque, i + 1, s->nclusters);
    }
    free(buf);
    return 0;
}

void qc_salvage_set_role(struct qc_salvage *s, uint64_t off, uint64_t len, int role,
                         bool only_free)
{
    uint64_t cs = s->cluster_size;
    if (len == 0 || off >= s->f->size)
        return;
    uint64_t last = (len > s->f->size - off ? s->f->size - 1 : off + len - 1) / cs;
    for (uint64_t c = off / cs; c <= last && c < s->nclusters; c++)
        if (!only_free || s->role[c] == QC_SR_NONE)
            s->role[c] = (uint8_t)role;
}

/* The refcount table and the blocks it names, as the header says. */
static void mark_refcounts(struct qc_salvage *s, const struct qc_header *h)
{
    uint64_t cs = s->cluster_size;
    uint64_t off = h->refcount_table_offset;
    uint64_t len = (uint64_t)h->refcount_table_clusters * cs;
    if (off == 0 || (off & (cs - 1)) || !qc_file_has(s->f, off, len) || len == 0)
        return;
    qc_salvage_set_role(s, off, len, QC_SR_REFTABLE, false);
    for (uint64_t i = 0; i < len; i += 8) {
        uint8_t e[8];
        if (qc_file_read(s->f, off + i, e, 8) != 0)
            return;
        uint64_t raw = qc_be64(e);
        if (qc_scan_l1_entry_valid(raw, s->cluster_bits, s->f->size))
            qc_salvage_set_role(s, raw & QC_L1E_OFFSET_MASK, cs, QC_SR_REFBLOCK, true);
    }
}

static bool snapshot_sane(const struct qc_salvage *s, const struct qc_snapshot *sn)
{
    uint64_t cs = s->cluster_size;
    /* QEMU always gives a snapshot an ID and an L1 table; zeros past the
     * real entries would parse as entries without either */
    return sn->id_str_size > 0 && sn->l1_table_offset != 0 &&
           (sn->l1_table_offset & (cs - 1)) == 0 &&
           (sn->l1_size == 0 || qc_file_has(s->f, sn->l1_table_offset, (uint64_t)sn->l1_size * 8));
}

/* The snapshot table: entries are taken while they parse and name an L1
 * table inside the file; a count QEMU would refuse is noted as damage. */
static int read_snapshots(struct qc_salvage *s, const struct qc_header *h,
                          struct qc_snapshot_table *t)
{
    memset(t, 0, sizeof(*t));
    uint64_t off = h->snapshots_offset;
    if (h->nb_snapshots == 0 || off == 0 || (off & (s->cluster_size - 1)) || off >= s->f->size)
        return 0;
    uint32_t nb = h->nb_snapshots;
    if (nb > MAX_SNAPSHOTS) {
        qc_salvage_add_damage(s, "header", 60, "nb_snapshots is larger than QEMU allows",
                              "the snapshot entries that parse with an L1 table inside the file");
        nb = MAX_SNAPSHOTS;
    }
    uint64_t len = s->f->size - off;
    if (len > MAX_SNAPTABLE_BYTES)
        len = MAX_SNAPTABLE_BYTES;
    uint8_t *buf = malloc((size_t)len);
    if (!buf)
        return QC_E_NOMEM;
    int rc = qc_file_read(s->f, off, buf, (size_t)len);
    if (rc == 0)
        qc_snapshot_table_parse(t, buf, (size_t)len, off, nb);
    free(buf);
    size_t good = 0;
    while (good < t->n && snapshot_sane(s, &t->v[good]))
        good++;
    uint64_t end = good ? t->v[good - 1].entry_offset + t->v[good - 1].entry_len - off : 0;
    qc_salvage_set_role(s, off, end, QC_SR_SNAPTABLE, false);
    for (size_t i = good; i < t->n; i++) {
        free(t->v[i].extra);
        free(t->v[i].id_str);
        free(t->v[i].name);
    }
    t->n = good;
    return rc;
}

static const struct qc_snapshot *find_snapshot(const struct qc_snapshot_table *t,
                                               const char *want)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].id_str && strcmp(t->v[i].id_str, want) == 0)
            return &t->v[i];
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].name && strcmp(t->v[i].name, want) == 0)
            return &t->v[i];
    return NULL;
}

/* Without a header: the cluster size from the tables' alignment. */
static int infer_geometry(struct qc_salvage *s, bool had_magic)
{
    unsigned bits;
    if (qc_scan_infer_cluster_bits(s->f, &bits) != 0)
        return QC_SALVAGE_UNRECOGNISABLE;
    s->cluster_bits = bits;
    s->compression_known = false;
    char what[160];
    snprintf(what, sizeof(what), "cluster size %" PRIu64 " from the alignment of table entries; "
             "the L1 table and virtual size from the tables found", (uint64_t)1 << bits);
    return qc_salvage_add_damage(s, "header", 0,
                                 had_magic ? "header fields are not ones QEMU writes"
                                           : "no qcow2 header (magic lost)", what);
}

static int open_geometry(struct qc_salvage *s, struct qc_header *h)
{
    bool sane;
    int rc = read_header(s, h, &sane);
    if (rc)
        return rc;
    if (sane)
        rc = header_geometry(s, h);
    else
        rc = infer_geometry(s, h->magic == QCOW2_MAGIC);
    if (rc)
        return rc;
    s->cluster_size = 1ull << s->cluster_bits;
    return classify_clusters(s);
}

int qc_salvage_analyse(struct qc_salvage *s, struct qc_file *f,
                       const struct qc_salvage_options *opt)
{
    struct qc_header h;
    struct qc_snapshot_table t;
    memset(&h, 0, sizeof(h));
    memset(&t, 0, sizeof(t));
    s->f = f;
    int rc = open_geometry(s, &h);
    if (rc)
        goto out;
    struct qc_salvage_l1 chosen = { 0 };
    if (s->header_ok) {
        s->role[0] = QC_SR_HEADER;
        mark_refcounts(s, &h);
        rc = read_snapshots(s, &h, &t);
        if (rc)
            goto out;
        chosen.offset = h.l1_table_offset;
        chosen.size = h.l1_size;
        chosen.what = "active L1 table";
        if (opt && opt->snapshot) {
            const struct qc_snapshot *sn = find_snapshot(&t, opt->snapshot);
            if (!sn) {
                snprintf(s->err, sizeof(s->err), "no snapshot '%s' in the snapshot table",
                         opt->snapshot);
                rc = -ENOENT;
                goto out;
            }
            chosen.offset = sn->l1_table_offset;
            chosen.size = sn->l1_size;
            chosen.what = "snapshot L1 table";
            if (sn->has_disk_size && sn->disk_size)
                s->virtual_size = sn->disk_size;
        }
    } else if (opt && opt->snapshot) {
        snprintf(s->err, sizeof(s->err), "the header is lost: snapshots cannot be found");
        rc = -ENOENT;
        goto out;
    }
    rc = qc_salvage_walk(s, &chosen, &h, &t);
out:
    qc_snapshot_table_free(&t);
    qc_header_free(&h);
    return rc;
}
