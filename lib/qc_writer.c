/*
 * The writer: opening an image for writing as QEMU does, the guest
 * operations of qemu-io (write, write -z, write -c, discard, read, flush),
 * the header rewrites (dirty bit, clean close, corrupt bit) and reads
 * through a backing chain.  Allocation lives in qc_alloc.c, L1/L2 in
 * qc_writer_cluster.c.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_follow.h"
#include "qc_compress.h"
#include "qc_refcount.h"
#include "qc_repair.h"
#include "qc_snapshot.h"
#include "qc_util.h"
#include "qc_ext.h"
#include "qc_writer_int.h"

#define MAX_BACKING_DEPTH 32
#define MAX_BOUNCE (16ull << 20)   /* QEMU's MAX_BOUNCE_BUFFER */

struct qc_backing {
    bool qcow2;
    struct qc_writer qw;      /* qcow2 backing, opened read-only */
    struct qc_file raw;       /* raw backing */
    uint64_t size;
};

static int open_depth(struct qc_writer *w, const char *path, const struct qc_writer_options *opt,
                      const struct qc_io_opts *io, unsigned depth);

static void set_err(struct qc_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(struct qc_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
}

int qc_w_corruption(struct qc_writer *w, bool fatal, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(w->errmsg, sizeof w->errmsg, "%s", msg);
    /* a read-only image cannot be marked: the event is reported only */
    fatal = fatal && !w->opt.readonly;
    if (w->corruption_signaled && (!fatal || (w->incompat & QC_INCOMPAT_CORRUPT)))
        return -EIO;
    if (fatal) {
        /* also on a v2 image, which has no field for the bit: QEMU
         * rewrites its header all the same */
        fprintf(stderr, "qcow2: Marking image as corrupt: %s; further corruption events will be "
                "suppressed\n", msg);
        w->incompat |= QC_INCOMPAT_CORRUPT;
        if (qc_w_update_header(w) == 0)
            qc_file_flush(&w->img.file);
        w->corrupt = true;
    } else {
        fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal corruption events will "
                "be suppressed\n", msg);
    }
    w->corruption_signaled = true;
    return -EIO;
}

/* --- the overlap check --- */

static void overlap_view(struct qc_writer *w, struct qc_overlap_view *v)
{
    *v = (struct qc_overlap_view){
        .cluster_bits = w->cluster_bits, .enabled = w->overlap_check,
        .l1 = w->l1, .l1_size = w->l1_size, .l1_offset = w->l1_offset,
        .reftable = w->reftable, .reftable_size = w->reftable_size,
        .reftable_offset = w->reftable_offset, .max_reftable_index = w->max_reftable_index,
        .snapshots_offset = w->snapshots_offset, .snapshots_size = w->snapshots_size,
        .snapshots = w->snapshot_l1s, .nb_snapshots = w->nb_snapshot_l1s,
        /* images with bitmaps are never opened for writing */
        .bitmaps = 0,
        .file = &w->img.file,
    };
}

int qc_w_pre_write(struct qc_writer *w, unsigned ignore, uint64_t off, uint64_t len)
{
    struct qc_overlap_view v;
    int cls;

    overlap_view(w, &v);
    cls = qc_overlap_check(&v, ignore, off, len);
    if (cls < 0)
        return cls;
    if (cls == 0)
        return 0;
    return qc_w_corruption(w, true, "Preventing invalid write on metadata (overlaps with %s)",
                           qc_overlap_name((unsigned)cls));
}

/* The caches' writes: an L2 slice may lie on L2 tables, a refcount block
 * on refcount blocks, as in QEMU's qcow2_cache_entry_flush. */
static int cache_pre_write(void *opaque, const struct qc_cache *c, uint64_t off, size_t len)
{
    struct qc_writer *w = opaque;
    unsigned ignore = c == &w->l2c ? QC_OL_ACTIVE_L2 : QC_OL_REFCOUNT_BLOCK;

    return qc_w_pre_write(w, ignore, off, len);
}

/* The snapshot table as the overlap check needs it: each L1 table and the
 * bytes the table takes as QEMU counts them.  A table that cannot be read
 * whole leaves what was read. */
static int load_snapshot_l1s(struct qc_writer *w)
{
    const struct qc_header *h = &w->img.hdr;
    struct qc_snapshot_table t = { 0 };
    char *err = NULL, *hint = NULL;

    w->snapshots_offset = h->snapshots_offset;
    w->snapshots_size = 0;
    if (!h->nb_snapshots)
        return 0;
    (void)qc_snapshot_table_read_qemu(&w->img.file, h->snapshots_offset, h->nb_snapshots, &t,
                                      &err, &hint);
    free(err);
    free(hint);
    w->snapshot_l1s = calloc(t.n ? t.n : 1, sizeof *w->snapshot_l1s);
    if (!w->snapshot_l1s) {
        qc_snapshot_table_free(&t);
        return QC_E_NOMEM;
    }
    for (size_t i = 0; i < t.n; i++) {
        w->snapshot_l1s[i].l1_offset = t.v[i].l1_table_offset;
        w->snapshot_l1s[i].l1_size = t.v[i].l1_size;
    }
    w->nb_snapshot_l1s = t.n;
    w->snapshots_size = t.size;
    qc_snapshot_table_free(&t);
    return 0;
}

/* --- backing files --- */

