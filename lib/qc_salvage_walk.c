/* The salvage walk through intact tables (qc_salvage_walk.h). */
#include "qc_salvage_walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_header.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_scan.h"
#include "qc_snapshot.h"

#define EV_KNOWN "intact L1 and L2 tables"

bool qc_role_is_meta(int role)
{
    return role == QC_SR_HEADER || role == QC_SR_L1 || role == QC_SR_L2 ||
           role == QC_SR_REFTABLE || role == QC_SR_REFBLOCK || role == QC_SR_SNAPTABLE ||
           role == QC_SR_OTHER_META || role == QC_SR_L1_CANDIDATE || role == QC_SR_CANDIDATE;
}

int qc_walk_read(struct qc_walk *w, uint64_t off)
{
    int64_t got = qc_file_read_padded(w->s->f, off, w->buf, w->s->cluster_size);
    return got < 0 ? (int)got : 0;
}

static int lost(struct qc_walk *w, uint64_t guest, uint64_t len, uint64_t entry,
                const char *why)
{
    return qc_salvage_add_range(w->s, guest, len, QC_SV_LOST, entry, 0, why);
}

/* Why a normal cluster at OFF cannot be this disk's data, or NULL. */
static const char *data_target_problem(struct qc_walk *w, uint64_t off,
                                       enum qc_salvage_status st, uint64_t need)
{
    struct qc_salvage *s = w->s;
    if (off & (s->cluster_size - 1))
        return "L2 entry unaligned";
    if (!qc_file_has(s->f, off, need))
        return "L2 entry points past the end of the file";
    int role = s->role[off / s->cluster_size];
    if (qc_role_is_meta(role))
        return "L2 entry points at metadata";
    if (role == QC_SR_DATA && st == QC_SV_RECONSTRUCTED)
        return "cluster already mapped by an intact table";
    return NULL;
}

static int normal_entry(struct qc_walk *w, uint64_t guest, uint64_t raw, uint64_t bitmap,
                        enum qc_salvage_status st, const char *evidence)
{
    struct qc_salvage *s = w->s;
    uint64_t off = raw & QC_L2E_OFFSET_MASK;
    if (raw & QC_L2E_RESERVED_MASK & ~(uint64_t)(w->esize == 16 ? 1 : 0))
        return lost(w, guest, s->cluster_size, raw, "L2 entry with reserved bits set");
    if (w->esize == 16) {
        uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
        if (alloc == 0 && zero == 0xffffffffu)
            return qc_salvage_add_range(s, guest, s->cluster_size, QC_SV_UNALLOCATED, raw, 0,
                                        "zero subclusters");
        if (alloc == 0 && zero == 0 && off == 0)
            return 0;
        if (alloc & zero)
            return lost(w, guest, s->cluster_size, raw, "subcluster both allocated and zero");
        if (s->has_backing && (alloc | zero) != 0xffffffffu)
            return lost(w, guest, s->cluster_size, raw,
                        "subclusters left to the backing file (not salvaged)");
        if (alloc == 0)
            return qc_salvage_add_range(s, guest, s->cluster_size, QC_SV_UNALLOCATED, raw, 0,
                                        "zero or unallocated subclusters");
        /* the file must hold the allocated subclusters, up to the last */
        uint64_t need = (uint64_t)(32 - __builtin_clz(alloc)) * (s->cluster_size / 32);
        const char *why = data_target_problem(w, off, st, need);
        if (why)
            return lost(w, guest, s->cluster_size, raw, why);
        s->role[off / s->cluster_size] = QC_SR_DATA;
        int rc = qc_salvage_add_range(s, guest, s->cluster_size, st, raw, off, evidence);
        if (rc == 0)
            s->r[s->nr - 1].alloc = alloc;
        return rc;
    } else if (raw & QC_OFLAG_ZERO) {
        return qc_salvage_add_range(s, guest, s->cluster_size, QC_SV_UNALLOCATED, raw, 0,
                                    "zero flag");
    }
    if (off == 0)
        return 0;
    const char *why = data_target_problem(w, off, st, s->cluster_size);
    if (why)
        return lost(w, guest, s->cluster_size, raw, why);
    s->role[off / s->cluster_size] = QC_SR_DATA;
    return qc_salvage_add_range(s, guest, s->cluster_size, st, raw, off, evidence);
}

