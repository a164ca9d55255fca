/*
 * The check itself: QEMU 7.2's qcow2_co_check without repair, step by step
 * (snapshot table, reference counting walk, comparison with the refcount
 * blocks, OFLAG_COPIED), with the same messages in the same order.
 *
 * Unlike QEMU it reads every table once: the walk records per host cluster
 * whether an active table entry with or without OFLAG_COPIED points there,
 * the comparison turns that into "suspect" marks, and only if some cluster
 * is suspect are the active tables read again for QEMU's OFLAG_COPIED pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc_util.h"
#include "qc_check_inflate.h"
#include "qc_check_int.h"
#include "qc_compress.h"
#include "qc_endian.h"
#include "qc_header.h"
#include "qc_l2.h"
#include "qc_prefetch.h"

#define TBUF_MIN    (2u << 20)    /* batched table reads */
#define PREFETCH_BATCH (1u << 20) /* read-ahead batches */
#define PREFETCH_THREAD_MIN 64    /* tables from which a reader thread pays */
#define L1_WINDOW   65536u        /* entries of a snapshot L1 read at a time */

const char *qc_role_name(enum qc_role r)
{
    switch (r) {
    case QC_ROLE_HEADER: return "header";
    case QC_ROLE_L1: return "active L1 table";
    case QC_ROLE_SNAPSHOT_L1: return "snapshot L1 table";
    case QC_ROLE_L2: return "L2 table";
    case QC_ROLE_DATA: return "data";
    case QC_ROLE_COMPRESSED: return "compressed data";
    case QC_ROLE_SNAPSHOT_TABLE: return "snapshot table";
    case QC_ROLE_REFTABLE: return "refcount table";
    case QC_ROLE_REFBLOCK: return "refcount block";
    case QC_ROLE_CRYPTO: return "encryption header";
    case QC_ROLE_BITMAP_DIR: return "bitmap directory";
    case QC_ROLE_BITMAP_TABLE: return "bitmap table";
    case QC_ROLE_BITMAP_DATA: return "bitmap data";
    }
    return "?";
}

/* --- events ----------------------------------------------------------------- */

static void emit_va(struct qc_check *c, enum qc_problem_kind kind, enum qc_severity sev,
                    unsigned flags, uint64_t offset, uint64_t cluster, uint64_t value,
                    const char *fmt, va_list args)
{
    struct qc_check_result *res = c->res;
    struct qc_check_event ev = { 0 };
    struct qc_problem *p = NULL;
    char buf[512], *line = buf, *heap = NULL;
    va_list ap;
    int n;

    /* hostile images can make millions of lines: no allocation per line */
    va_copy(ap, args);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
    } else if ((size_t)n >= sizeof buf) {
        va_copy(ap, args);
        if (vasprintf(&heap, fmt, ap) < 0)
            heap = NULL;
        va_end(ap);
        line = heap;
    }

    if (kind != QC_P_QEMU_REPORT) {
        if (!(flags & QC_EVL_NOCOUNT)) {
            switch (sev) {
            case QC_SEV_CORRUPTION: res->corruptions++; break;
            case QC_SEV_LEAK: res->leaks++; break;
            case QC_SEV_ERROR: res->check_errors++; break;
            default: break;
            }
        }
        p = qc_problem_add_sev(&res->problems, kind, sev, offset, "%s", line ? line : "");
        if (p) {
            p->cluster = cluster;
            p->value = value;
        }
    }
    if (c->opts.sink) {
        struct qc_problem tmp = { kind, sev, offset, cluster, value, line };
        ev.problem = kind == QC_P_QEMU_REPORT ? NULL : (p ? p : &tmp);
        ev.line = line ? line : "";
        ev.flags = flags & (QC_EVL_PRINTED | QC_EVL_PROGNAME | QC_EVL_NO_NL | QC_EVL_TAGS);
        c->opts.sink(c->opts.opaque, &ev);
    }
    free(heap);
}

void qc_check_emit(struct qc_check *c, enum qc_problem_kind kind, enum qc_severity sev,
                   unsigned flags, uint64_t offset, uint64_t cluster, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_va(c, kind, sev, flags, offset, cluster, 0, fmt, ap);
    va_end(ap);
}

void qc_check_emit_value(struct qc_check *c, enum qc_problem_kind kind, enum qc_severity sev,
                         unsigned flags, uint64_t offset, uint64_t cluster, uint64_t value,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_va(c, kind, sev, flags, offset, cluster, value, fmt, ap);
    va_end(ap);
}

#define PRINT QC_EVL_PRINTED

/* --- counting ------------------------------------------------------------------ */

static int add_range(struct qc_check *c, uint64_t first, uint64_t count, enum qc_role role,
                     uint64_t index)
{
    if (c->nranges == c->ranges_cap) {
        size_t n = c->ranges_cap ? c->ranges_cap * 2 : 64;
        struct qc_meta_range *v = realloc(c->ranges, n * sizeof *v);
        if (!v)
            return QC_E_NOMEM;
        c->ranges = v;
        c->ranges_cap = n;
    }
    c->ranges[c->nranges++] = (struct qc_meta_range){ first, count, role, index };
    return 0;
}

static bool exclusive_role(enum qc_role r)
{
    return r != QC_ROLE_L2 && r != QC_ROLE_DATA && r != QC_ROLE_COMPRESSED &&
           r != QC_ROLE_BITMAP_DATA;
}

/* A reference so far out that QEMU's table growth fails: it stops the check
 * (out of memory, or an assertion for the largest indexes). */
static int growth_failure(struct qc_check *c, uint64_t k)
{
    if (k >= (1ull << 55) - 1) {
        c->res->error = -ERANGE;
        qc_check_emit(c, QC_P_CHECK_ABORT, QC_SEV_ERROR, 0, k << c->cb, k,
                      "reference to host cluster %" PRIu64 ": qemu-img check aborts here "
                      "(refcount array assertion)", k);
    } else {
        c->res->error = -ENOMEM;
        qc_check_emit(c, QC_P_CHECK_NO_MEMORY, QC_SEV_ERROR, 0, k << c->cb, k,
                      "reference to host cluster %" PRIu64 ": qemu-img check runs out of memory",
                      k);
    }
    return c->res->error;
}

/* QEMU's qcow2_inc_refcounts_imrt.  Returns 1 when the range was counted,
 * 0 when not (empty, or the end-of-file error), <0 when the check stops. */
static int inc_range(struct qc_check *c, uint64_t offset, int64_t size, const struct qc_ref *ref)
{
    uint64_t first, last, cl;
    int r;

    if (size <= 0)
        return 0;
    if ((int64_t)(offset + (uint64_t)size - c->file_len) >= (int64_t)c->cs) {
        qc_check_emit_value(c, QC_P_BEYOND_EOF, QC_SEV_CORRUPTION, PRINT, offset, QC_NO_OFFSET,
                            (uint64_t)size,
                            "ERROR: counting reference for region exceeding the end of the file "
                            "by one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64,
                            offset, (uint64_t)size);
        return 0;
    }
    first = offset & ~(c->cs - 1);
    last = (offset + (uint64_t)size - 1) & ~(c->cs - 1);
    for (cl = first; cl <= last; cl += c->cs) {
        uint64_t k = cl >> c->cb;
        if (k >= c->imrt.size) {
            /* a range may end less than a cluster past EOF: one more entry */
            if (k > c->imrt.size || k >= (1ull << 55) - 1)
                return growth_failure(c, k);
            if (qc_imrt_grow(&c->imrt, k + 1) < 0)
                return growth_failure(c, k);
        }
        r = qc_imrt_inc(&c->imrt, k);
        if (r < 0)
            return -ENOMEM;
        if (r == 0) {
            qc_check_emit(c, QC_P_REFCOUNT_OVERFLOW, QC_SEV_CORRUPTION, PRINT, cl, k,
                          "ERROR: overflow cluster offset=0x%" PRIx64, cl);
            qc_check_emit(c, QC_P_QEMU_REPORT, QC_SEV_INFO, PRINT, QC_NO_OFFSET, QC_NO_OFFSET,
                          "Use qemu-img amend to increase the refcount entry width or qemu-img "
                          "convert to create a clean copy if the image cannot be opened for writing");
        }
        if (cl + c->cs < cl)
            break;
    }
    if (ref) {
        if (c->observer)
            c->observer(c->observer_opaque, ref);
        if (exclusive_role(ref->role) &&
            add_range(c, first >> c->cb, ((last - first) >> c->cb) + 1, ref->role, ref->index) < 0)
            return -ENOMEM;
    }
    return 1;
}