static char *backing_path(const char *image, const char *name)
{
    const char *slash;
    char *p;

    if (name[0] == '/' || !(slash = strrchr(image, '/')))
        return strdup(name);
    p = malloc((size_t)(slash - image) + 1 + strlen(name) + 1);
    if (p)
        sprintf(p, "%.*s/%s", (int)(slash - image), image, name);
    return p;
}

static int open_backing(struct qc_writer *w, const char *path, unsigned depth)
{
    const char *fmt = w->img.backing_format;
    struct qc_backing *b;
    char *bp;
    int r;

    if (!w->img.backing_name || w->opt.no_backing)
        return 0;
    if (depth >= MAX_BACKING_DEPTH) {
        set_err(w, "Backing chain too deep (more than %d images)", MAX_BACKING_DEPTH);
        return -ELOOP;
    }
    bp = backing_path(path, w->img.backing_name);
    b = calloc(1, sizeof *b);
    if (!bp || !b) {
        free(bp);
        free(b);
        return QC_E_NOMEM;
    }
    {
        char *no = qc_follow_refusal(path, w->img.backing_name, bp, QC_FOLLOW_BACKING);
        if (no) {
            set_err(w, "Could not open backing file: %s", qc_esc_qemu(no));
            free(no);
            free(bp);
            free(b);
            return -EPERM;
        }
    }
    /* QEMU locks the backing chain of a writer: read used, write and resize
     * not shared, so a running writer of a base is refused (--force: not) */
    struct qc_writer_options o = { .readonly = true, .force = w->opt.force,
                                   .no_lock = w->opt.no_lock,
                                   .backing_lock = !w->opt.readonly || w->opt.backing_lock };
    unsigned raw_flags = (o.backing_lock ? QC_OPEN_BACKING : 0) |
                         (o.force ? QC_OPEN_FORCE : 0) | (o.no_lock ? QC_OPEN_NOLOCK : 0);
    const char *why = NULL;

    if (fmt && strcmp(fmt, "raw") == 0) {
        r = qc_file_open(&b->raw, bp, raw_flags, &why);
        if (r == 0)
            b->size = b->raw.size;
    } else {
        r = open_depth(&b->qw, bp, &o, NULL, depth + 1);
        if (r == QC_E_FORMAT && !fmt) {
            /* no format given and not qcow2: a raw image */
            r = qc_file_open(&b->raw, bp, raw_flags, &why);
            if (r == 0)
                b->size = b->raw.size;
        } else if (r == 0) {
            b->qcow2 = true;
            b->size = b->qw.size;
        } else if (b->qw.errmsg[0]) {
            set_err(w, "Could not open backing file: %s", b->qw.errmsg);
        }
    }
    if (r == QC_E_LOCKED && !w->errmsg[0])
        set_err(w, "Could not open backing file: Failed to get %s lock\n"
                   "Is another process using the image [%s]?", why ? why : "\"write\"",
                qc_esc_qemu(bp));
    if (r < 0) {
        if (!w->errmsg[0])
            set_err(w, "Could not open backing file: Could not open '%s': %s", qc_esc_qemu(bp),
                    qc_strerror(r));
        free(bp);
        free(b);
        return r;
    }
    free(bp);
    w->backing = b;
    w->backing_size = b->size;
    return 0;
}

static void close_backing(struct qc_writer *w)
{
    if (!w->backing)
        return;
    if (w->backing->qcow2)
        qc_writer_abandon(&w->backing->qw);
    else
        qc_file_close(&w->backing->raw);
    free(w->backing);
    w->backing = NULL;
}

static int backing_read(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len)
{
    struct qc_backing *b = w->backing;
    uint64_t n = 0;

    if (off < b->size)
        n = b->size - off < len ? b->size - off : len;
    memset(buf + n, 0, (size_t)(len - n));
    if (!n)
        return 0;
    if (b->qcow2)
        return qc_writer_pread(&b->qw, off, buf, n);
    {
        int64_t r = qc_file_read_padded(&b->raw, off, buf, (size_t)n);
        return r < 0 ? (int)r : 0;
    }
}

/* --- block status (QEMU's bdrv_co_block_status_above, want_zero off) --- */

#define BS_DATA      1u
#define BS_ZERO      2u
#define BS_ALLOCATED 4u

static int block_status(struct qc_writer *w, uint64_t off, uint64_t bytes, uint64_t *pnum,
                        unsigned *st);

static int backing_status(struct qc_writer *w, uint64_t off, uint64_t bytes, uint64_t *pnum,
                          unsigned *st)
{
    struct qc_backing *b = w->backing;

    if (off >= b->size) {
        /* zeros synthesised past a short backing file count as allocated */
        *pnum = bytes;
        *st = BS_ZERO | BS_ALLOCATED;
        return 0;
    }
    if (b->qcow2)
        return block_status(&b->qw, off, bytes, pnum, st);
    *pnum = b->size - off < bytes ? b->size - off : bytes;
    *st = BS_DATA | BS_ALLOCATED;   /* a raw file is data unless asked for zeros */
    return 0;
}

