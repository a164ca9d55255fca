/* Computed refcounts: chunked cells, side table for large counts, flags. */
#include "qc_imrt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qc_io.h"
#include "qc_refcount.h"

#define BIG 255u   /* byte cell value meaning "see the side table" */

/* Tables of at least this many clusters use slabs: one page fault per
 * 2 MiB instead of one per 4 KiB when the walk first touches them. */
#define SLAB_THRESHOLD (1ull << 22)
#define SLAB_ALIGN     (2u << 20)
#define SLAB_USABLE    (8u << 20)

static void chunks_release(struct qc_imrt *t);

static size_t chunk_cell_bytes(const struct qc_imrt *t)
{
    return (size_t)((QC_IMRT_CHUNK << t->cell_shift) / 8);
}

static size_t chunk_flag_bytes(void)
{
    return (size_t)(QC_IMRT_CHUNK / 2);
}

static int reserve_dir(struct qc_imrt *t, uint64_t size)
{
    uint64_t need = (size + QC_IMRT_CHUNK - 1) >> QC_IMRT_CHUNK_BITS;
    size_t n;
    uint8_t **c, **f;

    if (need <= t->ndir)
        return 0;
    if (need > SIZE_MAX / sizeof(*c) / 2)
        return QC_E_NOMEM;
    n = (size_t)need;
    c = realloc(t->cells, n * sizeof *c);
    if (!c)
        return QC_E_NOMEM;
    t->cells = c;
    f = realloc(t->flags, n * sizeof *f);
    if (!f)
        return QC_E_NOMEM;
    t->flags = f;
    memset(c + t->ndir, 0, (n - t->ndir) * sizeof *c);
    memset(f + t->ndir, 0, (n - t->ndir) * sizeof *f);
    t->ndir = n;
    return 0;
}

int qc_imrt_init(struct qc_imrt *t, unsigned order, uint64_t size)
{
    memset(t, 0, sizeof *t);
    if (order > 6)
        return QC_E_RANGE;
    t->order = order;
    t->cell_shift = order < 3 ? order : 3;
    t->max = qc_refcount_max(order);
    /* byte cells hold exact counts up to 254; 255 itself is exact only for
     * 8-bit refcounts, where it is also the maximum */
    t->fast_limit = order == 3 ? 255 : order > 3 ? BIG - 1 : 0;
    t->size = size;
    t->use_slabs = size >= SLAB_THRESHOLD;
    return reserve_dir(t, size);
}

void qc_imrt_free(struct qc_imrt *t)
{
    chunks_release(t);
    free(t->cells);
    free(t->flags);
    free(t->big_keys);
    free(t->big_vals);
    memset(t, 0, sizeof *t);
}

void qc_imrt_clear(struct qc_imrt *t)
{
    chunks_release(t);
    free(t->big_keys);
    free(t->big_vals);
    t->big_keys = t->big_vals = NULL;
    t->big_cap = t->big_n = 0;
}

int qc_imrt_reserve(struct qc_imrt *t, uint64_t cap)
{
    return reserve_dir(t, cap);
}

int qc_imrt_grow(struct qc_imrt *t, uint64_t size)
{
    int r;

    if (size <= t->size)
        return 0;
    if ((r = reserve_dir(t, size)) < 0)
        return r;
    t->size = size;
    return 0;
}

/* --- side table for counts of 255 and more --------------------------------- */

static size_t big_slot(const struct qc_imrt *t, uint64_t k)
{
    uint64_t h = (k + 1) * 0x9E3779B97F4A7C15ull;
    size_t mask = t->big_cap - 1;
    size_t i = (size_t)(h >> 20) & mask;

    while (t->big_keys[i] && t->big_keys[i] != k + 1)
        i = (i + 1) & mask;
    return i;
}

static uint64_t big_get(const struct qc_imrt *t, uint64_t k)
{
    size_t i;

    if (!t->big_cap)
        return BIG;
    i = big_slot(t, k);
    return t->big_keys[i] ? t->big_vals[i] : BIG;
}