static int inc_simple(struct qc_check *c, uint64_t offset, int64_t size, enum qc_role role,
                      uint64_t index)
{
    struct qc_ref ref = { role, offset, (uint64_t)size, -1, index, 0, 0 };
    return inc_range(c, offset, size, &ref);
}

/* --- compressed clusters (our own findings) ---------------------------------- */

static bool l2_verified(struct qc_check *c, uint64_t l2_off)
{
    size_t mask, i;

    if (c->verified_n * 2 >= c->verified_cap) {
        size_t ncap = c->verified_cap ? c->verified_cap * 2 : 1024;
        uint64_t *nv = calloc(ncap, sizeof *nv), *ov = c->verified_l2;
        if (!nv)
            return false;
        for (size_t j = 0; j < c->verified_cap; j++) {
            if (!ov[j])
                continue;
            i = (size_t)((ov[j] * 0x9E3779B97F4A7C15ull) >> 17) & (ncap - 1);
            while (nv[i])
                i = (i + 1) & (ncap - 1);
            nv[i] = ov[j];
        }
        free(ov);
        c->verified_l2 = nv;
        c->verified_cap = ncap;
    }
    mask = c->verified_cap - 1;
    i = (size_t)(((l2_off + 1) * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (c->verified_l2[i]) {
        if (c->verified_l2[i] == l2_off + 1)
            return true;
        i = (i + 1) & mask;
    }
    c->verified_l2[i] = l2_off + 1;
    c->verified_n++;
    return false;
}

#define VERIFIED_SLOTS 65536u

static void verify_compressed(struct qc_check *c, uint64_t coffset, uint64_t csize, uint64_t entry)
{
    uint64_t key = (entry & ~(3ull << 62)) + 1;
    size_t slot;

    /* the same descriptor again (shared or repeated) is not inflated twice */
    if (!c->verified_desc && !(c->verified_desc = calloc(VERIFIED_SLOTS, sizeof(uint64_t))))
        return;
    slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 48) & (VERIFIED_SLOTS - 1);
    if (c->verified_desc[slot] == key)
        return;
    c->verified_desc[slot] = key;
    if (!c->inflate) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        if (qc_inflate_start(&c->inflate, c->f, c->img.hdr.compression_type, c->cs,
                             n > 1 ? (unsigned)n : 0) < 0)
            return;
    }
    qc_inflate_push(c->inflate, coffset, csize, entry);
}

/* The compressed clusters that did not inflate, in walk order. */
static void report_inflate_failures(struct qc_check *c)
{
    struct qc_inflate_failure *f;
    size_t n = qc_inflate_finish(c->inflate, &f);

    c->inflate = NULL;
    for (size_t i = 0; i < n; i++)
        qc_check_emit(c, QC_P_COMPRESSED_CORRUPT, QC_SEV_INFO, 0, f[i].offset, f[i].offset >> c->cb,
                      "compressed cluster at 0x%" PRIx64 " (entry %" PRIx64 ") does not inflate "
                      "to a full cluster", f[i].offset, f[i].entry);
    free(f);
}

/* --- L1 / L2 walk -------------------------------------------------------------- */

struct walk {
    bool active;
    uint64_t l1_table;         /* file offset of the L1 table */
    int64_t snapshot;
    uint64_t l1_index;
    uint64_t l2_offset;
    uint64_t next_contig;
    bool verify;
};

/* Every L2 entry kind but the common one (check_refcounts_l2's switch). */
static __attribute__((noinline)) int l2_entry_slow(struct qc_check *c, struct walk *w, unsigned j,
                                                   uint64_t e, uint64_t bm)
{
    struct qc_check_result *res = c->res;
    enum qc_cluster_type type;
    struct qc_ref ref = { QC_ROLE_DATA, 0, 0, w->snapshot, w->l1_index, j, e };
    int r;

    if (e & QC_OFLAG_COMPRESSED)
        type = QC_CT_COMPRESSED;
    else if ((e & QC_OFLAG_ZERO) && !c->extl2)
        type = (e & QC_L2E_OFFSET_MASK) ? QC_CT_ZERO_ALLOC : QC_CT_ZERO_PLAIN;
    else if (!(e & QC_L2E_OFFSET_MASK))
        type = (c->data_file && (e & QC_OFLAG_COPIED)) ? QC_CT_NORMAL : QC_CT_UNALLOCATED;
    else
        type = QC_CT_NORMAL;

    if (type != QC_CT_COMPRESSED && (e & QC_L2E_RESERVED_MASK))
        qc_check_emit(c, QC_P_L2_RESERVED, QC_SEV_CORRUPTION, PRINT, w->l2_offset + j * c->l2_esize,
                      QC_NO_OFFSET, "ERROR found l2 entry with reserved bits set: %" PRIx64, e);

    switch (type) {
    case QC_CT_COMPRESSED: {
        struct qc_compressed_geom g = qc_compressed_geom(c->cb);
        struct qc_compressed_desc d;
        if (e & QC_OFLAG_COPIED) {
            qc_check_emit(c, QC_P_COMPRESSED_COPIED, QC_SEV_CORRUPTION, PRINT,
                          w->l2_offset + j * c->l2_esize, QC_NO_OFFSET,
                          "ERROR: coffset=0x%" PRIx64 ": copied flag must never be set for "
                          "compressed clusters", e & g.offset_mask);
            e &= ~QC_OFLAG_COPIED;
        }
        if (c->data_file) {
            qc_check_emit(c, QC_P_COMPRESSED_DATA_FILE, QC_SEV_CORRUPTION, PRINT,
                          w->l2_offset + j * c->l2_esize, QC_NO_OFFSET,
                          "ERROR compressed cluster %d with data file, entry=0x%" PRIx64, (int)j, e);
            break;
        }
        if (bm) {
            qc_check_emit(c, QC_P_COMPRESSED_BITMAP, QC_SEV_CORRUPTION, PRINT,
                          w->l2_offset + j * c->l2_esize, QC_NO_OFFSET,
                          "ERROR compressed cluster %d with non-zero subcluster allocation "
                          "bitmap, entry=0x%" PRIx64, (int)j, e);
            break;
        }
        d = qc_compressed_decode(&g, e);
        ref.role = QC_ROLE_COMPRESSED;
        ref.offset = d.offset;
        ref.size = d.size;
        r = inc_range(c, d.offset, (int64_t)d.size, &ref);
        if (r < 0)
            return r;
        if (r > 0 && d.offset + d.size > c->f->size)
            qc_check_emit(c, QC_P_COMPRESSED_PAST_EOF, QC_SEV_INFO, 0, d.offset,
                          d.offset >> c->cb,
                          "compressed cluster at 0x%" PRIx64 " (%" PRIu64 " bytes) runs past the "
                          "end of the file", d.offset, d.size);
        if (r > 0 && w->verify)
            verify_compressed(c, d.offset, d.size, e);
        if (w->active) {
            res->allocated_clusters++;
            res->compressed_clusters++;
            res->fragmented_clusters++;
        }
        break;
    }
    case QC_CT_ZERO_ALLOC:
    case QC_CT_NORMAL: {
        uint64_t off = e & QC_L2E_OFFSET_MASK;
        uint64_t k = off >> c->cb, at = w->l2_offset + (uint64_t)j * c->l2_esize;
        if ((bm >> 32) & bm)
            qc_check_emit(c, QC_P_SUBCLUSTER_BITMAP, QC_SEV_CORRUPTION, PRINT, at, k,
                          "ERROR offset=%" PRIx64 ": Allocated cluster has corrupted subcluster "
                          "allocation bitmap", off);
        if (off & (c->cs - 1)) {
            bool has_data = c->extl2 ? (bm & 0xFFFFFFFFull) != 0 : !(e & QC_OFLAG_ZERO);
            if (!has_data)
                qc_check_emit(c, QC_P_L2_UNALIGNED, QC_SEV_CORRUPTION, PRINT | QC_EVL_PREALLOC, at, k,
                              "ERROR offset=%" PRIx64 ": Preallocated cluster is not properly "
                              "aligned; L2 entry corrupted.", off);
            else
                qc_check_emit(c, QC_P_L2_UNALIGNED, QC_SEV_CORRUPTION, PRINT, at, k,
                              "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; "
                              "L2 entry corrupted.", off);
        }
        if (w->active) {
            res->allocated_clusters++;
            if (w->next_contig && off != w->next_contig)
                res->fragmented_clusters++;
            w->next_contig = off + c->cs;
            if (c->data_file) {
                if (!(e & QC_OFLAG_COPIED))
                    c->oflag_datafile = true;
            } else {
                if (!c->active_refs || k > c->active_max_cluster)
                    c->active_max_cluster = k;
                c->active_refs = true;
                if (k < c->flag_limit &&
                    qc_imrt_flags_or(&c->imrt, k, (e & QC_OFLAG_COPIED) ? QC_IMRT_F_COPIED
                                                                       : QC_IMRT_F_NOCOPY) < 0)
                    return -ENOMEM;
            }
        }
        if (!c->data_file) {
            ref.offset = off;
            ref.size = c->cs;
            r = inc_range(c, off, (int64_t)c->cs, &ref);
            if (r < 0)
                return r;
            if (r > 0 && qc_imrt_flags_or(&c->imrt, k, QC_IMRT_F_DATA) < 0)
                return -ENOMEM;
        }
        break;
    }
    case QC_CT_ZERO_PLAIN:
        break;
    case QC_CT_UNALLOCATED:
        if (bm & 0xFFFFFFFFull)
            qc_check_emit(c, QC_P_UNALLOCATED_BITMAP, QC_SEV_CORRUPTION, PRINT,
                          w->l2_offset + j * c->l2_esize, QC_NO_OFFSET,
                          "ERROR: Unallocated cluster has non-zero subcluster allocation map");
        break;
    }
    return 0;
}

