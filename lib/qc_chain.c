/* Opening an image and its backing chain as qemu-img does for reading. */
#include "qc_follow.h"
#include "qc_chain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_l2.h"
#include "qc_snapshot.h"
#include "qc_util.h"

/* L2 tables are read in batches of up to this many bytes. */
#define QC_L2_BATCH_MAX (4u << 20)

#define msgf qc_asprintf

/* Wraps an inner error: PREFIX + *ERR. */
static void wrap_err(char **err, const char *prefix)
{
    char *s = msgf("%s%s", prefix, *err ? *err : "error");
    free(*err);
    *err = s;
}

int qc_node_pread(struct qc_file *f, uint64_t off, void *buf, size_t len)
{
    int64_t got;

    if (off > QC_BDRV_MAX_LENGTH || len > QC_BDRV_MAX_LENGTH - off)
        return -EIO;
    got = qc_file_read_padded(f, off, buf, len);
    return got < 0 ? (int)got : 0;
}

void qc_node_corruption(struct qc_node *n, const char *fmt, ...)
{
    va_list ap;

    if (n->corruption_signalled)
        return;
    n->corruption_signalled = true;
    if (!n->chain || !n->chain->diag)
        return;
    fputs("qcow2: Image is corrupt: ", n->chain->diag);
    va_start(ap, fmt);
    vfprintf(n->chain->diag, fmt, ap);
    va_end(ap);
    fputs("; further non-fatal corruption events will be suppressed\n", n->chain->diag);
}

/* --- formats ------------------------------------------------------------ */

enum probed { PROBE_QCOW2, PROBE_RAW, PROBE_OTHER, PROBE_ERROR };

/* What QEMU's format probing makes of a file (zero-filled 2 KiB): qcow2
 * needs the magic and a version of at least 2; version 1 is the old qcow
 * driver; a few other formats claim their own magic; the rest is raw. */
/* The format probe; an image that cannot be read is PROBE_ERROR (the code in
 * *ERR), as QEMU's find_image_format fails, never "raw". */
static enum probed probe_file(struct qc_file *f, const char **other, int *err)
{
    static const struct { const char *magic; size_t len; const char *name; } others[] = {
        { "QFI\xfb\0\0\0\x01", 8, "qcow" },
        { "QED\0", 4, "qed" },
        { "KDMV", 4, "vmdk" },
        { "# Disk DescriptorFile", 21, "vmdk" },
        { "conectix", 8, "vpc" },
        { "vhdxfile", 8, "vhdx" },
        { "LUKS\xba\xbe", 6, "luks" },
        { "WithoutFreeSpace", 16, "parallels" },
        { "WithouFreSpacExt", 16, "parallels" },
    };
    uint8_t buf[64];
    int r;

    if ((r = qc_node_pread(f, 0, buf, sizeof buf)) < 0) {
        *err = r;
        return PROBE_ERROR;
    }
    if (qc_be32(buf) == QC_MAGIC && qc_be32(buf + 4) >= 2)
        return PROBE_QCOW2;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        if (memcmp(buf, others[i].magic, others[i].len) == 0) {
            *other = others[i].name;
            return PROBE_OTHER;
        }
    }
    return PROBE_RAW;
}

/* --- QEMU's checks of the snapshot table at open ----------------------- */

