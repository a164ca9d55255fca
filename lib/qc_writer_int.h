/* Internal interface between the writer modules (qc_writer.c, qc_alloc.c,
 * qc_writer_cluster.c, qc_create.c).  Not for tools. */
#ifndef QC_WRITER_INT_H
#define QC_WRITER_INT_H

#include <errno.h>

#include "qc_endian.h"
#include "qc_writer.h"

/* QEMU limits (qcow2.h) */
#define QC_MAX_CLUSTER_OFFSET ((1ull << 56) - 1)
#define QC_MAX_REFTABLE_SIZE  (8ull << 20)
#define QC_MAX_L1_SIZE        (32ull << 20)
#define QC_INT_MAX            2147483647ull
#define QC_REQUEST_MAX_BYTES  (QC_INT_MAX & ~511ull)   /* BDRV_REQUEST_MAX_BYTES */

#define QC_INV_OFFSET UINT64_MAX

/* One allocation to enter into the L2 table (QEMU's QCowL2Meta). */
struct qc_cow_region {
    unsigned offset;        /* from the start of the first cluster */
    unsigned nb_bytes;
};

struct qc_l2meta {
    uint64_t offset;        /* guest offset of the first cluster */
    uint64_t alloc_offset;  /* host offset of the first cluster */
    unsigned nb_clusters;
    bool keep_old;          /* clusters written in place (only the bitmap changes) */
    bool skip_cow;          /* COW regions already zeroed */
    bool prealloc;          /* preallocation: no bitmap update */
    struct qc_cow_region cow_start, cow_end;
    const uint8_t *data;    /* guest data, when it is written together with COW */
    struct qc_l2meta *next;
};

/* --- geometry helpers --- */
static inline uint64_t qc_w_offset_into_cluster(const struct qc_writer *w, uint64_t off)
{
    return off & (w->cluster_size - 1);
}
static inline uint64_t qc_w_offset_into_subcluster(const struct qc_writer *w, uint64_t off)
{
    return off & (w->subcluster_size - 1);
}
static inline uint64_t qc_w_start_of_cluster(const struct qc_writer *w, uint64_t off)
{
    return off & ~(w->cluster_size - 1);
}
static inline uint64_t qc_w_size_to_clusters(const struct qc_writer *w, uint64_t size)
{
    return (size + w->cluster_size - 1) >> w->cluster_bits;
}
static inline uint64_t qc_w_l1_index(const struct qc_writer *w, uint64_t off)
{
    return off >> (w->cluster_bits + (unsigned)__builtin_ctzll(w->l2_size));
}
static inline unsigned qc_w_l2_index(const struct qc_writer *w, uint64_t off)
{
    return (unsigned)((off >> w->cluster_bits) & (w->l2_size - 1));
}
static inline unsigned qc_w_l2_slice_index(const struct qc_writer *w, uint64_t off)
{
    return (unsigned)((off >> w->cluster_bits) & (w->l2_slice_size - 1));
}
static inline unsigned qc_w_sc_index(const struct qc_writer *w, uint64_t off)
{
    return (unsigned)((off >> w->subcluster_bits) & (w->subclusters - 1));
}
static inline bool qc_w_need_accurate_refcounts(const struct qc_writer *w)
{
    return !(w->incompat & QC_INCOMPAT_DIRTY);
}

static inline uint64_t qc_w_get_l2_entry(const struct qc_writer *w, const uint8_t *slice, unsigned i)
{
    return qc_be64(slice + (size_t)i * w->l2_entry_size);
}
static inline uint64_t qc_w_get_l2_bitmap(const struct qc_writer *w, const uint8_t *slice, unsigned i)
{
    return w->extl2 ? qc_be64(slice + (size_t)i * w->l2_entry_size + 8) : 0;
}
static inline void qc_w_set_l2_entry(const struct qc_writer *w, uint8_t *slice, unsigned i, uint64_t v)
{
    qc_put_be64(slice + (size_t)i * w->l2_entry_size, v);
}
static inline void qc_w_set_l2_bitmap(const struct qc_writer *w, uint8_t *slice, unsigned i, uint64_t v)
{
    if (w->extl2)
        qc_put_be64(slice + (size_t)i * w->l2_entry_size + 8, v);
}

