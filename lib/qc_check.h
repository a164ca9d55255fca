/*
 * The consistency check of a qcow2 image, with qemu-img check's verdict
 * (QEMU 7.2): the same counts, the same per-problem lines in the same order,
 * the same refusals, plus findings QEMU keeps to itself.
 *
 * Reading is all it does.  The context it leaves behind (computed and
 * on-disk refcounts, the OFLAG_COPIED entries to fix, whether the refcount
 * structure must be rebuilt) is what a repair acts on.
 */
#ifndef QC_CHECK_H
#define QC_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_problem.h"

enum qc_check_status {
    QC_CHECK_DONE,          /* the check ran to its end: the counters are QEMU's */
    QC_CHECK_FAILED,        /* it stopped part way: "Check failed: <strerror>" */
    QC_CHECK_OPEN_FAILED,   /* the image cannot be opened: "Could not open ..." */
    QC_CHECK_UNSUPPORTED,   /* not a format with a check (qemu-img: exit 63) */
};

/* Flags of an event line. */
#define QC_EVL_PRINTED   0x1u   /* QEMU prints LINE on stderr */
#define QC_EVL_PROGNAME  0x2u   /* ... through error_report: "qemu-img: " first */
#define QC_EVL_NO_NL     0x4u   /* ... without a newline */
/* What a line is, for engines that act on it (never on its text): */
#define QC_EVL_PREALLOC  0x10u  /* L2_UNALIGNED: a preallocated zero cluster's entry */
#define QC_EVL_REFBLOCK_CORRUPT 0x20u /* QEMU's corruption event: an unaligned refblock */
#define QC_EVL_L2_READ   0x40u  /* CHECK_IO_ERROR: an L2 table could not be read */
#define QC_EVL_FORCE_HINT 0x80u /* QEMU's "You can force-remove ..." hint */
#define QC_EVL_TAGS (QC_EVL_PREALLOC | QC_EVL_REFBLOCK_CORRUPT | QC_EVL_L2_READ | QC_EVL_FORCE_HINT)

/* One line of QEMU's report and/or one finding, in QEMU's order. */
struct qc_check_event {
    const struct qc_problem *problem;   /* the finding, NULL for a pure report line */
    const char *line;                   /* the text (no newline) */
    unsigned flags;                     /* QC_EVL_* */
};

struct qc_check_opts {
    /* Called for every event as it happens (QEMU's stderr is unbuffered). */
    void (*sink)(void *opaque, const struct qc_check_event *ev);
    void *opaque;
    /* Inflate every compressed cluster (slow; findings are "info"). */
    bool verify_compressed;
    /* Keep the OFLAG_COPIED entries that a repair would change. */
    bool collect_fixes;
    /* Read the snapshot table as qemu-img check -r all does (it discards
     * what it cannot hold instead of failing; see qc_repair.h). */
    bool repair_snapshots;
    /* Problems kept in the result (0: the list's default limit). */
    size_t problem_limit;
};

struct qc_check_result {
    enum qc_check_status status;
    int error;                  /* -errno of a FAILED check */
    char *message;              /* the open error or "Check failed" cause */
    const char *format;         /* driver QEMU probed: "qcow2", "qcow", "raw"; NULL unopened */
    int64_t corruptions, leaks, check_errors;
    int64_t corruptions_fixed, leaks_fixed;
    uint64_t image_end_offset;
    uint64_t total_clusters, allocated_clusters;
    uint64_t fragmented_clusters, compressed_clusters;
    struct qc_problems problems;   /* every finding (bounded), QEMU's order */
    bool rebuild_needed;           /* refcount structure needs a rebuild */
    /* guest data is encrypted: the check ran keyless on the metadata (which
     * is never encrypted) and answers as QEMU does with the key */
    bool encrypted;
};

struct qc_check;

/* Opens PATH for a check (read-only) and runs it.  Returns 0 whatever the
 * verdict (see R->status), or a negative code when memory ran out.  The
 * context (*C, may be NULL) stays valid until qc_check_free. */
int qc_check_image(const char *path, const struct qc_check_opts *opts,
                   struct qc_check_result *r, struct qc_check **c);
void qc_check_free(struct qc_check *c);
void qc_check_result_free(struct qc_check_result *r);

/* qemu-img check's exit status for a result: 0 clean, 1 failed or internal
 * errors, 2 corruptions, 3 leaks only, 63 no check for this format. */
int qc_check_exit_code(const struct qc_check_result *r);

/* --- what a repair (or an explorer) needs from a finished check ----------- */

/* Computed and on-disk refcounts of host cluster K; the latter returns
 * -EIO where QEMU cannot read it. */
uint64_t qc_check_computed_refcount(const struct qc_check *c, uint64_t k);
int qc_check_disk_refcount(struct qc_check *c, uint64_t k, uint64_t *value);
/* Clusters compared (QEMU's nb_clusters after counting). */
uint64_t qc_check_cluster_count(const struct qc_check *c);

/* An OFLAG_COPIED entry to rewrite (collected with opts.collect_fixes). */
struct qc_oflag_fix {
    uint64_t entry_offset;      /* file offset of the 8-byte entry */
    uint64_t old_value, new_value;
    bool l1;                    /* an active L1 entry, else an L2 entry */
};
const struct qc_oflag_fix *qc_check_oflag_fixes(const struct qc_check *c, size_t *n);

#endif