static int block_status(struct qc_writer *w, uint64_t off, uint64_t bytes, uint64_t *pnum,
                        unsigned *st)
{
    enum qc_subcluster_type type;
    uint64_t host, n;
    int r;

    *st = 0;
    if (off >= w->size) {
        *pnum = 0;
        return 0;
    }
    if (bytes > w->size - off)
        bytes = w->size - off;
    n = bytes;
    r = qc_get_host_offset(w, off, &n, &host, &type);
    if (r < 0)
        return r;
    *pnum = n;
    if (type == QC_SCT_ZERO_PLAIN || type == QC_SCT_ZERO_ALLOC)
        *st = BS_ZERO | BS_ALLOCATED;
    else if (type != QC_SCT_UNALLOCATED_PLAIN && type != QC_SCT_UNALLOCATED_ALLOC)
        *st = BS_DATA | BS_ALLOCATED;
    else if (!w->backing)
        *st = BS_ZERO;
    if (!(*st & BS_ALLOCATED) && w->backing) {
        uint64_t p2;
        r = backing_status(w, off, *pnum, &p2, st);
        if (r < 0)
            return r;
        if (p2 < *pnum)
            *pnum = p2;
    }
    return 0;
}

/* QEMU's bdrv_co_is_zero_fast: one status run covering the whole range. */
static bool is_zero(struct qc_writer *w, uint64_t off, uint64_t bytes)
{
    uint64_t pnum;
    unsigned st;

    if (!bytes)
        return true;
    if (block_status(w, off, bytes, &pnum, &st) < 0)
        return false;
    return pnum == bytes && (st & BS_ZERO);
}

/* --- open / close --- */

int qc_w_init_state(struct qc_writer *w)
{
    const struct qc_header *h = &w->img.hdr;
    uint64_t max_l2_entries, max_l2_cache, l2_cache, entry_size;
    int r;

    w->version = h->version;
    w->cluster_bits = h->cluster_bits;
    w->cluster_size = 1ull << h->cluster_bits;
    w->extl2 = qc_header_extended_l2(h);
    w->l2_entry_size = w->extl2 ? 16 : 8;
    w->l2_size = w->cluster_size / w->l2_entry_size;
    w->subclusters = w->extl2 ? 32 : 1;
    w->subcluster_size = w->cluster_size / w->subclusters;
    w->subcluster_bits = (unsigned)__builtin_ctzll(w->subcluster_size);
    w->refcount_order = h->refcount_order;
    w->refcount_block_size = w->cluster_size * 8 >> h->refcount_order;
    w->refcount_block_bits = (unsigned)__builtin_ctzll(w->refcount_block_size);
    w->refcount_max = qc_refcount_max(h->refcount_order);
    w->cgeom = qc_compressed_geom(h->cluster_bits);
    w->compression_type = h->compression_type;
    w->size = h->size;
    w->incompat = h->incompatible_features;
    w->compat = h->compatible_features;
    w->autoclear = h->autoclear_features;
    w->use_lazy_refcounts = h->version >= 3 && (h->compatible_features & QC_COMPAT_LAZY_REFCOUNTS);
    w->free_cluster_index = 0;
    w->free_byte_offset = 0;
    w->discard_passthrough[QC_DISCARD_NEVER] = false;
    w->discard_passthrough[QC_DISCARD_ALWAYS] = true;
    w->discard_passthrough[QC_DISCARD_REQUEST] = true;
    w->discard_passthrough[QC_DISCARD_SNAPSHOT] = true;
    w->discard_passthrough[QC_DISCARD_OTHER] = false;

    /* L1 */
    w->l1_size = h->l1_size;
    w->l1_offset = h->l1_table_offset;
    w->l1 = calloc(w->l1_size ? w->l1_size : 1, 8);
    if (!w->l1)
        return QC_E_NOMEM;
    if (w->l1_size) {
        uint8_t *raw = malloc((size_t)w->l1_size * 8);
        int64_t n;
        if (!raw)
            return QC_E_NOMEM;
        n = qc_file_read_padded(&w->img.file, w->l1_offset, raw, (size_t)w->l1_size * 8);
        for (uint32_t i = 0; n >= 0 && i < w->l1_size; i++)
            w->l1[i] = qc_be64(raw + 8 * (size_t)i);
        free(raw);
        if (n < 0)
            return (int)n;
    }
    r = qc_refcount_load(w);
    if (r < 0)
        return r;
    w->overlap_check = QC_OL_DEFAULT;
    r = load_snapshot_l1s(w);
    if (r < 0)
        return r;

    /* cache sizes as QEMU's defaults on Linux (docs/qemu-behaviour.md §4.2) */
    max_l2_entries = (w->size + w->cluster_size - 1) / w->cluster_size;
    max_l2_cache = (max_l2_entries * w->l2_entry_size + w->cluster_size - 1) &
                   ~(w->cluster_size - 1);
    l2_cache = max_l2_cache < (32ull << 20) ? max_l2_cache : (32ull << 20);
    entry_size = w->cluster_size;
    if (l2_cache < max_l2_cache)
        entry_size = w->cluster_size < 4096 ? w->cluster_size : 4096;
    l2_cache /= entry_size;
    if (l2_cache < 2)
        l2_cache = 2;
    w->l2_slice_size = entry_size / w->l2_entry_size;
    r = qc_cache_init(&w->l2c, &w->img.file, (size_t)l2_cache, (size_t)entry_size,
                      QC_EV_L2_UPDATE, QC_EV_L2_LOAD);
    if (r < 0)
        return r;
    r = qc_cache_init(&w->rbc, &w->img.file, 4, (size_t)w->cluster_size,
                      QC_EV_REFBLOCK_UPDATE_PART, QC_EV_NONE);
    if (r < 0)
        return r;
    w->l2c.pre_write = w->rbc.pre_write = cache_pre_write;
    w->l2c.pre_write_opaque = w->rbc.pre_write_opaque = w;
    return 0;
}

