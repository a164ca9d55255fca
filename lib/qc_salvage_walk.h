/* The salvage walk's state, shared by its two files (qc_salvage_walk.c,
 * qc_salvage_orphan.c). */
#ifndef QC_SALVAGE_WALK_H
#define QC_SALVAGE_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_salvage_int.h"

/* State of one L1 slot of the disk being salvaged. */
enum qc_slot {
    QC_SLOT_EMPTY,     /* entry 0 in a trusted L1: unallocated */
    QC_SLOT_MAPPED,    /* an L2 table is known or placed */
    QC_SLOT_OPEN,      /* the entry is lost or damaged: evidence may place a table */
    QC_SLOT_LOST,      /* the table it names is not there */
};

struct qc_walk {
    struct qc_salvage *s;
    uint64_t *l1;          /* raw entries, NSLOTS (0 where none) */
    uint64_t nslots;
    uint8_t *slot;         /* enum qc_slot */
    uint64_t *l2;          /* the table of a MAPPED slot */
    uint64_t cover;        /* guest bytes per L2 table */
    unsigned esize;        /* 8, or 16 with extended L2 */
    bool l1_damaged;       /* every slot is open */
    bool l1_reconstructed; /* the L1 table itself was found by scan */
    uint8_t *buf;          /* one cluster */
    uint64_t *meta_hash;   /* sorted hashes of the refcount structures' clusters */
    uint64_t nmeta_hash;

    /* orphan L2 candidates (host offsets, ascending) */
    uint64_t *cand;
    uint64_t ncand;
    int64_t *cand_slot;    /* placed slot or -1 */
    uint64_t *l1cand;      /* L1-like tables found by scan */
    uint64_t nl1cand;
};

/* Reads table cluster OFF into W->buf; 0 or a negative code. */
int qc_walk_read(struct qc_walk *w, uint64_t off);
/* The entries of the L2 table at OFF for slot I, with status ST. */
int qc_walk_l2(struct qc_walk *w, uint64_t i, uint64_t off, enum qc_salvage_status st,
               const char *evidence);
/* Orphans: candidates, their placement, and their walk. */
int qc_walk_orphans(struct qc_walk *w);
/* Header lost: the slots from the L1-like tables found; 1 when none. */
int qc_walk_size_from_candidates(struct qc_walk *w);
int qc_walk_find_candidates(struct qc_walk *w);
bool qc_role_is_meta(int role);

#endif