static int check_snapshot_table(struct qc_node *n, char **err)
{
    const struct qc_header *h = &n->img.hdr;
    uint64_t offset = h->snapshots_offset, table_length = 0;

    for (uint32_t i = 0; i < h->nb_snapshots; i++) {
        uint8_t e[QC_SNAPSHOT_ENTRY_FIXED];
        uint32_t extra;
        uint16_t id_len, name_len;

        table_length = (table_length + 7) & ~7ull;
        offset = (offset + 7) & ~7ull;
        if (qc_node_pread(n->file, offset, e, sizeof e) < 0) {
            *err = msgf("Failed to read snapshot table: %s", strerror(EIO));
            return -EIO;
        }
        offset += sizeof e;
        id_len = qc_be16(e + 12);
        name_len = qc_be16(e + 14);
        extra = qc_be32(e + 36);
        if (extra > QC_SNAPSHOT_MAX_EXTRA) {
            *err = msgf("Too much extra metadata in snapshot table entry %u\n"
                        "You can force-remove this extra metadata with qemu-img check -r all", i);
            return -EFBIG;
        }
        /* the extra data, id and name are read too: past QEMU's range
         * they fail, past EOF they are zeros */
        if (offset > QC_BDRV_MAX_LENGTH ||
            (uint64_t)extra + id_len + name_len > QC_BDRV_MAX_LENGTH - offset) {
            *err = msgf("Failed to read snapshot table: %s", strerror(EIO));
            return -EIO;
        }
        offset += (uint64_t)extra + id_len + name_len;
        table_length += sizeof e + (uint64_t)extra + id_len + name_len;
        if (table_length > QC_SNAPSHOT_TABLE_MAX || offset - h->snapshots_offset > INT32_MAX) {
            *err = msgf("Snapshot table is too big\n"
                        "You can force-remove all %u overhanging snapshots with qemu-img check -r all",
                        h->nb_snapshots - i);
            return -EFBIG;
        }
    }
    return 0;
}

/* --- QEMU's loading of persistent bitmaps at open ----------------------- */

/* A directory entry decoded from the directory bytes at E. */
static struct qc_bitmap bitmap_entry_at(const uint8_t *e)
{
    struct qc_bitmap b;

    memset(&b, 0, sizeof b);
    b.table_offset = qc_be64(e);
    b.table_size = qc_be32(e + 8);
    b.flags = qc_be32(e + 12);
    b.type = e[16];
    b.granularity_bits = e[17];
    b.name_size = qc_be16(e + 18);
    b.extra_data_size = qc_be32(e + 20);
    return b;
}

struct bm_item {
    uint64_t table_offset;
    uint32_t table_size, flags;
    uint8_t gran;
    char *name;
};

static int load_one_bitmap(struct qc_node *n, const struct bm_item *b, char **err)
{
    uint64_t tab_size;
    uint8_t *t;
    int r;

    if (b->flags & QC_BME_FLAG_IN_USE)
        return 0;    /* data unusable: not loaded */
    t = malloc((size_t)b->table_size * 8);
    if (!t)
        return QC_E_NOMEM;
    r = qc_node_pread(n->file, b->table_offset, t, (size_t)b->table_size * 8);
    if (r < 0) {
        free(t);
        *err = msgf("Could not read bitmap_table table from image for bitmap '%s': %s",
                    b->name, qc_strerror(r));
        return r;
    }
    for (uint32_t i = 0; i < b->table_size; i++) {
        if (!qc_bitmap_table_entry_valid(qc_be64(t + 8 * (size_t)i), n->img.cluster_bits)) {
            free(t);
            *err = msgf("Could not read bitmap_table table from image for bitmap '%s': %s",
                        b->name, strerror(EINVAL));
            return -EINVAL;
        }
    }
    free(t);
    /* the table must have exactly the clusters the serialized bitmap (in
     * 64-bit words) needs */
    if (n->length == 0) {
        *err = msgf("Could not read bitmap '%s' from image: %s", b->name, strerror(EINVAL));
        return -EINVAL;
    }
    tab_size = qc_bitmap_table_size_needed(n->length, b->gran, n->img.cluster_bits);
    if (tab_size != b->table_size || tab_size > QC_BITMAP_MAX_TABLE_SIZE) {
        *err = msgf("Could not read bitmap '%s' from image: %s", b->name, strerror(EINVAL));
        return -EINVAL;
    }
    return 0;
}