void qc_w_free_state(struct qc_writer *w)
{
    qc_cache_destroy(&w->l2c);
    qc_cache_destroy(&w->rbc);
    free(w->l1);
    free(w->reftable);
    free(w->discards);
    free(w->snapshot_l1s);
    w->l1 = NULL;
    w->reftable = NULL;
    w->discards = NULL;
    w->snapshot_l1s = NULL;
    w->nb_snapshot_l1s = 0;
    w->ndiscards = w->discards_cap = 0;
}

/* A dirty image opened for writing is repaired first, as QEMU does: the
 * repair of qemu-img check -r all (its lines go to the repair sink), carried
 * out through the image's own file so that the write log and crash
 * injection see it.  Only a repair that could not run or that met check
 * errors fails the open; corruptions it cannot fix leave the image dirty,
 * as in QEMU.  The header, L1 and refcount table are read again after. */
static int qc_writer_repair_dirty(struct qc_writer *w, const char *path)
{
    struct qc_repair_opts ro = { .mode = QC_REPAIR_ALL, .sink = w->opt.repair_sink,
                                 .opaque = w->opt.repair_opaque };
    struct qc_repair rp;
    int r = qc_repair_plan(path, &ro, &rp);

    if (r == 0 && rp.status != QC_REPAIR_PLANNED)
        r = rp.error < 0 ? rp.error : -EIO;
    if (r == 0)
        r = qc_plan_execute(&rp.plan, &w->img.file);
    if (r == 0 && rp.check_errors)
        r = -EIO;
    qc_repair_free(&rp);
    if (r < 0) {
        set_err(w, "Could not repair dirty image: %s", qc_strerror(r));
        return r;
    }
    qc_w_free_state(w);
    if ((r = qc_image_reload(&w->img, QC_VALIDATE_WRITE)) < 0 ||
        (r = qc_w_init_state(w)) < 0) {
        set_err(w, "Could not open '%s': %s", qc_esc_qemu(path), qc_strerror(r));
        return r;
    }
    return 0;
}

static int open_depth(struct qc_writer *w, const char *path, const struct qc_writer_options *opt,
                      const struct qc_io_opts *io, unsigned depth)
{
    unsigned flags = opt->readonly ? 0 : QC_OPEN_WRITE;
    const char *why = NULL;
    const struct qc_header *h;
    int r;

    memset(w, 0, sizeof *w);
    w->opt = *opt;
    if (opt->force)
        flags |= QC_OPEN_FORCE;
    if (opt->no_lock)
        flags |= QC_OPEN_NOLOCK;
    if (opt->readonly && opt->backing_lock)
        flags |= QC_OPEN_BACKING;
    r = qc_image_open(&w->img, path, flags,
                      opt->readonly ? QC_VALIDATE_OPEN : QC_VALIDATE_WRITE, &why);
    if (r == QC_E_LOCKED) {
        set_err(w, "Failed to get %s lock\nIs another process using the image [%s]?",
                why ? why : "\"write\"", qc_esc_qemu(path));
        return r;
    }
    if (r == QC_E_FORMAT) {
        set_err(w, "Image is not in qcow2 format");
        qc_image_close(&w->img);
        return r;
    }
    if (r < 0) {
        set_err(w, "Could not open '%s': %s", qc_esc_qemu(path), qc_strerror(r));
        return r;
    }
    if (w->img.open_error) {
        set_err(w, "%s", qc_esc_qemu(w->img.open_error->message));
        r = -EINVAL;
        goto fail;
    }
    h = &w->img.hdr;
    if (h->crypt_method) {
        /* guest data needs the key, which the writer never has */
        set_err(w, "Parameter 'encrypt.key-secret' is required for cipher");
        r = -ENOTSUP;
        goto fail;
    }
    if (h->incompatible_features & QC_INCOMPAT_DATA_FILE) {
        set_err(w, "images with an external data file are not supported");
        r = -ENOTSUP;
        goto fail;
    }
    if (!opt->readonly && qc_ext_find(&w->img.exts, QC_EXT_BITMAPS)) {
        set_err(w, "images with persistent dirty bitmaps are not supported for writing");
        r = -ENOTSUP;
        goto fail;
    }
    if (io) {
        const char *what = NULL;
        r = qc_io_opts_apply(io, &w->img.file, &what);
        if (r < 0) {
            if (r == QC_E_SIDEFILE)
                set_err(w, "%s", what);
            else
                set_err(w, "%s: %s", what ? what : "log", qc_strerror(r));
            goto fail;
        }
    }
    if (opt->cache_mode == QC_CACHE_UNSAFE)
        w->img.file.no_flush = true;
    r = qc_w_init_state(w);
    if (r < 0) {
        set_err(w, "Could not open '%s': %s", qc_esc_qemu(path), qc_strerror(r));
        goto fail;
    }
    r = open_backing(w, path, depth);
    if (r < 0)
        goto fail;
    if (!opt->readonly) {
        if (w->autoclear & ~QC_AUTOCLEAR_KNOWN) {
            /* QEMU clears autoclear bits it does not know on a writable open */
            w->autoclear &= QC_AUTOCLEAR_KNOWN;
            r = qc_w_update_header(w);
            if (r < 0) {
                set_err(w, "Could not update qcow2 header: %s", qc_strerror(r));
                goto fail;
            }
        }
        if (w->incompat & QC_INCOMPAT_DIRTY) {
            if (!opt->repair_dirty) {
                set_err(w, "the image is dirty (refcounts may be stale) and repairing it was "
                           "not allowed");
                r = -EUCLEAN;
                goto fail;
            }
            r = qc_writer_repair_dirty(w, path);
            if (r < 0)
                goto fail;
        }
    }
    return 0;
fail:
    close_backing(w);
    qc_w_free_state(w);
    qc_image_close(&w->img);
    return r;
}