/* The state the fast loop carries across an L2 table. */
struct fast_state {
    uint64_t allocated, fragmented, next;
    bool empty;
};

/* Entries [J, N) of table T while they are the common case (a normal,
 * aligned cluster inside the file whose count is small): counted in place.
 * Returns the index of the first other entry, or N.  ESIZE is a constant
 * in each caller, so each entry size gets its own tight loop. */
static inline __attribute__((always_inline)) uint64_t
fast_run(struct qc_check *c, const uint8_t *t, uint64_t j, uint64_t n, const unsigned esize,
         struct fast_state *st, uint8_t fcopied, uint8_t fnocopy)
{
    const uint64_t plain = QC_L2E_OFFSET_MASK | QC_OFLAG_COPIED | (esize == 16 ? 1u : 0u);
    const uint64_t cmask = c->cs - 1, cs = c->cs;
    const uint64_t lim = c->file_len - 1;      /* off - 1 < lim: 0 < off < file_len */
    const unsigned cb = c->cb, fast_limit = c->imrt.fast_limit;
    uint8_t *const *dcells = c->imrt.cells, *const *dflags = c->imrt.flags;
    uint64_t allocated = st->allocated, fragmented = st->fragmented, next = st->next;
    size_t cur = SIZE_MAX;
    uint8_t *cells = NULL, *fl = NULL;
    bool empty = st->empty;

    for (; j < n; j++) {
        const uint8_t *p = t + j * esize;
        uint64_t e = qc_be64(p), bm = esize == 16 ? qc_be64(p + 8) : 0, off, k, ki;
        size_t ch;

        if (!(e | bm))
            continue;
        empty = false;
        off = e & QC_L2E_OFFSET_MASK;
        if (((e & ~plain) | (off & cmask)) || off - 1 >= lim || ((bm >> 32) & bm))
            break;
        k = off >> cb;
        ki = k & (QC_IMRT_CHUNK - 1);
        ch = (size_t)(k >> QC_IMRT_CHUNK_BITS);
        if (ch != cur) {
            cells = dcells[ch];
            fl = dflags[ch];
            cur = ch;
        }
        if (!cells || !fl || cells[ki] >= fast_limit)
            break;
        /* eight entries naming eight adjacent clusters seen for the first
         * time (a freshly allocated or preallocated run): counted at once */
        if (esize == 8 && !(ki & 1) && ki + 8 <= QC_IMRT_CHUNK && j + 8 <= n &&
            off + 7 * cs - 1 < lim && off + 8 * cs <= QC_L2E_OFFSET_MASK) {
            uint64_t zero, ones = 0x0101010101010101ull;
            uint32_t f32;
            unsigned i;
            memcpy(&zero, cells + ki, 8);
            for (i = 1; i < 8 && !zero; i++)
                if (qc_be64(p + 8 * i) != e + i * cs)
                    break;
            if (i == 8 && !zero) {
                uint8_t fb = (e >> 63) ? fcopied : fnocopy;
                memcpy(cells + ki, &ones, 8);
                memcpy(&f32, fl + (ki >> 1), 4);
                f32 |= (uint32_t)(fb | fb << 4) * 0x01010101u;
                memcpy(fl + (ki >> 1), &f32, 4);
                allocated += 8;
                fragmented += (next != 0) & (off != next);
                next = off + 8 * cs;
                j += 7;
                continue;
            }
        }
        cells[ki]++;
        fl[ki >> 1] |= (uint8_t)(((e >> 63) ? fcopied : fnocopy) << ((ki & 1) * 4));
        allocated++;
        fragmented += (next != 0) & (off != next);
        next = off + cs;
    }
    st->allocated = allocated;
    st->fragmented = fragmented;
    st->next = next;
    st->empty = empty;
    return j;
}

/* check_refcounts_l2 over one table's bytes T: the common entries in the
 * fast loop, every other one through l2_entry_slow. */
static int check_l2(struct qc_check *c, struct walk *w, const uint8_t *t)
{
    struct qc_check_result *res = c->res;
    const bool fast_ok = !c->data_file && !c->observer && c->imrt.cell_shift == 3;
    const uint64_t n = c->l2_entries;
    const uint8_t fcopied = (uint8_t)(QC_IMRT_F_DATA | (w->active ? QC_IMRT_F_COPIED : 0));
    const uint8_t fnocopy = (uint8_t)(QC_IMRT_F_DATA | (w->active ? QC_IMRT_F_NOCOPY : 0));
    struct fast_state st = { 0, 0, 0, true };
    size_t slot;
    int r;

    if (!t)
        return 0;   /* entirely past the end of the file: all zeros */
    /* tables known to be empty are not scanned again (hostile L1 tables
     * may name one millions of times) */
    slot = (size_t)(((w->l2_offset + 1) * 0x9E3779B97F4A7C15ull) >> 54);
    if (c->empty_l2[slot] == w->l2_offset + 1)
        return 0;
    if (w->verify && l2_verified(c, w->l2_offset))
        w->verify = false;
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *p;
        uint64_t e, bm;

        if (fast_ok) {
            j = c->l2_esize == 8 ? fast_run(c, t, j, n, 8, &st, fcopied, fnocopy)
                                 : fast_run(c, t, j, n, 16, &st, fcopied, fnocopy);
            if (j >= n)
                break;
        }
        p = t + j * c->l2_esize;
        e = qc_be64(p);
        bm = c->l2_esize == 16 ? qc_be64(p + 8) : 0;
        if (!(e | bm))
            continue;
        st.empty = false;
        w->next_contig = st.next;
        if ((r = l2_entry_slow(c, w, (unsigned)j, e, bm)) < 0)
            return r;
        st.next = w->next_contig;
    }
    if (w->active) {
        res->allocated_clusters += st.allocated;
        res->fragmented_clusters += st.fragmented;
    }
    if (st.empty)
        c->empty_l2[slot] = w->l2_offset + 1;
    return 0;
}

static int ensure_tbuf(struct qc_check *c)
{
    if (c->tbuf)
        return 0;
    c->tbuf_cap = c->cs > TBUF_MIN ? (size_t)c->cs : TBUF_MIN;
    c->tbuf = malloc(c->tbuf_cap);
    return c->tbuf ? 0 : QC_E_NOMEM;
}