static int check_bitmaps(struct qc_node *n, char **err)
{
    const struct qc_ext *last = NULL;
    struct qc_ext_bitmaps ext;
    struct bm_item *items = NULL;
    uint8_t *dir = NULL;
    size_t nitems = 0;
    uint64_t pos;
    int r = 0;

    if (!(n->img.hdr.autoclear_features & QC_AUTOCLEAR_BITMAPS))
        return 0;   /* the extension is ignored */
    for (size_t i = 0; i < n->img.exts.n; i++)
        if (n->img.exts.v[i].magic == QC_EXT_BITMAPS)
            last = &n->img.exts.v[i];
    if (!last || !qc_ext_bitmaps_decode(last, &ext) || ext.nb_bitmaps == 0)
        return 0;
    if (ext.directory_size == 0) {
        *err = msgf("Requested bitmap directory size is zero");
        return -EINVAL;
    }
    if (ext.directory_size > 1024ull * 65535) {
        *err = msgf("Requested bitmap directory size is too big");
        return -EINVAL;
    }
    dir = malloc((size_t)ext.directory_size);
    items = calloc(ext.nb_bitmaps, sizeof *items);
    if (!dir || !items) {
        r = QC_E_NOMEM;
        goto out;
    }
    r = qc_node_pread(n->file, ext.directory_offset, dir, (size_t)ext.directory_size);
    if (r < 0) {
        *err = msgf("Failed to read bitmap directory: %s", qc_strerror(r));
        goto out;
    }
    pos = 0;
    while (pos < ext.directory_size) {
        const uint8_t *e = dir + pos;
        struct qc_bitmap be;
        uint32_t extra, sz;
        uint16_t name_size;
        int64_t next;

        if (ext.directory_size - pos < QC_BITMAP_DIR_ENTRY_FIXED)
            goto broken;
        if (nitems + 1 > ext.nb_bitmaps) {
            *err = msgf("More bitmaps found than specified in header extension");
            r = -EINVAL;
            goto out;
        }
        name_size = qc_be16(e + 18);
        extra = qc_be32(e + 20);
        /* QEMU sizes entries in an int: a huge extra size wraps */
        sz = (uint32_t)(QC_BITMAP_DIR_ENTRY_FIXED + name_size + extra);
        sz = (sz + 7u) & ~7u;
        next = (int64_t)pos + (int32_t)sz;
        if (next > (int64_t)ext.directory_size)
            goto broken;
        if (extra != 0) {
            *err = msgf("Bitmap extra data is not supported");
            r = -EINVAL;
            goto out;
        }
        be = bitmap_entry_at(e);
        if (!qc_bitmap_entry_valid(&be, n->img.cluster_size, n->length)) {
            const char *nm = (const char *)e + QC_BITMAP_DIR_ENTRY_FIXED;
            *err = msgf("Bitmap '%.*s' doesn't satisfy the constraints", (int)name_size, nm);
            r = -EINVAL;
            goto out;
        }
        items[nitems].table_offset = qc_be64(e);
        items[nitems].table_size = qc_be32(e + 8);
        items[nitems].flags = qc_be32(e + 12);
        items[nitems].gran = e[17];
        items[nitems].name = strndup((const char *)e + QC_BITMAP_DIR_ENTRY_FIXED, name_size);
        if (!items[nitems].name) {
            r = QC_E_NOMEM;
            goto out;
        }
        nitems++;
        if (next <= (int64_t)pos)
            goto broken;   /* a wrapped size would never end */
        pos = (uint64_t)next;
    }
    if (nitems != ext.nb_bitmaps) {
        *err = msgf("Less bitmaps found than specified in header extension");
        r = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < nitems; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items[i].name, items[j].name) == 0) {
                *err = msgf("Bitmap already exists: %s", items[i].name);
                r = -EINVAL;
                goto out;
            }
        }
        if ((r = load_one_bitmap(n, &items[i], err)) < 0)
            goto out;
    }
    goto out;
broken:
    *err = msgf("Broken bitmap directory");
    r = -EINVAL;
out:
    for (size_t i = 0; i < nitems; i++)
        free(items[i].name);
    free(items);
    free(dir);
    return r;
}

/* --- nodes -------------------------------------------------------------- */