static int compressed_entry(struct qc_walk *w, uint64_t guest, uint64_t raw, uint64_t bitmap,
                            enum qc_salvage_status st, const char *evidence)
{
    struct qc_salvage *s = w->s;
    if (bitmap != 0 || (raw & QC_OFLAG_COPIED))
        return lost(w, guest, s->cluster_size, raw, "compressed entry with invalid bits");
    uint8_t *out = malloc(s->cluster_size);
    if (!out)
        return QC_E_NOMEM;
    int rc = qc_salvage_inflate(s, raw, out);
    free(out);
    if (rc == QC_E_NOMEM)
        return rc;
    if (rc)
        return lost(w, guest, s->cluster_size, raw, "compressed cluster does not inflate");
    struct qc_compressed_geom g = qc_compressed_geom(s->cluster_bits);
    struct qc_compressed_desc d = qc_compressed_decode(&g, raw & ~QC_OFLAG_COMPRESSED);
    return qc_salvage_add_range(s, guest, s->cluster_size, st, raw, d.offset, evidence);
}

int qc_walk_l2(struct qc_walk *w, uint64_t i, uint64_t off, enum qc_salvage_status st,
               const char *evidence)
{
    struct qc_salvage *s = w->s;
    int rc = qc_walk_read(w, off);
    if (rc)
        return rc;
    uint64_t clean, garbled;
    qc_scan_sectors(w->buf, s->cluster_size, w->esize, s->cluster_bits, s->f->size, &clean,
                    &garbled);
    if (garbled > clean) {
        qc_salvage_add_damage(s, "L2 table", off, "most sectors hold entries that are not L2 entries",
                              "nothing: its guest range is lost");
        return lost(w, i * w->cover, w->cover, w->l1[i], "L2 table overwritten");
    }
    uint64_t n = s->cluster_size / w->esize;
    for (uint64_t j = 0; j < n && rc == 0; j++) {
        uint64_t guest = i * w->cover + j * s->cluster_size;
        if (guest >= s->virtual_size)
            break;
        uint64_t raw = qc_be64(w->buf + j * w->esize);
        uint64_t bitmap = w->esize == 16 ? qc_be64(w->buf + j * w->esize + 8) : 0;
        if (raw & QC_OFLAG_COMPRESSED)
            rc = compressed_entry(w, guest, raw, bitmap, st, evidence);
        else if (raw != 0 || bitmap != 0)
            rc = normal_entry(w, guest, raw, bitmap, st, evidence);
        /* compressed_entry's inflate reads into its own buffer: the table stays */
    }
    return rc;
}

/* Why the L2 table named by L1 entry RAW cannot be used, or NULL. */
static const char *l2_target_problem(struct qc_walk *w, uint64_t raw)
{
    struct qc_salvage *s = w->s;
    if (!qc_scan_l1_entry_valid(raw, s->cluster_bits, s->f->size))
        return (raw & QC_L1E_RESERVED_MASK) ? "L1 entry with reserved bits set"
               : ((raw & QC_L1E_OFFSET_MASK) & (s->cluster_size - 1)) ? "L1 entry unaligned"
               : "L1 entry points past the end of the file";
    uint64_t c = (raw & QC_L1E_OFFSET_MASK) / s->cluster_size;
    int role = s->role[c];
    if (role == QC_SR_L2)
        return "L2 table named by two L1 entries";
    if (role != QC_SR_NONE && role != QC_SR_OTHER_META)
        return "L1 entry points at other metadata";
    switch (s->cls[c]) {
    case QC_SC_ZERO: return "L2 table is all zeros";
    case QC_SC_HEADER: return "L1 entry points at a header";
    case QC_SC_REFBLOCK: return "L2 table overwritten by a refcount block";
    default: return NULL;
    }
}

