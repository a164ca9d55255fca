/*
 * Opening an image as `qemu-img check` does (QEMU 7.2, no -f): probing,
 * the qcow2 driver's refusals in the order it meets them, the legacy qcow
 * driver, the external data file, bitmaps and the backing chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qc_follow.h"
#include "qc_util.h"
#include "qc_check_int.h"
#include "qc_endian.h"
#include "qc_header.h"
#include "qc_l2.h"

/* Backing chains longer than this are refused (QEMU recurses until it runs
 * out of memory on a chain that loops). */
#define MAX_BACKING_DEPTH 64

enum probed { PROBE_RAW, PROBE_QCOW, PROBE_QCOW2, PROBE_ERROR };

#define fmt_msg qc_asprintf


/* QEMU's path_combine: a relative backing name is relative to the
 * directory of the image that names it. */
static char *path_combine(const char *base, const char *name)
{
    const char *slash;
    size_t dlen;
    char *s;

    if (name[0] == '/')
        return strdup(name);
    slash = strrchr(base, '/');
    dlen = slash ? (size_t)(slash - base) + 1 : 0;
    s = malloc(dlen + strlen(name) + 1);
    if (!s)
        return NULL;
    memcpy(s, base, dlen);
    strcpy(s + dlen, name);
    return s;
}

/* The file-level open QEMU's 'file' driver performs: NULL, or the error. */
static char *open_error(const char *path, int e)
{
    if (e == -EISDIR || e == -EINVAL)
        return fmt_msg("'file' driver requires '%s' to be a regular file", path);
    return fmt_msg("Could not open '%s': %s", path, qc_strerror(e));
}

static char *check_plain_file(const char *path)
{
    struct qc_file f;
    int r = qc_file_open(&f, path, 0, NULL);
    if (r < 0)
        return open_error(path, r);
    qc_file_close(&f);
    return NULL;
}

/* Format probing as QEMU's find_image_format: an image that cannot be read
 * is an I/O error (PROBE_ERROR, the code in *ERR), never "raw". */
static enum probed probe(struct qc_file *f, int *err)
{
    uint8_t h[8];
    int64_t r;

    if (f->size == 0)
        return PROBE_RAW;
    if ((r = qc_file_read_padded(f, 0, h, sizeof h)) < 0) {
        *err = (int)r;
        return PROBE_ERROR;
    }
    if (qc_be32(h) != QC_MAGIC)
        return PROBE_RAW;
    if (qc_be32(h + 4) >= 2)
        return PROBE_QCOW2;
    if (qc_be32(h + 4) == 1)
        return PROBE_QCOW;
    return PROBE_RAW;
}

/* QEMU's message when the probe's read fails. */
static char *probe_error(int e)
{
    return fmt_msg("Could not read image for determining its format: %s", qc_strerror(e));
}

static char *open_backing(struct qc_check *c, const char *overlay, const char *name,
                          const char *format, int depth);

/* A refusal of the open: MSG (the message QEMU prints) and its finding's
 * kind, which the check reports; the kind is never read back from text. */
static char *refuse_as(struct qc_check *c, enum qc_problem_kind kind, char *msg)
{
    c->open_kind = kind;
    return msg;
}

/* --- legacy qcow (version 1) -------------------------------------------------- */

/* QEMU's qcow driver at open; NULL when it would succeed.  Its backing file
 * is opened too. */