static void node_free(struct qc_node *n)
{
    while (n) {
        struct qc_node *b = n->backing;
        if (n->kind == QC_NODE_QCOW2) {
            qc_image_close(&n->img);
            if (n->has_data_file)
                qc_file_close(&n->data_file);
            qc_refcount_disk_close(&n->refcounts);
        } else {
            qc_file_close(&n->raw);
        }
        free(n->l1);
        free(n->batch);
        free(n->cluster_buf);
        free(n->filename);
        free(n);
        n = b;
    }
}

static struct qc_node *node_new(struct qc_chain *c, const char *path, unsigned depth)
{
    struct qc_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->chain = c;
    n->depth = depth;
    n->img.file.fd = -1;
    n->raw.fd = -1;
    n->data_file.fd = -1;
    n->refcounts.blk_off = UINT64_MAX;
    n->filename = strdup(path);
    if (!n->filename) {
        free(n);
        return NULL;
    }
    return n;
}

static int open_raw(struct qc_node *n, char **err)
{
    int r = qc_file_open(&n->raw, n->filename, 0, NULL);
    if (r < 0) {
        *err = msgf("Could not open '%s': %s", n->filename, qc_strerror(r));
        return r;
    }
    n->kind = QC_NODE_RAW;
    n->file = &n->raw;
    n->length = (n->raw.size + 511) & ~511ull;
    return 0;
}

/* QEMU combines a relative backing name with the directory of the image
 * that names it. */
static char *backing_path(const char *image, const char *name)
{
    const char *slash;

    if (name[0] == '/')
        return strdup(name);
    slash = strrchr(image, '/');
    if (!slash)
        return strdup(name);
    return msgf("%.*s%s", (int)(slash - image + 1), image, name);
}