static int read_l1(struct qc_walk *w, const struct qc_salvage_l1 *l1)
{
    struct qc_salvage *s = w->s;
    uint64_t need = (s->virtual_size + w->cover - 1) / w->cover;
    w->nslots = need < s->f->size / 8 + 1 ? need : s->f->size / 8 + 1;
    w->l1 = calloc(w->nslots + 1, 8);
    w->slot = calloc(w->nslots + 1, 1);
    w->l2 = calloc(w->nslots + 1, 8);
    if (!w->l1 || !w->slot || !w->l2)
        return QC_E_NOMEM;
    uint64_t have = 0;
    if ((l1->offset & 7) == 0 && l1->offset < s->f->size)
        have = (s->f->size - l1->offset) / 8;
    if (have > l1->size)
        have = l1->size;
    if (have > w->nslots)
        have = w->nslots;
    for (uint64_t i = 0; i < have; i++) {
        uint8_t e[8];
        int rc = qc_file_read(s->f, l1->offset + 8 * i, e, 8);
        if (rc)
            return rc;
        w->l1[i] = qc_be64(e);
    }
    for (uint64_t i = have; i < w->nslots; i++)
        w->slot[i] = QC_SLOT_OPEN;
    if (have < w->nslots)
        qc_salvage_add_damage(s, l1->what, l1->offset,
                              "shorter than the virtual size needs, or past the end of the file",
                              "the entries inside the file; the rest is lost");
    return 0;
}

/* An L1 table whose entries are mostly not L1 entries is not one. */
static bool l1_is_garbage(const struct qc_walk *w)
{
    uint64_t nz = 0, bad = 0;
    for (uint64_t i = 0; i < w->nslots; i++) {
        if (w->l1[i] == 0)
            continue;
        nz++;
        bad += (w->l1[i] & QC_L1E_RESERVED_MASK) != 0;
    }
    return nz > 0 && bad * 2 > nz;
}

/* FNV-1a over a cluster: enough to find a byte-for-byte copy. */
static uint64_t cluster_hash(const uint8_t *b, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The refcount table and blocks the header names, hashed: an L2 table
 * that is a copy of one (a misdirected write) is not an L2 table, even
 * when 64-bit counts of 1 read as zero-flag entries. */
static int hash_refcount_clusters(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    w->meta_hash = calloc(s->nclusters + 1, 8);
    if (!w->meta_hash)
        return QC_E_NOMEM;
    for (uint64_t c = 0; c < s->nclusters; c++) {
        if (s->role[c] != QC_SR_REFBLOCK && s->role[c] != QC_SR_REFTABLE)
            continue;
        int rc = qc_walk_read(w, c * s->cluster_size);
        if (rc)
            return rc;
        w->meta_hash[w->nmeta_hash++] = cluster_hash(w->buf, s->cluster_size);
    }
    if (w->nmeta_hash)
        qsort(w->meta_hash, w->nmeta_hash, 8, cmp_u64);
    return 0;
}

static bool copies_refcounts(struct qc_walk *w, uint64_t off)
{
    if (w->nmeta_hash == 0 || qc_walk_read(w, off) != 0)
        return false;
    uint64_t h = cluster_hash(w->buf, w->s->cluster_size);
    return bsearch(&h, w->meta_hash, w->nmeta_hash, 8, cmp_u64) != NULL;
}

/* Pass 1: which slots name a usable L2 table. */
static void judge_slots(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    for (uint64_t i = 0; i < w->nslots; i++) {
        if (w->slot[i] == QC_SLOT_OPEN)
            continue;
        if (w->l1[i] == 0) {
            w->slot[i] = QC_SLOT_EMPTY;
            continue;
        }
        const char *why = l2_target_problem(w, w->l1[i]);
        uint64_t off = w->l1[i] & QC_L1E_OFFSET_MASK;
        if (!why && copies_refcounts(w, off))
            why = "L2 table overwritten by a copy of a refcount structure";
        if (!why) {
            w->slot[i] = QC_SLOT_MAPPED;
            w->l2[i] = off;
            s->role[off / s->cluster_size] = QC_SR_L2;
            continue;
        }
        qc_salvage_add_damage(s, "L1 entry", i, why,
                              "an orphan L2 table if evidence places one, else lost");
        w->slot[i] = QC_SLOT_OPEN;
    }
}

/* The data an L2 table of another disk names: not orphans either. */
static void mark_other_data(struct qc_walk *w, uint64_t l2_off)
{
    struct qc_salvage *s = w->s;
    if (qc_walk_read(w, l2_off))
        return;
    for (uint64_t j = 0; j < s->cluster_size / w->esize; j++) {
        uint64_t raw = qc_be64(w->buf + j * w->esize);
        uint64_t off = raw & QC_L2E_OFFSET_MASK;
        if (raw & QC_OFLAG_COMPRESSED) {
            struct qc_compressed_geom g = qc_compressed_geom(s->cluster_bits);
            struct qc_compressed_desc d = qc_compressed_decode(&g, raw & ~QC_OFLAG_COMPRESSED);
            qc_salvage_set_role(s, d.offset, d.size, QC_SR_OTHER_DATA, true);
        } else if (off && (off & (s->cluster_size - 1)) == 0) {
            qc_salvage_set_role(s, off, s->cluster_size, QC_SR_OTHER_DATA, true);
        }
    }
}

/* The L1 and L2 tables of the other disks (snapshots, or the active disk
 * when a snapshot is salvaged): not orphans, whatever they look like. */
static void mark_other_tree(struct qc_walk *w, uint64_t l1_off, uint32_t l1_size)
{
    struct qc_salvage *s = w->s;
    if (l1_off == 0 || (l1_off & (s->cluster_size - 1)) ||
        !qc_file_has(s->f, l1_off, (uint64_t)l1_size * 8))
        return;
    qc_salvage_set_role(s, l1_off, (uint64_t)l1_size * 8, QC_SR_OTHER_META, true);
    for (uint32_t i = 0; i < l1_size; i++) {
        uint8_t e[8];
        if (qc_file_read(s->f, l1_off + 8ull * i, e, 8))
            return;
        uint64_t raw = qc_be64(e);
        if (qc_scan_l1_entry_valid(raw, s->cluster_bits, s->f->size) &&
            s->role[(raw & QC_L1E_OFFSET_MASK) / s->cluster_size] == QC_SR_NONE) {
            qc_salvage_set_role(s, raw & QC_L1E_OFFSET_MASK, s->cluster_size,
                                QC_SR_OTHER_META, true);
            mark_other_data(w, raw & QC_L1E_OFFSET_MASK);
        }
    }
}

static void mark_other_trees(struct qc_walk *w, const struct qc_salvage_l1 *l1,
                             const struct qc_header *h, const struct qc_snapshot_table *t)
{
    if (h->l1_table_offset != l1->offset)
        mark_other_tree(w, h->l1_table_offset, h->l1_size);
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].l1_table_offset != l1->offset)
            mark_other_tree(w, t->v[i].l1_table_offset, t->v[i].l1_size);
}