/* One L1 entry: its own checks, then its L2 table (bytes T). */
static int l1_entry(struct qc_check *c, struct walk *w, uint64_t i, uint64_t e, const uint8_t *t)
{
    uint64_t l2 = e & QC_L1E_OFFSET_MASK;
    struct qc_ref ref = { QC_ROLE_L2, l2, c->cs, w->snapshot, i, 0, e };
    int r;

    if (e & QC_L1E_RESERVED_MASK)
        qc_check_emit(c, QC_P_L1_RESERVED, QC_SEV_CORRUPTION, PRINT, w->l1_table + 8 * i, QC_NO_OFFSET,
                      "ERROR found L1 entry with reserved bits set: %" PRIx64, e);
    r = inc_range(c, l2, (int64_t)c->cs, &ref);
    if (r < 0)
        return r;
    if (r > 0 && qc_imrt_flags_or(&c->imrt, l2 >> c->cb, QC_IMRT_F_L2) < 0)
        return -ENOMEM;
    if (r > 0 && l2 + c->cs > c->f->size)
        qc_check_emit(c, QC_P_L2_PAST_EOF, QC_SEV_INFO, 0, l2, l2 >> c->cb,
                      "L2 table at 0x%" PRIx64 " (L1 index %" PRIu64 ") ends past the end of the "
                      "file; its missing part reads as zeros", l2, i);
    if (l2 & (c->cs - 1))
        qc_check_emit(c, QC_P_L2_TABLE_UNALIGNED, QC_SEV_CORRUPTION, PRINT, w->l1_table + 8 * i,
                      l2 >> c->cb,
                      "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 entry corrupted",
                      l2);
    if (w->active && l2) {
        uint64_t k = l2 >> c->cb;
        if (!c->active_refs || k > c->active_max_cluster)
            c->active_max_cluster = k;
        c->active_refs = true;
        if (k < c->flag_limit &&
            qc_imrt_flags_or(&c->imrt, k, (e & QC_OFLAG_COPIED) ? QC_IMRT_F_COPIED
                                                               : QC_IMRT_F_NOCOPY) < 0)
            return -ENOMEM;
    }
    w->l1_index = i;
    w->l2_offset = l2;
    return check_l2(c, w, t);
}

/* Entries [0, n) of an L1 table given by GET; reads runs of adjacent L2
 * tables with one request. */
static int walk_l1_entries(struct qc_check *c, struct walk *w, const uint64_t *ents, uint64_t n,
                           uint64_t base)
{
    uint64_t max_run = c->tbuf_cap / c->cs;
    int r;

    for (uint64_t i = 0; i < n;) {
        uint64_t e = ents[i], off, run = 1;
        if (!e) {
            i++;
            continue;
        }
        off = e & QC_L1E_OFFSET_MASK;
        if (off >= c->f->size) {
            /* reads as zeros: nothing to read or to scan */
            if ((r = l1_entry(c, w, base + i, e, NULL)) < 0)
                return r;
            i++;
            continue;
        }
        while (i + run < n && run < max_run && ents[i + run] &&
               (ents[i + run] & QC_L1E_OFFSET_MASK) == off + run * c->cs)
            run++;
        /* 56-bit offsets are always readable for QEMU */
        if ((r = qc_file_read_qemu(c->f, off, c->tbuf, (size_t)(run * c->cs))) < 0) {
            qc_check_emit(c, QC_P_CHECK_IO_ERROR, QC_SEV_ERROR, PRINT, off, QC_NO_OFFSET,
                          "ERROR: I/O error in check_refcounts_l2");
            return r;
        }
        for (uint64_t j = 0; j < run; j++)
            if ((r = l1_entry(c, w, base + i + j, ents[i + j], c->tbuf + j * c->cs)) < 0)
                return r;
        i += run;
    }
    return 0;
}

struct l1_items {
    const uint64_t *ents;
    uint64_t file_size;
};

static uint64_t l1_item(void *opaque, uint64_t i)
{
    const struct l1_items *it = opaque;
    uint64_t off = it->ents[i] & QC_L1E_OFFSET_MASK;

    if (!it->ents[i] || off >= it->file_size)
        return QC_PREFETCH_NONE;
    return off;
}

/* The active L1 table's entries, their L2 tables read ahead. */
static int walk_active_l1(struct qc_check *c, struct walk *w, const uint64_t *ents, uint64_t n)
{
    struct l1_items it = { ents, c->f->size };
    struct qc_prefetch *pf;
    uint64_t first, count, batch = c->cs > PREFETCH_BATCH ? c->cs : PREFETCH_BATCH;
    const uint8_t *const *ptrs;
    int r, e;

    if (!n)
        return 0;
    r = qc_prefetch_start(&pf, c->f, n, c->cs, batch, l1_item, &it, n >= PREFETCH_THREAD_MIN);
    if (r < 0)
        return -ENOMEM;
    while ((e = qc_prefetch_next(pf, &first, &count, &ptrs)) != 1) {
        for (uint64_t j = 0; j < count; j++)
            if (ents[first + j] && (r = l1_entry(c, w, first + j, ents[first + j], ptrs[j])) < 0)
                goto out;
        if (e < 0) {
            qc_check_emit(c, QC_P_CHECK_IO_ERROR, QC_SEV_ERROR, PRINT,
                          ents[first + count] & QC_L1E_OFFSET_MASK, QC_NO_OFFSET,
                          "ERROR: I/O error in check_refcounts_l2");
            r = e;
            goto out;
        }
    }
    r = 0;
out:
    qc_prefetch_stop(pf);
    return r;
}

/* check_refcounts_l1. */
static int check_l1(struct qc_check *c, uint64_t l1_off, uint32_t l1_size, bool active,
                    int64_t snapshot)
{
    struct walk w = { active, l1_off, snapshot, 0, 0, 0, c->opts.verify_compressed };
    uint64_t bytes = (uint64_t)l1_size * 8;
    int r;

    if (l1_size == 0)
        return 0;
    r = inc_simple(c, l1_off, (int64_t)bytes, active ? QC_ROLE_L1 : QC_ROLE_SNAPSHOT_L1,
                   active ? 0 : (uint64_t)snapshot);
    if (r < 0)
        return r;
    if (!active && r > 0 && l1_off + bytes > c->f->size)
        qc_check_emit(c, QC_P_SNAPSHOT_L1_PAST_EOF, QC_SEV_INFO, 0, l1_off, l1_off >> c->cb,
                      "L1 table of snapshot %" PRId64 " ends past the end of the file", snapshot);
    if (!qc_qemu_read_ok(l1_off, bytes)) {
        qc_check_emit(c, QC_P_CHECK_IO_ERROR, QC_SEV_ERROR, PRINT, l1_off, QC_NO_OFFSET,
                      "ERROR: I/O error in check_refcounts_l1");
        return -EIO;
    }
    if (active) {
        /* the table read at open; past what the file holds, zeros */
        return walk_active_l1(c, &w, c->l1, c->l1_stored < l1_size ? c->l1_stored : l1_size);
    }
    if ((r = ensure_tbuf(c)) < 0)
        return r;
    {
        uint64_t *ents = malloc(L1_WINDOW * sizeof *ents);
        uint8_t *raw = malloc(L1_WINDOW * 8);
        uint64_t in_file = l1_off < c->f->size ? c->f->size - l1_off : 0;
        uint64_t n = (in_file + 7) / 8 < l1_size ? (in_file + 7) / 8 : l1_size;
        if (!ents || !raw) {
            free(ents);
            free(raw);
            return -ENOMEM;
        }
        for (uint64_t base = 0; base < n && r >= 0; base += L1_WINDOW) {
            uint64_t m = n - base < L1_WINDOW ? n - base : L1_WINDOW;
            r = qc_file_read_qemu(c->f, l1_off + base * 8, raw, (size_t)(m * 8));
            for (uint64_t i = 0; r >= 0 && i < m; i++)
                ents[i] = qc_be64(raw + 8 * i);
            if (r >= 0)
                r = walk_l1_entries(c, &w, ents, m, base);
        }
        free(ents);
        free(raw);
        return r < 0 ? r : 0;
    }
}

/* --- bitmaps (qcow2_check_bitmaps_refcounts) ------------------------------------ */

