/* Internals of the check shared by its modules (qc_check*.c) and by the
 * modules that act on a finished check (repair, cluster queries). */
#ifndef QC_CHECK_INT_H
#define QC_CHECK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_bitmap.h"
#include "qc_check_inflate.h"
#include "qc_check.h"
#include "qc_ext.h"
#include "qc_image.h"
#include "qc_imrt.h"
#include "qc_reader.h"
#include "qc_refcount.h"
#include "qc_snapshot.h"

/* What a counted range is, for overlap reports and cluster queries. */
enum qc_role {
    QC_ROLE_HEADER,
    QC_ROLE_L1,            /* active L1 table */
    QC_ROLE_SNAPSHOT_L1,   /* index = snapshot number */
    QC_ROLE_L2,            /* index = L1 index; snapshot in ctx */
    QC_ROLE_DATA,          /* index = L1 index, sub = L2 index */
    QC_ROLE_COMPRESSED,
    QC_ROLE_SNAPSHOT_TABLE,
    QC_ROLE_REFTABLE,
    QC_ROLE_REFBLOCK,      /* index = reftable index */
    QC_ROLE_CRYPTO,
    QC_ROLE_BITMAP_DIR,
    QC_ROLE_BITMAP_TABLE,  /* index = bitmap number */
    QC_ROLE_BITMAP_DATA,   /* index = bitmap number, sub = table index */
};
const char *qc_role_name(enum qc_role r);

/* A counted reference, as reported to an observer. */
struct qc_ref {
    enum qc_role role;
    uint64_t offset, size;     /* the byte range counted */
    int64_t snapshot;          /* snapshot number, -1 for the active image */
    uint64_t index, sub;       /* role-specific (see enum qc_role) */
    uint64_t entry;            /* the raw table entry, when there is one */
};

/* Clusters of a structure that nothing else may share. */
struct qc_meta_range {
    uint64_t first, count;     /* clusters */
    enum qc_role role;
    uint64_t index;
};

struct qc_check {
    enum qc_problem_kind open_kind; /* the finding of a refused open (QC_P_OPEN_FAILED) */
    char *path;
    struct qc_check_opts opts;
    struct qc_check_result *res;

    struct qc_image img;
    bool img_open;
    struct qc_file *f;

    /* geometry */
    unsigned cb;               /* cluster_bits */
    uint64_t cs;
    unsigned order;
    bool extl2;
    unsigned l2_esize;         /* 8 or 16 */
    uint64_t l2_entries;
    bool data_file;            /* an external data file is in use */
    uint64_t disk_len;         /* virtual size rounded down to 512 */
    uint64_t file_len;         /* as QEMU sees it: rounded up to 512 bytes */

    /* what the open left (as QEMU holds it) */
    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1;              /* the active L1 entries the file holds */
    uint64_t l1_stored;        /* entries past this read as 0 */
    struct qc_refcount_disk disk;
    uint64_t crypto_offset, crypto_length;
    uint32_t nb_bitmaps;
    uint64_t bm_dir_offset, bm_dir_size;

    /* the check */
    struct qc_snapshot_table snaps;
    uint32_t snaps_overhang;   /* snapshots past 65536 a repairing read discarded */
    struct qc_imrt imrt;
    bool imrt_ready;
    bool rebuild;
    uint64_t highest;
    /* OFLAG_COPIED bookkeeping of the walk (see qc_check.c) */
    uint64_t flag_limit;       /* clusters that carry flags */
    bool active_refs;
    uint64_t active_max_cluster;
    bool oflag_datafile;
    bool oflag_suspect;
    bool signaled;

    struct qc_meta_range *ranges;
    size_t nranges, ranges_cap;

    struct qc_oflag_fix *fixes;
    size_t nfixes, fixes_cap;

    /* observer of every counted reference (cluster queries) */
    void (*observer)(void *opaque, const struct qc_ref *ref);
    void *observer_opaque;
    bool stop_after_calculate;   /* queries need no comparison */

    /* buffers */
    uint8_t *tbuf;             /* batched table reads */
    size_t tbuf_cap;
    struct qc_inflate_pool *inflate;          /* inflating compressed clusters */
    struct qc_inflate_failure *inflate_left;  /* (freed with the context) */
    uint64_t *verified_l2;     /* L2 tables whose compressed clusters were inflated */
    size_t verified_cap, verified_n;
    uint64_t *verified_desc;   /* descriptors inflated lately (direct-mapped) */
    uint64_t empty_l2[1024];   /* L2 tables found empty (offset + 1, direct-mapped) */
};

#define QC_EVL_NOCOUNT 0x100u   /* internal: a finding that counts nothing */

/* Reports a line and/or finding: counts it by SEV (corruption, leak, check
 * error; info counts nothing), keeps it in the result and hands it to the
 * sink.  KIND QC_P_QEMU_REPORT is a line that is no finding. */
void qc_check_emit(struct qc_check *c, enum qc_problem_kind kind, enum qc_severity sev,
                   unsigned flags, uint64_t offset, uint64_t cluster,
                   const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* The same with the finding's kind-specific VALUE (qc_problem.value), such
 * as the length of a range past the end of the file. */
void qc_check_emit_value(struct qc_check *c, enum qc_problem_kind kind, enum qc_severity sev,
                         unsigned flags, uint64_t offset, uint64_t cluster, uint64_t value,
                         const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* Opening as qemu-img check opens (qc_check_open.c): 0 when the check can
 * run; otherwise sets res->status/message and returns 1. */
int qc_check_open(struct qc_check *c);

/* The counting pass alone (for cluster queries): returns <0 when QEMU's
 * check would stop. */
int qc_check_calculate(struct qc_check *c);

/* qc_check_image with an observer of every counted reference; with
 * COUNT_ONLY the check stops after counting (no comparison, no OFLAG pass,
 * status stays QC_CHECK_DONE unless something failed). */
int qc_check_image_observed(const char *path, const struct qc_check_opts *opts,
                            void (*observer)(void *, const struct qc_ref *), void *opaque,
                            bool count_only, struct qc_check_result *r, struct qc_check **out);

/* Everything after a successful open (qc_check.c). */
int qc_check_run_opened(struct qc_check *c);

#endif
