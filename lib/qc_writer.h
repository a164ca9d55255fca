/*
 * Writing guest data into a qcow2 image the way QEMU 7.2 does it: the same
 * cluster allocation, the same metadata caches and the same order of
 * writes and flushes (docs/qemu-behaviour.md §4.2-§4.12), so that the bytes
 * on disk and the states a crash can leave behind are QEMU's.
 *
 * One writer per open image.  The allocation and refcount side lives in
 * qc_alloc.c, the L1/L2 side in qc_writer_cluster.c, image creation in
 * qc_create.c; this header is their common interface.
 */
#ifndef QC_WRITER_H
#define QC_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_cache.h"
#include "qc_image.h"
#include "qc_l2.h"
#include "qc_overlap.h"

enum qc_cache_mode {
    QC_CACHE_WRITEBACK,     /* metadata written on flush, close, eviction */
    QC_CACHE_WRITETHROUGH,  /* every write / write -z is flushed before it returns */
    QC_CACHE_UNSAFE,        /* like writeback, and no fdatasync at all */
};

/* Where a host discard may be passed down (QEMU's discard types and its
 * defaults for qemu-io: guest requests and snapshots yes, the rest no). */
enum qc_discard_type {
    QC_DISCARD_NEVER, QC_DISCARD_ALWAYS, QC_DISCARD_REQUEST,
    QC_DISCARD_SNAPSHOT, QC_DISCARD_OTHER, QC_DISCARD_COUNT
};

struct qc_backing;
struct qc_check_event;

struct qc_writer_options {
    enum qc_cache_mode cache_mode;
    bool readonly;
    bool force;              /* ignore image locks */
    bool no_lock;            /* take no locks (private copies) */
    bool backing_lock;       /* with readonly: locked as a writer's backing file */
    bool unsafe_order;       /* TEST ONLY: write L2 entries before the refcounts
                              * that protect them, to prove a crash tester
                              * catches broken ordering */
    bool no_backing;         /* do not open the backing file */
    bool repair_dirty;       /* repair a dirty image on a writable open (else refuse) */
    /* the lines of that repair, as qemu-img check -r all prints them (QEMU
     * prints them on stderr at the open); NULL: not shown */
    void (*repair_sink)(void *opaque, const struct qc_check_event *ev);
    void *repair_opaque;
};

struct qc_writer {
    struct qc_image img;
    struct qc_writer_options opt;

    /* geometry */
    unsigned version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    bool extl2;
    unsigned l2_entry_size;       /* 8 or 16 */
    uint64_t l2_size;             /* entries per L2 table */
    uint64_t l2_slice_size;       /* entries per cached slice */
    unsigned subcluster_bits;
    uint64_t subcluster_size;
    unsigned subclusters;         /* per cluster: 32 with extended L2, else 1 */
    unsigned refcount_order;
    uint64_t refcount_block_size; /* entries per refblock */
    unsigned refcount_block_bits;
    uint64_t refcount_max;
    struct qc_compressed_geom cgeom;
    unsigned compression_type;

    uint64_t size;                /* virtual size */
    uint64_t incompat;            /* in memory, with the dirty bit as QEMU keeps it */
    uint64_t compat;
    uint64_t autoclear;
    bool use_lazy_refcounts;

    uint64_t *l1;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t *reftable;
    uint64_t reftable_size;       /* entries */
    uint64_t reftable_offset;
    uint64_t max_reftable_index;

    struct qc_cache l2c;
    struct qc_cache rbc;
    uint64_t free_cluster_index;
    uint64_t free_byte_offset;

    /* host discards queued while a multi-cluster operation runs */
    bool cache_discards;
    struct qc_discard_region { uint64_t offset, bytes; } *discards;
    size_t ndiscards, discards_cap;
    bool discard_passthrough[QC_DISCARD_COUNT];

    struct qc_backing *backing;
    uint64_t backing_size;

    /* what the overlap check knows of the snapshot table (read at open) */
    struct qc_overlap_snapshot *snapshot_l1s;
    size_t nb_snapshot_l1s;
    uint64_t snapshots_offset, snapshots_size;
    unsigned overlap_check;       /* classes checked before each write (QC_OL_DEFAULT) */

    bool guest_unflushed;         /* a guest write since the last qcow2 flush */
    bool corruption_signaled;     /* a corruption was reported (later ones are not) */
    bool corrupt;                 /* fatal corruption: every request fails with
                                   * -ENOMEDIUM, as QEMU's node without a driver */
    char errmsg[1024];            /* why the last operation failed, if known */
};