static int check_bitmaps(struct qc_check *c)
{
    struct qc_bitmap_dir d;
    char *err = NULL;
    int r;

    if (!c->nb_bitmaps)
        return 0;
    r = inc_simple(c, c->bm_dir_offset, (int64_t)c->bm_dir_size, QC_ROLE_BITMAP_DIR, 0);
    if (r < 0)
        return r;
    r = qc_bitmap_dir_load_qemu(c->f, c->bm_dir_offset, c->bm_dir_size, c->nb_bitmaps, c->cb,
                                c->disk_len, &d, &err);
    if (r < 0) {
        qc_check_emit(c, QC_P_BITMAP_CHECK_FAILED, QC_SEV_CORRUPTION, 0, c->bm_dir_offset,
                      QC_NO_OFFSET, "%s", err ? err : "bitmap directory");
        free(err);
        qc_bitmap_dir_free(&d);
        return -EINVAL;
    }
    for (size_t i = 0; i < d.n && r >= 0; i++) {
        const struct qc_bitmap *b = &d.v[i];
        uint64_t *table;
        uint32_t bad;

        if (b->flags & QC_BME_FLAG_IN_USE)
            qc_check_emit(c, QC_P_BITMAP_IN_USE, QC_SEV_INFO, 0, b->entry_offset, QC_NO_OFFSET,
                          "bitmap '%s' is marked in use: its contents are inconsistent", b->name);
        r = inc_simple(c, b->table_offset, (int64_t)b->table_size * 8, QC_ROLE_BITMAP_TABLE, i);
        if (r < 0)
            break;
        r = qc_bitmap_table_load_qemu(c->f, b, c->cb, &table, &bad);
        if (r < 0) {
            if (r == -EINVAL)
                qc_check_emit(c, QC_P_BITMAP_CHECK_FAILED, QC_SEV_CORRUPTION, 0,
                              b->table_offset + 8ull * bad, QC_NO_OFFSET,
                              "bitmap '%s': table entry %u is invalid", b->name, bad);
            else
                qc_check_emit(c, QC_P_BITMAP_CHECK_FAILED, QC_SEV_CORRUPTION, 0, b->table_offset,
                              QC_NO_OFFSET, "bitmap '%s': table cannot be read: %s", b->name,
                              qc_strerror(r));
            break;
        }
        for (uint32_t j = 0; j < b->table_size; j++) {
            uint64_t off = table[j] & QC_BMT_OFFSET_MASK;
            struct qc_ref ref = { QC_ROLE_BITMAP_DATA, off, c->cs, -1, i, j, table[j] };
            if (!off)
                continue;
            r = inc_range(c, off, (int64_t)c->cs, &ref);
            if (r < 0)
                break;
            if (r > 0 && off + c->cs > c->f->size)
                qc_check_emit(c, QC_P_BITMAP_TABLE_DAMAGE, QC_SEV_INFO, 0, off, off >> c->cb,
                              "bitmap '%s': data cluster %u ends past the end of the file",
                              b->name, j);
            r = 0;
        }
        free(table);
    }
    qc_bitmap_dir_free(&d);
    return r < 0 ? r : 0;
}

/* --- refcount blocks (check_refblocks) ------------------------------------------- */

static int check_refblocks(struct qc_check *c)
{
    for (uint64_t i = 0; i < c->disk.nentries; i++) {
        uint64_t raw = qc_refcount_disk_entry(&c->disk, i);
        uint64_t off = raw & QC_REFT_OFFSET_MASK, k = off >> c->cb;
        int r;

        if (!raw && i >= c->disk.nstored)
            break;   /* the rest of the table reads as zeros */
        if (raw & QC_REFT_RESERVED_MASK) {
            qc_check_emit(c, QC_P_REFTABLE_RESERVED, QC_SEV_CORRUPTION, PRINT,
                          c->disk.table_offset + 8 * i, QC_NO_OFFSET,
                          "ERROR refcount table entry %" PRId64 " has reserved bits set", (int64_t)i);
            c->rebuild = true;
            continue;
        }
        if (off & (c->cs - 1)) {
            qc_check_emit(c, QC_P_REFBLOCK_UNALIGNED, QC_SEV_CORRUPTION, PRINT, off, QC_NO_OFFSET,
                          "ERROR refcount block %" PRId64 " is not cluster aligned; refcount table "
                          "entry corrupted", (int64_t)i);
            c->rebuild = true;
            continue;
        }
        if (k >= c->imrt.size) {
            qc_check_emit(c, QC_P_REFBLOCK_OUTSIDE, QC_SEV_CORRUPTION, PRINT, off, k,
                          "ERROR refcount block %" PRId64 " is outside image", (int64_t)i);
            continue;
        }
        if (off) {
            uint64_t v;
            r = inc_simple(c, off, (int64_t)c->cs, QC_ROLE_REFBLOCK, i);
            if (r < 0)
                return r;
            if (r > 0 && off + c->cs > c->f->size)
                qc_check_emit(c, QC_P_REFBLOCK_PAST_EOF, QC_SEV_INFO, 0, off, k,
                              "refcount block %" PRIu64 " ends past the end of the file; its "
                              "missing part reads as zeros", i);
            v = qc_imrt_get(&c->imrt, k);
            if (v != 1) {
                qc_check_emit(c, QC_P_OVERLAP, QC_SEV_CORRUPTION, PRINT, off, k,
                              "ERROR refcount block %" PRId64 " refcount=%" PRIu64, (int64_t)i, v);
                c->rebuild = true;
            }
        }
    }
    return 0;
}

/* --- calculate_refcounts ----------------------------------------------------------- */

int qc_check_calculate(struct qc_check *c)
{
    struct qc_check_result *res = c->res;
    int r;

    if (!c->imrt_ready) {
        uint64_t nb = (c->file_len + c->cs - 1) >> c->cb;
        /* counting may add one entry (a reference less than a cluster past
         * the end); flags are kept for that entry from the start */
        if (qc_imrt_init(&c->imrt, c->order, nb) < 0 || qc_imrt_reserve(&c->imrt, nb + 1) < 0) {
            res->check_errors++;
            return -ENOMEM;
        }
        c->flag_limit = nb + 1;
        c->imrt_ready = true;
    }
    if ((r = inc_simple(c, 0, (int64_t)c->cs, QC_ROLE_HEADER, 0)) < 0)
        return r;
    if ((r = check_l1(c, c->l1_offset, c->l1_size, true, -1)) < 0)
        return r;
    if (c->data_file && c->snaps.n)
        qc_check_emit(c, QC_P_SNAPSHOTS_DATA_FILE, QC_SEV_CORRUPTION, PRINT, 60, QC_NO_OFFSET,
                      "ERROR %d snapshots in image with data file", (int)c->snaps.n);
    for (size_t i = 0; i < c->snaps.n; i++) {
        const struct qc_snapshot *s = &c->snaps.v[i];
        if (s->l1_table_offset & (c->cs - 1)) {
            qc_check_emit(c, QC_P_SNAPSHOT_L1_UNALIGNED, QC_SEV_CORRUPTION, PRINT, s->entry_offset,
                          QC_NO_OFFSET,
                          "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not cluster "
                          "aligned; snapshot table entry corrupted",
                          s->id_str, s->name, s->l1_table_offset);
            continue;
        }
        if (s->l1_size > 4194304u) {
            qc_check_emit(c, QC_P_SNAPSHOT_L1_TOO_LARGE, QC_SEV_CORRUPTION, PRINT, s->entry_offset,
                          QC_NO_OFFSET,
                          "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too large; "
                          "snapshot table entry corrupted", s->id_str, s->name, s->l1_size);
            continue;
        }
        if ((r = check_l1(c, s->l1_table_offset, s->l1_size, false, (int64_t)i)) < 0)
            return r;
    }
    if ((r = inc_simple(c, c->snaps.offset, (int64_t)c->snaps.size, QC_ROLE_SNAPSHOT_TABLE, 0)) < 0)
        return r;
    if ((r = inc_simple(c, c->disk.table_offset, (int64_t)(c->disk.nentries * 8),
                        QC_ROLE_REFTABLE, 0)) < 0)
        return r;
    if (c->crypto_length &&
        (r = inc_simple(c, c->crypto_offset, (int64_t)c->crypto_length, QC_ROLE_CRYPTO, 0)) < 0)
        return r;
    if ((r = check_bitmaps(c)) < 0)
        return r;
    return check_refblocks(c);
}

/* --- compare_refcounts -------------------------------------------------------------- */

static void signal_unaligned(void *opaque, uint64_t off, uint64_t index)
{
    struct qc_check *c = opaque;
    char idx[32];

    /* QEMU's %#llx prints 0 without the 0x */
    if (index)
        snprintf(idx, sizeof idx, "%#" PRIx64, index);
    else
        snprintf(idx, sizeof idx, "0");
    qc_check_emit(c, QC_P_QEMU_REPORT, QC_SEV_INFO, PRINT | QC_EVL_REFBLOCK_CORRUPT, off,
                  QC_NO_OFFSET, "qcow2: Image is corrupt: Refblock offset %#" PRIx64 " unaligned (reftable "
                  "index: %s); further non-fatal corruption events will be suppressed", off, idx);
}