int qc_writer_open(struct qc_writer *w, const char *path, const struct qc_writer_options *opt,
                   const struct qc_io_opts *io)
{
    return open_depth(w, path, opt, io, 0);
}

void qc_writer_abandon(struct qc_writer *w)
{
    close_backing(w);
    qc_w_free_state(w);
    qc_image_close(&w->img);
}

int qc_w_flush_qcow2(struct qc_writer *w)
{
    int r;

    qc_file_event(&w->img.file, QC_EV_FLUSH_TO_OS);
    r = qc_write_caches(w);
    w->guest_unflushed = false;
    if (r < 0)
        return r;
    if (w->img.file.unflushed)
        qc_file_event(&w->img.file, QC_EV_FLUSH_TO_DISK);
    return qc_file_flush(&w->img.file);
}

int qc_writer_flush(struct qc_writer *w)
{
    /* a flush without a medium succeeds and writes nothing, as in QEMU */
    if (w->opt.readonly || w->corrupt || !w->guest_unflushed)
        return 0;
    return qc_w_flush_qcow2(w);
}

int qc_writer_shutdown(struct qc_writer *w)
{
    int r = 0, r2;

    if (!w->opt.readonly && !w->corrupt && w->img.file.fd >= 0) {
        r = qc_writer_flush(w);
        r2 = qc_cache_flush(&w->l2c);
        if (r == 0)
            r = r2;
        r2 = qc_cache_flush(&w->rbc);
        if (r == 0)
            r = r2;
        if (r == 0)
            r = qc_w_mark_clean(w);
        r2 = qc_file_flush(&w->img.file);
        if (r == 0)
            r = r2;
    }
    return r;
}

int qc_writer_close(struct qc_writer *w)
{
    int r = qc_writer_shutdown(w);
    qc_writer_abandon(w);
    return r;
}

/* --- header --- */

static size_t put_ext(uint8_t *p, size_t room, uint32_t magic, const void *data, size_t len)
{
    size_t need = 8 + ((len + 7) & ~(size_t)7);
    if (need > room)
        return 0;
    qc_put_be32(p, magic);
    qc_put_be32(p + 4, (uint32_t)len);
    if (len)
        memcpy(p + 8, data, len);
    return need;
}

static bool known_ext(uint32_t magic)
{
    return magic == QC_EXT_BACKING_FORMAT || magic == QC_EXT_FEATURE_TABLE ||
           magic == QC_EXT_BITMAPS || magic == QC_EXT_CRYPTO || magic == QC_EXT_DATA_FILE;
}

