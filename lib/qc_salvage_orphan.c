/* Orphan tables: L2 and L1 tables nothing intact references, and the
 * evidence that places them (qc_salvage_walk.h). */
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_salvage_walk.h"
#include "qc_scan.h"

#define EV_ENTRY "L2 table found by scan, placed by its damaged L1 entry"
#define EV_L1CAND "L2 table placed by an L1 table found by scan"
#define EV_ORDER "L2 tables placed in allocation order (sequential layout)"

/* The host cluster an L2 entry's data starts in. */
static uint64_t entry_cluster(const struct qc_salvage *s, uint64_t raw)
{
    if (raw & QC_OFLAG_COMPRESSED) {
        struct qc_compressed_geom g = qc_compressed_geom(s->cluster_bits);
        return qc_compressed_decode(&g, raw & ~QC_OFLAG_COMPRESSED).offset / s->cluster_size;
    }
    return (raw & QC_L2E_OFFSET_MASK) / s->cluster_size;
}

/* What the table in W->buf is: 2 an L1-like table (it names tables), 1 an
 * L2 candidate (it names clusters no structure owns), 0 neither. */
static int table_kind(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    bool l1_like = true, l2_like = true, any = false;
    for (uint64_t j = 0; j < s->cluster_size / 8; j++) {
        uint64_t raw = qc_be64(w->buf + 8 * j);
        if (raw == 0 || (!(raw & QC_OFLAG_COMPRESSED) && !(raw & QC_L2E_OFFSET_MASK)))
            continue;
        if (!qc_scan_l2_entry_valid(raw, s->cluster_bits, s->f->size))
            return 0;
        any = true;
        uint64_t c = entry_cluster(s, raw);
        if (c >= s->nclusters)
            return 0;
        int role = s->role[c], cls = s->cls[c];
        bool names_table = cls == QC_SC_TABLE || role == QC_SR_L2 || role == QC_SR_OTHER_META;
        if (!qc_scan_l1_entry_valid(raw, s->cluster_bits, s->f->size) || !names_table)
            l1_like = false;
        if (qc_role_is_meta(role) || role == QC_SR_DATA || cls == QC_SC_HEADER ||
            cls == QC_SC_REFBLOCK || cls == QC_SC_TABLE)
            l2_like = false;
    }
    return !any ? 0 : l1_like ? 2 : l2_like ? 1 : 0;
}

/* Two candidates naming the same data cluster: neither can be trusted. */
static int drop_conflicting(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    uint8_t *n = calloc(s->nclusters, 1);
    if (!n)
        return QC_E_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t k = 0; k < w->ncand; k++) {
            int rc = qc_walk_read(w, w->cand[k]);
            if (rc) {
                free(n);
                return rc;
            }
            bool clash = false;
            for (uint64_t j = 0; j < s->cluster_size / 8; j++) {
                uint64_t raw = qc_be64(w->buf + 8 * j);
                if (raw == 0 || (raw & QC_OFLAG_COMPRESSED) || !(raw & QC_L2E_OFFSET_MASK))
                    continue;
                uint64_t c = entry_cluster(s, raw);
                if (pass == 0 && n[c] < 2)
                    n[c]++;
                clash |= pass == 1 && n[c] > 1;
            }
            if (clash)
                w->cand_slot[k] = -2;   /* never placed */
        }
    }
    free(n);
    return 0;
}

/* Marks the clusters the table in W->buf names as data: a candidate that a
 * table names as data is guest data that looks like a table, or the two
 * are ambiguous; either way it is not placed. */
static void mark_named(struct qc_walk *w, uint8_t *named)
{
    struct qc_salvage *s = w->s;
    for (uint64_t j = 0; j < s->cluster_size / 8; j++) {
        uint64_t raw = qc_be64(w->buf + 8 * j);
        if (!qc_scan_l2_entry_valid(raw, s->cluster_bits, s->f->size))
            continue;
        uint64_t c = entry_cluster(s, raw);
        if (c < s->nclusters)
            named[c] = 1;
    }
}

