/*
 * Lost metadata or crash debris (qc_lostmeta.h): one pass over the on-disk
 * refcounts finds the leaked clusters (refcount above 0, nothing refers to
 * them) and those whose refcount is above their references, a second reads
 * each leaked cluster and asks whether it is an L2 table whose entries
 * point at clusters of either kind.
 */
#include <stdlib.h>
#include <string.h>

#include "qc_check_int.h"
#include "qc_endian.h"
#include "qc_header.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_lostmeta.h"

/* --- the shape of an L2 table ------------------------------------------------------ */

/* A compressed descriptor: the data starts inside the file; COPIED is never
 * set on one and extended L2 keeps its bitmap 0. */
static bool compressed_plausible(uint64_t raw, uint64_t bitmap, bool extl2, unsigned cluster_bits,
                                 uint64_t file_len, uint64_t *target)
{
    struct qc_compressed_geom g = qc_compressed_geom(cluster_bits);
    struct qc_compressed_desc d = qc_compressed_decode(&g, raw);

    if ((raw & QC_OFLAG_COPIED) || (extl2 && bitmap) || d.offset >= file_len)
        return false;
    *target = d.offset >> cluster_bits;
    return true;
}

bool qc_l2_entry_plausible(uint64_t raw, uint64_t bitmap, bool extl2, unsigned cluster_bits,
                           uint64_t file_len, uint64_t *target)
{
    uint64_t off = raw & QC_L2E_OFFSET_MASK;

    *target = UINT64_MAX;
    if (raw & QC_OFLAG_COMPRESSED)
        return compressed_plausible(raw, bitmap, extl2, cluster_bits, file_len, target);
    /* a subcluster both allocated and zero is invalid */
    if (extl2 && (bitmap & (bitmap >> 32) & 0xffffffffu))
        return false;
    if ((raw & QC_L2E_RESERVED_MASK) || (extl2 && (raw & QC_OFLAG_ZERO)))
        return false;
    if (off == 0)
        return !(raw & QC_OFLAG_COPIED);    /* unallocated or a plain zero cluster */
    if (off & ((1ull << cluster_bits) - 1) || off >= file_len)
        return false;
    *target = off >> cluster_bits;
    return true;
}

void qc_l2_shape_classify(const uint8_t *buf, unsigned cluster_bits, bool extl2,
                          uint64_t file_len, struct qc_l2_shape *shape,
                          void (*visit)(void *opaque, uint64_t target), void *opaque)
{
    unsigned esize = extl2 ? 16 : 8;
    uint64_t n = (1ull << cluster_bits) / esize;

    memset(shape, 0, sizeof *shape);
    shape->entries = n;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t raw = qc_be64(buf + i * esize);
        uint64_t bitmap = extl2 ? qc_be64(buf + i * esize + 8) : 0, target;
        if (!qc_l2_entry_plausible(raw, bitmap, extl2, cluster_bits, file_len, &target)) {
            shape->bad_index = i;
            return;
        }
        shape->nonzero += raw != 0 || bitmap != 0;
        shape->mapping += target != UINT64_MAX;
    }
    shape->l2_like = shape->nonzero > 0;
    if (!shape->l2_like || !visit)
        return;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t raw = qc_be64(buf + i * esize);
        uint64_t bitmap = extl2 ? qc_be64(buf + i * esize + 8) : 0, target;
        if (qc_l2_entry_plausible(raw, bitmap, extl2, cluster_bits, file_len, &target) &&
            target != UINT64_MAX)
            visit(opaque, target);
    }
}

/* --- the leaked clusters ----------------------------------------------------------- */

struct scan {
    struct qc_check *c;
    struct qc_lostmeta *lm;
    uint64_t nclusters;        /* clusters inside the file that the check compared */
    uint8_t *leaked;           /* bitmap: refcount above 0, nothing refers to it */
    uint8_t *over;             /* bitmap: refcount above its references (QEMU's leak) */
    uint8_t *mapped;           /* bitmap */
    uint64_t leaked_data;      /* leaked clusters holding a nonzero byte */
    uint64_t self, hits;       /* the cluster being classified, its entries at leaks */
    size_t l2_cap;
};

