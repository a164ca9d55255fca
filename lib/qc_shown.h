/*
 * Tables a view has shown.  A table named by many entries (an L2 table by
 * every L1 entry, one refcount block by every reftable entry) is shown
 * once; later references point back to the first.  A table that overlaps
 * clusters already shown as part of another is not shown either, so what
 * a view reads and prints is bounded by the file, not by how often its
 * tables are named.
 */
#ifndef QC_SHOWN_H
#define QC_SHOWN_H

#include <stddef.h>
#include <stdint.h>

struct qc_shown_slot {
    uint64_t offset;       /* table offset + 1 (0: free slot) */
    uint64_t owner;        /* the entry that showed it */
};

struct qc_shown {
    uint64_t file_size;
    unsigned cluster_bits;
    uint64_t *bits;        /* one bit per cluster of the file: shown */
    struct qc_shown_slot *slots;   /* open addressing: table offsets shown */
    size_t cap, used;
};

enum qc_shown_kind {
    QC_SHOWN_NEW,          /* not shown before: show it (now recorded) */
    QC_SHOWN_SAME,         /* a table at this offset was shown */
    QC_SHOWN_OVERLAP,      /* part of it was shown as part of another table */
};

/* 0, or QC_E_NOMEM. */
int qc_shown_init(struct qc_shown *s, uint64_t file_size, unsigned cluster_bits);
void qc_shown_free(struct qc_shown *s);
/* The table at [OFF, OFF+LEN) (its part inside the file), named by entry
 * OWNER.  SAME: *PREV is the entry that showed it; OVERLAP: *PREV is the
 * offset of the first of its clusters already shown; NEW: recorded as
 * shown by OWNER (also when OFF lies past the end of the file, so later
 * references to it point back too). */
enum qc_shown_kind qc_shown_claim(struct qc_shown *s, uint64_t off, uint64_t len, uint64_t owner,
                                  uint64_t *prev);

#endif