/* One cluster whose counts differ, or that carries flags. */
static void compare_one(struct qc_check *c, uint64_t k, uint64_t r1, uint64_t r2, unsigned f)
{
    if (r1 > 0 || r2 > 0)
        c->highest = k;
    if (r1 != r2) {
        if (r1 == 0)
            c->rebuild = true;
        if (r1 < r2)
            qc_check_emit(c, QC_P_REFCOUNT_MISMATCH, QC_SEV_CORRUPTION, PRINT, k << c->cb, k,
                          "ERROR cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64,
                          (int64_t)k, r1, r2);
        else
            qc_check_emit(c, QC_P_LEAK, QC_SEV_LEAK, PRINT, k << c->cb, k,
                          "Leaked cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64,
                          (int64_t)k, r1, r2);
    }
    if (f & (QC_IMRT_F_COPIED | QC_IMRT_F_NOCOPY)) {
        bool one = r1 == 1;
        /* from here on both bits set means "OFLAG_COPIED to verify"; both
         * set before means a mismatch whatever the refcount */
        if (((f & QC_IMRT_F_COPIED) && !one) || ((f & QC_IMRT_F_NOCOPY) && one)) {
            c->oflag_suspect = true;
            qc_imrt_flags_or(&c->imrt, k, QC_IMRT_F_COPIED | QC_IMRT_F_NOCOPY);
        }
    }
    if ((f & (QC_IMRT_F_DATA | QC_IMRT_F_L2)) == (QC_IMRT_F_DATA | QC_IMRT_F_L2))
        qc_check_emit(c, QC_P_METADATA_OVERLAP, QC_SEV_INFO, 0, k << c->cb, k,
                      "cluster %" PRIu64 " is used both as an L2 table and as guest data", k);
}

/* Clusters [lo, hi) whose refcount block is absent: every on-disk count 0. */
static void compare_absent(struct qc_check *c, uint64_t lo, uint64_t hi)
{
    for (uint64_t ch = lo >> QC_IMRT_CHUNK_BITS; (ch << QC_IMRT_CHUNK_BITS) < hi; ch++) {
        uint64_t a = ch << QC_IMRT_CHUNK_BITS, b = a + QC_IMRT_CHUNK;
        if (qc_imrt_chunk_empty(&c->imrt, ch))
            continue;
        if (a < lo)
            a = lo;
        if (b > hi)
            b = hi;
        for (uint64_t k = a; k < b; k++) {
            uint64_t r2 = qc_imrt_get(&c->imrt, k);
            unsigned f = qc_imrt_flags(&c->imrt, k);
            if (r2 || f)
                compare_one(c, k, 0, r2, f);
        }
    }
}

static void compare_unreadable(struct qc_check *c, uint64_t lo, uint64_t hi)
{
    for (uint64_t k = lo; k < hi; k++)
        qc_check_emit(c, QC_P_REFCOUNT_UNREADABLE, QC_SEV_ERROR, PRINT, k << c->cb, k,
                      "Can't get refcount for cluster %" PRId64 ": %s", (int64_t)k, strerror(EIO));
}

/* Clusters [lo, hi) against the bytes BLK of their refcount block. */
static void compare_block(struct qc_check *c, uint64_t lo, uint64_t hi, const uint8_t *blk)
{
    static const uint8_t zeros[QC_IMRT_CHUNK];
    struct qc_imrt *t = &c->imrt;
    const bool fast = c->order == 4 && t->cell_shift == 3;
    const unsigned both = QC_IMRT_F_DATA | QC_IMRT_F_L2;

    for (uint64_t ch = lo >> QC_IMRT_CHUNK_BITS; (ch << QC_IMRT_CHUNK_BITS) < hi; ch++) {
        uint64_t a = ch << QC_IMRT_CHUNK_BITS, b = a + QC_IMRT_CHUNK;
        const uint8_t *cells = ch < t->ndir && t->cells[ch] ? t->cells[ch] : zeros;
        const uint8_t *fl = ch < t->ndir && t->flags[ch] ? t->flags[ch] : zeros;

        if (a < lo)
            a = lo;
        if (b > hi)
            b = hi;
        if (fast) {
            const uint8_t *rb = blk + 2 * (a - lo);
            uint64_t highest = c->highest;
            for (uint64_t k = a; k < b; k++, rb += 2) {
                uint64_t ki = k & (QC_IMRT_CHUNK - 1);
                unsigned r1;
                /* four clusters at once where all agree: nothing to flag, or
                 * active data with OFLAG_COPIED and both counts 1 */
                if (!(ki & 1) && k + 4 <= b) {
                    uint32_t x, w;
                    uint64_t y;
                    x = (uint32_t)cells[ki] | (uint32_t)cells[ki + 1] << 8 |
                        (uint32_t)cells[ki + 2] << 16 | (uint32_t)cells[ki + 3] << 24;
                    /* the refcount bytes those counts give, big-endian 16-bit */
                    y = (uint64_t)(x & 0xFF) << 8 | (uint64_t)(x & 0xFF00) << 16 |
                        (uint64_t)(x & 0xFF0000) << 24 | (uint64_t)(x & 0xFF000000) << 32;
                    w = (uint32_t)fl[ki >> 1] | (uint32_t)fl[(ki >> 1) + 1] << 8;
                    if (!(x & 0x80808080u) && rb[0] == 0 && rb[2] == 0 && rb[4] == 0 &&
                        rb[6] == 0 && ((uint64_t)rb[1] << 8 | (uint64_t)rb[3] << 24 |
                                       (uint64_t)rb[5] << 40 | (uint64_t)rb[7] << 56) == y &&
                        (w == 0 || (w == 0x5555u && x == 0x01010101u))) {
                        if (x)
                            highest = k + 3 - (unsigned)(__builtin_clz(x) >> 3);
                        k += 3;
                        rb += 6;
                        continue;
                    }
                }
                r1 = (unsigned)rb[0] << 8 | rb[1];
                unsigned cv = cells[ki];
                unsigned f = (fl[ki >> 1] >> ((ki & 1) * 4)) & 0xF;
                if (r1 == cv && cv != 255) {
                    highest = r1 ? k : highest;
                    if (!f)
                        continue;
                    if ((f & both) != both && !((f & QC_IMRT_F_COPIED) && r1 != 1) &&
                        !((f & QC_IMRT_F_NOCOPY) && r1 == 1))
                        continue;
                }
                c->highest = highest;
                compare_one(c, k, r1, qc_imrt_get(t, k), f);
                highest = c->highest;
            }
            c->highest = highest;
        } else {
            for (uint64_t k = a; k < b; k++) {
                uint64_t ki = k & (QC_IMRT_CHUNK - 1);
                uint64_t r1 = qc_refblock_get(blk, c->order, k - lo);
                uint64_t r2 = cells == zeros ? 0 : qc_imrt_get(t, k);
                unsigned f = (fl[ki >> 1] >> ((ki & 1) * 4)) & 0xF;
                if (r1 || r2 || f)
                    compare_one(c, k, r1, r2, f);
            }
        }
    }
}

struct rb_items {
    const struct qc_refcount_disk *disk;
    uint64_t file_size;
};

static uint64_t rb_item(void *opaque, uint64_t i)
{
    const struct rb_items *it = opaque;
    uint64_t off;

    if (qc_refcount_disk_block_state(it->disk, i, &off) != QC_RB_PRESENT || off >= it->file_size)
        return QC_PREFETCH_NONE;
    return off;
}

static int compare_refcounts(struct qc_check *c)
{
    uint64_t nb = c->imrt.size, rbb = c->disk.rb_bits;
    uint64_t nblocks = (nb + (1ull << rbb) - 1) >> rbb;
    uint64_t batch = c->cs > PREFETCH_BATCH ? c->cs : PREFETCH_BATCH;
    struct rb_items it = { &c->disk, c->f->size };
    struct qc_prefetch *pf;
    const uint8_t *const *ptrs;
    uint8_t *zero = NULL;
    uint64_t first, count;
    int r, e;

    c->highest = 0;
    if (!nblocks)
        return 0;
    r = qc_prefetch_start(&pf, c->f, nblocks, c->cs, batch, rb_item, &it,
                          nblocks >= PREFETCH_THREAD_MIN);
    if (r < 0)
        return -ENOMEM;
    while ((e = qc_prefetch_next(pf, &first, &count, &ptrs)) != 1) {
        for (uint64_t j = 0; j < count; j++) {
            uint64_t idx = first + j, off;
            uint64_t lo = idx << rbb, hi = lo + (1ull << rbb);
            if (hi > nb)
                hi = nb;
            switch (qc_refcount_disk_block_state(&c->disk, idx, &off)) {
            case QC_RB_ABSENT:
                compare_absent(c, lo, hi);
                break;
            case QC_RB_UNALIGNED:
                if (!c->disk.signaled)
                    signal_unaligned(c, off, idx);
                c->disk.signaled = true;
                compare_unreadable(c, lo, hi);
                break;
            case QC_RB_UNREADABLE:
                compare_unreadable(c, lo, hi);
                break;
            case QC_RB_PRESENT:
                if (!ptrs[j] && !zero && !(zero = calloc(1, c->cs))) {
                    r = -ENOMEM;
                    goto out;
                }
                /* a block wholly past the end of the file reads as zeros */
                compare_block(c, lo, hi, ptrs[j] ? ptrs[j] : zero);
                break;
            }
        }
        if (e < 0) {
            r = e;
            goto out;
        }
    }
    r = 0;
out:
    qc_prefetch_stop(pf);
    free(zero);
    return r;
}