static bool bit(const uint8_t *map, uint64_t k)
{
    return (map[k >> 3] >> (k & 7)) & 1;
}

static void set_bit(uint8_t *map, uint64_t k)
{
    map[k >> 3] |= (uint8_t)(1u << (k & 7));
}

/* Which clusters are leaked, how many are allocated, whether the leaks are
 * a tail: allocations never linked lie after all linked data (the L2 table
 * or refcount block allocated with them may follow). */
static void find_leaks(struct scan *s)
{
    struct qc_lostmeta *lm = s->lm;
    bool data_after_leak = false;

    for (uint64_t k = 0; k < s->nclusters; k++) {
        uint64_t disk, computed = qc_check_computed_refcount(s->c, k);
        if (lm->leaked && computed && (qc_imrt_flags(&s->c->imrt, k) & QC_IMRT_F_DATA))
            data_after_leak = true;
        if (qc_check_disk_refcount(s->c, k, &disk) < 0 || disk == 0)
            continue;
        lm->allocated++;
        if (computed < disk)
            set_bit(s->over, k);
        if (computed != 0)
            continue;
        set_bit(s->leaked, k);
        lm->leaked++;
    }
    lm->leaked_tail = !data_after_leak;
}

static void visit_target(void *opaque, uint64_t target)
{
    struct scan *s = opaque;

    /* a compressed cluster shares its host cluster with others that may
     * still be referenced: it is leaked as soon as its refcount is too high */
    if (target >= s->nclusters || target == s->self || !bit(s->over, target))
        return;
    s->hits++;
    if (!bit(s->mapped, target)) {
        set_bit(s->mapped, target);
        s->lm->mapped++;
    }
}

static bool all_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            return false;
    return true;
}

/* Reads leaked cluster K and records it when it is an L2 table mapping
 * other leaked clusters. */
static int classify_leak(struct scan *s, uint8_t *buf, uint64_t k)
{
    struct qc_check *c = s->c;
    struct qc_lostmeta *lm = s->lm;
    struct qc_l2_shape shape;

    if (qc_file_read_padded(c->f, k << c->cb, buf, (size_t)c->cs) < 0)
        return 0;    /* unreadable: no evidence either way */
    if (all_zero(buf, (size_t)c->cs))
        return 0;
    s->leaked_data++;
    s->self = k;
    s->hits = 0;
    qc_l2_shape_classify(buf, c->cb, c->extl2, c->file_len, &shape, visit_target, s);
    if (!shape.l2_like || s->hits == 0)
        return 0;
    lm->mapped_entries += s->hits;
    if (lm->n_l2_like == s->l2_cap) {
        size_t n = s->l2_cap ? s->l2_cap * 2 : 64;
        uint64_t *v = realloc(lm->l2_like, n * sizeof *v);
        if (!v)
            return QC_E_NOMEM;
        lm->l2_like = v;
        s->l2_cap = n;
    }
    lm->l2_like[lm->n_l2_like++] = k;
    return 0;
}

/* Zero entries and entries no L2 table could be at (unaligned, reserved
 * bits, past the end of the file). */