/* Is there anything an empty L1 table would have lost? */
static bool unclaimed_data(const struct qc_walk *w)
{
    for (uint64_t c = 0; c < w->s->nclusters; c++)
        if (w->s->role[c] == QC_SR_NONE && w->s->cls[c] != QC_SC_ZERO)
            return true;
    return false;
}

static int walk_trusted(struct qc_walk *w, const struct qc_salvage_l1 *l1,
                        const struct qc_header *h, const struct qc_snapshot_table *t)
{
    struct qc_salvage *s = w->s;
    int rc = read_l1(w, l1);
    if (rc)
        return rc;
    if (l1_is_garbage(w)) {
        qc_salvage_add_damage(s, l1->what, l1->offset, "entries are not L1 entries",
                              "L1-like tables and orphan L2 tables found by scan");
        w->l1_damaged = true;
    } else {
        qc_salvage_set_role(s, l1->offset, (uint64_t)l1->size * 8, QC_SR_L1, false);
        rc = hash_refcount_clusters(w);
        if (rc)
            return rc;
        judge_slots(w);
    }
    mark_other_trees(w, l1, h, t);
    for (uint64_t i = 0; i < w->nslots && rc == 0 && !w->l1_damaged; i++)
        if (w->slot[i] == QC_SLOT_MAPPED)
            rc = qc_walk_l2(w, i, w->l2[i], QC_SV_KNOWN, EV_KNOWN);
    if (rc == 0 && !w->l1_damaged) {
        bool any = false;
        for (uint64_t i = 0; i < w->nslots; i++)
            any |= w->l1[i] != 0;
        if (!any && unclaimed_data(w)) {
            qc_salvage_add_damage(s, l1->what, l1->offset,
                                  "every entry is 0 while the file holds unreferenced clusters",
                                  "L1-like tables and orphan L2 tables found by scan");
            w->l1_damaged = true;
        }
    }
    if (w->l1_damaged)
        for (uint64_t i = 0; i < w->nslots; i++)
            w->slot[i] = QC_SLOT_OPEN;
    return rc;
}