/* --- check_oflag_copied -------------------------------------------------------------- */

static int add_fix(struct qc_check *c, uint64_t at, uint64_t old, uint64_t nv, bool l1)
{
    if (!c->opts.collect_fixes)
        return 0;
    if (c->nfixes == c->fixes_cap) {
        size_t n = c->fixes_cap ? c->fixes_cap * 2 : 64;
        struct qc_oflag_fix *v = realloc(c->fixes, n * sizeof *v);
        if (!v)
            return QC_E_NOMEM;
        c->fixes = v;
        c->fixes_cap = n;
    }
    c->fixes[c->nfixes++] = (struct qc_oflag_fix){ at, old, nv, l1 };
    return 0;
}

/* The on-disk refcount QEMU's pass would see for cluster K, or -EIO; the
 * suspect marks spare the lookup where the comparison already settled it. */
static int oflag_refcount(struct qc_check *c, uint64_t k, bool copied, uint64_t *v, bool *mismatch)
{
    uint64_t off;
    enum qc_refblock_state st = qc_refcount_disk_block_state(&c->disk, k >> c->disk.rb_bits, &off);
    int r;

    *mismatch = false;
    if (st == QC_RB_UNALIGNED || st == QC_RB_UNREADABLE) {
        if (st == QC_RB_UNALIGNED && !c->disk.signaled)
            signal_unaligned(c, off, k >> c->disk.rb_bits);
        c->disk.signaled = true;
        return -EIO;
    }
    if (k < c->imrt.size && (qc_imrt_flags(&c->imrt, k) & 3) != 3)
        return 0;
    if ((r = qc_refcount_disk_get(&c->disk, k, v)) < 0)
        return r;
    *mismatch = (*v == 1) != copied;
    return 0;
}

static int check_oflag_copied(struct qc_check *c)
{
    uint64_t *clean;       /* tables with no mismatch (offset + 1, direct-mapped) */
    uint64_t nmis;
    size_t slot;
    bool data_pass;
    uint8_t *t;
    int r = 0;

    if (!c->oflag_suspect && !c->oflag_datafile &&
        !(c->active_refs && c->active_max_cluster >= c->imrt.size))
        return 0;
    data_pass = true;
    t = malloc(c->cs);
    clean = calloc(1024, sizeof *clean);
    if (!t || !clean) {
        free(t);
        free(clean);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < c->l1_size && i < c->l1_stored; i++) {
        uint64_t e = c->l1[i], l2 = e & QC_L1E_OFFSET_MASK, v = 0;
        bool mismatch;

        if (!l2)
            continue;
        if (oflag_refcount(c, l2 >> c->cb, (e & QC_OFLAG_COPIED) != 0, &v, &mismatch) < 0)
            continue;
        if (mismatch) {
            qc_check_emit(c, QC_P_OFLAG_COPIED, QC_SEV_CORRUPTION, PRINT, c->l1_offset + 8 * i,
                          l2 >> c->cb,
                          "ERROR OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%" PRIx64
                          " refcount=%" PRIu64, (int)i, e, v);
            if ((r = add_fix(c, c->l1_offset + 8 * i, e, e ^ QC_OFLAG_COPIED, true)) < 0)
                break;
        }
        /* a table past the end of the file reads as zeros: no entries;
         * an empty table or one found clean before needs no second look */
        if (!data_pass || l2 >= c->f->size)
            continue;
        slot = (size_t)(((l2 + 1) * 0x9E3779B97F4A7C15ull) >> 54);
        if (c->empty_l2[slot] == l2 + 1 || clean[slot] == l2 + 1)
            continue;
        nmis = 0;
        if ((r = qc_file_read_qemu(c->f, l2, t, (size_t)c->cs)) < 0) {
            qc_check_emit(c, QC_P_CHECK_IO_ERROR, QC_SEV_ERROR, PRINT | QC_EVL_L2_READ, l2,
                          QC_NO_OFFSET, "ERROR: Could not read L2 table: %s", qc_strerror(r));
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
            if (c->data_file) {
                v = 1;
                mismatch = !(f & QC_OFLAG_COPIED);
            } else if (oflag_refcount(c, d >> c->cb, (f & QC_OFLAG_COPIED) != 0, &v, &mismatch) < 0) {
                continue;
            }
            if (mismatch) {
                nmis++;
                qc_check_emit(c, QC_P_OFLAG_COPIED, QC_SEV_CORRUPTION, PRINT,
                              l2 + j * c->l2_esize, d >> c->cb,
                              "ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64,
                              f, v);
                if ((r = add_fix(c, l2 + j * c->l2_esize, f, f ^ QC_OFLAG_COPIED, false)) < 0)
                    break;
            }
        }
        if (r < 0)
            break;
        if (!nmis)
            clean[slot] = l2 + 1;
    }
    free(t);
    free(clean);
    return r;
}

/* --- our own findings after the counts are known ------------------------------------- */

static int range_cmp(const void *a, const void *b)
{
    const struct qc_meta_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void report_overlaps(struct qc_check *c)
{
    uint64_t done = 0;
    bool any = false;

    if (c->nranges)
        qsort(c->ranges, c->nranges, sizeof *c->ranges, range_cmp);
    for (size_t i = 0; i < c->nranges; i++) {
        const struct qc_meta_range *m = &c->ranges[i];
        uint64_t k = m->first;
        /* a shared refcount block is one of QEMU's own findings */
        if (m->role == QC_ROLE_REFBLOCK)
            continue;
        if (any && k < done)
            k = done;
        for (; k < m->first + m->count && k < c->imrt.size; k++) {
            uint64_t v = qc_imrt_get(&c->imrt, k);
            unsigned f = qc_imrt_flags(&c->imrt, k);
            if (v >= 2)
                qc_check_emit(c, QC_P_METADATA_OVERLAP, QC_SEV_INFO, 0, k << c->cb, k,
                              "cluster %" PRIu64 " (%s) is referenced %" PRIu64 " times%s", k,
                              qc_role_name(m->role), v,
                              (f & QC_IMRT_F_DATA) ? ", also as guest data"
                              : (f & QC_IMRT_F_L2) ? ", also as an L2 table" : "");
        }
        if (!any || m->first + m->count > done)
            done = m->first + m->count;
        any = true;
    }
}

static void report_snapshot_ids(struct qc_check *c)
{
    /* quadratic only in the number of snapshots with equal ID length */
    for (size_t i = 0; i < c->snaps.n && c->snaps.n <= 4096; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->snaps.v[i].id_str, c->snaps.v[j].id_str) == 0) {
                qc_check_emit(c, QC_P_SNAPSHOT_DUPLICATE_ID, QC_SEV_INFO, 0,
                              c->snaps.v[i].entry_offset, QC_NO_OFFSET,
                              "snapshots %zu and %zu share the ID '%s'", j, i, c->snaps.v[i].id_str);
                break;
            }
}

/* --- the whole check -------------------------------------------------------------- */

