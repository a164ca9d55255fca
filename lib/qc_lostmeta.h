/*
 * Lost metadata or crash debris?  qemu-img check -r frees every leaked
 * cluster.  After a crash those are clusters allocated but never linked,
 * and freeing them loses nothing.  When the metadata that mapped them is
 * lost instead (a zeroed or garbled L1 table, an L1 entry gone), the
 * leaked clusters are the guest's data and the L2 tables that still map
 * it: freeing them destroys what a salvage could recover.
 *
 * qc_lostmeta_assess decides between the two from a finished check's
 * context (computed and on-disk refcounts) and the leaked clusters' bytes.
 * It reads only.
 */
#ifndef QC_LOSTMETA_H
#define QC_LOSTMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qc_check;

/* Signs of lost metadata (struct qc_lostmeta.signs). */
#define QC_LM_L2_MAPS_LEAKED  0x1u   /* a leaked cluster shaped like an L2 table
                                      * maps other leaked clusters */
#define QC_LM_L1_BAD          0x2u   /* ... and the active L1 table is zero or garbage */
#define QC_LM_MOST_LEAKED     0x4u   /* most allocated clusters are leaked, not as a
                                      * tail of never-linked allocations, beside
                                      * corruptions */
#define QC_LM_L1_INTO_L2      0x8u   /* an L1 entry points inside (not at the start
                                      * of) a cluster shaped like an L2 table: the
                                      * table is there, the pointer is damaged, and
                                      * a repair would write L2 fixes into the
                                      * middle of it or free what it maps */

/* Fewest leaked clusters holding data for QC_LM_MOST_LEAKED, and fewest
 * entries of the L2-shaped clusters pointing at leaked clusters for
 * QC_LM_L2_MAPS_LEAKED: a few clusters are what one interrupted write can
 * leave, and what a damaged entry of a tiny image costs; there the repair
 * stays qemu-img check -r. */
#define QC_LM_MOST_LEAKED_MIN 8
#define QC_LM_MAPPED_MIN      16

struct qc_lostmeta {
    bool lost;                 /* the leaks look like lost metadata */
    unsigned signs;            /* QC_LM_* */
    uint64_t allocated;        /* clusters with an on-disk refcount above 0 */
    uint64_t leaked;           /* ... of which nothing references */
    bool leaked_tail;          /* no cluster referenced as guest data lies after the
                                * first leaked cluster (never-linked allocations) */
    /* leaked clusters shaped like L2 tables mapping other leaked clusters */
    uint64_t *l2_like;         /* cluster numbers, ascending */
    size_t n_l2_like;
    uint64_t mapped;           /* distinct clusters they map whose refcount is above
                                * their references (leaked, or a compressed cluster's
                                * host cluster partly leaked) */
    uint64_t mapped_entries;   /* their entries that point at such clusters */
    /* the active L1 table */
    uint64_t l1_entries, l1_nonzero, l1_garbage;
    uint64_t l1_into_l2;       /* unaligned entries landing inside an L2-shaped cluster */
    bool dirty;                /* dirty bit: refcounts may be stale (lazy refcounts) */
};

/* Shape of one cluster read as an L2 table. */
struct qc_l2_shape {
    bool l2_like;              /* every entry valid, at least one nonzero */
    uint64_t entries;          /* entries in the cluster */
    uint64_t nonzero;          /* entries that are not 0 */
    uint64_t mapping;          /* entries pointing at a host cluster */
    uint64_t bad_index;        /* first invalid entry (when not l2_like) */
};

/* Is L2 entry RAW (with subcluster BITMAP for extended L2) valid as an L2
 * entry of an image with 2^CLUSTER_BITS-byte clusters and FILE_LEN bytes?
 * Sets *TARGET to the host cluster it points at, or UINT64_MAX. */
bool qc_l2_entry_plausible(uint64_t raw, uint64_t bitmap, bool extl2, unsigned cluster_bits,
                           uint64_t file_len, uint64_t *target);

/* Classifies BUF (one cluster, 2^CLUSTER_BITS bytes) as an L2 table:
 * big-endian entries (16 bytes with EXTL2), each 0 or an offset aligned to
 * the cluster size inside FILE_LEN with only valid flag bits, or a
 * compressed descriptor inside the file.  With VISIT, each entry's target
 * cluster is handed to it. */
void qc_l2_shape_classify(const uint8_t *buf, unsigned cluster_bits, bool extl2,
                          uint64_t file_len, struct qc_l2_shape *shape,
                          void (*visit)(void *opaque, uint64_t target), void *opaque);

/* Assesses the leaks of finished check C.  Returns 0, or QC_E_NOMEM. */
int qc_lostmeta_assess(struct qc_check *c, struct qc_lostmeta *lm);
void qc_lostmeta_free(struct qc_lostmeta *lm);

#endif
