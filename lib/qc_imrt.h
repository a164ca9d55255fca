/*
 * Computed refcounts of host clusters ("in-memory refcount table"): what
 * every cluster's refcount should be, as qemu-img check counts it.
 *
 * One cell per cluster, saturating at the image's refcount maximum.  Cells
 * are as wide as the refcount entries below 8 bits and one byte otherwise;
 * for 16..64-bit refcounts a cell of 255 means "255 or more, see the side
 * table".  Storage comes in chunks of QC_IMRT_CHUNK clusters, allocated on
 * first write, so memory follows what is referenced, not the file size.
 *
 * Each cluster also carries four flag bits (QC_IMRT_F_*) that the check
 * uses to find OFLAG_COPIED suspects and overlapping uses without a second
 * pass over the L2 tables.
 */
#ifndef QC_IMRT_H
#define QC_IMRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QC_IMRT_CHUNK_BITS 16
#define QC_IMRT_CHUNK      (1ull << QC_IMRT_CHUNK_BITS)

/* Flag bits per cluster. */
#define QC_IMRT_F_COPIED   0x1u   /* an active table entry with OFLAG_COPIED points here */
#define QC_IMRT_F_NOCOPY   0x2u   /* an active table entry without it points here */
#define QC_IMRT_F_DATA     0x4u   /* referenced as guest data */
#define QC_IMRT_F_L2       0x8u   /* referenced as an L2 table */

struct qc_imrt_slab {
    void *map;
    size_t len;
};

struct qc_imrt {
    unsigned order;          /* refcount_order of the image, 0..6 */
    unsigned cell_shift;     /* log2 of the cell width in bits: 0..3 */
    uint64_t max;            /* largest refcount the image can store */
    unsigned fast_limit;     /* byte cells below this value increment in place */
    uint64_t size;           /* logical number of entries */
    size_t ndir;             /* chunk slots */
    uint8_t **cells;         /* per chunk: cells, or NULL (all zero) */
    uint8_t **flags;         /* per chunk: 4 bits per cluster, or NULL */
    /* counts of 255 and more (order >= 4): open addressing, key = cluster + 1 */
    uint64_t *big_keys;
    uint64_t *big_vals;
    size_t big_cap, big_n;
    size_t nchunks;          /* chunks allocated */
    /* large tables carve chunks out of 2 MiB-aligned slabs (huge pages) */
    bool use_slabs;
    struct qc_imrt_slab *slabs;
    size_t nslabs;
    uint8_t *slab_next;
    size_t slab_left;
};

/* An empty table of SIZE entries for 2^ORDER-bit refcounts. */
int qc_imrt_init(struct qc_imrt *t, unsigned order, uint64_t size);
void qc_imrt_free(struct qc_imrt *t);
/* All counts and flags back to zero (keeps the size). */
void qc_imrt_clear(struct qc_imrt *t);

/* Room for entries [0, CAP) without changing the size (flags may be set
 * up to it). */
int qc_imrt_reserve(struct qc_imrt *t, uint64_t cap);

/* Grows the logical size to at least SIZE (new entries are zero). */
int qc_imrt_grow(struct qc_imrt *t, uint64_t size);

uint64_t qc_imrt_get(const struct qc_imrt *t, uint64_t k);
/* Sets entry K (< size) to V (<= max). */
int qc_imrt_set(struct qc_imrt *t, uint64_t k, uint64_t v);
/* QEMU's counting step for cluster K (< size): 1 when incremented, 0 when
 * the count is already at the maximum (it stays there), <0 out of memory. */
int qc_imrt_inc(struct qc_imrt *t, uint64_t k);

unsigned qc_imrt_flags(const struct qc_imrt *t, uint64_t k);
int qc_imrt_flags_or(struct qc_imrt *t, uint64_t k, unsigned bits);
void qc_imrt_flags_and(struct qc_imrt *t, uint64_t k, unsigned keep);

/* Byte-cell fast path: the cell of K if its chunk exists and cells are
 * bytes, else NULL (use the functions above). */
static inline uint8_t *qc_imrt_byte_cell(struct qc_imrt *t, uint64_t k)
{
    size_t c = (size_t)(k >> QC_IMRT_CHUNK_BITS);
    if (t->cell_shift != 3 || c >= t->ndir || !t->cells[c])
        return NULL;
    return t->cells[c] + (k & (QC_IMRT_CHUNK - 1));
}

/* Is chunk C (clusters [C*CHUNK, (C+1)*CHUNK)) entirely zero and flagless? */
static inline bool qc_imrt_chunk_empty(const struct qc_imrt *t, uint64_t c)
{
    return c >= t->ndir || (!t->cells[c] && !t->flags[c]);
}

/* Bytes of memory the table holds. */
uint64_t qc_imrt_memory(const struct qc_imrt *t);

#endif
