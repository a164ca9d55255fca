/* Opening an image: header, extensions, names, geometry, open-time rules. */
#include "qc_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_luks.h"
#include "qc_sidefile.h"

/* Bytes read for cluster 0: the largest cluster QEMU accepts. */
#define QC_MAX_CLUSTER_SIZE (1u << 21)

static void free_parsed(struct qc_image *img)
{
    qc_header_free(&img->hdr);
    qc_ext_list_free(&img->exts);
    qc_feature_table_free(&img->features);
    qc_problems_free(&img->problems);
    free(img->cluster0);
    free(img->backing_name);
    free(img->backing_format);
    free(img->data_file_name);
    img->cluster0 = NULL;
    img->backing_name = img->backing_format = img->data_file_name = NULL;
    img->open_error = NULL;
}

static char *strndup_printable(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void set_geometry(struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;

    img->geometry_ok = h->cluster_bits >= 9 && h->cluster_bits <= 21 && h->refcount_order <= 6;
    if (!img->geometry_ok)
        return;
    img->cluster_bits = h->cluster_bits;
    img->cluster_size = 1ull << h->cluster_bits;
    img->extended_l2 = qc_header_extended_l2(h);
    img->l2_entry_size = img->extended_l2 ? 16 : 8;
    img->l2_bits = h->cluster_bits - (img->extended_l2 ? 4 : 3);
    img->l2_entries = 1ull << img->l2_bits;
    img->refcount_order = h->refcount_order;
    img->refcount_bits = 1u << h->refcount_order;
    img->refblock_entries = img->cluster_size * 8 / img->refcount_bits;
    img->subcluster_size = img->extended_l2 ? (unsigned)(img->cluster_size / 32) : 0;
}

/* Parse everything from the bytes already read into cluster0. */
static int parse_cluster0(struct qc_image *img)
{
    struct qc_header *h = &img->hdr;
    uint64_t area_start, area_end;
    const struct qc_ext *e;
    int r;

    r = qc_header_parse(h, img->cluster0, img->cluster0_len);
    if (r == QC_E_NOMEM)
        return r;
    set_geometry(img);
    if (r == QC_E_RANGE)
        return 0;   /* shorter than a v2 header: nothing more to parse */

    area_start = qc_header_len(h);
    area_end = h->backing_file_offset ? h->backing_file_offset : qc_header_cluster_size(h);
    if (h->cluster_bits >= 9 && h->cluster_bits <= 21 && area_end > (1ull << h->cluster_bits))
        area_end = 1ull << h->cluster_bits;
    if (area_start < area_end) {
        r = qc_ext_parse(&img->exts, img->cluster0, img->cluster0_len, area_start, area_end);
        if (r < 0)
            return r;
    } else {
        memset(&img->exts, 0, sizeof img->exts);
        img->exts.start = area_start;
        img->exts.end = area_end;
        img->exts.end_marker = UINT64_MAX;
        img->exts.bad_offset = UINT64_MAX;
    }

    if ((e = qc_ext_find(&img->exts, QC_EXT_FEATURE_TABLE)) &&
        qc_feature_table_parse(&img->features, e->data, e->avail) < 0)
        return QC_E_NOMEM;
    if ((e = qc_ext_find(&img->exts, QC_EXT_BACKING_FORMAT)) &&
        !(img->backing_format = strndup_printable(e->data, e->avail)))
        return QC_E_NOMEM;
    /* QEMU keeps the last data file extension */
    for (size_t i = 0; i < img->exts.n; i++) {
        if (img->exts.v[i].magic != QC_EXT_DATA_FILE)
            continue;
        free(img->data_file_name);
        img->data_file_name = strndup_printable(img->exts.v[i].data, img->exts.v[i].avail);
        if (!img->data_file_name)
            return QC_E_NOMEM;
    }
    if (h->backing_file_offset && h->backing_file_size &&
        h->backing_file_size <= QC_MAX_BACKING_NAME &&
        h->backing_file_offset < img->cluster0_len) {
        uint64_t n = img->cluster0_len - h->backing_file_offset;
        if (n > h->backing_file_size)
            n = h->backing_file_size;
        img->backing_name = strndup_printable(img->cluster0 + h->backing_file_offset, (size_t)n);
        if (!img->backing_name)
            return QC_E_NOMEM;
    }
    return 0;
}

/* QEMU's extension rules (docs/qemu-behaviour.md §1.3), in the order the
 * extensions appear; returns false after the first refusal. */
static bool validate_extensions(struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    struct qc_problems *p = &img->problems;
    struct qc_ext_list *l = &img->exts;
    uint64_t cs = qc_header_cluster_size(h);

    for (size_t i = 0; i < l->n; i++) {
        const struct qc_ext *e = &l->v[i];

        if (l->status == QC_EXT_TOO_LARGE && e->offset == l->bad_offset) {
            qc_problem_add(p, QC_P_EXT_TOO_LARGE, e->offset, "Header extension too large");
            return false;
        }
        switch (e->magic) {
        case QC_EXT_BACKING_FORMAT:
            if (e->length >= 16) {
                qc_problem_add(p, QC_P_EXT_BACKING_FORMAT, e->offset,
                               "ERROR: ext_backing_format: len=%u too large (>=16)", e->length);
                return false;
            }
            break;
        case QC_EXT_CRYPTO: {
            struct qc_ext_crypto c;
            if (h->crypt_method != QC_CRYPT_LUKS) {
                qc_problem_add(p, QC_P_EXT_CRYPTO, e->offset,
                               "CRYPTO header extension only expected with LUKS encryption method");
                return false;
            }
            if (e->length != 16) {
                qc_problem_add(p, QC_P_EXT_CRYPTO, e->offset,
                               "CRYPTO header extension size %u, but expected size 16", e->length);
                return false;
            }
            qc_ext_crypto_decode(e, &c);
            if (c.offset & (cs - 1)) {
                qc_problem_add(p, QC_P_EXT_CRYPTO, e->offset,
                               "Encryption header offset '%llu' is not a multiple of cluster size '%llu'",
                               (unsigned long long)c.offset, (unsigned long long)cs);
                return false;
            }
            /* QEMU opens the LUKS header here; with the key, what it finds
             * there is the only reason the open can fail */
            char *luks = qc_luks_open_error(&img->file, c.offset, c.length);
            if (luks) {
                qc_problem_add(p, QC_P_LUKS_HEADER, e->offset, "%s", luks);
                free(luks);
                return false;
            }
            break;
        }
        case QC_EXT_BITMAPS: {
            struct qc_ext_bitmaps b;
            if (e->length != 24) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset, "bitmaps_ext: Invalid extension length");
                return false;
            }
            if (!(h->autoclear_features & QC_AUTOCLEAR_BITMAPS)) {
                qc_problem_add(p, QC_P_BITMAPS_WITHOUT_AUTOCLEAR, e->offset,
                               "%s", h->version < 3
                               ? "This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent"
                               : "a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent");
                break;
            }
            qc_ext_bitmaps_decode(e, &b);
            if (b.reserved32) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset, "bitmaps_ext: Reserved field is not zero");
                return false;
            }
            if (b.nb_bitmaps > 65535) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset,
                               "bitmaps_ext: Image has %u bitmaps, exceeding the QEMU supported maximum of 65535",
                               b.nb_bitmaps);
                return false;
            }
            if (b.nb_bitmaps == 0) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset, "found bitmaps extension with zero bitmaps");
                return false;
            }
            if (b.directory_offset & (cs - 1)) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset, "bitmaps_ext: invalid bitmap directory offset");
                return false;
            }
            if (b.directory_size > 1024ull * 65535) {
                qc_problem_add(p, QC_P_EXT_BITMAPS, e->offset,
                               "bitmaps_ext: bitmap directory size (%llu) exceeds the maximum supported size (67107840)",
                               (unsigned long long)b.directory_size);
                return false;
            }
            break;
        }
        default:
            break;
        }
    }
    if (l->status == QC_EXT_TOO_LARGE && (l->n == 0 || l->v[l->n - 1].offset != l->bad_offset)) {
        qc_problem_add(p, QC_P_EXT_TOO_LARGE, l->bad_offset, "Header extension too large");
        return false;
    }
    if (l->status == QC_EXT_TRUNCATED)
        qc_problem_add(p, QC_P_EXT_TRUNCATED, l->bad_offset,
                       "header extension area cut short by the end of the file at offset %llu",
                       (unsigned long long)img->file.size);
    return true;
}