static char *open_qcow1(struct qc_check *c, struct qc_file *f, const char *path, int depth)
{
    uint8_t h[48];
    uint64_t size, l1_off, bfo, l1;
    unsigned cb, l2b, shift;
    uint32_t crypt, bfs;

    if (qc_file_read_padded(f, 0, h, sizeof h) < 0)
        return refuse_as(c, QC_P_OPEN_FAILED, fmt_msg("Could not open '%s': %s", path, strerror(EIO)));
    bfo = qc_be64(h + 8);
    bfs = qc_be32(h + 16);
    size = qc_be64(h + 24);
    cb = h[32];
    l2b = h[33];
    crypt = qc_be32(h + 36);
    l1_off = qc_be64(h + 40);
    if (size <= 1)
        return fmt_msg("Image size is too small (must be at least 2 bytes)");
    if (cb < 9 || cb > 16)
        return fmt_msg("Cluster size must be between 512 and 64k");
    if (l2b < 6 || l2b > 13)
        return fmt_msg("L2 table size must be between 512 and 64k");
    /* AES (1) opens with the key; metadata is read keyless */
    if (crypt > 1)
        return fmt_msg("invalid encryption method in qcow header");
    shift = cb + l2b;
    if (size > UINT64_MAX - (1ull << shift))
        return fmt_msg("Image too large");
    l1 = (size + (1ull << shift) - 1) >> shift;
    if (l1 > 0x7fffffffull / 8)
        return fmt_msg("Image too large");
    if (!qc_qemu_read_ok(l1_off, l1 * 8))
        return fmt_msg("Could not open '%s': %s", path, strerror(EIO));
    if (size / 512 * 512 > QC_QEMU_MAX_LENGTH)
        return refuse_as(c, QC_P_SIZE_TOO_LARGE,
                         fmt_msg("Could not refresh total sector count: %s", strerror(EFBIG)));
    if (bfo) {
        char name[1024];
        char *e;
        if (bfs > 1023)
            return refuse_as(c, QC_P_BACKING_NAME_TOO_LONG, fmt_msg("Backing file name too long"));
        if (!qc_qemu_read_ok(bfo, bfs))
            return fmt_msg("Could not open '%s': %s", path, strerror(EIO));
        qc_file_read_padded(f, bfo, name, bfs);
        name[bfs] = '\0';
        if (name[0] && (e = open_backing(c, path, name, NULL, depth + 1)))
            return e;
    }
    return NULL;
}

/* --- qcow2 -------------------------------------------------------------------- */

static bool header_kind(enum qc_problem_kind k)
{
    switch (k) {
    case QC_P_BAD_MAGIC: case QC_P_UNSUPPORTED_VERSION: case QC_P_BAD_CLUSTER_BITS:
    case QC_P_HEADER_TOO_SHORT: case QC_P_HEADER_TOO_LONG: case QC_P_BAD_BACKING_OFFSET:
    case QC_P_BAD_COMPRESSION_TYPE: case QC_P_UNKNOWN_INCOMPAT: case QC_P_BAD_SUBCLUSTER_SIZE:
    case QC_P_BAD_REFCOUNT_ORDER: case QC_P_NO_REFTABLE: case QC_P_REFTABLE_TOO_LARGE:
    case QC_P_BAD_REFTABLE_OFFSET: case QC_P_SNAPSHOT_TABLE_TOO_LARGE:
    case QC_P_BAD_SNAPSHOT_OFFSET: case QC_P_L1_TOO_LARGE: case QC_P_BAD_L1_OFFSET:
    case QC_P_IMAGE_TOO_BIG: case QC_P_L1_TOO_SMALL: case QC_P_TRUNCATED_HEADER:
    case QC_P_CORRUPT_BIT:
        return true;
    default:
        return false;
    }
}

static bool ext_kind(enum qc_problem_kind k)
{
    return k == QC_P_EXT_TOO_LARGE || k == QC_P_EXT_TRUNCATED ||
           k == QC_P_EXT_BACKING_FORMAT || k == QC_P_EXT_CRYPTO || k == QC_P_LUKS_HEADER ||
           k == QC_P_EXT_BITMAPS;
}

