/*
 * What a host cluster is used for: header, an L1 table, the L2 table of
 * some L1 index, data of a guest offset (in the active image or a
 * snapshot), a refcount table or block, bitmap structures, or nothing
 * (free, or leaked when its refcount says otherwise).  The answer comes
 * from the same walk as qemu-img check's reference count.
 */
#ifndef QC_CLUSTER_H
#define QC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_check_int.h"

#define QC_NO_GUEST UINT64_MAX

/* One use of the cluster. */
struct qc_cluster_use {
    enum qc_role role;
    int64_t snapshot;          /* snapshot number, -1 for the active image */
    uint64_t index, sub;       /* see enum qc_role */
    uint64_t guest_offset;     /* data: the guest offset it holds, else QC_NO_GUEST */
    uint64_t offset, size;     /* the byte range referenced */
    uint64_t entry;            /* the raw table entry, 0 when there is none */
};

enum qc_cluster_state {
    QC_CLUSTER_USED,           /* referenced, and the refcount agrees */
    QC_CLUSTER_MISMATCH,       /* referenced, but the refcount disagrees */
    QC_CLUSTER_FREE,           /* unreferenced, refcount 0 */
    QC_CLUSTER_LEAKED,         /* unreferenced, refcount above 0 */
    QC_CLUSTER_UNREADABLE,     /* its refcount cannot be read */
    QC_CLUSTER_UNKNOWN,        /* the image cannot be walked (see message) */
};

struct qc_cluster_info {
    uint64_t cluster;
    struct qc_cluster_use *uses;
    size_t n;
    uint64_t refcount;         /* on disk */
    enum qc_cluster_state state;
    char *message;             /* why UNKNOWN */
};

/* Answers for CLUSTERS[0..N) of the image at PATH, one walk for all.
 * Returns 0 (see each state), or QC_E_NOMEM. */
int qc_cluster_query(const char *path, const uint64_t *clusters, size_t n,
                     struct qc_cluster_info *infos);
void qc_cluster_info_free(struct qc_cluster_info *info);

const char *qc_cluster_state_name(enum qc_cluster_state s);
/* "L2 table of L1 index 3 (snapshot 1)", "data of guest offset 0x50000"... */
char *qc_cluster_use_describe(const struct qc_cluster_use *u);

#endif