/* QEMU 7.2's feature name table (docs/format.md §2.2). */
static const struct { uint8_t type, bit; const char *name; } feature_table[] = {
    { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
    { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

/* Rewrites cluster 0 the way QEMU's qcow2_update_header does
 * (docs/qemu-behaviour.md §2.1): header, unknown header fields, backing
 * format, feature table, unknown extensions (in reverse order), end
 * marker, backing file name; zeros up to the end of the cluster. */
int qc_w_update_header(struct qc_writer *w)
{
    const struct qc_header *h = &w->img.hdr;
    size_t cs = (size_t)w->cluster_size, pos, n, unknown_fields = 0;
    uint8_t *buf = calloc(1, cs);
    const char *bname = w->img.backing_name, *bfmt = w->img.backing_format;
    int r;

    if (!buf)
        return QC_E_NOMEM;
    if (w->version >= 3 && h->header_length > QC_HEADER_V3_LEN && h->header_length <= cs &&
        h->raw_len >= h->header_length)
        unknown_fields = h->header_length - QC_HEADER_V3_LEN;
    qc_put_be32(buf, QC_MAGIC);
    qc_put_be32(buf + 4, w->version);
    qc_put_be32(buf + 20, w->cluster_bits);
    qc_put_be64(buf + 24, w->size);
    qc_put_be32(buf + 32, 0);
    qc_put_be32(buf + 36, w->l1_size);
    qc_put_be64(buf + 40, w->l1_offset);
    qc_put_be64(buf + 48, w->reftable_offset);
    qc_put_be32(buf + 56, (uint32_t)(w->reftable_size >> (w->cluster_bits - 3)));
    qc_put_be32(buf + 60, h->nb_snapshots);
    qc_put_be64(buf + 64, h->snapshots_offset);
    if (w->version >= 3) {
        qc_put_be64(buf + 72, w->incompat);
        qc_put_be64(buf + 80, w->compat);
        qc_put_be64(buf + 88, w->autoclear);
        qc_put_be32(buf + 96, w->refcount_order);
        qc_put_be32(buf + 100, (uint32_t)(QC_HEADER_V3_LEN + unknown_fields));
        buf[104] = (uint8_t)w->compression_type;
        pos = QC_HEADER_V3_LEN;
        memcpy(buf + pos, h->raw + QC_HEADER_V3_LEN, unknown_fields);
        pos += unknown_fields;
    } else {
        pos = QC_HEADER_V2_LEN;
    }
    r = -ENOSPC;
    if (bfmt) {
        if (!(n = put_ext(buf + pos, cs - pos, QC_EXT_BACKING_FORMAT, bfmt, strlen(bfmt))))
            goto out;
        pos += n;
    }
    if (w->version >= 3 && cs > 4096) {
        uint8_t t[sizeof feature_table / sizeof feature_table[0] * 48] = { 0 };
        for (size_t i = 0; i < sizeof feature_table / sizeof feature_table[0]; i++) {
            t[48 * i] = feature_table[i].type;
            t[48 * i + 1] = feature_table[i].bit;
            memcpy(t + 48 * i + 2, feature_table[i].name, strlen(feature_table[i].name));
        }
        if (!(n = put_ext(buf + pos, cs - pos, QC_EXT_FEATURE_TABLE, t, sizeof t)))
            goto out;
        pos += n;
    }
    for (size_t i = w->img.exts.n; i-- > 0;) {
        const struct qc_ext *e = &w->img.exts.v[i];
        if (known_ext(e->magic))
            continue;
        if (!(n = put_ext(buf + pos, cs - pos, e->magic, e->data, e->avail)))
            goto out;
        pos += n;
    }
    if (!(n = put_ext(buf + pos, cs - pos, 0, NULL, 0)))
        goto out;
    pos += n;
    if (bname) {
        size_t len = strlen(bname);
        if (len > cs - pos)
            goto out;
        memcpy(buf + pos, bname, len);
        qc_put_be64(buf + 8, pos);
        qc_put_be32(buf + 16, (uint32_t)len);
    }
    r = qc_file_write(&w->img.file, 0, buf, cs, QC_EV_HEADER_UPDATE);
out:
    free(buf);
    return r;
}

int qc_w_mark_dirty(struct qc_writer *w)
{
    uint8_t be[8];
    int r;

    if (w->incompat & QC_INCOMPAT_DIRTY)
        return 0;
    qc_put_be64(be, w->incompat | QC_INCOMPAT_DIRTY);
    r = qc_file_write(&w->img.file, 72, be, 8, QC_EV_HEADER_UPDATE);
    if (r == 0)
        r = qc_file_flush(&w->img.file);
    if (r < 0)
        return r;
    w->incompat |= QC_INCOMPAT_DIRTY;
    return 0;
}

int qc_w_mark_clean(struct qc_writer *w)
{
    int r;

    if (!(w->incompat & QC_INCOMPAT_DIRTY))
        return 0;
    w->incompat &= ~QC_INCOMPAT_DIRTY;
    r = qc_flush_caches(w);
    if (r < 0)
        return r;
    return qc_w_update_header(w);
}

/* --- writes --- */

int qc_w_handle_l2meta(struct qc_writer *w, struct qc_l2meta **pm, bool link)
{
    int r = 0;

    while (*pm) {
        struct qc_l2meta *m = *pm;
        if (link) {
            r = qc_link_l2(w, m);
            if (r < 0)
                return r;
        } else {
            qc_alloc_abort(w, m);
        }
        *pm = m->next;
        free(m);
    }
    return r;
}

static bool cow_is_zero(struct qc_writer *w, const struct qc_l2meta *m)
{
    return is_zero(w, m->offset + m->cow_start.offset, m->cow_start.nb_bytes) &&
           is_zero(w, m->offset + m->cow_end.offset, m->cow_end.nb_bytes);
}

/* New space whose copy-on-write would only copy zeros is zeroed with one
 * write-zeroes request instead. */
static int handle_alloc_space(struct qc_writer *w, struct qc_l2meta *list)
{
    for (struct qc_l2meta *m = list; m; m = m->next) {
        uint64_t start = m->alloc_offset + m->cow_start.offset;
        uint64_t nb = (uint64_t)m->cow_end.offset + m->cow_end.nb_bytes - m->cow_start.offset;
        int r;

        if (!m->cow_start.nb_bytes && !m->cow_end.nb_bytes)
            continue;
        if (!cow_is_zero(w, m))
            continue;
        r = qc_file_write_zeroes(&w->img.file, start, nb, QC_EV_CLUSTER_ALLOC_SPACE);
        if (r < 0)
            return r;
        m->skip_cow = true;
    }
    return 0;
}

static bool merge_cow(uint64_t offset, uint64_t bytes, const uint8_t *data, struct qc_l2meta *list)
{
    for (struct qc_l2meta *m = list; m; m = m->next) {
        if (!m->cow_start.nb_bytes && !m->cow_end.nb_bytes)
            continue;
        if (m->skip_cow)
            continue;
        if (m->offset + m->cow_start.offset + m->cow_start.nb_bytes != offset)
            continue;
        if (m->offset + m->cow_end.offset != offset + bytes)
            continue;
        m->data = data;
        return true;
    }
    return false;
}

int qc_w_pwritev(struct qc_writer *w, uint64_t off, const uint8_t *buf, uint64_t len)
{
    while (len) {
        uint64_t cur = len < QC_INT_MAX ? len : QC_INT_MAX, host;
        struct qc_l2meta *meta = NULL;
        int r;

        r = qc_alloc_host_offset(w, off, &cur, &host, &meta);
        if (r < 0)
            goto fail;
        r = qc_w_pre_write(w, 0, host, cur);
        if (r < 0)
            goto fail;
        r = handle_alloc_space(w, meta);
        if (r < 0)
            goto fail;
        if (!merge_cow(off, cur, buf, meta)) {
            /* the write fires write_aio itself */
            r = qc_file_write(&w->img.file, host, buf, cur, QC_EV_WRITE_AIO);
            if (r < 0)
                goto fail;
        }
        r = qc_w_handle_l2meta(w, &meta, true);
        if (r < 0)
            goto fail;
        off += cur;
        buf += cur;
        len -= cur;
        continue;
fail:
        qc_w_handle_l2meta(w, &meta, false);
        return r;
    }
    return 0;
}

static int check_request(struct qc_writer *w, uint64_t off, uint64_t len, bool write)
{
    /* after a fatal corruption QEMU's node has no driver: no medium */
    if (w->corrupt)
        return -ENOMEDIUM;
    if (off > w->size || len > w->size - off)
        return -EIO;
    if (write && w->opt.readonly)
        return -EACCES;
    return 0;
}

int qc_writer_pwrite(struct qc_writer *w, uint64_t off, const uint8_t *buf, uint64_t len)
{
    int r = check_request(w, off, len, true);

    if (r < 0 || len == 0)
        return r;
    r = qc_w_pwritev(w, off, buf, len);
    w->guest_unflushed = true;
    if (r == 0 && w->opt.cache_mode == QC_CACHE_WRITETHROUGH)
        r = qc_w_flush_qcow2(w);
    return r;
}

/* QEMU's qcow2_co_pwrite_zeroes for one piece that does not cross a
 * subcluster boundary unless aligned. */
static int pwrite_zeroes_piece(struct qc_writer *w, uint64_t off, uint64_t bytes, bool may_unmap)
{
    uint64_t head = qc_w_offset_into_subcluster(w, off);
    uint64_t end = off + bytes;
    uint64_t tail = ((end + w->subcluster_size - 1) & ~(w->subcluster_size - 1)) - end;

    if (end == w->size)
        tail = 0;
    if (head || tail) {
        enum qc_subcluster_type type;
        uint64_t nr, host;
        int r;

        if (!(is_zero(w, off - head, head) && is_zero(w, end, tail)))
            return -ENOTSUP;
        off -= head;
        bytes = nr = w->subcluster_size;
        r = qc_get_host_offset(w, off, &nr, &host, &type);
        if (r < 0)
            return r;
        if (type != QC_SCT_UNALLOCATED_PLAIN && type != QC_SCT_UNALLOCATED_ALLOC &&
            type != QC_SCT_ZERO_PLAIN && type != QC_SCT_ZERO_ALLOC)
            return -ENOTSUP;
    }
    return qc_subcluster_zeroize(w, off, bytes, may_unmap);
}

int qc_writer_pwrite_zeroes(struct qc_writer *w, uint64_t off, uint64_t len, bool may_unmap)
{
    uint64_t align = w->subcluster_size, head, tail;
    uint64_t max_zero = QC_INT_MAX & ~(align - 1);
    uint8_t *zeros = NULL;
    int r = check_request(w, off, len, true);

    if (r < 0 || len == 0)
        return r;
    if (w->version < 3)
        may_unmap = false;   /* not a supported flag for v2 */
    head = off % align;
    tail = (off + len) % align;
    while (len > 0 && r == 0) {
        uint64_t num = len;
        if (head) {
            num = len < align - head ? len : align - head;
            if (num > MAX_BOUNCE)
                num = MAX_BOUNCE;
            head = (head + num) % align;
        } else if (tail && num > align) {
            num -= tail;
        }
        if (num > max_zero)
            num = max_zero;
        r = pwrite_zeroes_piece(w, off, num, may_unmap);
        if (r == -ENOTSUP) {
            /* the fallback: write a buffer of zeros */
            if (num > MAX_BOUNCE)
                num = MAX_BOUNCE;
            if (!zeros && !(zeros = calloc(1, (size_t)(num < MAX_BOUNCE ? MAX_BOUNCE : num)))) {
                r = QC_E_NOMEM;
                break;
            }
            r = qc_w_pwritev(w, off, zeros, num);
        }
        off += num;
        len -= num;
    }
    free(zeros);
    w->guest_unflushed = true;
    if (r == 0 && w->opt.cache_mode == QC_CACHE_WRITETHROUGH)
        r = qc_w_flush_qcow2(w);
    return r;
}

int qc_writer_pwrite_compressed(struct qc_writer *w, uint64_t off, const uint8_t *buf,
                                uint64_t len)
{
    uint8_t *in, *out;
    int r = check_request(w, off, len, true);

    if (r < 0 || len == 0)
        return r;
    if (qc_w_offset_into_cluster(w, off))
        return -EINVAL;
    if (qc_w_offset_into_cluster(w, len) && off + len != w->size)
        return -EINVAL;
    in = malloc((size_t)w->cluster_size);
    out = malloc((size_t)w->cluster_size);
    if (!in || !out) {
        free(in);
        free(out);
        return QC_E_NOMEM;
    }
    w->guest_unflushed = true;
    while (len && r == 0) {
        uint64_t chunk = len < w->cluster_size ? len : w->cluster_size;
        long clen;

        memset(in, 0, (size_t)w->cluster_size);
        memcpy(in, buf, (size_t)chunk);
        clen = qc_compress(w->compression_type, in, (size_t)w->cluster_size, out,
                           (size_t)w->cluster_size - 1);
        if (clen == -ENOSPC) {
            r = qc_w_pwritev(w, off, buf, chunk);   /* does not compress: a normal cluster */
        } else if (clen < 0) {
            r = -EINVAL;
        } else {
            uint64_t host;
            r = qc_alloc_compressed(w, off, (uint64_t)clen, &host);
            if (r == 0)
                r = qc_w_pre_write(w, 0, host, (uint64_t)clen);
            if (r == 0)
                r = qc_file_write(&w->img.file, host, out, (size_t)clen, QC_EV_WRITE_COMPRESSED);
        }
        off += chunk;
        buf += chunk;
        len -= chunk;
    }
    free(in);
    free(out);
    return r;
}

/* QEMU's qcow2_co_pdiscard for one piece. */
static int pdiscard_piece(struct qc_writer *w, uint64_t off, uint64_t bytes)
{
    if (w->version < 3 && w->backing)
        return -ENOTSUP;
    if ((off | bytes) & (w->cluster_size - 1)) {
        if (qc_w_offset_into_cluster(w, off) || off + bytes != w->size)
            return -ENOTSUP;
    }
    return qc_cluster_discard(w, off, bytes, QC_DISCARD_REQUEST, false);
}

int qc_writer_pdiscard(struct qc_writer *w, uint64_t off, uint64_t len)
{
    uint64_t align = w->cluster_size, head, tail;
    uint64_t max_discard = QC_INT_MAX & ~(align - 1);
    int r = check_request(w, off, len, true);

    if (r < 0 || len == 0)
        return r;
    head = off % align;
    tail = (off + len) % align;
    while (len > 0) {
        uint64_t num = len;
        if (w->corrupt) {
            /* a corruption in an earlier piece removed the medium */
            r = -ENOMEDIUM;
            break;
        }
        if (head) {
            num = len < align - head ? len : align - head;
            head = (head + num) % align;
        } else if (tail && num > align) {
            num -= tail;
        }
        if (num > max_discard)
            num = max_discard;
        r = pdiscard_piece(w, off, num);
        if (r < 0 && r != -ENOTSUP)
            break;
        r = 0;
        off += num;
        len -= num;
    }
    w->guest_unflushed = true;
    return r;
}

/* --- reads --- */

static int read_compressed(struct qc_writer *w, uint64_t desc, uint64_t in_cluster,
                           uint8_t *buf, uint64_t len)
{
    struct qc_compressed_desc d = qc_compressed_decode(&w->cgeom, desc);
    uint8_t *cbuf = malloc((size_t)d.size), *out = malloc((size_t)w->cluster_size);
    int r = QC_E_NOMEM;

    if (cbuf && out) {
        int64_t n;
        qc_file_event(&w->img.file, QC_EV_READ_COMPRESSED);
        n = qc_file_read_padded(&w->img.file, d.offset, cbuf, (size_t)d.size);
        if (n < 0)
            r = (int)n;
        else if (qc_decompress(w->compression_type, cbuf, (size_t)d.size, out,
                               (size_t)w->cluster_size) < 0) {
            set_err(w, "the compressed cluster at host offset %#llx does not inflate",
                    (unsigned long long)d.offset);
            r = -EIO;
        }
        else {
            memcpy(buf, out + in_cluster, (size_t)len);
            r = 0;
        }
    }
    free(cbuf);
    free(out);
    return r;
}

int qc_writer_pread(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len)
{
    int r = check_request(w, off, len, false);
    return r < 0 ? r : qc_w_preadv(w, off, buf, len);
}

int qc_w_preadv(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len)
{
    int r = 0;

    while (r == 0 && len) {
        enum qc_subcluster_type type;
        uint64_t cur = len < QC_INT_MAX ? len : QC_INT_MAX, host;

        r = qc_get_host_offset(w, off, &cur, &host, &type);
        if (r < 0)
            break;
        switch (type) {
        case QC_SCT_UNALLOCATED_PLAIN:
        case QC_SCT_UNALLOCATED_ALLOC:
            if (w->backing) {
                qc_file_event(&w->img.file, QC_EV_READ_BACKING_AIO);
                r = backing_read(w, off, buf, cur);
            } else {
                memset(buf, 0, (size_t)cur);
            }
            break;
        case QC_SCT_ZERO_PLAIN:
        case QC_SCT_ZERO_ALLOC:
            memset(buf, 0, (size_t)cur);
            break;
        case QC_SCT_COMPRESSED:
            r = read_compressed(w, host, qc_w_offset_into_cluster(w, off), buf, cur);
            break;
        case QC_SCT_NORMAL: {
            int64_t n;
            qc_file_event(&w->img.file, QC_EV_READ_AIO);
            n = qc_file_read_padded(&w->img.file, host, buf, (size_t)cur);
            r = n < 0 ? (int)n : 0;
            break;
        }
        default:
            r = -EIO;
            break;
        }
        off += cur;
        buf += cur;
        len -= cur;
    }
    return r;
}

int qc_writer_map(struct qc_writer *w, uint64_t off, uint64_t len,
                  enum qc_subcluster_type *type, uint64_t *host, uint64_t *n)
{
    int r = check_request(w, off, len, false);
    if (r < 0)
        return r;
    *n = len < QC_INT_MAX ? len : QC_INT_MAX;
    return qc_get_host_offset(w, off, n, host, type);
}

int qc_writer_backing_pread(struct qc_writer *w, uint64_t off, uint8_t *buf, uint64_t len)
{
    if (!w->backing) {
        memset(buf, 0, (size_t)len);
        return 0;
    }
    return backing_read(w, off, buf, len);
}