/* Opens PATH for writing (or reading, with opt->readonly).  Returns 0, or a
 * negative code with a message in w->errmsg (QC_E_FORMAT: not qcow2,
 * QC_E_LOCKED: in use, -EROFS... : refused).  IO (may be NULL) is applied
 * to the file before anything is written. */
int qc_writer_open(struct qc_writer *w, const char *path,
                   const struct qc_writer_options *opt, const struct qc_io_opts *io);
/* Flushes, marks clean as QEMU does on close, and frees.  Returns the first
 * error. */
int qc_writer_close(struct qc_writer *w);
/* The writing part of qc_writer_close, without freeing. */
int qc_writer_shutdown(struct qc_writer *w);
/* Frees without writing anything more (qemu-io's abort). */
void qc_writer_abandon(struct qc_writer *w);

/* Guest operations; offsets and lengths in bytes.  Return 0 or a negative
 * errno (-EIO, -EINVAL, -ENOSPC...), as qemu-io would see it. */
int qc_writer_pwrite(struct qc_writer *w, uint64_t off, const uint8_t *buf, uint64_t len);
int qc_writer_pwrite_zeroes(struct qc_writer *w, uint64_t off, uint64_t len, bool may_unmap);
int qc_writer_pwrite_compressed(struct qc_writer *w, uint64_t off, const uint8_t *buf,
                                uint64_t len);
int qc_writer_pdiscard(struct qc_writer *w, uint64_t off, uint64_t len);
int qc_writer_pread(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len);
/* The qemu-io flush (skipped when no guest write happened since the last). */
int qc_writer_flush(struct qc_writer *w);

/* Reads what the backing chain holds at OFF (zeros where there is none,
 * or past its end). */
int qc_writer_backing_pread(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len);

/* Where guest offset OFF lives: subcluster type, host offset (the
 * compressed descriptor for compressed clusters) and the number of bytes
 * from OFF with the same type and contiguous host offsets (at most LEN). */
int qc_writer_map(struct qc_writer *w, uint64_t off, uint64_t len,
                  enum qc_subcluster_type *type, uint64_t *host, uint64_t *n);

/* --- image creation (qc_create.c) --- */

struct qc_create_options {
    uint64_t size;                /* as given (rounded up to 512 when creating) */
    bool size_set;
    uint64_t cluster_size;
    unsigned version;             /* 2 or 3 */
    bool lazy_refcounts;
    uint64_t refcount_bits;
    bool extended_l2;
    unsigned compression_type;
    bool preallocate_metadata;
    char backing_file[1024];      /* "" = none */
    char backing_fmt[64];         /* "" = none */
    bool backing_file_set, backing_fmt_set;

    /* what was given, as qemu-img prints it on its "Formatting" line */
    bool cluster_size_set, refcount_bits_set;
    char shown_extended_l2[32], shown_preallocation[32], shown_compression_type[32];
    char shown_compat[32], shown_lazy_refcounts[32];
    /* an error qemu-img reports only after its "Formatting" line */
    char deferred_error[160];
};

void qc_create_options_init(struct qc_create_options *o);
/* Parses qemu-img create's -o syntax (KEY=VALUE,...; ",," is a comma in a
 * value).  May be called for several -o.  Returns 0, or -1 with qemu-img's
 * message in ERR (these come before qemu-img's "Formatting" line). */
int qc_create_parse_options(struct qc_create_options *o, const char *opts,
                            char *err, size_t errlen);
/* Opens the backing file (if any) as qemu-img create does before it prints
 * anything, taking the size from it when none was given.  IMAGE locates a
 * relative backing name.  Returns 0 or -1 with the message in ERR. */
int qc_create_check_backing(struct qc_create_options *o, const char *image,
                            char *err, size_t errlen);
/* qemu-img's "Formatting 'IMAGE', fmt=qcow2 ..." line, without newline. */
void qc_create_formatting_line(const struct qc_create_options *o, const char *image,
                               char *out, size_t outlen);
/* The checks qemu-img makes after that line; 0 or -1 with ERR. */
int qc_create_validate(const struct qc_create_options *o, char *err, size_t errlen);
/* Creates IMAGE as qemu-img create does (same writes, same layout).
 * STATS (may be NULL) receives the file's write counters.  Returns 0 or
 * -1 with a message in ERR. */
int qc_create(const char *image, const struct qc_create_options *o,
              const struct qc_io_opts *io, bool force, struct qc_file *stats,
              char *err, size_t errlen);

#endif