static bool same_file(const struct qc_file *a, const struct qc_file *b)
{
    struct stat sa, sb;
    return fstat(a->fd, &sa) == 0 && fstat(b->fd, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int open_node(struct qc_chain *c, struct qc_node *n, const char *format,
                     unsigned flags, char **err);

static int open_backing(struct qc_chain *c, struct qc_node *n, unsigned flags, char **err)
{
    const char *name = n->img.backing_name;
    const char *fmt = n->img.backing_format;
    struct qc_node *b;
    char *path;
    int r;

    if (!name || !name[0])
        return 0;   /* an empty name means no backing file */
    if (flags & QC_CHAIN_NO_BACKING) {
        n->backing_skipped = true;
        return 0;
    }
    path = backing_path(n->filename, name);
    if (!path)
        return QC_E_NOMEM;
    b = node_new(c, path, n->depth + 1);
    free(path);
    if (!b)
        return QC_E_NOMEM;
    n->backing = b;
    {
        /* "proto:..." names a protocol, which only QEMU can open */
        const char *colon = strchr(name, ':'), *slash = strchr(name, '/');
        if (colon && (!slash || colon < slash)) {
            *err = msgf("Unknown protocol '%.*s'", (int)(colon - name), name);
            return -EINVAL;
        }
    }
    if (b->depth >= QC_CHAIN_MAX_DEPTH) {
        *err = msgf("backing chain deeper than %d images (a loop?)", QC_CHAIN_MAX_DEPTH);
        return -ELOOP;
    }
    if ((*err = qc_follow_refusal(n->filename, name, b->filename, QC_FOLLOW_BACKING)))
        return -EPERM;
    r = open_node(c, b, fmt && fmt[0] ? fmt : NULL, flags, err);
    if (r < 0)
        return r;
    if (b->kind == QC_NODE_QCOW2) {
        /* the same qcow2 file twice in a chain makes QEMU loop forever */
        for (struct qc_node *p = c->top; p && p != b; p = p->backing) {
            if (p->kind == QC_NODE_QCOW2 && same_file(p->file, b->file)) {
                *err = msgf("backing file '%s' is already in the chain (a loop)", b->filename);
                return -ELOOP;
            }
        }
    }
    return 0;
}

static bool extension_problem(enum qc_problem_kind k)
{
    return k == QC_P_EXT_TOO_LARGE || k == QC_P_EXT_TRUNCATED || k == QC_P_EXT_BACKING_FORMAT ||
           k == QC_P_EXT_CRYPTO || k == QC_P_LUKS_HEADER || k == QC_P_EXT_BITMAPS;
}

/* The first problem that stops QEMU's open, among the header rules (or,
 * with EXTENSIONS, the extension rules). */
static int first_open_error(const struct qc_image *img, bool extensions, char **err)
{
    for (size_t i = 0; i < img->problems.n; i++) {
        const struct qc_problem *p = &img->problems.v[i];
        /* a missing refcount table only passes in check mode */
        bool fatal = p->severity == QC_SEV_ERROR || p->kind == QC_P_NO_REFTABLE;
        if (!fatal || extension_problem(p->kind) != extensions ||
            p->kind == QC_P_MISSING_CRYPTO_HEADER || p->kind == QC_P_BACKING_NAME_TOO_LONG)
            continue;
        *err = msgf("%s", p->message ? p->message : "invalid image");
        return -EINVAL;
    }
    return 0;
}

static const char key_required[] = "Parameter 'encrypt.key-secret' is required for cipher";

/* QEMU's extension rules in a keyless open: the LUKS driver asks for its
 * key before it reads the header, where the crypto extension comes. */
static int keyless_extension_error(const struct qc_image *img, char **err)
{
    const struct qc_ext *crypto = img->hdr.crypt_method == QC_CRYPT_LUKS
                                      ? qc_ext_find(&img->exts, QC_EXT_CRYPTO) : NULL;

    for (size_t i = 0; i < img->problems.n; i++) {
        const struct qc_problem *p = &img->problems.v[i];
        if (!extension_problem(p->kind) || p->severity != QC_SEV_ERROR)
            continue;
        if (crypto && (p->kind == QC_P_LUKS_HEADER || p->offset > crypto->offset))
            break;
        *err = msgf("%s", p->message ? p->message : "invalid image");
        return -EINVAL;
    }
    if (crypto) {
        *err = msgf("%s", key_required);
        return -EACCES;
    }
    return 0;
}

/* Reads the L1 table the header names (zeros past EOF). */
static int load_l1(struct qc_node *n)
{
    const struct qc_header *h = &n->img.hdr;
    int r;

    free(n->l1);
    n->l1_size = h->l1_size;
    n->l1 = malloc(n->l1_size ? (size_t)n->l1_size * 8 : 8);
    if (!n->l1)
        return QC_E_NOMEM;
    if (n->l1_size) {
        uint8_t *raw = (uint8_t *)n->l1;
        r = qc_node_pread(n->file, h->l1_table_offset, raw, (size_t)n->l1_size * 8);
        if (r < 0)
            return r;
        for (uint32_t i = 0; i < n->l1_size; i++)
            n->l1[i] = qc_be64(raw + 8 * (size_t)i);
    }
    return 0;
}

static int open_qcow2(struct qc_chain *c, struct qc_node *n, unsigned flags, char **err)
{
    struct qc_image *img = &n->img;
    const struct qc_header *h;
    uint64_t cs;
    int r;

    n->kind = QC_NODE_QCOW2;
    r = qc_image_open(img, n->filename, QC_IMAGE_PAD_EOF, QC_VALIDATE_OPEN, NULL);
    if (r < 0 && r != QC_E_FORMAT) {
        if (img->read_failed)
            *err = msgf("Could not read qcow2 header: %s", qc_strerror(r));
        else
            *err = msgf("Could not open '%s': %s", n->filename, qc_strerror(r));
        return r;
    }
    n->file = &img->file;
    if (r == QC_E_FORMAT) {
        *err = msgf("Image is not in qcow2 format");
        return -EINVAL;
    }
    h = &img->hdr;
    /* header rules first; extension, data file, crypto and backing name
     * rules come later in QEMU's open, after the L1 and refcount tables */
    if ((r = first_open_error(img, false, err)) < 0)
        return r;
    if (!img->geometry_ok) {
        *err = msgf("Unsupported cluster size: 2^%u", h->cluster_bits);
        return -EINVAL;
    }
    cs = img->cluster_size;
    n->length = (h->size / 512) * 512;
    if (n->length > (uint64_t)INT64_MAX) {
        *err = msgf("Image is too big");
        return -EFBIG;
    }

    /* active L1 table */
    if ((r = load_l1(n)) < 0) {
        if (r != QC_E_NOMEM)
            *err = msgf("Could not read L1 table: %s", qc_strerror(r));
        return r;
    }
    /* refcount table: read at open (only its range can fail) */
    {
        uint64_t bytes = (uint64_t)h->refcount_table_clusters * cs;
        if (bytes && (h->refcount_table_offset > QC_BDRV_MAX_LENGTH ||
                      bytes > QC_BDRV_MAX_LENGTH - h->refcount_table_offset)) {
            *err = msgf("Could not initialize refcount handling: %s", strerror(EIO));
            return -EIO;
        }
    }

    if ((r = (flags & QC_CHAIN_KEYLESS) ? keyless_extension_error(img, err)
                                         : first_open_error(img, true, err)) < 0)
        return r;

    /* external data file */
    if (h->incompatible_features & QC_INCOMPAT_DATA_FILE) {
        if (!img->data_file_name) {
            *err = msgf("'data-file' is required for this image");
            return -EINVAL;
        }
        if ((*err = qc_follow_refusal(n->filename, img->data_file_name, img->data_file_name,
                                      QC_FOLLOW_DATA_FILE)))
            return -EPERM;
        r = qc_file_open(&n->data_file, img->data_file_name, 0, NULL);
        if (r < 0) {
            *err = msgf("Could not open '%s': %s", img->data_file_name, qc_strerror(r));
            return r;
        }
        n->has_data_file = true;
        n->data = &n->data_file;
    } else {
        if (h->autoclear_features & QC_AUTOCLEAR_DATA_RAW) {
            *err = msgf("data-file-raw requires a data file");
            return -EINVAL;
        }
        n->data = n->file;
    }
    for (size_t i = 0; i < img->problems.n; i++) {
        const struct qc_problem *p = &img->problems.v[i];
        if (p->kind == QC_P_MISSING_CRYPTO_HEADER || p->kind == QC_P_BACKING_NAME_TOO_LONG) {
            *err = msgf("%s", p->message ? p->message : "invalid image");
            return -EINVAL;
        }
    }
    /* AES needs no header, only the key */
    if ((flags & QC_CHAIN_KEYLESS) && h->crypt_method == QC_CRYPT_AES) {
        *err = msgf("%s", key_required);
        return -EACCES;
    }
    n->encrypted = h->crypt_method != QC_CRYPT_NONE;

    if ((r = check_snapshot_table(n, err)) < 0)
        return r;
    if ((r = check_bitmaps(n, err)) < 0)
        return r;
    return open_backing(c, n, flags, err);
}

static int open_node(struct qc_chain *c, struct qc_node *n, const char *format,
                     unsigned flags, char **err)
{
    const char *other = NULL;
    struct qc_file probe;
    enum probed p;
    int r;

    if (format && strcmp(format, "qcow2") == 0)
        return open_qcow2(c, n, flags, err);
    if (format && strcmp(format, "raw") == 0)
        return open_raw(n, err);
    if (format) {
        /* QEMU's other drivers exist but only QEMU reads them */
        static const char *const drivers[] = {
            "qcow", "qed", "vmdk", "vpc", "vhdx", "vdi", "parallels", "bochs", "cloop",
            "dmg", "luks", "vvfat", "file", "host_device", "host_cdrom", "nbd", "blkdebug",
            "blkverify", "copy-on-read", "throttle", "null-co", "null-aio", "compress",
            "preallocate", "snapshot-access", "quorum", "replication", "ssh", "http",
            "https", "ftp", "ftps", "iscsi", "rbd", "nfs", "gluster",
        };
        for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
            if (strcmp(format, drivers[i]) == 0) {
                *err = msgf("backing format '%s' is not supported", format);
                return -ENOTSUP;
            }
        }
        *err = msgf("Unknown driver '%s'", format);
        return -EINVAL;
    }
    r = qc_file_open(&probe, n->filename, 0, NULL);
    if (r < 0) {
        *err = msgf("Could not open '%s': %s", n->filename, qc_strerror(r));
        return r;
    }
    p = probe_file(&probe, &other, &r);
    qc_file_close(&probe);
    if (p == PROBE_ERROR) {
        *err = msgf("Could not read image for determining its format: %s", qc_strerror(r));
        return r;
    }
    if (p == PROBE_QCOW2)
        return open_qcow2(c, n, flags, err);
    if (p == PROBE_OTHER) {
        if (n->depth == 0)
            return QC_E_FORMAT;
        *err = msgf("image format '%s' is not supported", other);
        return -ENOTSUP;
    }
    if (n->depth == 0)
        return QC_E_FORMAT;
    return open_raw(n, err);
}

/* --- an internal snapshot's view --------------------------------------- */

static const struct qc_snapshot *find_snapshot(const struct qc_snapshot_table *t,
                                               const char *spec)
{
    /* bdrv_snapshot_load_tmp_by_id_or_name: by ID, then by name */
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].id_str, spec) == 0)
            return &t->v[i];
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, spec) == 0)
            return &t->v[i];
    return NULL;
}