/* Loading the bitmaps at open (qcow2_load_dirty_bitmaps); NULL on success. */
static char *load_bitmaps(struct qc_file *f, const struct qc_header *h, uint32_t nb,
                          uint64_t dir_off, uint64_t dir_size)
{
    unsigned cb = h->cluster_bits;
    uint64_t disk_len = h->size / 512 * 512;
    struct qc_bitmap_dir d;
    char *err = NULL;
    int e;

    e = qc_bitmap_dir_load_qemu(f, dir_off, dir_size, nb, cb, disk_len, &d, &err);
    if (e < 0) {
        qc_bitmap_dir_free(&d);
        return err ? err : fmt_msg("%s", qc_strerror(e));
    }
    for (size_t i = 0; i < d.n && !err; i++) {
        const struct qc_bitmap *b = &d.v[i];
        bool exists = false;
        uint64_t *table;
        uint32_t bad;

        for (size_t j = 0; j < i; j++)
            if (strcmp(d.v[j].name, b->name) == 0)
                exists = true;
        if (exists) {
            /* an in-use duplicate is skipped, any other is refused */
            if (!(b->flags & QC_BME_FLAG_IN_USE))
                err = fmt_msg("Bitmap already exists: %s", b->name);
            continue;
        }
        if (b->flags & QC_BME_FLAG_IN_USE)
            continue;
        e = qc_bitmap_table_load_qemu(f, b, cb, &table, &bad);
        if (e < 0) {
            err = fmt_msg("Could not read bitmap_table table from image for bitmap '%s': %s",
                          b->name, qc_strerror(e));
            break;
        }
        free(table);
        if (qc_bitmap_table_size_needed(disk_len, b->granularity_bits, cb) != b->table_size)
            err = fmt_msg("Could not read bitmap '%s' from image: %s", b->name, strerror(EINVAL));
    }
    qc_bitmap_dir_free(&d);
    return err;
}

/* The bitmaps extension QEMU ends up using (the last valid one). */
static const struct qc_ext *bitmaps_ext(const struct qc_image *img)
{
    const struct qc_ext *found = NULL;
    if (!(img->hdr.autoclear_features & QC_AUTOCLEAR_BITMAPS))
        return NULL;
    for (size_t i = 0; i < img->exts.n; i++)
        if (img->exts.v[i].magic == QC_EXT_BITMAPS && img->exts.v[i].length == 24)
            found = &img->exts.v[i];
    return found;
}

static void emit_bitmap_warning(struct qc_check *c, const struct qc_problem *p)
{
    qc_check_emit(c, QC_P_BITMAPS_WITHOUT_AUTOCLEAR, QC_SEV_INFO,
                  QC_EVL_PRINTED | QC_EVL_PROGNAME, p->offset, QC_NO_OFFSET,
                  "warning: %s", p->message);
    qc_check_emit(c, QC_P_QEMU_REPORT, QC_SEV_INFO, QC_EVL_PRINTED | QC_EVL_NO_NL,
                  QC_NO_OFFSET, QC_NO_OFFSET,
                  "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.");
}

/* The qcow2 driver's open of IMG (already parsed in check mode), from the
 * first refusal on; NULL on success.  TOP: the image being checked (its
 * open-time warnings are findings of the check). */
