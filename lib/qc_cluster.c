/* Cluster ownership from the reference-counting walk. */
#include "qc_cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct query {
    const uint64_t *clusters;
    size_t n;
    struct qc_cluster_info *infos;
    unsigned cb;
    uint64_t l2_entries;
    bool nomem;
};

static void observe(void *opaque, const struct qc_ref *ref)
{
    struct query *q = opaque;
    uint64_t first = ref->offset >> q->cb;
    uint64_t last = (ref->offset + (ref->size ? ref->size - 1 : 0)) >> q->cb;

    for (size_t i = 0; i < q->n; i++) {
        struct qc_cluster_info *info = &q->infos[i];
        struct qc_cluster_use *u, *v;

        if (q->clusters[i] < first || q->clusters[i] > last)
            continue;
        v = realloc(info->uses, (info->n + 1) * sizeof *v);
        if (!v) {
            q->nomem = true;
            continue;
        }
        info->uses = v;
        u = &v[info->n++];
        u->role = ref->role;
        u->snapshot = ref->snapshot;
        u->index = ref->index;
        u->sub = ref->sub;
        u->offset = ref->offset;
        u->size = ref->size;
        u->entry = ref->entry;
        u->guest_offset = QC_NO_GUEST;
        if (ref->role == QC_ROLE_DATA || ref->role == QC_ROLE_COMPRESSED)
            u->guest_offset = (ref->index * q->l2_entries + ref->sub) << q->cb;
    }
}

int qc_cluster_query(const char *path, const uint64_t *clusters, size_t n,
                     struct qc_cluster_info *infos)
{
    struct query q = { clusters, n, infos, 0, 0, false };
    struct qc_check_result r;
    struct qc_check *c = NULL;
    struct qc_image probe;
    int e;

    memset(infos, 0, n * sizeof *infos);
    for (size_t i = 0; i < n; i++) {
        infos[i].cluster = clusters[i];
        infos[i].state = QC_CLUSTER_UNKNOWN;
    }
    /* the geometry first, to map ranges to clusters */
    if (qc_image_open(&probe, path, 0, QC_VALIDATE_CHECK, NULL) == 0) {
        if (probe.geometry_ok) {
            q.cb = probe.cluster_bits;
            q.l2_entries = probe.l2_entries;
        }
        qc_image_close(&probe);
    }
    if (!q.cb) {
        for (size_t i = 0; i < n; i++)
            infos[i].message = strdup("not a qcow2 image QEMU would open");
        return 0;
    }
    e = qc_check_image_observed(path, NULL, observe, &q, true, &r, &c);
    if (e < 0 || q.nomem) {
        qc_check_result_free(&r);
        qc_check_free(c);
        return QC_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct qc_cluster_info *info = &infos[i];
        if (r.status != QC_CHECK_DONE) {
            info->message = strdup(r.message ? r.message : "the check cannot run");
            continue;
        }
        if (qc_check_disk_refcount(c, info->cluster, &info->refcount) < 0) {
            info->state = QC_CLUSTER_UNREADABLE;
            continue;
        }
        if (info->n)
            info->state = qc_check_computed_refcount(c, info->cluster) == info->refcount
                          ? QC_CLUSTER_USED : QC_CLUSTER_MISMATCH;
        else
            info->state = info->refcount ? QC_CLUSTER_LEAKED : QC_CLUSTER_FREE;
    }
    qc_check_result_free(&r);
    qc_check_free(c);
    return 0;
}

void qc_cluster_info_free(struct qc_cluster_info *info)
{
    free(info->uses);
    free(info->message);
    info->uses = NULL;
    info->message = NULL;
    info->n = 0;
}

const char *qc_cluster_state_name(enum qc_cluster_state s)
{
    switch (s) {
    case QC_CLUSTER_USED: return "used";
    case QC_CLUSTER_MISMATCH: return "refcount-mismatch";
    case QC_CLUSTER_FREE: return "free";
    case QC_CLUSTER_LEAKED: return "leaked";
    case QC_CLUSTER_UNREADABLE: return "refcount-unreadable";
    default: return "unknown";
    }
}

char *qc_cluster_use_describe(const struct qc_cluster_use *u)
{
    char where[48] = "";
    char *s = NULL;
    int r;

    if (u->snapshot >= 0)
        snprintf(where, sizeof where, " (snapshot %" PRId64 ")", u->snapshot);
    switch (u->role) {
    case QC_ROLE_L2:
        r = asprintf(&s, "L2 table of L1 index %" PRIu64 "%s", u->index, where);
        break;
    case QC_ROLE_DATA:
        r = asprintf(&s, "data of guest offset 0x%" PRIx64 "%s", u->guest_offset, where);
        break;
    case QC_ROLE_COMPRESSED:
        r = asprintf(&s, "compressed data of guest offset 0x%" PRIx64 " (bytes 0x%" PRIx64
                     "+0x%" PRIx64 ")%s", u->guest_offset, u->offset, u->size, where);
        break;
    case QC_ROLE_SNAPSHOT_L1:
        r = asprintf(&s, "L1 table of snapshot %" PRIu64, u->index);
        break;
    case QC_ROLE_REFBLOCK:
        r = asprintf(&s, "refcount block %" PRIu64, u->index);
        break;
    case QC_ROLE_BITMAP_TABLE:
        r = asprintf(&s, "table of bitmap %" PRIu64, u->index);
        break;
    case QC_ROLE_BITMAP_DATA:
        r = asprintf(&s, "data of bitmap %" PRIu64 " (table entry %" PRIu64 ")", u->index, u->sub);
        break;
    default:
        r = asprintf(&s, "%s", qc_role_name(u->role));
        break;
    }
    return r < 0 ? NULL : s;
}