int qc_image_select_snapshot(struct qc_image *img, const char *spec, char **err)
{
    struct qc_header *h = &img->hdr;
    struct qc_snapshot_table t;
    const struct qc_snapshot *sn;
    char *hint = NULL;
    int r;

    *err = NULL;
    memset(&t, 0, sizeof t);
    r = qc_snapshot_table_read_qemu(&img->file, h->snapshots_offset, h->nb_snapshots, &t,
                                    err, &hint);
    free(hint);
    if (r < 0) {
        qc_snapshot_table_free(&t);
        return r;
    }
    sn = find_snapshot(&t, spec);
    if (!sn) {
        qc_snapshot_table_free(&t);
        *err = msgf("Can't find snapshot");
        return -ENOENT;
    }
    /* qcow2_validate_table(..., "Snapshot L1 table") */
    if (sn->l1_size > (32ull << 20) / 8)
        r = -EFBIG, *err = msgf("Snapshot L1 table too large");
    else if (UINT64_MAX - (uint64_t)sn->l1_size * 8 < sn->l1_table_offset ||
             !img->cluster_size || sn->l1_table_offset % img->cluster_size)
        r = -EINVAL, *err = msgf("Snapshot L1 table offset invalid");
    else if (sn->l1_size && (sn->l1_table_offset > QC_BDRV_MAX_LENGTH ||
                             (uint64_t)sn->l1_size * 8 > QC_BDRV_MAX_LENGTH - sn->l1_table_offset))
        r = -EIO, *err = msgf("Failed to read l1 table for snapshot");
    if (r == 0) {
        /* the virtual size stays the image's: QEMU loads only the L1 table */
        h->l1_table_offset = sn->l1_table_offset;
        h->l1_size = sn->l1_size;
    }
    qc_snapshot_table_free(&t);
    return r;
}