static void assess_l1(const struct qc_check *c, struct qc_lostmeta *lm, uint8_t *buf)
{
    lm->l1_entries = c->l1_size;
    for (uint64_t i = 0; i < c->l1_size && i < c->l1_stored; i++) {
        uint64_t raw = c->l1[i], off = raw & QC_L1E_OFFSET_MASK;
        struct qc_l2_shape shape;
        if (raw == 0)
            continue;
        lm->l1_nonzero++;
        if ((raw & QC_L1E_RESERVED_MASK) || (off & (c->cs - 1)) || off >= c->file_len)
            lm->l1_garbage++;
        /* QEMU never writes an unaligned L1 entry: one that lands inside
         * a real L2 table is a damaged pointer to it, not crash debris */
        if (!buf || !(off & (c->cs - 1)) || off >= c->file_len ||
            qc_file_read_padded(c->f, off & ~(c->cs - 1), buf, (size_t)c->cs) < 0 ||
            all_zero(buf, (size_t)c->cs))
            continue;
        qc_l2_shape_classify(buf, c->cb, c->extl2, c->file_len, &shape, NULL, NULL);
        if (shape.l2_like && shape.mapping > 0)
            lm->l1_into_l2++;
    }
}

static void verdict(struct scan *s)
{
    struct qc_lostmeta *lm = s->lm;

    bool l2_maps = lm->n_l2_like && lm->mapped_entries >= QC_LM_MAPPED_MIN;

    if (l2_maps)
        lm->signs |= QC_LM_L2_MAPS_LEAKED;
    if (l2_maps && (lm->l1_nonzero == 0 || lm->l1_garbage))
        lm->signs |= QC_LM_L1_BAD;
    if (lm->l1_into_l2)
        lm->signs |= QC_LM_L1_INTO_L2;
    /* Mass leaks alone are not enough: one interrupted write whose L2
     * updates landed in part leaves most of a small image leaked, and not
     * as a tail.  With corruptions beside them (tables whose entries went
     * bad) the data lost its metadata.  With lazy refcounts stale refcounts
     * explain mass leaks (a large discard not yet counted). */
    if (!lm->dirty && s->leaked_data >= QC_LM_MOST_LEAKED_MIN &&
        s->leaked_data * 2 > lm->allocated && !lm->leaked_tail && s->c->res->corruptions > 0)
        lm->signs |= QC_LM_MOST_LEAKED;
    lm->lost = lm->signs != 0;
}

int qc_lostmeta_assess(struct qc_check *c, struct qc_lostmeta *lm)
{
    struct scan s;
    uint64_t in_file = (c->file_len + c->cs - 1) >> c->cb;
    uint8_t *buf = NULL;
    int r = 0;

    memset(lm, 0, sizeof *lm);
    memset(&s, 0, sizeof s);
    s.c = c;
    s.lm = lm;
    lm->dirty = (c->img.hdr.incompatible_features & QC_INCOMPAT_DIRTY) != 0;
    {
        uint8_t *l1buf = malloc((size_t)c->cs);   /* NULL: no look inside */
        assess_l1(c, lm, l1buf);
        free(l1buf);
    }
    /* leaked clusters past the end of the file hold nothing to lose */
    s.nclusters = qc_check_cluster_count(c) < in_file ? qc_check_cluster_count(c) : in_file;
    if (s.nclusters == 0)
        return 0;
    s.leaked = calloc((size_t)(s.nclusters / 8 + 1), 1);
    s.over = calloc((size_t)(s.nclusters / 8 + 1), 1);
    s.mapped = calloc((size_t)(s.nclusters / 8 + 1), 1);
    if (!s.leaked || !s.over || !s.mapped || !(buf = malloc((size_t)c->cs))) {
        r = QC_E_NOMEM;
        goto out;
    }
    find_leaks(&s);
    for (uint64_t k = 0; k < s.nclusters && r == 0 && lm->leaked; k++)
        if (bit(s.leaked, k))
            r = classify_leak(&s, buf, k);
    if (r == 0)
        verdict(&s);
out:
    free(s.leaked);
    free(s.over);
    free(s.mapped);
    free(buf);
    if (r < 0)
        qc_lostmeta_free(lm);
    return r;
}

void qc_lostmeta_free(struct qc_lostmeta *lm)
{
    free(lm->l2_like);
    lm->l2_like = NULL;
    lm->n_l2_like = 0;
}