enum qc_cluster_type qc_w_cluster_type(const struct qc_writer *w, uint64_t entry);
enum qc_subcluster_type qc_w_subcluster_type(const struct qc_writer *w, uint64_t entry,
                                             uint64_t bitmap, unsigned sc);

/* Reports an inconsistency as QEMU's qcow2_signal_corruption does: message
 * on stderr (once, unless a fatal one follows non-fatal ones); FATAL on a
 * writable image sets the corrupt bit through a header rewrite and makes
 * every later request fail.  Returns -EIO. */
int qc_w_corruption(struct qc_writer *w, bool fatal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* QEMU's qcow2_pre_write_overlap_check: before the writer writes
 * [OFF, OFF+LEN) to the image file.  A write onto metadata (outside the
 * classes in IGNORE) is a fatal corruption: returns -EIO.  0 otherwise. */
int qc_w_pre_write(struct qc_writer *w, unsigned ignore, uint64_t off, uint64_t len);

/* --- qc_alloc.c: refcounts and cluster allocation --- */
int qc_refcount_load(struct qc_writer *w);
int qc_get_refcount(struct qc_writer *w, uint64_t cluster_index, uint64_t *refcount);
int64_t qc_alloc_clusters(struct qc_writer *w, uint64_t size);
int64_t qc_alloc_clusters_at(struct qc_writer *w, uint64_t offset, uint64_t nb_clusters);
int64_t qc_alloc_bytes(struct qc_writer *w, uint64_t size);
void qc_free_clusters(struct qc_writer *w, uint64_t offset, uint64_t size,
                      enum qc_discard_type type);
void qc_free_any_cluster(struct qc_writer *w, uint64_t l2_entry, enum qc_discard_type type);
void qc_process_discards(struct qc_writer *w, int ret);
int qc_write_caches(struct qc_writer *w);
int qc_flush_caches(struct qc_writer *w);
/* QEMU's qcow2_refcount_metadata_size (creation and reftable growth). */
uint64_t qc_refcount_metadata_size(uint64_t clusters, uint64_t cluster_size,
                                   unsigned refcount_order, bool generous,
                                   uint64_t *refblock_count);

/* --- qc_writer_cluster.c: L1/L2 --- */
int qc_grow_l1(struct qc_writer *w, uint64_t min_size, bool exact);
int qc_get_host_offset(struct qc_writer *w, uint64_t offset, uint64_t *bytes,
                       uint64_t *host, enum qc_subcluster_type *type);
int qc_alloc_host_offset(struct qc_writer *w, uint64_t offset, uint64_t *bytes,
                         uint64_t *host, struct qc_l2meta **m);
int qc_link_l2(struct qc_writer *w, struct qc_l2meta *m);
void qc_alloc_abort(struct qc_writer *w, struct qc_l2meta *m);
int qc_alloc_compressed(struct qc_writer *w, uint64_t offset, uint64_t size, uint64_t *host);
int qc_cluster_discard(struct qc_writer *w, uint64_t offset, uint64_t bytes,
                       enum qc_discard_type type, bool full_discard);
int qc_subcluster_zeroize(struct qc_writer *w, uint64_t offset, uint64_t bytes, bool may_unmap);

/* --- qc_writer.c --- */
int qc_w_mark_dirty(struct qc_writer *w);
int qc_w_mark_clean(struct qc_writer *w);
int qc_w_update_header(struct qc_writer *w);
/* The guest write path without the block layer around it (no bounds
 * checks, no writethrough flush): QEMU's qcow2_co_pwritev_part. */
int qc_w_pwritev(struct qc_writer *w, uint64_t off, const uint8_t *buf, uint64_t len);
int qc_w_handle_l2meta(struct qc_writer *w, struct qc_l2meta **pm, bool link);
/* The guest read path without the size check (QEMU's driver-level read,
 * which copy on write uses, also while the size is still being set). */
int qc_w_preadv(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len);
/* Sets up geometry, caches and tables from w->img (already opened). */
int qc_w_init_state(struct qc_writer *w);
void qc_w_free_state(struct qc_writer *w);
/* The qcow2-level flush (write caches, then the file). */
int qc_w_flush_qcow2(struct qc_writer *w);

#endif