int qc_walk_find_candidates(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    w->cand = calloc(s->nclusters + 1, 8);
    w->cand_slot = calloc(s->nclusters + 1, sizeof(int64_t));
    w->l1cand = calloc(s->nclusters + 1, 8);
    uint8_t *named = calloc(s->nclusters + 1, 1);
    if (!w->cand || !w->cand_slot || !w->l1cand || !named) {
        free(named);
        return QC_E_NOMEM;
    }
    for (uint64_t c = 0; c < s->nclusters; c++) {
        bool tablish = s->cls[c] == QC_SC_TABLE || s->cls[c] == QC_SC_TABLE_DAMAGED;
        if (!tablish || (s->role[c] != QC_SR_NONE && s->role[c] != QC_SR_L2))
            continue;
        int rc = qc_walk_read(w, c * s->cluster_size);
        if (rc) {
            free(named);
            return rc;
        }
        int kind = s->role[c] == QC_SR_NONE && s->cls[c] == QC_SC_TABLE ? table_kind(w) : 0;
        if (kind != 2)
            mark_named(w, named);
        if (kind == 1)
            w->cand[w->ncand++] = c * s->cluster_size;
        else if (kind == 2)
            w->l1cand[w->nl1cand++] = c * s->cluster_size;
    }
    for (uint64_t k = 0; k < w->ncand; k++) {
        w->cand_slot[k] = named[w->cand[k] / s->cluster_size] ? -2 : -1;
        s->role[w->cand[k] / s->cluster_size] = QC_SR_CANDIDATE;
    }
    for (uint64_t k = 0; k < w->nl1cand; k++)
        s->role[w->l1cand[k] / s->cluster_size] = QC_SR_L1_CANDIDATE;
    free(named);
    return drop_conflicting(w);
}

/* Candidates are found in host order: a binary search keeps the placement
 * linear in the tables a hostile file can hold. */