void qc_image_validate(struct qc_image *img, enum qc_validate_mode mode)
{
    const struct qc_header *h = &img->hdr;
    struct qc_problems *p = &img->problems;
    size_t before;

    qc_problems_free(p);
    img->open_error = NULL;

    qc_header_validate(h, &img->features, mode == QC_VALIDATE_CHECK, p);
    if (p->n == 0 && mode == QC_VALIDATE_WRITE && (h->incompatible_features & QC_INCOMPAT_CORRUPT))
        qc_problem_add_sev(p, QC_P_CORRUPT_BIT, QC_SEV_ERROR, 72,
                           "qcow2: Image is corrupt; cannot be opened read/write");
    if (p->n)
        goto done;

    before = p->n;
    if (!validate_extensions(img))
        goto done;
    (void)before;

    if ((h->incompatible_features & QC_INCOMPAT_DATA_FILE) && !img->data_file_name)
        qc_problem_add(p, QC_P_DATA_FILE_REQUIRED, 72, "'data-file' is required for this image");
    if ((h->autoclear_features & QC_AUTOCLEAR_DATA_RAW) &&
        !(h->incompatible_features & QC_INCOMPAT_DATA_FILE))
        qc_problem_add(p, QC_P_RAW_WITHOUT_DATA_FILE, 88, "data-file-raw requires a data file");
    if (h->crypt_method == QC_CRYPT_LUKS && !qc_ext_find(&img->exts, QC_EXT_CRYPTO)) {
        qc_problem_add(p, QC_P_MISSING_CRYPTO_HEADER, 32, "Missing CRYPTO header for crypt method 2");
        goto done;
    }
    if (h->backing_file_offset) {
        uint64_t cs = 1ull << h->cluster_bits;
        uint64_t room = cs - h->backing_file_offset;
        if (h->backing_file_size > (room < QC_MAX_BACKING_NAME ? room : QC_MAX_BACKING_NAME)) {
            qc_problem_add(p, QC_P_BACKING_NAME_TOO_LONG, 16, "Backing file name too long");
            goto done;
        }
    }

done:
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].severity == QC_SEV_ERROR) {
            img->open_error = &p->v[i];
            break;
        }
    }
    /* Findings that never stop QEMU but users want to know. */
    if (h->magic == QC_MAGIC && h->version == 3) {
        if (h->incompatible_features & QC_INCOMPAT_DIRTY)
            qc_problem_add(p, QC_P_DIRTY_BIT, 72, "image is dirty: refcounts may be stale");
        if ((h->incompatible_features & QC_INCOMPAT_CORRUPT) && mode != QC_VALIDATE_WRITE)
            qc_problem_add(p, QC_P_CORRUPT_BIT, 72, "image is marked corrupt");
        if (h->compatible_features & ~QC_COMPAT_KNOWN)
            qc_problem_add(p, QC_P_UNKNOWN_COMPAT, 80, "unknown compatible feature bits 0x%llx",
                           (unsigned long long)(h->compatible_features & ~QC_COMPAT_KNOWN));
        if (h->autoclear_features & ~QC_AUTOCLEAR_KNOWN)
            qc_problem_add(p, QC_P_UNKNOWN_AUTOCLEAR, 88, "unknown autoclear feature bits 0x%llx",
                           (unsigned long long)(h->autoclear_features & ~QC_AUTOCLEAR_KNOWN));
    }
    /* open_error points into p->v, which the additions above may move */
    img->open_error = NULL;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].severity == QC_SEV_ERROR) {
            img->open_error = &p->v[i];
            break;
        }
    }
}