/* qcow2_check_read_snapshot_table. */
static int read_snapshot_table(struct qc_check *c)
{
    const struct qc_header *h = &c->img.hdr;
    uint32_t nb = h->nb_snapshots;
    uint64_t off = h->snapshots_offset;
    bool repair = c->opts.repair_snapshots;
    char *err = NULL, *hint = NULL;
    int r;

    c->snaps.offset = off;
    c->snaps_overhang = 0;
    if (nb > QC_SNAPSHOT_MAX && repair) {
        c->snaps_overhang = nb - QC_SNAPSHOT_MAX;
        qc_check_emit(c, QC_P_SNAPSHOT_OVERHANG, QC_SEV_CORRUPTION, PRINT, 60, QC_NO_OFFSET,
                      "Discarding %u overhanging snapshots", nb - QC_SNAPSHOT_MAX);
        nb = QC_SNAPSHOT_MAX;
    }
    if (nb > QC_SNAPSHOT_MAX || off > (uint64_t)INT64_MAX - (uint64_t)nb * 40 || (off & (c->cs - 1))) {
        bool big = nb > QC_SNAPSHOT_MAX;
        qc_check_emit(c, QC_P_SNAPSHOT_TABLE_INVALID, QC_SEV_ERROR, PRINT | QC_EVL_PROGNAME, 64,
                      QC_NO_OFFSET, "ERROR snapshot table %s", big ? "too large" : "offset invalid");
        if (big)
            qc_check_emit(c, QC_P_QEMU_REPORT, QC_SEV_INFO, PRINT | QC_EVL_FORCE_HINT, QC_NO_OFFSET,
                          QC_NO_OFFSET, "You can force-remove all %u overhanging snapshots with qemu-img check -r all",
                          nb - QC_SNAPSHOT_MAX);
        return big ? -EFBIG : -EINVAL;
    }
    if (repair)
        r = qc_snapshot_table_read_qemu_repair(c->f, off, nb, &c->snaps, &err, &hint);
    else
        r = qc_snapshot_table_read_qemu(c->f, off, nb, &c->snaps, &err, &hint);
    for (size_t i = 0; i < c->snaps.ndrops; i++)
        qc_check_emit(c, QC_P_SNAPSHOT_EXTRA_TOO_LARGE, QC_SEV_CORRUPTION, PRINT, QC_NO_OFFSET,
                      QC_NO_OFFSET, "Discarding too much extra metadata in snapshot table entry %i "
                      "(%u > 1024)", (int)c->snaps.drops[i].index, c->snaps.drops[i].size);
    if (r == 0 && c->snaps.discarded)
        qc_check_emit(c, QC_P_SNAPSHOT_TABLE_TOO_BIG, QC_SEV_CORRUPTION, PRINT, QC_NO_OFFSET,
                      QC_NO_OFFSET, "Discarding %u overhanging snapshots (snapshot table is too big)",
                      c->snaps.discarded);
    if (r < 0) {
        qc_check_emit(c, QC_P_SNAPSHOT_TABLE_INVALID, QC_SEV_ERROR, PRINT | QC_EVL_PROGNAME, off,
                      QC_NO_OFFSET, "ERROR failed to read the snapshot table: %s",
                      err ? err : qc_strerror(r));
        if (hint)
            qc_check_emit(c, QC_P_QEMU_REPORT, QC_SEV_INFO, PRINT, QC_NO_OFFSET, QC_NO_OFFSET,
                          "%s", hint);
        free(err);
        free(hint);
        return r;
    }
    if (h->version >= 3)
        for (size_t i = 0; i < c->snaps.n; i++)
            if (c->snaps.v[i].extra_data_size < 16)
                qc_check_emit(c, QC_P_SNAPSHOT_INCOMPLETE, QC_SEV_CORRUPTION, PRINT,
                              c->snaps.v[i].entry_offset, QC_NO_OFFSET,
                              "%s snapshot table entry %i is incomplete",
                              repair ? "Repairing" : "ERROR", (int)i);
    return 0;
}

int qc_check_run_opened(struct qc_check *c)
{
    struct qc_check_result *res = c->res;
    uint64_t nb;
    int r;

    c->disk.signal = signal_unaligned;
    c->disk.opaque = c;
    if ((r = read_snapshot_table(c)) < 0)
        goto failed;
    nb = (c->file_len + c->cs - 1) >> c->cb;
    if (nb > 0x7fffffffull)
        qc_check_emit(c, QC_P_TOO_MANY_CLUSTERS, QC_SEV_INFO, 0, QC_NO_OFFSET, QC_NO_OFFSET,
                      "the file has %" PRIu64 " clusters; qemu-img check refuses more than "
                      "2147483647 (Check failed: File too large)", nb);
    res->total_clusters = (c->disk_len + c->cs - 1) >> c->cb;
    r = qc_check_calculate(c);
    report_inflate_failures(c);
    if (r < 0)
        goto failed;
    if (c->stop_after_calculate) {
        res->status = QC_CHECK_DONE;
        return 0;
    }
    if ((r = compare_refcounts(c)) < 0)
        goto failed;
    if ((r = check_oflag_copied(c)) < 0)
        goto failed;
    res->image_end_offset = (c->highest + 1) << c->cb;
    res->rebuild_needed = c->rebuild;
    report_overlaps(c);
    report_snapshot_ids(c);
    res->status = QC_CHECK_DONE;
    return 0;
failed:
    res->status = QC_CHECK_FAILED;
    if (!res->error)
        res->error = r == QC_E_NOMEM ? -ENOMEM : r;
    free(res->message);
    res->message = strdup(qc_strerror(res->error));
    return 0;
}

/* --- public entry points ------------------------------------------------------------ */

int qc_check_image(const char *path, const struct qc_check_opts *opts,
                   struct qc_check_result *r, struct qc_check **out)
{
    return qc_check_image_observed(path, opts, NULL, NULL, false, r, out);
}

int qc_check_image_observed(const char *path, const struct qc_check_opts *opts,
                            void (*observer)(void *, const struct qc_ref *), void *opaque,
                            bool count_only, struct qc_check_result *r, struct qc_check **out)
{
    struct qc_check *c = calloc(1, sizeof *c);

    memset(r, 0, sizeof *r);
    if (out)
        *out = NULL;
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return QC_E_NOMEM;
    }
    if (opts)
        c->opts = *opts;
    c->res = r;
    c->observer = observer;
    c->observer_opaque = opaque;
    c->stop_after_calculate = count_only;
    r->problems.limit = c->opts.problem_limit;
    if (qc_check_open(c) == 0) {
        /* the open's own findings (dirty bit, unknown features...) come first */
        for (size_t i = 0; i < c->img.problems.n; i++) {
            const struct qc_problem *p = &c->img.problems.v[i];
            if (p->severity == QC_SEV_INFO && p->kind != QC_P_BITMAPS_WITHOUT_AUTOCLEAR)
                qc_check_emit(c, p->kind, QC_SEV_INFO, 0, p->offset, QC_NO_OFFSET, "%s",
                              p->message ? p->message : "");
        }
        qc_check_run_opened(c);
    }
    if (out)
        *out = c;
    else
        qc_check_free(c);
    return 0;
}

void qc_check_free(struct qc_check *c)
{
    if (!c)
        return;
    if (c->img_open)
        qc_image_close(&c->img);
    qc_refcount_disk_close(&c->disk);
    qc_snapshot_table_free(&c->snaps);
    qc_imrt_free(&c->imrt);
    qc_inflate_finish(c->inflate, &c->inflate_left);
    free(c->inflate_left);
    free(c->l1);
    free(c->ranges);
    free(c->fixes);
    free(c->tbuf);
    free(c->verified_l2);
    free(c->verified_desc);
    free(c->path);
    free(c);
}

void qc_check_result_free(struct qc_check_result *r)
{
    qc_problems_free(&r->problems);
    free(r->message);
    r->message = NULL;
}

int qc_check_exit_code(const struct qc_check_result *r)
{
    switch (r->status) {
    case QC_CHECK_UNSUPPORTED: return 63;
    case QC_CHECK_OPEN_FAILED:
    case QC_CHECK_FAILED: return 1;
    case QC_CHECK_DONE: break;
    }
    if (r->check_errors)
        return 1;
    if (r->corruptions)
        return 2;
    if (r->leaks)
        return 3;
    return 0;
}

uint64_t qc_check_computed_refcount(const struct qc_check *c, uint64_t k)
{
    return qc_imrt_get(&c->imrt, k);
}

int qc_check_disk_refcount(struct qc_check *c, uint64_t k, uint64_t *value)
{
    return qc_refcount_disk_get(&c->disk, k, value);
}

uint64_t qc_check_cluster_count(const struct qc_check *c)
{
    return c->imrt.size;
}

const struct qc_oflag_fix *qc_check_oflag_fixes(const struct qc_check *c, size_t *n)
{
    *n = c->nfixes;
    return c->fixes;
}