static int big_put(struct qc_imrt *t, uint64_t k, uint64_t v)
{
    size_t i;

    if ((t->big_n + 1) * 2 > t->big_cap) {
        size_t ncap = t->big_cap ? t->big_cap * 2 : 64;
        uint64_t *ok = t->big_keys, *ov = t->big_vals;
        size_t ocap = t->big_cap;

        if (ncap > SIZE_MAX / sizeof(uint64_t))
            return QC_E_NOMEM;
        t->big_keys = calloc(ncap, sizeof(uint64_t));
        t->big_vals = calloc(ncap, sizeof(uint64_t));
        if (!t->big_keys || !t->big_vals) {
            free(t->big_keys);
            free(t->big_vals);
            t->big_keys = ok;
            t->big_vals = ov;
            return QC_E_NOMEM;
        }
        t->big_cap = ncap;
        for (size_t j = 0; j < ocap; j++) {
            if (ok[j]) {
                size_t s = big_slot(t, ok[j] - 1);
                t->big_keys[s] = ok[j];
                t->big_vals[s] = ov[j];
            }
        }
        free(ok);
        free(ov);
    }
    i = big_slot(t, k);
    if (!t->big_keys[i]) {
        t->big_keys[i] = k + 1;
        t->big_n++;
    }
    t->big_vals[i] = v;
    return 0;
}

/* Removing keeps the probe chains intact by re-inserting the run after it. */
static void big_del(struct qc_imrt *t, uint64_t k)
{
    size_t mask, i;

    if (!t->big_cap)
        return;
    mask = t->big_cap - 1;
    i = big_slot(t, k);
    if (!t->big_keys[i])
        return;
    t->big_keys[i] = 0;
    t->big_n--;
    for (size_t j = (i + 1) & mask; t->big_keys[j]; j = (j + 1) & mask) {
        uint64_t key = t->big_keys[j], val = t->big_vals[j];
        size_t s;
        t->big_keys[j] = 0;
        s = big_slot(t, key - 1);
        t->big_keys[s] = key;
        t->big_vals[s] = val;
    }
}

/* --- cells ------------------------------------------------------------------- */

/* Zeroed memory for one chunk's cells or flags. */
static uint8_t *chunk_alloc(struct qc_imrt *t, size_t bytes)
{
    uint8_t *p;

    if (!t->use_slabs)
        return calloc(1, bytes);
    if (t->slab_left < bytes) {
        struct qc_imrt_slab *v = realloc(t->slabs, (t->nslabs + 1) * sizeof *v);
        size_t len = SLAB_USABLE + SLAB_ALIGN;
        void *m;
        if (!v)
            return NULL;
        t->slabs = v;
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        t->slabs[t->nslabs].map = m;
        t->slabs[t->nslabs].len = len;
        t->nslabs++;
        t->slab_next = (uint8_t *)(((uintptr_t)m + SLAB_ALIGN - 1) & ~(uintptr_t)(SLAB_ALIGN - 1));
        t->slab_left = SLAB_USABLE;
#ifdef MADV_HUGEPAGE
        madvise(t->slab_next, SLAB_USABLE, MADV_HUGEPAGE);
#endif
    }
    p = t->slab_next;
    t->slab_next += bytes;
    t->slab_left -= bytes;
    return p;
}

static void chunks_release(struct qc_imrt *t)
{
    for (size_t i = 0; i < t->ndir; i++) {
        if (!t->use_slabs) {
            free(t->cells[i]);
            free(t->flags[i]);
        }
        t->cells[i] = t->flags[i] = NULL;
    }
    for (size_t i = 0; i < t->nslabs; i++)
        munmap(t->slabs[i].map, t->slabs[i].len);
    free(t->slabs);
    t->slabs = NULL;
    t->nslabs = 0;
    t->slab_next = NULL;
    t->slab_left = 0;
    t->nchunks = 0;
}

static uint8_t *cells_of(struct qc_imrt *t, uint64_t k, bool create)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);

    if (c >= t->ndir)
        return NULL;
    if (!t->cells[c] && create) {
        t->cells[c] = chunk_alloc(t, chunk_cell_bytes(t));
        if (t->cells[c])
            t->nchunks++;
    }
    return t->cells[c];
}

