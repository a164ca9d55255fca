/*
 * The repair engine (qc_repair.h): QEMU 7.2's qcow2_check_refcounts with
 * fixing, worked out on the finished check's context instead of on the
 * image.  The first check gives the computed refcounts (IMRT), the on-disk
 * refcounts and QEMU's first-pass lines; from those this module derives
 * what QEMU's fixing run would print and change, and turns the change into
 * a write plan.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_check_int.h"
#include "qc_edit.h"
#include "qc_endian.h"
#include "qc_header.h"
#include "qc_l2.h"
#include "qc_repair.h"

#define PRINT QC_EVL_PRINTED

/* --- the first check's lines ------------------------------------------------------ *
 *
 * Only the walk's events (PH_CALC) are kept: the repair run prints them
 * again, changed, after a rebuild, and derives fixes from them.  The
 * comparison and the OFLAG_COPIED pass are not kept, however many lines
 * they have: the repair computes both again on the corrected counts.
 *
 * What QEMU's repair run prints exactly as the check printed it goes to
 * the sink at once: the walk's lines and the comparison's, as long as no
 * walk event has come that -r all fixes on the spot (the counts change)
 * or whose fix can stop the run before the comparison (the snapshot
 * table).  Streaming stops there, or at the OFLAG_COPIED pass, whose
 * lines the repair prints from its own pass. */

enum phase {
    PH_CALC,      /* snapshot table read and reference counting */
    PH_COMPARE,   /* the comparison of refcounts */
    PH_OFLAG,     /* OFLAG_COPIED pass and our own later findings */
};

struct cev {
    enum qc_problem_kind kind;
    enum qc_severity sev;
    unsigned flags;
    uint64_t offset, cluster;
    uint64_t value;           /* the finding's value (a range past EOF: its length) */
    size_t line;              /* offset in the text arena */
    enum phase phase;
    bool drop;                /* QEMU's fixing run does not print it */
    bool recounted;           /* past EOF at first, counted after the rebuild */
    bool shown;               /* streamed to the sink as it came */
};

struct capture {
    struct cev *v;
    size_t n, cap;
    char *text;
    size_t tlen, tcap;
    enum phase phase;
    bool oom;
    const struct qc_repair_opts *o;
    bool all;
    bool stream;              /* events still go to the sink as they come */
    enum phase stopped_in;    /* the phase in which streaming stopped */
    uint64_t nseen;           /* events so far */
    uint64_t nstreamed;       /* the first NSTREAMED events were streamed */
    /* the corrupt event of an unaligned refcount block QEMU raised in the
     * comparison (once per image), for a comparison printed again */
    char *refblock_line;
    unsigned refblock_flags;
};

static void capture_sink(void *opaque, const struct qc_check_event *ev)
{
    struct capture *cp = opaque;
    enum qc_problem_kind kind = ev->problem ? ev->problem->kind : QC_P_QEMU_REPORT;
    size_t l;
    struct cev *e;

    if (cp->oom)
        return;
    if (kind == QC_P_REFCOUNT_MISMATCH || kind == QC_P_LEAK || kind == QC_P_REFCOUNT_UNREADABLE ||
        (kind == QC_P_QEMU_REPORT && (ev->flags & QC_EVL_REFBLOCK_CORRUPT))) {
        if (cp->phase < PH_COMPARE)
            cp->phase = PH_COMPARE;
    } else if (kind == QC_P_OFLAG_COPIED ||
               (kind == QC_P_CHECK_IO_ERROR && (ev->flags & QC_EVL_L2_READ))) {
        cp->phase = PH_OFLAG;
    } else if (cp->phase == PH_COMPARE && ev->problem && ev->problem->severity == QC_SEV_INFO &&
               kind != QC_P_METADATA_OVERLAP) {
        /* our own findings after the comparison (an overlap can be found
         * during it) */
        cp->phase = PH_OFLAG;
    }
    cp->nseen++;
    if (cp->stream &&
        (cp->phase == PH_OFLAG ||
         (cp->all && (kind == QC_P_REFBLOCK_OUTSIDE || kind == QC_P_SNAPSHOT_INCOMPLETE ||
                      kind == QC_P_SNAPSHOT_EXTRA_TOO_LARGE ||
                      (kind == QC_P_L2_UNALIGNED && (ev->flags & QC_EVL_PREALLOC)))))) {
        cp->stream = false;
        cp->stopped_in = cp->phase;
    }
    if (cp->stream) {
        cp->nstreamed = cp->nseen;
        if (cp->o->sink)
            cp->o->sink(cp->o->opaque, ev);
    }
    if (cp->phase == PH_COMPARE && kind == QC_P_QEMU_REPORT && !cp->refblock_line &&
        (ev->flags & QC_EVL_REFBLOCK_CORRUPT)) {
        if (!(cp->refblock_line = strdup(ev->line)))
            cp->oom = true;
        cp->refblock_flags = ev->flags;
    }
    if (cp->phase != PH_CALC)
        return;
    l = strlen(ev->line) + 1;
    if (cp->n == cp->cap) {
        size_t n = cp->cap ? cp->cap * 2 : 256;
        struct cev *v = realloc(cp->v, n * sizeof *v);
        if (!v) {
            cp->oom = true;
            return;
        }
        cp->v = v;
        cp->cap = n;
    }
    while (cp->tlen + l > cp->tcap) {
        size_t n = cp->tcap ? cp->tcap * 2 : 65536;
        char *t = realloc(cp->text, n);
        if (!t) {
            cp->oom = true;
            return;
        }
        cp->text = t;
        cp->tcap = n;
    }
    memcpy(cp->text + cp->tlen, ev->line, l);
    e = &cp->v[cp->n++];
    e->kind = kind;
    e->sev = ev->problem ? ev->problem->severity : QC_SEV_INFO;
    e->flags = ev->flags;
    e->offset = ev->problem ? ev->problem->offset : QC_NO_OFFSET;
    e->cluster = ev->problem ? ev->problem->cluster : QC_NO_OFFSET;
    e->value = ev->problem ? ev->problem->value : 0;
    e->line = cp->tlen;
    e->phase = cp->phase;
    e->drop = false;
    e->recounted = false;
    e->shown = cp->stream;
    cp->tlen += l;
}

/* The lines of a check that failed after the walk, past those already
 * streamed: the check again (it reads only), its events from there on. */
struct resume {
    const struct qc_repair_opts *o;
    uint64_t skip, seen;
};

static void resume_sink(void *opaque, const struct qc_check_event *ev)
{
    struct resume *rs = opaque;
    if (rs->seen++ >= rs->skip)
        rs->o->sink(rs->o->opaque, ev);
}

/* --- the engine's state ----------------------------------------------------------- */

/* A cluster interval [first, last] no new structure may take. */
struct span {
    uint64_t first, last;
};

/* An L2 entry rewritten before the OFLAG_COPIED pass. */
struct entry_fix {
    uint64_t at;              /* file offset of the entry */
    uint8_t bytes[16];
};

/* A refcount that changes in place. */
struct rc_change {
    uint64_t k, from, to;
};

struct rep {
    struct qc_repair *rp;
    struct qc_check *c;
    const struct qc_repair_opts *o;
    struct capture cap;
    bool all;

    struct span *excl;
    size_t nexcl, excl_cap;

    struct entry_fix *efix;
    size_t nefix, efix_cap;

    struct rc_change *chg;
    size_t nchg, chg_cap;

    /* the repair run's own comparison (when the counts were adjusted) */
    bool adjusted;
    uint64_t nb0;
    size_t fail_at;            /* event where the walk's fix hits metadata (or SIZE_MAX) */
    const char *fail_area;
    uint64_t *grown_blocks;    /* refcount blocks outside the image the file grows to hold */
    size_t ngrown, grown_cap;
    uint64_t grow_to;          /* file length after those growths (0: none) */

    /* the snapshot table as -r all rewrites it */
    bool snap_header;          /* header bytes 60..71 change */
    bool snap_rewrite;         /* the table moves to new clusters */
    uint8_t *snap_buf;         /* its bytes (NULL: no snapshot left) */
    uint64_t snap_len, snap_first, snap_clusters;
    bool snap_free_failed;     /* freeing the old table fails as in QEMU */

    /* the rebuilt structure */
    uint64_t *new_rt;          /* new reftable entries */
    uint64_t new_rt_n;
    uint64_t rt_first, rt_clusters;
    uint64_t *abandoned;       /* reftable allocations given up (cluster, count pairs) */
    size_t nab, ab_cap;
    /* refcounts after a rebuild: the check's IMRT, changed in place (it
     * outlives the plan, whose new refcount blocks are made from it) */
    struct qc_imrt *final;
    struct rc_change *freed;   /* the clusters it lowers, with their counts before */
    size_t nfreed, freed_cap;
    int64_t recounted;         /* references past EOF counted after the rebuild */
};

static int grow_array(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 32;
    void *p = realloc(*v, nc * size);
    if (!p)
        return QC_E_NOMEM;
    *v = p;
    *cap = nc;
    return 0;
}

