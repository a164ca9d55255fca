/*
 * The metadata overlap check of QEMU's qcow2 driver: before a writer
 * writes [offset, offset+len) to the image file it asks which metadata
 * structure that range would overwrite, if any.  The classes, their bit
 * numbers, their names in messages, the order in which they are tested and
 * the default set (QEMU's "cached" mode) are QEMU 7.2's.
 *
 * The check works on a view of the writer's state (tables already in
 * memory, validated at open); only the inactive-L2 class reads the file,
 * in bounded pieces and never past its end.
 */
#ifndef QC_OVERLAP_H
#define QC_OVERLAP_H

#include <stddef.h>
#include <stdint.h>

struct qc_file;

/* Bit numbers as QEMU's QCow2MetadataOverlap (they pick the message). */
enum qc_overlap_class {
    QC_OL_MAIN_HEADER      = 1u << 0,
    QC_OL_ACTIVE_L1        = 1u << 1,
    QC_OL_ACTIVE_L2        = 1u << 2,
    QC_OL_REFCOUNT_TABLE   = 1u << 3,
    QC_OL_REFCOUNT_BLOCK   = 1u << 4,
    QC_OL_SNAPSHOT_TABLE   = 1u << 5,
    QC_OL_INACTIVE_L1      = 1u << 6,
    QC_OL_INACTIVE_L2      = 1u << 7,
    QC_OL_BITMAP_DIRECTORY = 1u << 8,
};

/* QEMU's modes: constant time, no disk access ("cached", the default), all. */
#define QC_OL_CONSTANT (QC_OL_MAIN_HEADER | QC_OL_ACTIVE_L1 | QC_OL_REFCOUNT_TABLE | \
                        QC_OL_SNAPSHOT_TABLE | QC_OL_BITMAP_DIRECTORY)
#define QC_OL_CACHED   (QC_OL_CONSTANT | QC_OL_ACTIVE_L2 | QC_OL_REFCOUNT_BLOCK | \
                        QC_OL_INACTIVE_L1)
#define QC_OL_ALL      (QC_OL_CACHED | QC_OL_INACTIVE_L2)
#define QC_OL_DEFAULT  QC_OL_CACHED

/* One snapshot's L1 table, as the snapshot table gives it. */
struct qc_overlap_snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;          /* entries */
};

/* What the check looks at: the writer's current tables (not owned). */
struct qc_overlap_view {
    unsigned cluster_bits;
    unsigned enabled;                  /* classes checked (QC_OL_DEFAULT) */

    const uint64_t *l1;                /* active L1, in memory */
    uint32_t l1_size;
    uint64_t l1_offset;

    const uint64_t *reftable;          /* in memory */
    uint64_t reftable_size;            /* entries */
    uint64_t reftable_offset;
    uint64_t max_reftable_index;       /* last used entry (QEMU tests 0..this) */

    uint64_t snapshots_offset;
    uint64_t snapshots_size;           /* bytes QEMU counts for the table */
    const struct qc_overlap_snapshot *snapshots;
    size_t nb_snapshots;

    int bitmaps;                       /* autoclear bitmaps bit set */
    uint64_t bitmap_dir_offset, bitmap_dir_size;

    struct qc_file *file;              /* for inactive L2 tables; may be NULL */
};

/* The class that [OFFSET, OFFSET+LEN) overlaps, tested in QEMU's order,
 * among the enabled classes not in IGNORE; 0 when none (or LEN is 0).
 * A snapshot L1 table that cannot be read makes the inactive-L2 test
 * return a negative errno, as QEMU's does. */
int qc_overlap_check(const struct qc_overlap_view *v, unsigned ignore, uint64_t offset,
                     uint64_t len);

/* QEMU's name for a class ("qcow2_header", "active L1 table", ...): the
 * lowest bit set in CLS. */
const char *qc_overlap_name(unsigned cls);

#endif