static uint64_t cell_read(const struct qc_imrt *t, const uint8_t *cells, uint64_t i)
{
    unsigned bits = 1u << t->cell_shift;

    if (bits == 8)
        return cells[i];
    return (cells[(i * bits) / 8] >> ((i * bits) % 8)) & ((1u << bits) - 1);
}

static void cell_write(const struct qc_imrt *t, uint8_t *cells, uint64_t i, unsigned v)
{
    unsigned bits = 1u << t->cell_shift;
    unsigned shift;
    uint8_t mask;

    if (bits == 8) {
        cells[i] = (uint8_t)v;
        return;
    }
    shift = (unsigned)((i * bits) % 8);
    mask = (uint8_t)(((1u << bits) - 1) << shift);
    cells[(i * bits) / 8] = (uint8_t)((cells[(i * bits) / 8] & ~mask) | ((v << shift) & mask));
}

uint64_t qc_imrt_get(const struct qc_imrt *t, uint64_t k)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);
    uint64_t v;

    if (c >= t->ndir || !t->cells[c])
        return 0;
    v = cell_read(t, t->cells[c], k & (QC_IMRT_CHUNK - 1));
    if (t->order > 3 && v == BIG)
        v = big_get(t, k);
    return v;
}

int qc_imrt_set(struct qc_imrt *t, uint64_t k, uint64_t v)
{
    uint8_t *cells;
    uint64_t i = k & (QC_IMRT_CHUNK - 1);

    if (k >= t->size || v > t->max)
        return QC_E_RANGE;
    cells = cells_of(t, k, v != 0);
    if (!cells)
        return v ? QC_E_NOMEM : 0;
    if (t->order > 3) {
        if (cells[i] == BIG)
            big_del(t, k);
        if (v >= BIG) {
            int r = big_put(t, k, v);
            if (r < 0)
                return r;
            cells[i] = BIG;
            return 0;
        }
    }
    cell_write(t, cells, i, (unsigned)v);
    return 0;
}

int qc_imrt_inc(struct qc_imrt *t, uint64_t k)
{
    uint64_t v = qc_imrt_get(t, k);
    int r;

    if (v == t->max)
        return 0;
    r = qc_imrt_set(t, k, v + 1);
    return r < 0 ? r : 1;
}

/* --- flags ------------------------------------------------------------------- */

unsigned qc_imrt_flags(const struct qc_imrt *t, uint64_t k)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);
    uint64_t i = k & (QC_IMRT_CHUNK - 1);

    if (c >= t->ndir || !t->flags[c])
        return 0;
    return (t->flags[c][i / 2] >> ((i & 1) * 4)) & 0xF;
}

int qc_imrt_flags_or(struct qc_imrt *t, uint64_t k, unsigned bits)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);
    uint64_t i = k & (QC_IMRT_CHUNK - 1);

    if (c >= t->ndir)
        return QC_E_RANGE;
    if (!t->flags[c]) {
        t->flags[c] = chunk_alloc(t, chunk_flag_bytes());
        if (!t->flags[c])
            return QC_E_NOMEM;
    }
    t->flags[c][i / 2] |= (uint8_t)((bits & 0xF) << ((i & 1) * 4));
    return 0;
}

void qc_imrt_flags_and(struct qc_imrt *t, uint64_t k, unsigned keep)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);
    uint64_t i = k & (QC_IMRT_CHUNK - 1);

    if (c >= t->ndir || !t->flags[c])
        return;
    t->flags[c][i / 2] &= (uint8_t)~((~keep & 0xFu) << ((i & 1) * 4));
}

uint64_t qc_imrt_memory(const struct qc_imrt *t)
{
    uint64_t m = (uint64_t)t->ndir * 2 * sizeof(uint8_t *);
    for (size_t i = 0; i < t->ndir; i++) {
        if (t->cells[i])
            m += chunk_cell_bytes(t);
        if (t->flags[i])
            m += chunk_flag_bytes();
    }
    return m + (uint64_t)t->big_cap * 16;
}