static int64_t find_cand(const struct qc_walk *w, uint64_t off)
{
    uint64_t lo = 0, hi = w->ncand;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (w->cand[mid] == off)
            return (int64_t)mid;
        if (w->cand[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int place(struct qc_walk *w, uint64_t slot, int64_t k, const char *evidence)
{
    struct qc_salvage *s = w->s;
    w->cand_slot[k] = (int64_t)slot;
    w->slot[slot] = QC_SLOT_MAPPED;
    w->l2[slot] = w->cand[k];
    s->role[w->cand[k] / s->cluster_size] = QC_SR_L2;
    return qc_walk_l2(w, slot, w->cand[k], QC_SV_RECONSTRUCTED, evidence);
}

/* (a) A damaged L1 entry whose cluster-aligned offset is an orphan table. */
static int place_by_entries(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    for (uint64_t i = 0; i < w->nslots && !w->l1_damaged; i++) {
        uint64_t raw = w->l1[i];
        if (w->slot[i] != QC_SLOT_OPEN || raw == 0 || (raw & QC_L1E_RESERVED_MASK))
            continue;
        uint64_t off = raw & QC_L1E_OFFSET_MASK & ~(s->cluster_size - 1);
        int64_t k = find_cand(w, off);
        if (k >= 0 && w->cand_slot[k] == -1) {
            int rc = place(w, i, k, EV_ENTRY);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* (b) L1-like tables found by scan.  A slot they disagree on, or a table
 * they name at two slots, stays open. */
static int place_by_l1_candidates(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    int64_t *prop = malloc((w->nslots + 1) * sizeof(int64_t));
    if (!prop)
        return QC_E_NOMEM;
    for (uint64_t i = 0; i < w->nslots; i++)
        prop[i] = -1;
    for (uint64_t m = 0; m < w->nl1cand; m++) {
        int rc = qc_walk_read(w, w->l1cand[m]);
        for (uint64_t j = 0; rc == 0 && j < s->cluster_size / 8 && j < w->nslots; j++) {
            uint64_t raw = qc_be64(w->buf + 8 * j);
            int64_t k = raw ? find_cand(w, raw & QC_L1E_OFFSET_MASK) : -1;
            if (k < 0 || w->cand_slot[k] != -1)
                continue;
            prop[j] = prop[j] == -1 || prop[j] == k ? k : -2;
        }
        if (rc) {
            free(prop);
            return rc;
        }
    }
    uint8_t *times = calloc(w->ncand + 1, 1);
    if (!times) {
        free(prop);
        return QC_E_NOMEM;
    }
    for (uint64_t i = 0; i < w->nslots; i++)
        if (prop[i] >= 0 && times[prop[i]] < 2)
            times[prop[i]]++;
    int rc = 0;
    for (uint64_t i = 0; i < w->nslots && rc == 0; i++)
        if (prop[i] >= 0 && w->slot[i] == QC_SLOT_OPEN && times[prop[i]] == 1 &&
            w->cand_slot[prop[i]] == -1)
            rc = place(w, i, prop[i], EV_L1CAND);
    free(times);
    free(prop);
    return rc;
}

/* In a sequential layout each L2 table precedes its data and the data of
 * the next table follows: host order is guest order. */
static int sequential(struct qc_walk *w, const uint64_t *order, uint64_t n, bool *ok)
{
    struct qc_salvage *s = w->s;
    *ok = true;
    for (uint64_t k = 0; k < n && *ok; k++) {
        uint64_t lo = w->cand[order[k]];
        uint64_t hi = k + 1 < n ? w->cand[order[k + 1]] : UINT64_MAX;
        int rc = qc_walk_read(w, lo);
        if (rc)
            return rc;
        uint64_t prev = lo;
        for (uint64_t j = 0; j < s->cluster_size / 8 && *ok; j++) {
            uint64_t raw = qc_be64(w->buf + 8 * j);
            if (raw == 0 || (!(raw & QC_OFLAG_COMPRESSED) && !(raw & QC_L2E_OFFSET_MASK)))
                continue;
            uint64_t host = entry_cluster(s, raw) * s->cluster_size;
            *ok = host >= prev && host > lo && host < hi;
            prev = host;
        }
    }
    return 0;
}

/* (c) The whole L1 is lost and as many orphan tables are left as slots: in
 * a sequential layout they go in host order. */
static int place_by_order(struct qc_walk *w)
{
    if (!w->l1_damaged)
        return 0;
    uint64_t open = 0, n = 0;
    for (uint64_t i = 0; i < w->nslots; i++)
        open += w->slot[i] == QC_SLOT_OPEN;
    uint64_t *order = malloc((w->ncand + 1) * 8);
    if (!order)
        return QC_E_NOMEM;
    for (uint64_t k = 0; k < w->ncand; k++)
        if (w->cand_slot[k] == -1)
            order[n++] = k;
    bool ok = false;
    int rc = 0;
    if (n > 0 && n == open)
        rc = sequential(w, order, n, &ok);
    for (uint64_t i = 0, k = 0; ok && rc == 0 && i < w->nslots; i++)
        if (w->slot[i] == QC_SLOT_OPEN)
            rc = place(w, i, (int64_t)order[k++], EV_ORDER);
    free(order);
    return rc;
}

/* The L1 table is lost, and the one L1-like table found names every table
 * mapped and placed every orphan: it is the L1 table, and its zero entries
 * are unallocated.  (An old L1 left behind by a resize fails the first
 * test, so its zeros never hide a lost table.) */
static int empty_by_l1_candidate(struct qc_walk *w)
{
    for (uint64_t k = 0; k < w->ncand; k++)
        if (w->cand_slot[k] < 0)
            return 0;
    if (w->nl1cand != 1 || !w->l1_damaged)
        return 0;
    int rc = qc_walk_read(w, w->l1cand[0]);
    for (uint64_t i = 0; rc == 0 && i < w->nslots; i++) {
        uint64_t raw = i < w->s->cluster_size / 8 ? qc_be64(w->buf + 8 * i) : 0;
        if (w->slot[i] == QC_SLOT_MAPPED && (raw & QC_L1E_OFFSET_MASK) != w->l2[i])
            return 0;
        if (w->slot[i] != QC_SLOT_MAPPED && raw != 0)
            return 0;
    }
    for (uint64_t i = 0; rc == 0 && i < w->nslots; i++)
        if (w->slot[i] == QC_SLOT_OPEN &&
            (i >= w->s->cluster_size / 8 || qc_be64(w->buf + 8 * i) == 0))
            w->slot[i] = QC_SLOT_EMPTY;
    return rc;
}

int qc_walk_orphans(struct qc_walk *w)
{
    int rc = place_by_entries(w);
    if (rc == 0)
        rc = place_by_l1_candidates(w);
    if (rc == 0 && w->nl1cand == 1)
        rc = empty_by_l1_candidate(w);
    if (rc == 0)
        rc = place_by_order(w);
    for (uint64_t k = 0; k < w->ncand; k++)
        if (w->cand_slot[k] < 0)
            w->s->role[w->cand[k] / w->s->cluster_size] = QC_SR_CANDIDATE;
    return rc;
}

/* Header lost: the slot count and virtual size from the L1-like tables. */
int qc_walk_size_from_candidates(struct qc_walk *w)
{
    struct qc_salvage *s = w->s;
    uint64_t slots = 0;
    for (uint64_t m = 0; m < w->nl1cand; m++) {
        int rc = qc_walk_read(w, w->l1cand[m]);
        if (rc)
            return rc;
        for (uint64_t j = 0; j < s->cluster_size / 8; j++)
            if (qc_be64(w->buf + 8 * j) && j + 1 > slots)
                slots = j + 1;
    }
    if (slots == 0)
        return QC_SALVAGE_UNRECOGNISABLE;
    s->virtual_size = slots * w->cover;
    w->nslots = slots;
    w->l1 = calloc(slots, 8);
    w->slot = calloc(slots, 1);
    w->l2 = calloc(slots, 8);
    if (!w->l1 || !w->slot || !w->l2)
        return QC_E_NOMEM;
    memset(w->slot, QC_SLOT_OPEN, slots);
    return 0;
}