static char *open_qcow2_steps(struct qc_check *c, struct qc_image *img, const char *path,
                              int depth)
{
    const struct qc_header *h = &img->hdr;
    const struct qc_problems *P = &img->problems;
    uint64_t cs = qc_header_cluster_size(h);
    const struct qc_ext *be;
    size_t i;

    /* 1. header rules up to "L1 table is too small" */
    for (i = 0; i < P->n; i++)
        if (header_kind(P->v[i].kind) && P->v[i].severity == QC_SEV_ERROR)
            return refuse_as(c, P->v[i].kind, strdup(P->v[i].message));
    /* 2. reading the L1 table */
    if (h->l1_size && !qc_qemu_read_ok(h->l1_table_offset, (uint64_t)h->l1_size * 8))
        return refuse_as(c, QC_P_L1_UNREADABLE,
                         fmt_msg("Could not read L1 table: %s", strerror(EIO)));
    /* 3. the encryption method (option parsing) */
    if (h->crypt_method > QC_CRYPT_LUKS)
        return refuse_as(c, QC_P_BAD_CRYPT_METHOD,
                         fmt_msg("Unsupported encryption method %d", (int32_t)h->crypt_method));
    /* 4. the refcount table */
    if (h->refcount_table_clusters &&
        !qc_qemu_read_ok(h->refcount_table_offset, (uint64_t)h->refcount_table_clusters * cs))
        return refuse_as(c, QC_P_REFTABLE_UNREADABLE,
                         fmt_msg("Could not initialize refcount handling: %s", strerror(EIO)));
    /* 5. extensions, in order (a LUKS header as QEMU opens it with the
     * key: metadata is never encrypted, so the check goes on keyless) */
    for (i = 0; i < P->n; i++) {
        const struct qc_problem *p = &P->v[i];
        if (p->kind == QC_P_BITMAPS_WITHOUT_AUTOCLEAR)
            emit_bitmap_warning(c, p);
        else if (ext_kind(p->kind) && p->severity == QC_SEV_ERROR)
            return refuse_as(c, p->kind, strdup(p->message));
    }
    /* 6. the external data file (named relative to the working directory) */
    if (h->incompatible_features & QC_INCOMPAT_DATA_FILE) {
        char *e;
        if (!img->data_file_name)
            return refuse_as(c, QC_P_DATA_FILE_REQUIRED,
                             fmt_msg("'data-file' is required for this image"));
        if (!img->data_file_name[0])
            return refuse_as(c, QC_P_OPEN_FAILED,
                             fmt_msg("The 'file' block driver requires a file name"));
        if ((e = qc_follow_refusal(path, img->data_file_name, img->data_file_name,
                                   QC_FOLLOW_DATA_FILE)))
            return refuse_as(c, QC_P_NOT_FOLLOWED, e);
        if ((e = check_plain_file(img->data_file_name)))
            return refuse_as(c, QC_P_DATA_FILE_MISSING, e);
    } else if (h->autoclear_features & QC_AUTOCLEAR_DATA_RAW) {
        return refuse_as(c, QC_P_RAW_WITHOUT_DATA_FILE,
                         fmt_msg("data-file-raw requires a data file"));
    }
    /* 7. encryption without a header extension (AES needs none) */
    if (h->crypt_method == QC_CRYPT_LUKS && !qc_ext_find(&img->exts, QC_EXT_CRYPTO))
        return refuse_as(c, QC_P_MISSING_CRYPTO_HEADER,
                         fmt_msg("Missing CRYPTO header for crypt method %d", (int)h->crypt_method));
    /* 8. the backing file name */
    if (qc_problems_has(P, QC_P_BACKING_NAME_TOO_LONG))
        return refuse_as(c, QC_P_BACKING_NAME_TOO_LONG, fmt_msg("Backing file name too long"));
    /* 9. bitmaps */
    if ((be = bitmaps_ext(img))) {
        struct qc_ext_bitmaps b;
        char *e;
        qc_ext_bitmaps_decode(be, &b);
        if ((e = load_bitmaps(&img->file, h, b.nb_bitmaps, b.directory_offset, b.directory_size)))
            return refuse_as(c, QC_P_BITMAP_DIRECTORY, e);
    }
    /* 10. the block layer's sector count */
    if (h->size / 512 * 512 > QC_QEMU_MAX_LENGTH)
        return refuse_as(c, QC_P_SIZE_TOO_LARGE,
                         fmt_msg("Could not refresh total sector count: %s", strerror(EFBIG)));
    /* 11. the backing chain */
    if (img->backing_name && img->backing_name[0])
        return open_backing(c, path, img->backing_name, img->backing_format, depth + 1);
    return NULL;
}