/* Reads cluster 0 as far as the file has it.  With PAD (qemu-img check's
 * view: the block layer reads zeros past the end of the file) the buffer is
 * zero-filled up to the cluster size the header names (at least 4 KiB, at
 * most 2 MiB), so a short file parses as QEMU parses it. */
static int read_cluster0(struct qc_image *img, bool pad)
{
    uint64_t n = img->file.size < QC_MAX_CLUSTER_SIZE ? img->file.size : QC_MAX_CLUSTER_SIZE;
    uint64_t len = n;
    uint8_t *buf;
    int r;

    if (img->pad_eof) {
        len = QC_MAX_CLUSTER_SIZE;
    } else if (pad) {
        uint8_t cb[4] = { 0 };
        uint64_t want = 4096;
        if (qc_file_read_padded(&img->file, 20, cb, 4) < 0)
            return -EIO;
        if (qc_be32(cb) >= 12 && qc_be32(cb) <= 21)
            want = 1ull << qc_be32(cb);
        if (len < want)
            len = want;
    }
    buf = calloc(1, len ? len : 1);
    if (!buf)
        return QC_E_NOMEM;
    if (len > n) {
        int64_t got = qc_file_read_padded(&img->file, 0, buf, (size_t)len);
        r = got < 0 ? (int)got : 0;
    } else {
        r = qc_file_read(&img->file, 0, buf, (size_t)n);
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    img->cluster0 = buf;
    img->cluster0_len = (size_t)len;
    return 0;
}

int qc_image_reload(struct qc_image *img, enum qc_validate_mode mode)
{
    int r;

    free_parsed(img);
    if ((r = read_cluster0(img, mode == QC_VALIDATE_CHECK)) < 0)
        return r;
    if (img->file.size < 4 || qc_be32(img->cluster0) != QC_MAGIC)
        return QC_E_FORMAT;
    if ((r = parse_cluster0(img)) < 0)
        return r;
    qc_image_validate(img, mode);
    return 0;
}

int qc_image_open(struct qc_image *img, const char *path, unsigned open_flags,
                  enum qc_validate_mode mode, const char **lock_why)
{
    int r;

    memset(img, 0, sizeof *img);
    img->pad_eof = (open_flags & QC_IMAGE_PAD_EOF) != 0;
    r = qc_file_open(&img->file, path, open_flags & ~QC_IMAGE_PAD_EOF, lock_why);
    if (r < 0)
        return r;
    r = qc_image_reload(img, mode);
    if (r < 0 && r != QC_E_FORMAT) {
        qc_image_close(img);
        img->read_failed = r != QC_E_NOMEM;
        return r;
    }
    return r;
}

void qc_image_close(struct qc_image *img)
{
    free_parsed(img);
    qc_file_close(&img->file);
}

const char *qc_image_feature_name(const struct qc_image *img,
                                  enum qc_feature_group g, unsigned bit)
{
    const char *n = qc_feature_table_name(&img->features, g, bit);
    return n ? n : qc_feature_qemu_name(g, bit);
}

/* --- backing chain locks ------------------------------------------------- */

/* NAME as QEMU resolves a backing file name: relative to the overlay's
 * directory. */
static char *backing_file_path(const char *overlay, const char *name)
{
    const char *slash = strrchr(overlay, '/');
    size_t dir = slash ? (size_t)(slash - overlay) + 1 : 0;
    char *p;

    if (name[0] == '/')
        dir = 0;
    p = malloc(dir + strlen(name) + 1);
    if (p) {
        memcpy(p, overlay, dir);
        strcpy(p + dir, name);
    }
    return p;
}

/* The backing file PATH names (NULL: none, not qcow2, unreadable); *raw
 * when the header says it is raw (the chain ends there). */
static char *next_backing(const char *path, bool *raw)
{
    struct qc_image img;
    char *next = NULL;
    int r;

    *raw = false;
    if ((r = qc_image_open(&img, path, 0, QC_VALIDATE_OPEN, NULL)) < 0) {
        if (r == QC_E_FORMAT)
            qc_image_close(&img);   /* opened, not qcow2 */
        return NULL;
    }
    if (img.backing_name && img.backing_name[0])
        next = backing_file_path(path, img.backing_name);
    *raw = img.backing_format && strcmp(img.backing_format, "raw") == 0;
    qc_image_close(&img);
    return next;
}

/* Opens PATH read-only if it is a regular file that is neither the image
 * TOP nor one already locked (a chain that loops ends there: our own locks
 * would be the conflict); -1 otherwise. */
static int open_regular(const char *path, const char *top, const struct qc_backing_locks *bl)
{
    struct stat st, other;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto refuse;
    if (stat(top, &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino)
        goto refuse;
    for (unsigned i = 0; i < bl->n; i++)
        if (fstat(bl->fd[i], &other) == 0 && other.st_dev == st.st_dev &&
            other.st_ino == st.st_ino)
            goto refuse;
    return fd;
refuse:
    close(fd);
    return -1;
}

int qc_backing_locks_take(const char *path, bool force, struct qc_backing_locks *bl,
                          char *msg, size_t msglen)
{
    bool raw = false;
    char *cur = NULL, *next = next_backing(path, &raw);
    int r = 0;

    bl->n = 0;
    while (next && bl->n < QC_MAX_BACKING_LOCKS) {
        const char *why = NULL;
        int fd = open_regular(next, path, bl);

        free(cur);
        cur = next;
        next = NULL;
        if (fd < 0)
            break;
        if ((r = qc_fd_lock_backing(fd, force, &why)) < 0) {
            close(fd);
            if (r == QC_E_LOCKED)
                snprintf(msg, msglen, "Could not open backing file: Failed to get %s lock\n"
                         "Is another process using the image [%s]?",
                         why ? why : "shared \"write\"", cur);
            else
                snprintf(msg, msglen, "Could not open backing file: Could not open '%s': %s",
                         cur, strerror(-r));
            qc_backing_locks_release(bl);
            break;
        }
        bl->fd[bl->n++] = fd;
        if (!raw)
            next = next_backing(cur, &raw);
    }
    free(cur);
    free(next);
    return r;
}

void qc_backing_locks_release(struct qc_backing_locks *bl)
{
    for (unsigned i = 0; i < bl->n; i++)
        close(bl->fd[i]);   /* the locks go with the descriptor */
    bl->n = 0;
}

void qc_image_protect_chain(const char *path, struct qc_protect *p)
{
    char *cur = strdup(path);

    /* bounded like QEMU's chain; a loop ends there too */
    for (int depth = 0; cur && depth < 16; depth++) {
        struct qc_image img;
        char *next = NULL;
        int r;

        qc_protect_add_path(p, cur, depth ? "a backing file of the image" : "the image");
        r = qc_image_open(&img, cur, QC_OPEN_NOLOCK, QC_VALIDATE_OPEN, NULL);
        if (r < 0 && r != QC_E_FORMAT)
            break;
        if (r == 0 && img.data_file_name && img.data_file_name[0])
            qc_protect_add_path(p, img.data_file_name, "the image's data file");
        if (r == 0 && img.backing_name && img.backing_name[0])
            next = backing_file_path(cur, img.backing_name);
        qc_image_close(&img);
        free(cur);
        cur = next;
    }
    free(cur);
}