static bool any_open(const struct qc_walk *w)
{
    for (uint64_t i = 0; i < w->nslots; i++)
        if (w->slot[i] == QC_SLOT_OPEN)
            return true;
    return false;
}

/* Host clusters mapped twice: neither mapping is trusted. */
static int drop_double_mappings(struct qc_salvage *s)
{
    uint8_t *n = calloc(s->nclusters ? s->nclusters : 1, 1);
    if (!n)
        return QC_E_NOMEM;
    for (size_t i = 0; i < s->nr; i++) {
        struct qc_salvage_range *r = &s->r[i];
        if (r->host && !(r->entry & QC_OFLAG_COMPRESSED) && r->status != QC_SV_LOST &&
            r->host / s->cluster_size < s->nclusters && n[r->host / s->cluster_size] < 2)
            n[r->host / s->cluster_size]++;
    }
    for (size_t i = 0; i < s->nr; i++) {
        struct qc_salvage_range *r = &s->r[i];
        if (r->host && !(r->entry & QC_OFLAG_COMPRESSED) && r->status != QC_SV_LOST &&
            n[r->host / s->cluster_size] > 1) {
            r->status = QC_SV_LOST;
            r->evidence = "host cluster mapped by two L2 entries";
            r->host = 0;
        }
    }
    free(n);
    return 0;
}

/* Slots still open and the data nothing placed. */
static int finish(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    int rc = 0;
    for (uint64_t i = 0; i < w->nslots && rc == 0; i++)
        if (w->slot[i] == QC_SLOT_OPEN || w->slot[i] == QC_SLOT_LOST)
            rc = lost(w, i * w->cover, w->cover, w->l1[i], "no L2 table for this range");
    if (rc == 0 && w->nslots * w->cover < s->virtual_size)
        rc = lost(w, w->nslots * w->cover, s->virtual_size - w->nslots * w->cover, 0,
                  "beyond any L1 table");
    for (uint64_t c = 0; c < s->nclusters && rc == 0; c++)
        if (s->role[c] == QC_SR_NONE &&
            (s->cls[c] == QC_SC_DATA || s->cls[c] == QC_SC_TABLE_DAMAGED))
            rc = qc_salvage_add_orphan(s, c * s->cluster_size, "data");
        else if (s->role[c] == QC_SR_CANDIDATE)
            rc = qc_salvage_add_orphan(s, c * s->cluster_size, "L2 table");
    if (rc == 0)
        rc = drop_double_mappings(s);
    if (rc == 0)
        rc = qc_salvage_sort(s);
    return rc;
}

static void walk_free(struct qc_walk *w)
{
    free(w->l1);
    free(w->slot);
    free(w->l2);
    free(w->buf);
    free(w->cand);
    free(w->cand_slot);
    free(w->l1cand);
    free(w->meta_hash);
}

int qc_salvage_walk(struct qc_salvage *s, const struct qc_salvage_l1 *l1,
                    const struct qc_header *h, const struct qc_snapshot_table *t)
{
    struct qc_walk w = { .s = s };
    w.esize = s->extl2 ? 16 : 8;
    w.cover = s->cluster_size * (s->cluster_size / w.esize);
    w.buf = malloc(s->cluster_size);
    int rc = w.buf ? 0 : QC_E_NOMEM;
    if (rc == 0 && s->header_ok)
        rc = walk_trusted(&w, l1, h, t);
    if (rc == 0 && (!s->header_ok || any_open(&w)) && !s->extl2)
        rc = qc_walk_find_candidates(&w);
    if (rc == 0 && !s->header_ok) {
        rc = qc_walk_size_from_candidates(&w);
        w.l1_damaged = true;
    }
    if (rc == 0 && any_open(&w) && !s->extl2)
        rc = qc_walk_orphans(&w);
    if (rc == 0)
        rc = finish(&w);
    walk_free(&w);
    return rc;
}
