/*
 * Repair of a qcow2 image with the semantics of qemu-img check -r leaks /
 * -r all (QEMU 7.2): lowered and raised refcounts, a rebuilt refcount
 * structure where the old one is broken, OFLAG_COPIED, misaligned
 * preallocated zero clusters, the snapshot table, and the header bits.
 *
 * Nothing is written here: qc_repair_plan runs the check, works out the
 * whole target state in memory, reports QEMU's repair lines, and leaves an
 * ordered write plan (qc_plan.h) in stages separated by flushes, so that a
 * crash after any write leaves an image that a second repair fixes:
 *   1. new refcount blocks / table, new snapshot table, in clusters that
 *      nothing references and no old refcount table entry names;
 *   2. refcounts that are too low raised;
 *   3. the header switched to the new refcount table / snapshot table;
 *   4. refcounts that are too high lowered (old structures freed), then
 *      L2/L1 entry fixes (preallocated entries, OFLAG_COPIED);
 *   5. header bits (dirty, corrupt, unknown autoclear) last.
 * Guest data never moves: no L2 entry changes what it maps to.
 */
#ifndef QC_REPAIR_H
#define QC_REPAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_check.h"
#include "qc_lostmeta.h"
#include "qc_plan.h"

enum qc_repair_mode {
    QC_REPAIR_LEAKS = 1,    /* -r leaks */
    QC_REPAIR_ALL = 3,      /* -r all: leaks and errors */
};

enum qc_repair_status {
    QC_REPAIR_PLANNED,       /* the plan is ready (it may be empty) */
    QC_REPAIR_CHECK_FAILED,  /* the check could not run or stopped (see check) */
    QC_REPAIR_NEED_REBUILD,  /* -r leaks but the refcount structure is broken */
    QC_REPAIR_FAILED,        /* the repair run stops (QEMU: "Check failed", error) */
    QC_REPAIR_LOST_METADATA, /* the leaks look like lost metadata: no plan (see lostmeta) */
};

struct qc_repair_opts {
    enum qc_repair_mode mode;
    /* QEMU's stderr lines of the repair run, as they come */
    void (*sink)(void *opaque, const struct qc_check_event *ev);
    void *opaque;
    /* problems the first check keeps in its result (0: the check's
     * default); a caller that shows no problem list can keep few */
    size_t problem_limit;
    /* Tell lost metadata from crash debris (qc_lostmeta.h) before planning:
     * when the leaks look like lost metadata, LOST_METADATA is called with
     * the verdict (before any repair line) and nothing is planned
     * (QC_REPAIR_LOST_METADATA) unless REPAIR_LOST_METADATA. */
    bool assess_lost_metadata;
    bool repair_lost_metadata;
    void (*lost_metadata)(void *opaque, const struct qc_lostmeta *lm);
};

struct qc_repair {
    enum qc_repair_status status;
    struct qc_check_result check;    /* the first check (before repair) */
    struct qc_check *ctx;            /* its context (after a rebuild its IMRT holds the
                                      * counts after the repair, from which the plan
                                      * makes the new refcount blocks: keep it while
                                      * the plan is used) */
    struct qc_plan plan;
    int error;                       /* -errno of a failed repair run */
    /* the repair run's counters (qemu-img's result when nothing was fixed) */
    int64_t corruptions, leaks, check_errors;
    int64_t corruptions_fixed, leaks_fixed;
    bool rebuild;                    /* the refcount structure is rebuilt */
    uint64_t new_reftable_offset;    /* where (when rebuilt) */
    uint64_t new_refblocks;
    /* what the repair leaves unfixed, predicted (0: image clean after it) */
    int64_t remaining;
    /* header bits the plan clears */
    uint64_t clear_incompat, clear_autoclear;
    /* snapshot table rewritten (entries damaged themselves) */
    bool snapshot_table_rewritten;
    bool snapshot_header_changed;    /* count and/or table offset rewritten */
    uint32_t snapshots_after;        /* entries the table holds after the repair */
    bool *snapshot_damaged;          /* per entry of the repairing read: changed because damaged */
    size_t nsnapshot_damaged;
    /* what the repair changes beyond QEMU's lines and why (one line each) */
    char **notes;
    size_t nnotes;
    /* the lost-metadata verdict (with opts.assess_lost_metadata) */
    bool lostmeta_assessed;
    struct qc_lostmeta lostmeta;
};

/* Checks PATH and plans its repair.  Returns 0 (see RP->status) or a
 * negative code when memory ran out. */
int qc_repair_plan(const char *path, const struct qc_repair_opts *opts, struct qc_repair *rp);
void qc_repair_free(struct qc_repair *rp);
/* Frees the plan and the check's context once the plan is carried out (the
 * counters, notes and first check's result stay), so that a check of the
 * result does not run beside them. */
void qc_repair_release(struct qc_repair *rp);

#endif