static char *open_backing(struct qc_check *c, const char *overlay, const char *name,
                          const char *format, int depth)
{
    char *full = path_combine(overlay, name);
    char *err = NULL, *inner = NULL;
    struct qc_image img;
    enum probed kind;
    int r;

    if (!full)
        return NULL;
    if (depth > MAX_BACKING_DEPTH) {
        err = fmt_msg("Could not open backing file: backing chain longer than %d images",
                      MAX_BACKING_DEPTH);
        free(full);
        return err;
    }
    if ((inner = qc_follow_refusal(overlay, name, full, QC_FOLLOW_BACKING)))
        goto out;
    r = qc_image_open(&img, full, 0, QC_VALIDATE_CHECK, NULL);
    if (r < 0 && r != QC_E_FORMAT) {
        inner = img.read_failed ? probe_error(r) : open_error(full, r);
        goto out;
    }
    if (format && strcmp(format, "qcow2") == 0)
        kind = PROBE_QCOW2;
    else if (format && (strcmp(format, "raw") == 0 || strcmp(format, "file") == 0))
        kind = PROBE_RAW;
    else if (format && strcmp(format, "qcow") == 0)
        kind = PROBE_QCOW;
    else if (format && format[0]) {
        inner = fmt_msg("Unknown driver '%s'", format);
        goto close;
    } else {
        int e = 0;
        if ((kind = probe(&img.file, &e)) == PROBE_ERROR) {
            inner = probe_error(e);
            goto close;
        }
    }
    if (kind == PROBE_QCOW2) {
        if (r == QC_E_FORMAT)
            inner = fmt_msg("Image is not in qcow2 format");
        else
            inner = open_qcow2_steps(c, &img, full, depth);
    } else if (kind == PROBE_QCOW) {
        uint8_t m[4] = { 0 };
        qc_file_read_padded(&img.file, 0, m, 4);
        if (qc_be32(m) != QC_MAGIC)
            inner = fmt_msg("Image not in qcow format");
        else
            inner = open_qcow1(c, &img.file, full, depth);
    }
close:
    qc_image_close(&img);
out:
    if (inner) {
        /* nested failures read "Could not open backing file: " per level */
        err = refuse_as(c, QC_P_BACKING_OPEN_FAILED,
                        fmt_msg("Could not open backing file: %s", inner));
        free(inner);
    }
    free(full);
    return err;
}

/* --- the image being checked ------------------------------------------------ */

static void fail_open(struct qc_check *c, enum qc_problem_kind kind, enum qc_check_status st,
                      char *msg)
{
    struct qc_check_result *res = c->res;

    res->status = st;
    free(res->message);
    res->message = msg ? msg : strdup("out of memory");
    qc_check_emit(c, kind, QC_SEV_ERROR, QC_EVL_NOCOUNT, QC_NO_OFFSET, QC_NO_OFFSET, "%s",
                  res->message ? res->message : "");
}

/* Keeps what the check needs from the open image. */
static int keep_state(struct qc_check *c)
{
    struct qc_image *img = &c->img;
    const struct qc_header *h = &img->hdr;
    const struct qc_ext *e;
    uint64_t in_file;
    uint8_t *raw;
    int r;

    c->f = &img->file;
    c->res->encrypted = h->crypt_method != QC_CRYPT_NONE;
    c->cb = h->cluster_bits;
    c->cs = 1ull << c->cb;
    c->order = h->refcount_order;
    c->extl2 = qc_header_extended_l2(h);
    c->l2_esize = c->extl2 ? 16 : 8;
    c->l2_entries = c->cs / c->l2_esize;
    c->data_file = (h->incompatible_features & QC_INCOMPAT_DATA_FILE) != 0;
    c->disk_len = h->size / 512 * 512;
    /* QEMU's length of a file is a whole number of 512-byte sectors */
    c->file_len = (c->f->size + 511) & ~511ull;
    c->l1_offset = h->l1_table_offset;
    c->l1_size = h->l1_size;

    /* the active L1 table, as far as the file holds it */
    in_file = c->l1_offset < c->f->size ? c->f->size - c->l1_offset : 0;
    if (in_file > (uint64_t)c->l1_size * 8)
        in_file = (uint64_t)c->l1_size * 8;
    c->l1_stored = (in_file + 7) / 8;
    if (c->l1_stored) {
        raw = calloc(c->l1_stored, 8);
        c->l1 = malloc(c->l1_stored * sizeof(uint64_t));
        if (!raw || !c->l1) {
            free(raw);
            return QC_E_NOMEM;
        }
        r = qc_file_read_qemu(c->f, c->l1_offset, raw, (size_t)(c->l1_stored * 8));
        if (r < 0) {
            free(raw);
            return r;
        }
        for (uint64_t i = 0; i < c->l1_stored; i++)
            c->l1[i] = qc_be64(raw + 8 * i);
        free(raw);
    }
    r = qc_refcount_disk_open(&c->disk, c->f, c->cb, c->order, h->refcount_table_offset,
                              h->refcount_table_clusters);
    if (r < 0)
        return r;
    if (h->crypt_method == QC_CRYPT_LUKS && (e = qc_ext_find(&img->exts, QC_EXT_CRYPTO))) {
        struct qc_ext_crypto cr;
        qc_ext_crypto_decode(e, &cr);
        c->crypto_offset = cr.offset;
        c->crypto_length = cr.length;
    }
    if ((e = bitmaps_ext(img))) {
        struct qc_ext_bitmaps b;
        qc_ext_bitmaps_decode(e, &b);
        c->nb_bitmaps = b.nb_bitmaps;
        c->bm_dir_offset = b.directory_offset;
        c->bm_dir_size = b.directory_size;
    }
    return 0;
}