static void emit(struct rep *s, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int note(struct rep *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct rep *s, unsigned flags, const char *fmt, ...)
{
    struct qc_check_event ev = { 0 };
    char buf[512];
    va_list ap;

    if (!s->o->sink)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ev.line = buf;
    ev.flags = flags | PRINT;
    s->o->sink(s->o->opaque, &ev);
}

static void replay(struct rep *s, const struct cev *e, const char *line)
{
    struct qc_check_event ev = { 0 };

    if (!s->o->sink || !(e->flags & PRINT))
        return;
    ev.line = line;
    ev.flags = e->flags;
    s->o->sink(s->o->opaque, &ev);
}

static const char *cev_line(const struct rep *s, const struct cev *e)
{
    return s->cap.text + e->line;
}

/* The walk's line in the repair run, unless it was streamed already. */
static void replay_walk(struct rep *s, const struct cev *e)
{
    if (!e->shown)
        replay(s, e, cev_line(s, e));
}

/* --- exclusions: clusters a new structure must not take ------------------------- */

static int exclude(struct rep *s, uint64_t first, uint64_t last)
{
    if (grow_array((void **)&s->excl, &s->excl_cap, s->nexcl, sizeof *s->excl) < 0)
        return QC_E_NOMEM;
    s->excl[s->nexcl++] = (struct span){ first, last };
    return 0;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorted and merged, for the allocator's look-ups. */
static void exclusions_finish(struct rep *s)
{
    size_t n = 0;

    if (!s->nexcl)
        return;
    qsort(s->excl, s->nexcl, sizeof *s->excl, span_cmp);
    for (size_t i = 1; i < s->nexcl; i++) {
        if (s->excl[i].first <= s->excl[n].last + 1 && s->excl[n].last != UINT64_MAX) {
            if (s->excl[i].last > s->excl[n].last)
                s->excl[n].last = s->excl[i].last;
        } else {
            s->excl[++n] = s->excl[i];
        }
    }
    s->nexcl = n + 1;
}

/* The first excluded span that does not end before K (or NEXCL). */
static size_t span_from(const struct rep *s, uint64_t k)
{
    size_t lo = 0, hi = s->nexcl;

    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (s->excl[m].last < k)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* The end (last + 1) of the excluded span holding K, or K when none does. */
static uint64_t excluded_until(const struct rep *s, uint64_t k)
{
    size_t lo = span_from(s, k);

    if (lo < s->nexcl && s->excl[lo].first <= k)
        return s->excl[lo].last == UINT64_MAX ? UINT64_MAX : s->excl[lo].last + 1;
    return k;
}

/* Every cluster an old refcount table entry names (broken ones included),
 * and every range that was not counted because it lies past the end of the
 * file: a new structure there would become what those entries read. */
static int collect_exclusions(struct rep *s)
{
    struct qc_check *c = s->c;

    for (uint64_t i = 0; i < c->disk.nstored; i++) {
        uint64_t off = c->disk.table[i] & QC_REFT_OFFSET_MASK;
        if (off && exclude(s, off >> c->cb, off >> c->cb) < 0)
            return QC_E_NOMEM;
    }
    for (size_t i = 0; i < s->cap.n; i++) {
        const struct cev *e = &s->cap.v[i];
        uint64_t size = e->value, last;
        if (e->kind != QC_P_BEYOND_EOF || e->drop || !size)
            continue;
        last = e->offset + size - 1 < e->offset ? UINT64_MAX : e->offset + size - 1;
        if (exclude(s, e->offset >> c->cb, last >> c->cb) < 0)
            return QC_E_NOMEM;
    }
    exclusions_finish(s);
    return 0;
}

/* --- QEMU's metadata overlap check before a write -------------------------------- */

/* Whether clusters [FIRST, LAST] meet the N clusters from A. */
static bool clusters_meet(uint64_t first, uint64_t last, uint64_t a, uint64_t n)
{
    return n && a <= last && first - a < n;
}

/* The areas QEMU's guard knows, in its order of testing. */
enum guard_area {
    GA_HEADER, GA_L1, GA_REFTABLE, GA_REFBLOCK, GA_SNAPSHOT_TABLE, GA_SNAPSHOT_L1,
    GA_BITMAP_DIR, GA_NONE
};

static enum guard_area guard_area_of(enum qc_role role)
{
    switch (role) {
    case QC_ROLE_HEADER: return GA_HEADER;
    case QC_ROLE_L1: return GA_L1;
    case QC_ROLE_REFTABLE: return GA_REFTABLE;
    case QC_ROLE_REFBLOCK: return GA_REFBLOCK;
    case QC_ROLE_SNAPSHOT_TABLE: return GA_SNAPSHOT_TABLE;
    case QC_ROLE_SNAPSHOT_L1: return GA_SNAPSHOT_L1;
    case QC_ROLE_BITMAP_DIR: return GA_BITMAP_DIR;
    default: return GA_NONE;
    }
}

/* The metadata area (QEMU's name) that [OFF, OFF+LEN) would overwrite, in
 * QEMU's order of areas, or NULL.  L2 tables and data are not guarded.
 * The areas are those of the image as the repair has left it so far: once
 * the refcount structure is rebuilt, QEMU's guard knows the new refcount
 * table and blocks only, and a moved snapshot table at its new place. */
static const char *overlap_area(const struct rep *s, uint64_t off, uint64_t len)
{
    static const char *const names[] = {
        [GA_HEADER] = "qcow2_header", [GA_L1] = "active L1 table",
        [GA_REFTABLE] = "refcount table", [GA_REFBLOCK] = "refcount block",
        [GA_SNAPSHOT_TABLE] = "snapshot table", [GA_SNAPSHOT_L1] = "inactive L1 table",
        [GA_BITMAP_DIR] = "bitmap directory",
    };
    const struct qc_check *c = s->c;
    bool rebuilt = s->final != NULL, snap_moved = s->snap_rewrite;
    uint64_t first = off >> c->cb, last = (off + len - 1) >> c->cb;
    enum guard_area best = GA_NONE;

    for (size_t i = 0; i < c->nranges; i++) {
        const struct qc_meta_range *m = &c->ranges[i];
        enum guard_area a = guard_area_of(m->role);
        if (a >= best || !clusters_meet(first, last, m->first, m->count))
            continue;
        if (rebuilt && (a == GA_REFTABLE || a == GA_REFBLOCK))
            continue;
        if (snap_moved && a == GA_SNAPSHOT_TABLE)
            continue;
        best = a;
    }
    if (rebuilt && best > GA_REFTABLE && clusters_meet(first, last, s->rt_first, s->rt_clusters))
        best = GA_REFTABLE;
    for (uint64_t i = 0; rebuilt && best > GA_REFBLOCK && i < s->new_rt_n; i++)
        if (s->new_rt[i] && clusters_meet(first, last, s->new_rt[i] >> c->cb, 1))
            best = GA_REFBLOCK;
    if (snap_moved && s->snap_buf && best > GA_SNAPSHOT_TABLE &&
        clusters_meet(first, last, s->snap_first, s->snap_clusters))
        best = GA_SNAPSHOT_TABLE;
    return best == GA_NONE ? NULL : names[best];
}

/* --- walk-time fixes (-r all): misaligned preallocated zero clusters ------------- */

static const struct entry_fix *find_efix(const struct rep *s, uint64_t at)
{
    for (size_t i = 0; i < s->nefix; i++)
        if (s->efix[i].at == at)
            return &s->efix[i];
    return NULL;
}

static void imrt_dec(struct qc_imrt *t, uint64_t k)
{
    uint64_t v;
    if (k >= t->size)
        return;
    v = qc_imrt_get(t, k);
    if (v)
        qc_imrt_set(t, k, v - 1);
}

/* QEMU rewrites such an entry during the walk and does not count it: take
 * its count back out of the IMRT, and drop what the walk said after it. */
static int prealloc_fixes(struct rep *s)
{
    struct qc_check *c = s->c;

    for (size_t i = 0; i < s->cap.n; i++) {
        struct cev *e = &s->cap.v[i];
        struct entry_fix fx;
        uint8_t raw[16];
        uint64_t w, bm = 0, off;

        if (e->kind != QC_P_L2_UNALIGNED || !(e->flags & QC_EVL_PREALLOC))
            continue;
        if (find_efix(s, e->offset)) {
            /* a second visit of the same entry finds it fixed: silent */
            e->drop = true;
        } else if ((s->fail_area = overlap_area(s, e->offset, c->l2_esize))) {
            /* QEMU's guard refuses the write and the check stops here */
            s->fail_at = i;
            return 0;
        } else {
            memset(raw, 0, sizeof raw);
            if (qc_file_read_qemu(c->f, e->offset, raw, c->l2_esize) < 0)
                continue;
            w = qc_be64(raw);
            if (c->extl2)
                bm = qc_be64(raw + 8);
            memset(&fx, 0, sizeof fx);
            fx.at = e->offset;
            if (c->extl2) {
                qc_put_be64(fx.bytes, 0);
                qc_put_be64(fx.bytes + 8, (bm | bm << 32) & 0xFFFFFFFF00000000ull);
            } else {
                qc_put_be64(fx.bytes, QC_OFLAG_ZERO);
            }
            if (grow_array((void **)&s->efix, &s->efix_cap, s->nefix, sizeof *s->efix) < 0)
                return QC_E_NOMEM;
            s->efix[s->nefix++] = fx;
            (void)w;
        }
        off = qc_be64(raw) & QC_L2E_OFFSET_MASK;
        if (e->drop) {
            /* the entry of the second visit reads as the first one fixed it */
            uint8_t r2[8];
            if (qc_file_read_qemu(c->f, e->offset, r2, 8) < 0)
                continue;
            off = qc_be64(r2) & QC_L2E_OFFSET_MASK;
        }
        /* the walk counted it (two clusters) unless the EOF line follows */
        if (i + 1 < s->cap.n && s->cap.v[i + 1].kind == QC_P_BEYOND_EOF &&
            s->cap.v[i + 1].offset == off) {
            s->cap.v[i + 1].drop = true;
        } else {
            imrt_dec(&c->imrt, off >> c->cb);
            imrt_dec(&c->imrt, (off >> c->cb) + 1);
        }
        s->adjusted = true;
    }
    return 0;
}

/* --- the comparison, as QEMU's fixing run does it ---------------------------------- */

static int add_chg(struct rep *s, uint64_t k, uint64_t from, uint64_t to);

/* One pass over the refcounts, with QEMU's handling of each mismatch by
 * MODE; nothing is kept per cluster, a later pass compares again. */
enum cmp_mode {
    CMP_COUNT,      /* count only (the check printed the lines) */
    CMP_PRINT,      /* count and print the lines of a run that fixes nothing */
    CMP_FIX,        /* the fixing pass: its lines, counters and changes */
};

struct cmp {
    enum cmp_mode mode;
    bool zero_mismatch;        /* r1 == 0 < r2 somewhere: rebuild */
    int64_t corr, leaks, unreadable;
    /* CMP_FIX: the repair run's counters */
    int64_t *rcorr, *rleaks, *rerrs, *cfixed, *lfixed;
};

static int mismatch(struct rep *s, struct cmp *m, uint64_t k, uint64_t r1, uint64_t r2,
                    bool unreadable)
{
    bool fixed;

    if (unreadable) {
        m->unreadable++;
        if (m->mode != CMP_COUNT)
            emit(s, 0, "Can't get refcount for cluster %" PRId64 ": %s", (int64_t)k,
                 strerror(EIO));
        if (m->mode == CMP_FIX)
            (*m->rerrs)++;
        return 0;
    }
    if (r1 < r2)
        m->corr++;
    else
        m->leaks++;
    if (r1 == 0)
        m->zero_mismatch = true;
    if (m->mode == CMP_COUNT)
        return 0;
    fixed = m->mode == CMP_FIX && r1 != 0 && (r1 > r2 || s->all);
    emit(s, 0, "%s cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64,
         fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked", (int64_t)k, r1, r2);
    if (m->mode != CMP_FIX)
        return 0;
    if (fixed)
        (*(r1 > r2 ? m->lfixed : m->cfixed))++;
    else
        (*(r1 < r2 ? m->rcorr : m->rleaks))++;
    return fixed ? add_chg(s, k, r1, r2) : 0;
}

/* Every cluster below the IMRT's size whose on-disk refcount differs from
 * the computed one, in ascending order. */
static int compare(struct rep *s, struct cmp *m)
{
    struct qc_check *c = s->c;
    struct qc_imrt *t = &c->imrt;
    uint64_t nb = t->size, rbb = c->disk.rb_bits;
    uint8_t *blk = malloc(c->cs);
    int r = 0;

    if (!blk)
        return QC_E_NOMEM;
    for (uint64_t idx = 0; (idx << rbb) < nb && r == 0; idx++) {
        uint64_t lo = idx << rbb, hi = lo + (1ull << rbb), off;
        if (hi > nb)
            hi = nb;
        switch (qc_refcount_disk_block_state(&c->disk, idx, &off)) {
        case QC_RB_ABSENT:
            for (uint64_t k = lo; k < hi && r == 0; k++) {
                uint64_t ch = k >> QC_IMRT_CHUNK_BITS;
                if (qc_imrt_chunk_empty(t, ch)) {
                    k = ((ch + 1) << QC_IMRT_CHUNK_BITS) - 1;
                    continue;
                }
                uint64_t r2 = qc_imrt_get(t, k);
                if (r2)
                    r = mismatch(s, m, k, 0, r2, false);
            }
            break;
        case QC_RB_UNALIGNED:
            if (m->mode == CMP_PRINT && s->cap.refblock_line && s->o->sink) {
                struct qc_check_event ev = { 0 };
                ev.line = s->cap.refblock_line;
                ev.flags = s->cap.refblock_flags;
                s->o->sink(s->o->opaque, &ev);
                free(s->cap.refblock_line);
                s->cap.refblock_line = NULL;
            }
            /* fall through */
        case QC_RB_UNREADABLE:
            for (uint64_t k = lo; k < hi && r == 0; k++)
                r = mismatch(s, m, k, 0, 0, true);
            break;
        case QC_RB_PRESENT:
            if (qc_file_read_qemu(c->f, off, blk, c->cs) < 0) {
                for (uint64_t k = lo; k < hi && r == 0; k++)
                    r = mismatch(s, m, k, 0, 0, true);
                break;
            }
            for (uint64_t k = lo; k < hi && r == 0; k++) {
                uint64_t r1 = qc_refblock_get(blk, c->order, k - lo);
                uint64_t r2 = qc_imrt_get(t, k);
                if (r1 != r2)
                    r = mismatch(s, m, k, r1, r2, false);
            }
            break;
        }
    }
    free(blk);
    return r;
}

/* --- rebuilding the refcount structure (QEMU's algorithm, placement kept
 *     off every old refcount table entry's cluster) -------------------------------- */

/* First fit of N free clusters from *FF; marks them used (count 1). */
static int alloc_clusters(struct rep *s, uint64_t n, uint64_t *ff, uint64_t *out)
{
    struct qc_imrt *t = &s->c->imrt;
    uint64_t k = *ff, run = 0, start = 0;
    bool first_gap = true;
    /* the first excluded span that does not end before K, followed as K grows */
    size_t xi = span_from(s, k);

    for (;;) {
        while (xi < s->nexcl && s->excl[xi].last < k)
            xi++;
        if (xi < s->nexcl && s->excl[xi].first <= k) {
            if (s->excl[xi].last == UINT64_MAX)
                return -ENOSPC;
            run = 0;
            k = s->excl[xi].last + 1;
            continue;
        }
        if (k < t->size && qc_imrt_get(t, k)) {
            run = 0;
            k++;
            continue;
        }
        if (first_gap) {
            *ff = k;
            first_gap = false;
        }
        if (!run)
            start = k;
        run++;
        k++;
        if (run == n)
            break;
        if (k >= ((uint64_t)1 << (63 - s->c->cb)))
            return -EFBIG;
    }
    if (start + n > t->size && qc_imrt_grow(t, start + n) < 0)
        return QC_E_NOMEM;
    for (uint64_t i = 0; i < n; i++)
        if (qc_imrt_set(t, start + i, 1) < 0)
            return QC_E_NOMEM;
    *out = start;
    return 0;
}

/* QEMU's rebuild_refcounts_write_refblocks without the writes: gives each
 * refcount block holding a used cluster in [first, end) an offset. */
static int place_refblocks(struct rep *s, uint64_t first, uint64_t end, bool *grown)
{
    struct qc_check *c = s->c;
    uint64_t rbb = c->disk.rb_bits, ff = 0, k = first;
    int r;

    *grown = false;
    while (k < end) {
        uint64_t ch = k >> QC_IMRT_CHUNK_BITS, idx, start, blk;
        if (qc_imrt_chunk_empty(&c->imrt, ch)) {
            k = (ch + 1) << QC_IMRT_CHUNK_BITS;
            continue;
        }
        if (!qc_imrt_get(&c->imrt, k)) {
            k++;
            continue;
        }
        idx = k >> rbb;
        start = idx << rbb;
        if (!(idx < s->new_rt_n && s->new_rt[idx])) {
            if (ff < start)
                ff = start;
            if ((r = alloc_clusters(s, 1, &ff, &blk)) < 0)
                return r;
            if (blk >= end)
                end = blk + 1;
            if (s->new_rt_n <= idx) {
                uint64_t bytes = ((idx + 1) * 8 + c->cs - 1) & ~(c->cs - 1);
                uint64_t n = bytes / 8;
                uint64_t *v;
                if (n > (64ull << 20) / 8)
                    return -EFBIG;
                v = realloc(s->new_rt, (size_t)n * sizeof *v);
                if (!v)
                    return QC_E_NOMEM;
                memset(v + s->new_rt_n, 0, (size_t)(n - s->new_rt_n) * sizeof *v);
                s->new_rt = v;
                s->new_rt_n = n;
                *grown = true;
            }
            s->new_rt[idx] = blk << c->cb;
        }
        k = start + (1ull << rbb);
    }
    return 0;
}

static int rebuild(struct rep *s)
{
    struct qc_check *c = s->c;
    uint64_t nb = c->imrt.size;
    bool grown;
    int r;

    if ((r = place_refblocks(s, 0, nb, &grown)) < 0)
        return r;
    do {
        uint64_t bytes = s->new_rt_n * 8, ff = 0, at;
        uint64_t n = (bytes + c->cs - 1) >> c->cb;
        if (!n)
            n = 1;
        if (s->rt_clusters) {
            /* QEMU leaves the previous attempt allocated: freed with the
             * old structures */
            if (grow_array((void **)&s->abandoned, &s->ab_cap, s->nab + 1, sizeof *s->abandoned) < 0)
                return QC_E_NOMEM;
            s->abandoned[s->nab++] = s->rt_first;
            s->abandoned[s->nab++] = s->rt_clusters;
        }
        if ((r = alloc_clusters(s, n, &ff, &at)) < 0)
            return r;
        s->rt_first = at;
        s->rt_clusters = n;
        if ((r = place_refblocks(s, at, at + n, &grown)) < 0)
            return r;
    } while (grown);
    return 0;
}

/* One reference fewer for K in the counts after the rebuild, noted for
 * the "Repairing" lines. */
static int final_dec(struct rep *s, uint64_t k)
{
    uint64_t v;

    if (k >= s->final->size || !(v = qc_imrt_get(s->final, k)))
        return 0;
    if (grow_array((void **)&s->freed, &s->freed_cap, s->nfreed, sizeof *s->freed) < 0)
        return QC_E_NOMEM;
    s->freed[s->nfreed++] = (struct rc_change){ k, v, v - 1 };
    return qc_imrt_set(s->final, k, v - 1);
}

/* The file's length when QEMU counts again after the rebuild: grown for
 * refcount blocks outside the image and by the new structures' writes. */
static uint64_t length_after_rebuild(const struct rep *s)
{
    const struct qc_check *c = s->c;
    uint64_t end = c->file_len > s->grow_to ? c->file_len : s->grow_to;
    uint64_t k = s->rt_first + s->rt_clusters;

    for (uint64_t i = 0; i < s->new_rt_n; i++)
        if (s->new_rt[i] && (s->new_rt[i] >> c->cb) + 1 > k)
            k = (s->new_rt[i] >> c->cb) + 1;
    if (s->snap_rewrite && s->snap_clusters && s->snap_first + s->snap_clusters > k)
        k = s->snap_first + s->snap_clusters;
    if (k <= (UINT64_MAX >> c->cb) && (k << c->cb) > end)
        end = k << c->cb;
    return end;
}

/* QEMU's second count runs on the file as the repair left it: a range
 * the first count found past the end (and did not count) may lie inside
 * the grown file now, and is counted.  Its clusters get a refcount block
 * of the new structure if the rebuild gave them none. */
static int recount_past_eof(struct rep *s)
{
    struct qc_check *c = s->c;
    uint64_t len = length_after_rebuild(s);

    if (len <= c->file_len)
        return 0;
    for (size_t i = 0; i < s->cap.n; i++) {
        struct cev *e = &s->cap.v[i];
        uint64_t size = e->value, first, last;
        bool grown;
        int r;

        if (e->kind != QC_P_BEYOND_EOF || e->phase != PH_CALC || e->drop || !size ||
            e->offset == c->disk.table_offset || e->offset > UINT64_MAX - size)
            continue;
        if ((int64_t)(e->offset + size - len) >= (int64_t)c->cs)
            continue;
        first = e->offset >> c->cb;
        last = (e->offset + size - 1) >> c->cb;
        if (last + 1 > s->final->size && qc_imrt_grow(s->final, last + 1) < 0)
            return QC_E_NOMEM;
        for (uint64_t k = first; k <= last; k++)
            if (qc_imrt_inc(s->final, k) < 0)
                return QC_E_NOMEM;
        if ((r = place_refblocks(s, first, last + 1, &grown)) < 0)
            return r;
        e->recounted = true;
        s->recounted++;
    }
    return 0;
}

/* Refcounts after the rebuild: the IMRT (which the new refcount blocks
 * hold) without the old refcount table, the old refcount blocks and given
 * up table allocations. */
static int final_counts(struct rep *s)
{
    struct qc_check *c = s->c;
    int r = 0;

    s->final = &c->imrt;
    /* the old refcount table, when it was counted */
    if (c->disk.nentries && (int64_t)(c->disk.table_offset + c->disk.nentries * 8 - c->file_len) <
                                (int64_t)c->cs) {
        uint64_t a = c->disk.table_offset >> c->cb;
        uint64_t b = (c->disk.table_offset + c->disk.nentries * 8 - 1) >> c->cb;
        for (uint64_t k = a; k <= b && r == 0; k++)
            r = final_dec(s, k);
    }
    /* the old refcount blocks that were counted */
    for (uint64_t i = 0; i < c->disk.nstored; i++) {
        uint64_t raw = c->disk.table[i], off = raw & QC_REFT_OFFSET_MASK;
        if (!off || (raw & QC_REFT_RESERVED_MASK) || (off & (c->cs - 1)))
            continue;
        if ((off >> c->cb) >= s->nb0)
            continue;
        if ((r = final_dec(s, off >> c->cb)) < 0)
            return r;
    }
    for (size_t i = 0; i < s->ngrown && r == 0; i++)
        r = final_dec(s, s->grown_blocks[i]);
    for (size_t i = 0; i + 1 < s->nab && r == 0; i += 2)
        for (uint64_t k = 0; k < s->abandoned[i + 1] && r == 0; k++)
            r = final_dec(s, s->abandoned[i] + k);
    /* after the decrements: the rebuilt blocks hold what the first count
     * gave, and these references are QEMU's second count alone */
    return r < 0 ? r : recount_past_eof(s);
}

/* --- the refcounts after repair -------------------------------------------------- */

static int chg_cmp(const void *a, const void *b)
{
    const struct rc_change *x = a, *y = b;
    return x->k < y->k ? -1 : x->k > y->k;
}

static const struct rc_change *find_chg(const struct rep *s, uint64_t k)
{
    size_t lo = 0, hi = s->nchg;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (s->chg[m].k < k)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < s->nchg && s->chg[lo].k == k ? &s->chg[lo] : NULL;
}

/* The refcount of K once the plan is carried out, or -EIO where it stays
 * unreadable. */
static int final_refcount(struct rep *s, uint64_t k, uint64_t *v)
{
    const struct rc_change *x;

    if (s->final) {
        *v = k < s->final->size ? qc_imrt_get(s->final, k) : 0;
        return 0;
    }
    if ((x = find_chg(s, k))) {
        *v = x->to;
        return 0;
    }
    return qc_refcount_disk_get(&s->c->disk, k, v);
}

/* --- plan building --------------------------------------------------------------- */

static int refblock_bytes(unsigned order, uint64_t i, uint64_t *byte, uint64_t *width)
{
    if (order < 3) {
        *byte = (i << order) >> 3;
        *width = 1;
    } else {
        *width = (1ull << order) >> 3;
        *byte = i * *width;
    }
    return 0;
}

/* In-place refcount writes for the changes RAISE (or lower): one write per
 * refcount block, spanning the entries that change.  The block is read
 * through the plan: the span of the lowering pass can cover entries the
 * raising pass changed (and, below 8 bits, bytes share entries), and must
 * carry their new values. */
static int plan_inplace(struct rep *s, bool raise)
{
    struct qc_check *c = s->c;
    uint64_t rbb = c->disk.rb_bits;
    uint8_t *blk = malloc(c->cs);
    size_t i = 0;
    int r = 0;

    if (!blk)
        return QC_E_NOMEM;
    while (i < s->nchg && r == 0) {
        uint64_t idx = s->chg[i].k >> rbb, off, lo = UINT64_MAX, hi = 0, n = 0;
        size_t j = i;
        if (qc_refcount_disk_block_state(&c->disk, idx, &off) != QC_RB_PRESENT ||
            qc_plan_read(&s->rp->plan, c->f, off, blk, c->cs) < 0) {
            r = -EIO;
            break;
        }
        for (; j < s->nchg && (s->chg[j].k >> rbb) == idx; j++) {
            const struct rc_change *x = &s->chg[j];
            uint64_t b, w;
            if ((x->to > x->from) != raise)
                continue;
            qc_refblock_set(blk, c->order, x->k - (idx << rbb), x->to);
            refblock_bytes(c->order, x->k - (idx << rbb), &b, &w);
            if (b < lo)
                lo = b;
            if (b + w > hi)
                hi = b + w;
            n++;
        }
        if (n)
            r = qc_plan_write(&s->rp->plan, off + lo, blk + lo, (size_t)(hi - lo),
                              QC_EV_REFBLOCK_UPDATE, "refcount block %" PRIu64 ": %s %" PRIu64
                              " refcount%s (clusters %" PRIu64 "..%" PRIu64 ")", idx,
                              raise ? "raise" : "lower", n, n == 1 ? "" : "s", s->chg[i].k,
                              s->chg[j - 1].k);
        i = j;
    }
    free(blk);
    return r;
}

static int plan_snapshot_table(struct rep *s);
static void snapshot_header(const struct rep *s, uint8_t *out);

/* The new refcount block IDX, made from the counts after the rebuild (the
 * check's IMRT, which lives as long as the plan). */
static int fill_refblock(void *ctx, uint64_t idx, uint8_t *blk, size_t len)
{
    struct qc_check *c = ctx;
    const struct qc_imrt *t = &c->imrt;
    uint64_t rbb = c->disk.rb_bits;

    memset(blk, 0, len);
    for (uint64_t j = 0; j < (1ull << rbb); j++) {
        uint64_t k = (idx << rbb) + j, v;
        if (k >= t->size)
            break;
        if (qc_imrt_chunk_empty(t, k >> QC_IMRT_CHUNK_BITS)) {
            j = (((k >> QC_IMRT_CHUNK_BITS) + 1) << QC_IMRT_CHUNK_BITS) - (idx << rbb) - 1;
            continue;
        }
        if ((v = qc_imrt_get(t, k)))
            qc_refblock_set(blk, c->order, j, v);
    }
    return 0;
}

static int plan_rebuild_writes(struct rep *s)
{
    struct qc_check *c = s->c;
    uint64_t rbb = c->disk.rb_bits, nblk = 0;
    uint8_t *rt;
    uint8_t hdr[24];
    int r = 0;

    for (uint64_t idx = 0; idx < s->new_rt_n && r == 0; idx++) {
        uint64_t off = s->new_rt[idx];
        if (!off)
            continue;
        nblk++;
        r = qc_plan_write_fill(&s->rp->plan, off, (size_t)c->cs, fill_refblock, c, idx,
                               QC_EV_REFBLOCK_ALLOC_WRITE_BLOCKS, "new refcount block %" PRIu64
                               " (clusters %" PRIu64 "..%" PRIu64 ")", idx, idx << rbb,
                               ((idx + 1) << rbb) - 1);
    }
    if (r < 0)
        return r;
    s->rp->new_refblocks = nblk;
    rt = calloc(1, (size_t)(s->rt_clusters << c->cb));
    if (!rt)
        return QC_E_NOMEM;
    for (uint64_t i = 0; i < s->new_rt_n; i++)
        qc_put_be64(rt + 8 * i, s->new_rt[i]);
    r = qc_plan_write(&s->rp->plan, s->rt_first << c->cb, rt, (size_t)(s->rt_clusters << c->cb),
                      QC_EV_REFBLOCK_ALLOC_WRITE_TABLE, "new refcount table (%" PRIu64
                      " cluster%s)", s->rt_clusters, s->rt_clusters == 1 ? "" : "s");
    free(rt);
    if (r < 0 || (r = plan_snapshot_table(s)) < 0)
        return r;
    if ((r = qc_plan_flush(&s->rp->plan)) < 0)
        return r;
    qc_put_be64(hdr, s->rt_first << c->cb);
    qc_put_be32(hdr + 8, (uint32_t)s->rt_clusters);
    s->rp->new_reftable_offset = s->rt_first << c->cb;
    /* the snapshot fields follow: both switch in one write */
    snapshot_header(s, hdr + 12);
    r = qc_plan_write(&s->rp->plan, 48, hdr, s->snap_header ? 24 : 12,
                      QC_EV_REFBLOCK_ALLOC_SWITCH_TABLE, "header: switch to the new refcount "
                      "table%s", s->snap_header ? " and the repaired snapshot table" : "");
    if (r == 0)
        r = qc_plan_flush(&s->rp->plan);
    return r;
}

/* --- OFLAG_COPIED (check_oflag_copied with fixing) -------------------------------- */

static int oflag_pass(struct rep *s, bool repair, int64_t *corr, int64_t *fixed)
{
    struct qc_check *c = s->c;
    uint64_t *l1 = NULL;
    uint64_t l1_lo = UINT64_MAX, l1_hi = 0;
    uint8_t *t = malloc(c->cs);
    int r = 0;

    if (!t)
        return QC_E_NOMEM;
    if (c->l1_size) {
        l1 = malloc((size_t)c->l1_size * sizeof *l1);
        if (!l1) {
            free(t);
            return QC_E_NOMEM;
        }
        for (uint64_t i = 0; i < c->l1_size; i++)
            l1[i] = i < c->l1_stored ? c->l1[i] : 0;
    }
    for (uint64_t i = 0; i < c->l1_size && r == 0; i++) {
        uint64_t e = l1[i], l2 = e & QC_L1E_OFFSET_MASK, v;
        uint64_t lo = UINT64_MAX, hi = 0;

        if (!l2)
            continue;
        if (final_refcount(s, l2 >> c->cb, &v) < 0)
            continue;
        if ((v == 1) != !!(e & QC_OFLAG_COPIED)) {
            emit(s, 0, "%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%" PRIx64
                 " refcount=%" PRIu64, repair ? "Repairing" : "ERROR", (int)i, e, v);
            (*corr)++;
            if (repair) {
                l1[i] = e ^ QC_OFLAG_COPIED;
                if (i < l1_lo)
                    l1_lo = i;
                if (i + 1 > l1_hi)
                    l1_hi = i + 1;
                (*corr)--;
                (*fixed)++;
            }
        }
        /* as the plan leaves it so far: the walk's entry fixes, and this
         * pass's own changes when two L1 entries share the table */
        if (qc_plan_read(&s->rp->plan, c->f, l2, t, c->cs) < 0) {
            emit(s, 0, "ERROR: Could not read L2 table: %s", strerror(EIO));
            s->rp->check_errors++;
            r = -EIO;
            break;
        }
        for (uint64_t j = 0; j < c->l2_entries; j++) {
            uint64_t f = qc_be64(t + j * c->l2_esize), d = f & QC_L2E_OFFSET_MASK;
            bool normal;
            if (f & QC_OFLAG_COMPRESSED)
                continue;
            if ((f & QC_OFLAG_ZERO) && !c->extl2)
                normal = d != 0;
            else
                normal = d != 0 || (c->data_file && (f & QC_OFLAG_COPIED));
            if (!normal)
                continue;
            if (c->data_file)
                v = 1;
            else if (final_refcount(s, d >> c->cb, &v) < 0)
                continue;
            if ((v == 1) != !!(f & QC_OFLAG_COPIED)) {
                emit(s, 0, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64,
                     repair ? "Repairing" : "ERROR", f, v);
                (*corr)++;
                if (repair) {
                    (*corr)--;
                    (*fixed)++;
                    qc_put_be64(t + j * c->l2_esize, f ^ QC_OFLAG_COPIED);
                    if (j * c->l2_esize < lo)
                        lo = j * c->l2_esize;
                    if (j * c->l2_esize + 8 > hi)
                        hi = j * c->l2_esize + 8;
                }
            }
        }
        if (hi) {
            const char *area = overlap_area(s, l2, c->cs);
            if (area) {
                emit(s, 0, "qcow2: Image is corrupt: Preventing invalid write on metadata "
                     "(overlaps with %s); further non-fatal corruption events will be "
                     "suppressed", area);
                emit(s, 0, "ERROR: Could not write L2 table; metadata overlap check failed: %s",
                     strerror(EIO));
                s->rp->check_errors++;
                s->rp->status = QC_REPAIR_FAILED;
                s->rp->error = -EIO;
                break;
            }
            r = qc_plan_write(&s->rp->plan, l2 + lo, t + lo, (size_t)(hi - lo), QC_EV_L2_UPDATE,
                              "L2 table at 0x%" PRIx64 " (L1 index %" PRIu64 "): OFLAG_COPIED",
                              l2, i);
        }
    }
    if (r == 0 && l1_hi) {
        /* the entries between the changed ones as the plan leaves them */
        size_t len = (size_t)(l1_hi - l1_lo) * 8;
        uint8_t *buf = malloc(len);
        if (!buf) {
            r = QC_E_NOMEM;
        } else if (qc_plan_read(&s->rp->plan, c->f, c->l1_offset + 8 * l1_lo, buf, len) < 0) {
            free(buf);
            r = -EIO;
        } else {
            for (uint64_t i = l1_lo; i < l1_hi; i++)
                if (l1[i] != (i < c->l1_stored ? c->l1[i] : 0))
                    qc_put_be64(buf + 8 * (i - l1_lo), l1[i]);
            r = qc_plan_write(&s->rp->plan, c->l1_offset + 8 * l1_lo, buf,
                              (size_t)(l1_hi - l1_lo) * 8, QC_EV_L1_UPDATE,
                              "active L1 table: OFLAG_COPIED");
            free(buf);
        }
    }
    free(l1);
    free(t);
    return r;
}

/* --- header bits ------------------------------------------------------------------ */

static int plan_header_bits(struct rep *s, bool clean)
{
    const struct qc_header *h = &s->c->img.hdr;
    uint64_t inc = h->incompatible_features, ac = h->autoclear_features;
    uint64_t ninc = inc, nac = ac & QC_AUTOCLEAR_KNOWN;
    uint8_t buf[24];
    int r;

    if (h->version < 3)
        return 0;
    if (clean)
        ninc &= ~(QC_INCOMPAT_DIRTY | QC_INCOMPAT_CORRUPT);
    s->rp->clear_incompat = inc & ~ninc;
    s->rp->clear_autoclear = ac & ~nac;
    if (ninc == inc && nac == ac)
        return 0;
    qc_put_be64(buf, ninc);
    qc_put_be64(buf + 8, h->compatible_features);
    qc_put_be64(buf + 16, nac);
    if (nac == ac)
        r = qc_plan_write(&s->rp->plan, 72, buf, 8, QC_EV_HEADER_UPDATE,
                          "header: clear incompatible bits 0x%" PRIx64, inc & ~ninc);
    else if (ninc == inc)
        r = qc_plan_write(&s->rp->plan, 88, buf + 16, 8, QC_EV_HEADER_UPDATE,
                          "header: clear unknown autoclear bits 0x%" PRIx64, ac & ~nac);
    else
        r = qc_plan_write(&s->rp->plan, 72, buf, 24, QC_EV_HEADER_UPDATE,
                          "header: clear incompatible bits 0x%" PRIx64
                          " and unknown autoclear bits 0x%" PRIx64, inc & ~ninc, ac & ~nac);
    if (r == 0)
        r = qc_plan_flush(&s->rp->plan);
    return r;
}

/* --- refcount blocks outside the image (-r all grows the file) ------------------ */

/* Largest file the repair grows to for such a block. */
#define GROW_LIMIT (1ull << 44)

/* QEMU grows the file to hold the block and counts it.  Returns 0, a
 * positive errno when QEMU's growth would fail, or <0 without memory. */
static int grow_for_refblock(struct rep *s, uint64_t off)
{
    struct qc_check *c = s->c;
    uint64_t end, nb2, k = off >> c->cb;

    if (off > (uint64_t)INT64_MAX - c->cs)
        return EINVAL;
    end = off + c->cs;
    if (end > GROW_LIMIT)
        return EFBIG;
    if (end > s->grow_to)
        s->grow_to = end;
    nb2 = (s->grow_to + c->cs - 1) >> c->cb;
    if (nb2 > c->imrt.size && qc_imrt_grow(&c->imrt, nb2) < 0)
        return QC_E_NOMEM;
    if (qc_imrt_inc(&c->imrt, k) < 0)
        return QC_E_NOMEM;
    if (grow_array((void **)&s->grown_blocks, &s->grown_cap, s->ngrown, sizeof *s->grown_blocks) < 0)
        return QC_E_NOMEM;
    s->grown_blocks[s->ngrown++] = k;
    s->adjusted = true;
    return 0;
}

/* --- a bitmaps extension without its autoclear bit ------------------------------ */

/* A program without bitmap support changed the image: QEMU ignores the
 * extension (its clusters count as leaks) and drops it on a read-write
 * open.  The header loses it first, so that freeing the clusters never
 * leaves an extension naming freed clusters. */
static int plan_drop_bitmaps(struct rep *s)
{
    struct qc_check *c = s->c;
    struct qc_edit e;
    bool found = false;
    size_t n;
    int r;

    for (size_t i = 0; i < c->img.problems.n; i++)
        if (c->img.problems.v[i].kind == QC_P_BITMAPS_WITHOUT_AUTOCLEAR)
            found = true;
    if (!found)
        return 0;
    if ((r = qc_edit_init(&e, &c->img)) < 0) {
        qc_edit_free(&e);
        return r == QC_E_NOMEM ? r : 0;
    }
    n = qc_edit_del_ext(&e, QC_EXT_BITMAPS);
    if (n && qc_edit_plan(&e) == 0 && e.end > e.first) {
        r = qc_plan_write(&s->rp->plan, e.first, e.after + e.first, (size_t)(e.end - e.first),
                          QC_EV_HEADER_UPDATE, "header: drop the bitmaps extension (autoclear "
                          "bit 0 clear: the bitmaps are stale)");
        if (r == 0)
            r = qc_plan_flush(&s->rp->plan);
        if (r == 0)
            r = note(s, "bitmaps extension dropped: autoclear bit 0 (bitmaps) is clear, so a "
                     "program without bitmap support changed the image and its bitmaps are "
                     "stale; QEMU drops the extension when it opens the image for writing, and "
                     "the bitmaps' clusters are freed as leaks");
    } else {
        r = 0;
    }
    qc_edit_free(&e);
    return r;
}

/* --- the whole repair run -------------------------------------------------------- */

static bool refblock_kind(enum qc_problem_kind k)
{
    return k == QC_P_REFTABLE_RESERVED || k == QC_P_REFBLOCK_UNALIGNED || k == QC_P_OVERLAP ||
           k == QC_P_REFBLOCK_OUTSIDE;
}

/* A line of the first check with its first word replaced. */
static void replay_as(struct rep *s, const struct cev *e, const char *word)
{
    const char *line = cev_line(s, e), *sp = strchr(line, ' ');
    emit(s, e->flags & ~PRINT, "%s%s", word, sp ? sp : "");
}

static int add_chg(struct rep *s, uint64_t k, uint64_t from, uint64_t to)
{
    if (grow_array((void **)&s->chg, &s->chg_cap, s->nchg, sizeof *s->chg) < 0)
        return QC_E_NOMEM;
    s->chg[s->nchg++] = (struct rc_change){ k, from, to };
    return 0;
}

/* --- the snapshot table (check_fix_snapshot_table with -r all) ------------------ */

static int note(struct rep *s, const char *fmt, ...)
{
    struct qc_repair *rp = s->rp;
    char **v, *line = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return QC_E_NOMEM;
    v = realloc(rp->notes, (rp->nnotes + 1) * sizeof *v);
    if (!v) {
        free(line);
        return QC_E_NOMEM;
    }
    rp->notes = v;
    v[rp->nnotes++] = line;
    return 0;
}

/* Says which entries change and why; marks them damaged. */
static int snapshot_notes(struct rep *s)
{
    const struct qc_check *c = s->c;
    const struct qc_snapshot_table *t = &c->snaps;
    struct qc_repair *rp = s->rp;
    int r = 0;

    if (t->n && !(rp->snapshot_damaged = calloc(t->n, sizeof *rp->snapshot_damaged)))
        return QC_E_NOMEM;
    rp->nsnapshot_damaged = t->n;
    if (c->snaps_overhang)
        r = note(s, "snapshot table: %u entries past the limit of 65536 snapshots discarded "
                 "(QEMU cannot hold them)", c->snaps_overhang);
    for (size_t i = 0; i < t->ndrops && r == 0; i++) {
        uint32_t k = t->drops[i].index;
        if (k < t->n) {
            rp->snapshot_damaged[k] = true;
            r = note(s, "snapshot table entry %u (ID '%s', name '%s'): damaged: %u bytes of extra "
                     "data (at most 1024 allowed); cut to its first 1024 bytes", k, t->v[k].id_str,
                     t->v[k].name, t->drops[i].size);
        } else {
            r = note(s, "snapshot table entry %u: damaged: %u bytes of extra data (at most 1024 "
                     "allowed)", k, t->drops[i].size);
        }
    }
    if (r == 0 && t->discarded)
        r = note(s, "snapshot table entries %zu..%zu discarded: entry %zu ends past the 64 MiB a "
                 "snapshot table may take (its sizes are damaged), so it and the entries after it "
                 "cannot be located", t->n, t->n + t->discarded - 1, t->n);
    if (c->img.hdr.version >= 3)
        for (size_t i = 0; i < t->n && r == 0; i++)
            if (t->v[i].extra_data_size < 16) {
                rp->snapshot_damaged[i] = true;
                r = note(s, "snapshot table entry %zu (ID '%s', name '%s'): damaged: only %u bytes "
                         "of extra data (16 required); rewritten with the known fields filled in",
                         i, t->v[i].id_str, t->v[i].name, t->v[i].extra_data_size);
            }
    return r;
}

static int set_chg(struct rep *s, uint64_t k, uint64_t disk, uint64_t to)
{
    for (size_t i = 0; i < s->nchg; i++)
        if (s->chg[i].k == k) {
            s->chg[i].to = to;
            return 0;
        }
    return add_chg(s, k, disk, to);
}

/* The serialized table, sized in clusters. */
static int snapshot_bytes(struct rep *s)
{
    struct qc_check *c = s->c;
    int r = qc_snapshot_table_serialize_qemu(&c->snaps, c->disk_len, &s->snap_buf, &s->snap_len);

    if (r == -EFBIG) {
        emit(s, 0, "ERROR failed to update snapshot table: %s", strerror(EFBIG));
        s->rp->check_errors++;
        s->rp->status = QC_REPAIR_FAILED;
        s->rp->error = -EFBIG;
        return 1;
    }
    if (r < 0)
        return QC_E_NOMEM;
    s->snap_clusters = (s->snap_len + s->c->cs - 1) >> s->c->cb;
    return 0;
}

/* In-place repair: the first run of clusters nothing references, that no
 * old structure names, whose refcount is 0 once the plan is done and whose
 * refcount block exists. */
static int snapshot_place_inplace(struct rep *s)
{
    struct qc_check *c = s->c;
    uint64_t rbb = c->disk.rb_bits, limit = (uint64_t)c->disk.nstored << rbb;
    uint64_t run = 0, start = 0, off;

    for (uint64_t k = 0; k < limit && run < s->snap_clusters;) {
        uint64_t e = excluded_until(s, k), v;
        if (e != k) {
            run = 0;
            k = e;
            continue;
        }
        if (qc_refcount_disk_block_state(&c->disk, k >> rbb, &off) != QC_RB_PRESENT) {
            run = 0;
            k = ((k >> rbb) + 1) << rbb;
            continue;
        }
        if ((k < c->imrt.size && qc_imrt_get(&c->imrt, k)) || final_refcount(s, k, &v) < 0 || v) {
            run = 0;
            k++;
            continue;
        }
        if (!run)
            start = k;
        run++;
        k++;
    }
    if (run < s->snap_clusters) {
        emit(s, 0, "ERROR failed to update snapshot table: %s", strerror(ENOSPC));
        s->rp->check_errors++;
        s->rp->status = QC_REPAIR_FAILED;
        s->rp->error = -ENOSPC;
        return 1;
    }
    s->snap_first = start;
    for (uint64_t i = 0; i < s->snap_clusters; i++) {
        uint64_t disk = 0;
        if (qc_refcount_disk_get(&c->disk, start + i, &disk) < 0)
            disk = 0;
        if (set_chg(s, start + i, disk, 1) < 0)
            return QC_E_NOMEM;
    }
    return 0;
}

/* QEMU frees the old table after the switch; a cluster of it already at 0
 * makes the whole free fail (and nothing is freed). */
static int snapshot_free_old(struct rep *s, bool rebuilt)
{
    struct qc_check *c = s->c;
    uint64_t off = c->snaps.offset, size = c->snaps.size, a, b, v;

    if (!size)
        return 0;
    a = off >> c->cb;
    b = (off + size - 1) >> c->cb;
    for (uint64_t k = a; k <= b; k++)
        if (final_refcount(s, k, &v) < 0 || v == 0) {
            s->snap_free_failed = true;
            return 0;
        }
    for (uint64_t k = a; k <= b; k++) {
        if (rebuilt) {
            imrt_dec(s->final, k);
        } else {
            uint64_t disk = 0;
            final_refcount(s, k, &v);
            if (qc_refcount_disk_get(&c->disk, k, &disk) < 0)
                disk = 0;
            if (set_chg(s, k, disk, v - 1) < 0)
                return QC_E_NOMEM;
        }
    }
    if (!rebuilt && s->nchg)
        qsort(s->chg, s->nchg, sizeof *s->chg, chg_cmp);
    return 0;
}

static int plan_snapshot_table(struct rep *s)
{
    if (!s->snap_rewrite || !s->snap_len)
        return 0;
    return qc_plan_write(&s->rp->plan, s->snap_first << s->c->cb, s->snap_buf, (size_t)s->snap_len,
                         QC_EV_HEADER_UPDATE, "new snapshot table (%zu entr%s, %" PRIu64
                         " bytes)", s->c->snaps.n, s->c->snaps.n == 1 ? "y" : "ies", s->snap_len);
}

/* Header bytes 60..71: snapshot count and table offset. */
static void snapshot_header(const struct rep *s, uint8_t *out)
{
    const struct qc_check *c = s->c;
    uint64_t off = c->img.hdr.snapshots_offset;

    if (s->snap_rewrite)
        off = s->snap_len ? s->snap_first << c->cb : 0;
    qc_put_be32(out, (uint32_t)c->snaps.n);
    qc_put_be64(out + 4, off);
}

static int run(struct rep *s)
{
    struct qc_repair *rp = s->rp;
    struct qc_check *c = s->c;
    struct cmp m = { 0 };
    int64_t calc_corr = 0, calc_err = 0, snap_corr = 0, snap_fixed = 0, snap_table = 0;
    int64_t cmp_corr = 0, cmp_leaks = 0, cmp_err = 0, refblock_corr = 0;
    int64_t corr = 0, leaks = 0, errs = 0, cfixed = 0, lfixed = 0;
    bool refblock_rebuild = false, outside_failed = false, repair_oflag;
    int r;

    s->nb0 = c->imrt.size;
    if (s->all && (r = prealloc_fixes(s)) < 0)
        return r;
    if ((r = plan_drop_bitmaps(s)) < 0)
        return r;

    /* snapshot table read and reference counting: QEMU's lines, with the
     * fixes -r all makes during the walk */
    for (size_t i = 0; i < s->cap.n; i++) {
        const struct cev *e = &s->cap.v[i];
        if (e->phase != PH_CALC || e->drop)
            continue;
        if (i == s->fail_at) {
            replay_as(s, e, "Repairing");
            emit(s, 0, "qcow2: Image is corrupt: Preventing invalid write on metadata (overlaps "
                 "with %s); further non-fatal corruption events will be suppressed", s->fail_area);
            emit(s, 0, "ERROR: Overlap check failed");
            rp->status = QC_REPAIR_FAILED;
            rp->error = -EIO;
            return 0;
        }
        switch (e->kind) {
        case QC_P_SNAPSHOT_INCOMPLETE:
        case QC_P_SNAPSHOT_EXTRA_TOO_LARGE:
            snap_corr++;
            snap_table++;
            replay_walk(s, e);
            continue;
        case QC_P_SNAPSHOT_OVERHANG:
        case QC_P_SNAPSHOT_TABLE_TOO_BIG:
            /* fixed at once: the header's count goes down */
            snap_corr += e->kind == QC_P_SNAPSHOT_OVERHANG ? c->snaps_overhang : c->snaps.discarded;
            snap_fixed += e->kind == QC_P_SNAPSHOT_OVERHANG ? c->snaps_overhang : c->snaps.discarded;
            s->snap_header = true;
            replay_walk(s, e);
            continue;
        case QC_P_L2_UNALIGNED:
            if (s->all && (e->flags & QC_EVL_PREALLOC)) {
                replay_as(s, e, "Repairing");
                cfixed++;
                continue;
            }
            break;
        case QC_P_REFBLOCK_OUTSIDE:
            if (s->all) {
                replay_as(s, e, "Repairing");
                if ((r = grow_for_refblock(s, e->offset)) < 0)
                    return r;
                if (r == 0) {
                    cfixed++;
                    continue;
                }
                /* the growth fails: the corruption stays, a rebuild follows */
                emit(s, 0, "ERROR could not resize image: %s", strerror(r));
                outside_failed = true;
                calc_corr++;
                refblock_corr++;
                continue;
            }
            break;
        default:
            break;
        }
        if (refblock_kind(e->kind) && e->kind != QC_P_REFBLOCK_OUTSIDE)
            refblock_rebuild = true;
        if (e->sev == QC_SEV_CORRUPTION) {
            calc_corr++;
            if (refblock_kind(e->kind) ||
                (e->kind == QC_P_BEYOND_EOF && e->offset == c->disk.table_offset))
                refblock_corr++;
        } else if (e->sev == QC_SEV_ERROR) {
            calc_err++;
        }
        replay_walk(s, e);
    }

    if (s->grow_to && ((r = qc_plan_grow(&rp->plan, s->grow_to, "refcount blocks outside the "
                                         "image: the file grows to hold them")) < 0 ||
                       (r = qc_plan_flush(&rp->plan)) < 0))
        return r;

    if (s->all && snap_table) {
        s->snap_rewrite = s->snap_header = true;
        snap_fixed += snap_table;
        rp->snapshot_table_rewritten = true;
        if ((r = snapshot_bytes(s)) != 0)
            return r < 0 ? r : 0;
    }
    rp->snapshot_header_changed = s->snap_header;
    rp->snapshots_after = (uint32_t)c->snaps.n;
    if (s->snap_header && (r = snapshot_notes(s)) < 0)
        return r;

    /* the first comparison: its lines were streamed from the check unless
     * the walk's fixes changed the counts (or streaming stopped in it) */
    m.mode = s->cap.stopped_in == PH_CALC ? CMP_PRINT : CMP_COUNT;
    if ((r = compare(s, &m)) < 0)
        goto out;
    cmp_err = m.unreadable;
    cmp_corr = m.corr;
    cmp_leaks = m.leaks;

    rp->rebuild = refblock_rebuild || m.zero_mismatch || outside_failed;
    if (rp->rebuild) {
        int64_t old_corr = calc_corr + cmp_corr, old_leaks = cmp_leaks;

        if (!s->all) {
            emit(s, 0, "ERROR need to rebuild refcount structures");
            rp->check_errors = calc_err + cmp_err + 1;
            rp->status = QC_REPAIR_NEED_REBUILD;
            r = 0;
            goto out;
        }
        emit(s, 0, "Rebuilding refcount structure");
        if ((r = collect_exclusions(s)) < 0)
            goto out;
        if (s->snap_rewrite && s->snap_clusters) {
            /* the new snapshot table takes its clusters before the new refcount
             * blocks are laid out, so that they count it */
            uint64_t ff = 0;
            if ((r = alloc_clusters(s, s->snap_clusters, &ff, &s->snap_first)) < 0)
                goto out;
        }
        if ((r = rebuild(s)) < 0 || (r = final_counts(s)) < 0)
            goto out;
        /* QEMU counts again on the new structure: the walk's lines again */
        for (size_t i = 0; i < s->cap.n; i++) {
            const struct cev *e = &s->cap.v[i];
            if (e->phase != PH_CALC || e->drop || refblock_kind(e->kind) ||
                e->kind == QC_P_SNAPSHOT_INCOMPLETE || e->kind == QC_P_SNAPSHOT_TABLE_INVALID ||
                e->kind == QC_P_SNAPSHOT_OVERHANG || e->kind == QC_P_SNAPSHOT_EXTRA_TOO_LARGE ||
                e->kind == QC_P_SNAPSHOT_TABLE_TOO_BIG ||
                (e->kind == QC_P_BEYOND_EOF && e->offset == c->disk.table_offset) ||
                e->recounted ||
                (e->kind == QC_P_L2_UNALIGNED && find_efix(s, e->offset)) ||
                (e->kind == QC_P_QEMU_REPORT && (e->flags & QC_EVL_FORCE_HINT)))
                continue;
            replay(s, e, cev_line(s, e));
        }
        /* the old structures, now unreferenced, are freed: per cluster its
         * count before the first decrement and after the last */
        if (s->nfreed)
            qsort(s->freed, s->nfreed, sizeof *s->freed, chg_cmp);
        for (size_t i = 0; i < s->nfreed;) {
            uint64_t k = s->freed[i].k, a = s->freed[i].from, b = qc_imrt_get(s->final, k);
            for (; i < s->nfreed && s->freed[i].k == k; i++)
                if (s->freed[i].from > a)
                    a = s->freed[i].from;
            if (a != b)
                emit(s, 0, "Repairing cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64,
                     (int64_t)k, a, b);
        }
        corr = calc_corr - refblock_corr - s->recounted;
        leaks = 0;
        errs = calc_err + cmp_err;
        cfixed += old_corr - corr;
        lfixed += old_leaks;
        if (s->snap_rewrite && (r = snapshot_free_old(s, true)) < 0)
            goto out;
        if ((r = plan_rebuild_writes(s)) < 0)
            goto out;
    } else {
        corr = calc_corr;
        errs = calc_err;
        if (calc_corr + cmp_corr + cmp_leaks > 0) {
            struct cmp fx = { CMP_FIX, false, 0, 0, 0, &corr, &leaks, &errs, &cfixed, &lfixed };
            if ((r = compare(s, &fx)) < 0)
                goto out;
            if (s->nchg)
                qsort(s->chg, s->nchg, sizeof *s->chg, chg_cmp);
        } else {
            corr += cmp_corr;
            leaks += cmp_leaks;
            errs += cmp_err;
        }
        if (s->snap_rewrite && !rp->rebuild) {
            if ((r = collect_exclusions(s)) < 0)
                goto out;
            if (s->snap_clusters && (r = snapshot_place_inplace(s)) != 0) {
                r = r < 0 ? r : 0;
                goto out;
            }
            if (s->nchg)
                qsort(s->chg, s->nchg, sizeof *s->chg, chg_cmp);
            if ((r = snapshot_free_old(s, false)) < 0)
                goto out;
        }
        /* a new snapshot table and raised refcounts first; the header switch;
         * lowered ones after (crash: leaks at worst) */
        if ((r = plan_snapshot_table(s)) < 0 || (r = plan_inplace(s, true)) < 0 ||
            (r = qc_plan_flush(&rp->plan)) < 0)
            goto out;
        if (s->snap_header) {
            uint8_t hdr[12];
            snapshot_header(s, hdr);
            if ((r = qc_plan_write(&rp->plan, 60, hdr, 12, QC_EV_HEADER_UPDATE, "header: %s",
                                   s->snap_rewrite ? "switch to the repaired snapshot table"
                                                   : "snapshot count")) < 0 ||
                (r = qc_plan_flush(&rp->plan)) < 0)
                goto out;
        }
        if ((r = plan_inplace(s, false)) < 0 || (r = qc_plan_flush(&rp->plan)) < 0)
            goto out;
    }

    /* entries rewritten during the walk, then OFLAG_COPIED */
    for (size_t i = 0; i < s->nefix; i++)
        if ((r = qc_plan_write(&rp->plan, s->efix[i].at, s->efix[i].bytes, c->l2_esize,
                               QC_EV_L2_UPDATE, "L2 entry at 0x%" PRIx64 ": misaligned "
                               "preallocated zero cluster made a plain zero cluster",
                               s->efix[i].at)) < 0)
            goto out;
    repair_oflag = s->all || (corr == 0 && leaks == 0 && errs == 0);
    if ((r = oflag_pass(s, repair_oflag, &corr, &cfixed)) < 0 || rp->status != QC_REPAIR_PLANNED)
        goto out;
    if (s->snap_free_failed)
        emit(s, 0, "qcow2_free_clusters failed: %s", strerror(EINVAL));
    if ((r = qc_plan_flush(&rp->plan)) < 0)
        goto out;

    rp->corruptions = corr + snap_corr - snap_fixed;
    rp->leaks = leaks;
    rp->check_errors = errs;
    rp->corruptions_fixed = cfixed + snap_fixed;
    rp->leaks_fixed = lfixed;
    /* what stays broken: a rebuild also mends what could not be read */
    rp->remaining = rp->corruptions + (rp->rebuild ? 0 : errs);
    r = plan_header_bits(s, rp->remaining == 0);
out:
    return r;
}

/* Before anything is planned: do the leaks look like lost metadata?  1
 * when the repair stops there (QC_REPAIR_LOST_METADATA). */
static int guard_lost_metadata(struct rep *s)
{
    struct qc_repair *rp = s->rp;
    int r;

    if (rp->check.leaks == 0 && rp->check.corruptions == 0)
        return 0;    /* nothing to fix, nothing to lose */
    /* snapshots the repair drops or rewrites (QEMU's fixes of the table)
     * leave their clusters unreferenced: those leaks are the fix's own */
    for (size_t i = 0; i < s->cap.n; i++) {
        enum qc_problem_kind k = s->cap.v[i].kind;
        if (k == QC_P_SNAPSHOT_INCOMPLETE || k == QC_P_SNAPSHOT_EXTRA_TOO_LARGE ||
            k == QC_P_SNAPSHOT_OVERHANG || k == QC_P_SNAPSHOT_TABLE_TOO_BIG)
            return 0;
    }
    if ((r = qc_lostmeta_assess(s->c, &rp->lostmeta)) < 0)
        return r;
    rp->lostmeta_assessed = true;
    if (!rp->lostmeta.lost)
        return 0;
    if (s->o->lost_metadata)
        s->o->lost_metadata(s->o->opaque, &rp->lostmeta);
    if (s->o->repair_lost_metadata)
        return 0;
    rp->status = QC_REPAIR_LOST_METADATA;
    return 1;
}

int qc_repair_plan(const char *path, const struct qc_repair_opts *opts, struct qc_repair *rp)
{
    struct qc_check_opts co = { 0 };
    struct rep s;
    int r;

    memset(rp, 0, sizeof *rp);
    qc_plan_init(&rp->plan);
    memset(&s, 0, sizeof s);
    s.rp = rp;
    s.o = opts;
    s.all = opts->mode == QC_REPAIR_ALL;
    s.fail_at = SIZE_MAX;
    s.cap.o = opts;
    s.cap.all = s.all;
    s.cap.stream = true;
    s.cap.stopped_in = PH_OFLAG;
    co.sink = capture_sink;
    co.opaque = &s.cap;
    co.problem_limit = opts->problem_limit;
    co.repair_snapshots = s.all;
    r = qc_check_image(path, &co, &rp->check, &rp->ctx);
    if (r == 0 && s.cap.oom)
        r = QC_E_NOMEM;
    if (r < 0)
        goto out;
    s.c = rp->ctx;
    if (rp->check.status != QC_CHECK_DONE) {
        rp->status = QC_REPAIR_CHECK_FAILED;
        if (s.cap.stream || s.cap.phase == PH_CALC || !opts->sink) {
            /* everything it printed is kept or was streamed */
            for (size_t i = 0; i < s.cap.n; i++)
                replay_walk(&s, &s.cap.v[i]);
        } else {
            /* it printed lines that were not kept: check again for them */
            struct resume rs = { opts, s.cap.nstreamed, 0 };
            struct qc_check_result r2;
            co.sink = resume_sink;
            co.opaque = &rs;
            r = qc_check_image(path, &co, &r2, NULL);
            qc_check_result_free(&r2);
        }
        goto out;
    }
    if (opts->assess_lost_metadata && (r = guard_lost_metadata(&s)) != 0) {
        r = r < 0 ? r : 0;
        goto out;
    }
    r = run(&s);
out:
    free(s.cap.v);
    free(s.cap.text);
    free(s.cap.refblock_line);
    free(s.excl);
    free(s.efix);
    free(s.chg);
    free(s.new_rt);
    free(s.abandoned);
    free(s.grown_blocks);
    free(s.snap_buf);
    free(s.freed);
    return r;
}

void qc_repair_release(struct qc_repair *rp)
{
    qc_plan_free(&rp->plan);
    qc_check_free(rp->ctx);
    rp->ctx = NULL;
}

void qc_repair_free(struct qc_repair *rp)
{
    qc_plan_free(&rp->plan);
    for (size_t i = 0; i < rp->nnotes; i++)
        free(rp->notes[i]);
    free(rp->notes);
    rp->notes = NULL;
    rp->nnotes = 0;
    free(rp->snapshot_damaged);
    rp->snapshot_damaged = NULL;
    qc_check_free(rp->ctx);
    rp->ctx = NULL;
    qc_check_result_free(&rp->check);
    qc_lostmeta_free(&rp->lostmeta);
}
