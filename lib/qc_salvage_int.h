/* Internals shared by the salvage engine's files. */
#ifndef QC_SALVAGE_INT_H
#define QC_SALVAGE_INT_H

#include "qc_salvage.h"

/* What a host cluster is used as (qc_salvage.role). */
enum qc_salvage_role {
    QC_SR_NONE,
    QC_SR_HEADER,
    QC_SR_L1,           /* the L1 table being salvaged */
    QC_SR_L2,           /* one of its L2 tables */
    QC_SR_REFTABLE,
    QC_SR_REFBLOCK,
    QC_SR_SNAPTABLE,
    QC_SR_OTHER_META,   /* an L1 or L2 table of another disk (snapshot or active) */
    QC_SR_DATA,         /* data of the disk being salvaged */
    QC_SR_CANDIDATE,    /* an orphan L2 table candidate */
    QC_SR_L1_CANDIDATE, /* an orphan L1-like table */
    QC_SR_OTHER_DATA,   /* data of another disk (may be shared with this one) */
};

int qc_salvage_add_range(struct qc_salvage *s, uint64_t guest, uint64_t len,
                         enum qc_salvage_status st, uint64_t entry, uint64_t host,
                         const char *evidence);
int qc_salvage_add_damage(struct qc_salvage *s, const char *structure, uint64_t offset,
                          const char *problem, const char *instead);
int qc_salvage_add_orphan(struct qc_salvage *s, uint64_t host, const char *looks_like);
int qc_salvage_sort(struct qc_salvage *s);
/* Gives the clusters of [OFF, OFF+LEN) inside the file role ROLE (only those
 * without one when ONLY_FREE). */
void qc_salvage_set_role(struct qc_salvage *s, uint64_t off, uint64_t len, int role,
                         bool only_free);

/* The L1 table to start from, as the header or a snapshot names it. */
struct qc_salvage_l1 {
    uint64_t offset;
    uint32_t size;
    const char *what;
};

struct qc_header;
struct qc_snapshot_table;
/* The walk: intact tables first, then orphans (qc_salvage_walk.c). */
int qc_salvage_walk(struct qc_salvage *s, const struct qc_salvage_l1 *l1,
                    const struct qc_header *h, const struct qc_snapshot_table *t);

/* A compressed cluster's bytes (qc_salvage_out.c); 0 or a negative code. */
int qc_salvage_inflate(struct qc_salvage *s, uint64_t raw, uint8_t *buf);

#endif