int qc_check_open(struct qc_check *c)
{
    const char *path = c->path;
    enum probed kind;
    char *err;
    int r;

    c->open_kind = QC_P_OPEN_FAILED;
    r = qc_image_open(&c->img, path, 0, QC_VALIDATE_CHECK, NULL);
    if (r < 0 && r != QC_E_FORMAT) {
        /* QEMU's first read of the file is the format probe */
        char *e = c->img.read_failed ? probe_error(r) : open_error(path, r);
        fail_open(c, QC_P_OPEN_FAILED, QC_CHECK_OPEN_FAILED,
                  fmt_msg("Could not open '%s': %s", path, e ? e : ""));
        free(e);
        return 1;
    }
    c->img_open = true;
    int perr = 0;
    if ((kind = probe(&c->img.file, &perr)) == PROBE_ERROR) {
        char *e = probe_error(perr);
        fail_open(c, QC_P_OPEN_FAILED, QC_CHECK_OPEN_FAILED,
                  fmt_msg("Could not open '%s': %s", path, e));
        free(e);
        return 1;
    }
    c->res->format = kind == PROBE_QCOW2 ? "qcow2" : kind == PROBE_QCOW ? "qcow" : "raw";
    if (kind == PROBE_RAW) {
        fail_open(c, QC_P_NOT_QCOW2, QC_CHECK_UNSUPPORTED,
                  strdup("This image format does not support checks"));
        return 1;
    }
    if (kind == PROBE_QCOW) {
        err = open_qcow1(c, &c->img.file, path, 0);
        if (err) {
            char *m = fmt_msg("Could not open '%s': %s", path, err);
            fail_open(c, c->open_kind, QC_CHECK_OPEN_FAILED, m);
            free(err);
        } else {
            fail_open(c, QC_P_LEGACY_QCOW, QC_CHECK_UNSUPPORTED,
                      strdup("This image format does not support checks"));
        }
        return 1;
    }
    err = open_qcow2_steps(c, &c->img, path, 0);
    if (err) {
        char *m = fmt_msg("Could not open '%s': %s", path, err);
        fail_open(c, c->open_kind, QC_CHECK_OPEN_FAILED, m);
        free(err);
        return 1;
    }
    if ((r = keep_state(c)) < 0) {
        fail_open(c, QC_P_OPEN_FAILED, QC_CHECK_OPEN_FAILED,
                  fmt_msg("Could not open '%s': %s", path,
                          r == QC_E_NOMEM ? strerror(ENOMEM) : qc_strerror(r)));
        return 1;
    }
    return 0;
}