int qc_chain_open(struct qc_chain *c, const char *path, unsigned flags, FILE *diag,
                  char **err)
{
    return qc_chain_open_snapshot(c, path, flags, NULL, diag, err);
}

int qc_chain_open_snapshot(struct qc_chain *c, const char *path, unsigned flags,
                           const char *snapshot, FILE *diag, char **err)
{
    struct qc_node *top;
    int r;

    memset(c, 0, sizeof *c);
    c->diag = diag;
    c->snapshot = snapshot;
    *err = NULL;
    top = node_new(c, path, 0);
    if (!top)
        return QC_E_NOMEM;
    c->top = top;
    r = open_node(c, top, NULL, flags, err);
    if (r == 0 && snapshot && top->kind == QC_NODE_QCOW2) {
        /* loaded after the open, as qemu-img convert -l does */
        r = qc_image_select_snapshot(&top->img, snapshot, err);
        if (r == 0) {
            if ((r = load_l1(top)) < 0 && r != QC_E_NOMEM)
                *err = msgf("Failed to read l1 table for snapshot");
        }
        if (r < 0) {
            wrap_err(err, "Failed to load snapshot: ");
            node_free(top);
            c->top = NULL;
            return r;
        }
    }
    if (r == QC_E_FORMAT) {
        free(*err);
        *err = msgf("not a qcow2 image");
    } else if (r < 0) {
        /* backing errors nest: "Could not open backing file: ..." once per
         * level below the top */
        struct qc_node *deepest = top;
        while (deepest->backing)
            deepest = deepest->backing;
        for (unsigned d = deepest->depth; d > 0; d--)
            wrap_err(err, "Could not open backing file: ");
        {
            char *prefix = msgf("Could not open '%s': ", path);
            wrap_err(err, prefix ? prefix : "");
            free(prefix);
        }
    }
    if (r < 0) {
        node_free(top);
        c->top = NULL;
        if (!*err)
            *err = msgf("%s", qc_strerror(r));
    }
    return r;
}

void qc_chain_close(struct qc_chain *c)
{
    node_free(c->top);
    c->top = NULL;
}

/* --- metadata reads ------------------------------------------------------ */

int qc_node_l2_table(struct qc_node *n, uint64_t l2_offset, uint64_t l1_index,
                     const uint8_t **table)
{
    uint64_t cs = n->img.cluster_size, start = l2_offset, end = l2_offset + cs;
    uint64_t useful = cs, cap = QC_L2_BATCH_MAX > cs ? QC_L2_BATCH_MAX : cs;
    int r;

    if (n->batch && l2_offset >= n->batch_off && end <= n->batch_off + n->batch_len) {
        *table = n->batch + (l2_offset - n->batch_off);
        return 0;
    }
    /* take in the tables the next L1 entries name while they lie close
     * after this one: a run of neighbouring tables is one read */
    for (uint64_t j = l1_index + 1; j < n->l1_size && j < l1_index + 4096; j++) {
        uint64_t off = n->l1[j] & QC_L1E_OFFSET_MASK, new_end;
        if (!off)
            continue;
        if ((off & (cs - 1)) || off < start)
            break;
        new_end = off + cs > end ? off + cs : end;
        if (new_end - start > cap || (useful + cs) * 4 < new_end - start)
            break;
        end = new_end;
        useful += cs;
    }
    if (!n->batch || n->batch_cap < end - start) {
        free(n->batch);
        n->batch = malloc((size_t)cap);
        n->batch_cap = n->batch ? (size_t)cap : 0;
        if (!n->batch)
            return QC_E_NOMEM;
    }
    n->batch_len = 0;
    r = qc_node_pread(n->file, start, n->batch, (size_t)(end - start));
    if (r < 0)
        return r;
    n->batch_off = start;
    n->batch_len = end - start;
    *table = n->batch;
    return 0;
}

/* The first unaligned refcount block QEMU meets is a corruption event. */
static void refblock_unaligned(void *opaque, uint64_t block_offset, uint64_t table_index)
{
    qc_node_corruption(opaque, "Refblock offset %#llx unaligned (reftable index: %#llx)",
                       (unsigned long long)block_offset, (unsigned long long)table_index);
}

int qc_node_refcount(struct qc_node *n, uint64_t cluster, uint64_t *refcount)
{
    int r;

    if (!n->refcounts_loaded) {
        const struct qc_header *h = &n->img.hdr;
        r = qc_refcount_disk_open(&n->refcounts, n->file, n->img.cluster_bits,
                                  n->img.refcount_order, h->refcount_table_offset,
                                  h->refcount_table_clusters);
        if (r < 0)
            return r;
        n->refcounts.signal = refblock_unaligned;
        n->refcounts.opaque = n;
        n->refcounts_loaded = true;
    }
    return qc_refcount_disk_get(&n->refcounts, cluster, refcount);
}

const struct qc_node *qc_chain_encrypted(const struct qc_chain *c)
{
    const struct qc_node *n = c->top;

    while (n && !n->encrypted)
        n = n->backing;
    return n;
}
