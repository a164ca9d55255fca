/*
 * Image creation as qemu-img create does it (docs/qemu-behaviour.md
 * §4.1): option syntax and messages, then the same sequence of writes: a
 * minimal header and refcount table, the first three clusters allocated
 * through the normal allocator, the full header, the L1 table grown to
 * size, optional metadata preallocation through the normal write path, the
 * size, the backing file name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include "qc_util.h"
#include "qc_writer_int.h"

#define DEFAULT_CLUSTER_SIZE 65536ull

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void qc_create_options_init(struct qc_create_options *o)
{
    memset(o, 0, sizeof *o);
    o->cluster_size = DEFAULT_CLUSTER_SIZE;
    o->version = 3;
    o->refcount_bits = 16;
}

/* QEMU's boolean option values */
static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "y")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "n")) {
        *out = false;
        return 0;
    }
    return -1;
}

static void defer(struct qc_create_options *o, const char *fmt, const char *v)
{
    if (!o->deferred_error[0])
        snprintf(o->deferred_error, sizeof o->deferred_error, fmt, v);
}

static int set_option(struct qc_create_options *o, const char *key, const char *val,
                      char *err, size_t errlen)
{
    uint64_t n;
    bool b;

    if (!strcmp(key, "size") || !strcmp(key, "cluster_size")) {
        if (qc_parse_qemu_size(val, &n, NULL) < 0)
            return fail(err, errlen, "Parameter '%s' expects a non-negative number below 2^64\n"
                        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                        "peta-\nand exabytes, respectively.", key);
        if (key[0] == 's') {
            o->size = n;
            o->size_set = true;
        } else {
            o->cluster_size = n;
            o->cluster_size_set = true;
        }
    } else if (!strcmp(key, "refcount_bits")) {
        char *end;
        errno = 0;
        n = strtoull(val, &end, 0);
        if (!*val || *end || errno || val[0] == '-')
            return fail(err, errlen, "Parameter 'refcount_bits' expects a number");
        o->refcount_bits = n;
        o->refcount_bits_set = true;
    } else if (!strcmp(key, "lazy_refcounts") || !strcmp(key, "extended_l2")) {
        if (parse_bool(val, &b) < 0)
            return fail(err, errlen, "Parameter '%s' expects 'on' or 'off'", key);
        if (key[0] == 'l') {
            o->lazy_refcounts = b;
            snprintf(o->shown_lazy_refcounts, sizeof o->shown_lazy_refcounts, "%s", val);
        } else {
            o->extended_l2 = b;
            snprintf(o->shown_extended_l2, sizeof o->shown_extended_l2, "%s", val);
        }
    } else if (!strcmp(key, "compat")) {
        snprintf(o->shown_compat, sizeof o->shown_compat, "%s", val);
        if (!strcmp(val, "0.10") || !strcmp(val, "v2"))
            o->version = 2;
        else if (!strcmp(val, "1.1") || !strcmp(val, "v3"))
            o->version = 3;
        else
            defer(o, "Parameter 'version' does not accept value '%s'", val);
    } else if (!strcmp(key, "compression_type")) {
        snprintf(o->shown_compression_type, sizeof o->shown_compression_type, "%s", val);
        if (!strcmp(val, "zlib"))
            o->compression_type = QC_COMPRESSION_ZLIB;
        else if (!strcmp(val, "zstd"))
            o->compression_type = QC_COMPRESSION_ZSTD;
        else
            defer(o, "Parameter 'compression-type' does not accept value '%s'", val);
    } else if (!strcmp(key, "preallocation")) {
        snprintf(o->shown_preallocation, sizeof o->shown_preallocation, "%s", val);
        if (!strcmp(val, "off"))
            o->preallocate_metadata = false;
        else if (!strcmp(val, "metadata"))
            o->preallocate_metadata = true;
        else if (!strcmp(val, "falloc") || !strcmp(val, "full"))
            defer(o, "preallocation=%s is not supported (only off and metadata)", val);
        else
            defer(o, "Parameter 'preallocation' does not accept value '%s'", val);
    } else if (!strcmp(key, "backing_file")) {
        if (strlen(val) >= sizeof o->backing_file)
            return fail(err, errlen, "Backing file name too long");
        snprintf(o->backing_file, sizeof o->backing_file, "%s", val);
        o->backing_file_set = true;
    } else if (!strcmp(key, "backing_fmt")) {
        snprintf(o->backing_fmt, sizeof o->backing_fmt, "%s", val);
        o->backing_fmt_set = true;
    } else {
        return fail(err, errlen, "Invalid parameter '%s'", key);
    }
    return 0;
}

int qc_create_parse_options(struct qc_create_options *o, const char *opts,
                            char *err, size_t errlen)
{
    size_t len = strlen(opts);
    char *key = malloc(len + 1), *val = malloc(len + 1);
    const char *p = opts;
    int r = 0;

    if (!key || !val) {
        free(key);
        free(val);
        return fail(err, errlen, "out of memory");
    }
    while (*p && r == 0) {
        size_t k = 0, v = 0;
        bool has_val = false;

        while (*p && *p != '=' && *p != ',')
            key[k++] = *p++;
        key[k] = '\0';
        if (*p == '=') {
            has_val = true;
            p++;
            while (*p) {
                if (*p == ',') {
                    if (p[1] != ',')
                        break;
                    p++;       /* ",," is a comma */
                }
                val[v++] = *p++;
            }
        }
        val[v] = '\0';
        if (*p == ',')
            p++;
        if (!k)
            continue;
        if (!has_val) {
            /* QemuOpts: "key" alone means "key=on" (and "nokey" "key=off") */
            snprintf(val, len + 1, "on");
        }
        r = set_option(o, key, val, err, errlen);
    }
    free(key);
    free(val);
    return r;
}

static char *relative_to(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    char *p;

    if (name[0] == '/' || !slash)
        return strdup(name);
    p = malloc((size_t)(slash - image) + 1 + strlen(name) + 1);
    if (p)
        sprintf(p, "%.*s/%s", (int)(slash - image), image, name);
    return p;
}

int qc_create_check_backing(struct qc_create_options *o, const char *image,
                            char *err, size_t errlen)
{
    struct qc_writer_options wo = { .readonly = true };
    struct qc_writer bw;
    struct qc_file f;
    char *path;
    int r;

    if (!o->backing_file_set)
        return 0;
    path = relative_to(image, o->backing_file);
    if (!path)
        return fail(err, errlen, "out of memory");
    {
        /* QEMU compares the names; the same file under another name (a
         * link) would be destroyed by the create just the same */
        struct stat si, sb;
        if (strcmp(image, o->backing_file) == 0 ||
            (stat(image, &si) == 0 && stat(path, &sb) == 0 && si.st_dev == sb.st_dev &&
             si.st_ino == sb.st_ino)) {
            free(path);
            return fail(err, errlen,
                        "Error: Trying to create an image with the same filename as the backing file");
        }
    }
    r = qc_file_open(&f, path, 0, NULL);
    if (r < 0) {
        fail(err, errlen, "Could not open '%s': %s\nCould not open backing image.", path,
             qc_strerror(r));
        free(path);
        return -1;
    }
    if (o->backing_fmt_set && strcmp(o->backing_fmt, "qcow2") && strcmp(o->backing_fmt, "raw")) {
        qc_file_close(&f);
        free(path);
        return fail(err, errlen, "backing format '%s' is not supported (qcow2 and raw are)",
                    o->backing_fmt);
    }
    if (o->backing_fmt_set && !strcmp(o->backing_fmt, "raw")) {
        if (!o->size_set) {
            o->size = f.size;
            o->size_set = true;
        }
        qc_file_close(&f);
        free(path);
        return 0;
    }
    qc_file_close(&f);
    r = qc_writer_open(&bw, path, &wo, NULL);
    if (r == QC_E_FORMAT && !o->backing_fmt_set) {
        free(path);
        return fail(err, errlen, "Backing file specified without backing format\n"
                    "Detected format of raw.");
    }
    if (r < 0) {
        fail(err, errlen, "%s\nCould not open backing image.", bw.errmsg);
        free(path);
        return -1;
    }
    if (!o->size_set) {
        o->size = bw.size;
        o->size_set = true;
    }
    qc_writer_abandon(&bw);
    free(path);
    if (!o->backing_fmt_set)
        return fail(err, errlen, "Backing file specified without backing format\n"
                    "Detected format of qcow2.");
    return 0;
}

void qc_create_formatting_line(const struct qc_create_options *o, const char *image,
                               char *out, size_t outlen)
{
    size_t n = 0;

#define ADD(...) do { if (n < outlen) n += (size_t)snprintf(out + n, outlen - n, __VA_ARGS__); } while (0)
    ADD("Formatting '%s', fmt=qcow2 cluster_size=%llu extended_l2=%s", image,
        (unsigned long long)o->cluster_size,
        o->shown_extended_l2[0] ? o->shown_extended_l2 : "off");
    if (o->shown_preallocation[0])
        ADD(" preallocation=%s", o->shown_preallocation);
    ADD(" compression_type=%s size=%llu",
        o->shown_compression_type[0] ? o->shown_compression_type : "zlib",
        (unsigned long long)o->size);
    if (o->shown_compat[0])
        ADD(" compat=%s", o->shown_compat);
    if (o->backing_file_set)
        ADD(" backing_file=%s", o->backing_file);
    if (o->backing_fmt_set)
        ADD(" backing_fmt=%s", o->backing_fmt);
    ADD(" lazy_refcounts=%s refcount_bits=%llu",
        o->shown_lazy_refcounts[0] ? o->shown_lazy_refcounts : "off",
        (unsigned long long)o->refcount_bits);
#undef ADD
}

int qc_create_validate(const struct qc_create_options *o, char *err, size_t errlen)
{
    uint64_t cs = o->cluster_size;

    if (o->deferred_error[0])
        return fail(err, errlen, "%s", o->deferred_error);
    if (o->extended_l2 && o->version < 3)
        return fail(err, errlen, "Extended L2 entries are only supported with compatibility "
                    "level 1.1 and above (use version=v3 or greater)");
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
        return fail(err, errlen, "Cluster size must be a power of two between 512 and 2048k");
    if (o->extended_l2 && cs < 16384)
        return fail(err, errlen, "Extended L2 entries are only supported with cluster sizes "
                    "of at least 16384 bytes");
    if (o->backing_file_set && o->preallocate_metadata && !o->extended_l2)
        return fail(err, errlen, "Backing file and preallocation can only be used at the "
                    "same time if extended_l2 is on");
    if (o->backing_fmt_set && !o->backing_file_set)
        return fail(err, errlen, "Backing format cannot be used without backing file");
    if (o->version < 3 && o->lazy_refcounts)
        return fail(err, errlen, "Lazy refcounts only supported with compatibility level 1.1 "
                    "and above (use version=v3 or greater)");
    if (o->refcount_bits > 64 || !o->refcount_bits || (o->refcount_bits & (o->refcount_bits - 1)))
        return fail(err, errlen, "Refcount width must be a power of two and may not exceed "
                    "64 bits");
    if (o->version < 3 && o->refcount_bits != 16)
        return fail(err, errlen, "Different refcount widths than 16 bits require "
                    "compatibility level 1.1 or above (use version=v3 or greater)");
    if (o->version < 3 && o->compression_type != QC_COMPRESSION_ZLIB)
        return fail(err, errlen, "Non-zlib compression type is only supported with "
                    "compatibility level 1.1 and above (use version=v3 or greater)");
    if (o->backing_file_set && strlen(o->backing_file) > QC_MAX_BACKING_NAME)
        return fail(err, errlen, "Backing file name too long");
    return 0;
}

/* QEMU's preallocate_co: the allocating write path over [0, size) without
 * data, then the file extended to the end of the last cluster. */
static int preallocate(struct qc_writer *w, uint64_t offset, uint64_t end)
{
    uint64_t bytes = end - offset, host = 0, cur = 0;
    int r;

    while (bytes) {
        struct qc_l2meta *meta = NULL;
        cur = bytes < (QC_INT_MAX & ~(w->cluster_size - 1)) ? bytes
                                                           : (QC_INT_MAX & ~(w->cluster_size - 1));
        r = qc_alloc_host_offset(w, offset, &cur, &host, &meta);
        if (r < 0) {
            qc_w_handle_l2meta(w, &meta, false);
            return r;
        }
        for (struct qc_l2meta *m = meta; m; m = m->next)
            m->prealloc = true;
        r = qc_w_handle_l2meta(w, &meta, true);
        if (r < 0) {
            qc_w_handle_l2meta(w, &meta, false);
            return r;
        }
        bytes -= cur;
        offset += cur;
    }
    if (host + cur > w->img.file.size)
        return qc_file_truncate(&w->img.file, host + cur);
    return 0;
}

static uint64_t size_to_l1(const struct qc_writer *w, uint64_t size)
{
    unsigned shift = w->cluster_bits + (unsigned)__builtin_ctzll(w->l2_size);
    return (size + (1ull << shift) - 1) >> shift;
}

int qc_create(const char *image, const struct qc_create_options *o,
              const struct qc_io_opts *io, bool force, struct qc_file *stats,
              char *err, size_t errlen)
{
    struct qc_writer *w;
    uint64_t cs = o->cluster_size, size = (o->size + 511) & ~511ull;
    unsigned cbits = (unsigned)__builtin_ctzll(cs);
    const char *why = NULL, *what = NULL;
    uint8_t *buf;
    int r;

    if (qc_create_validate(o, err, errlen) < 0)
        return -1;
    if (!o->size_set)
        return fail(err, errlen, "Image creation needs a size parameter");
    w = calloc(1, sizeof *w);
    buf = calloc(3, (size_t)cs);
    if (!w || !buf) {
        free(w);
        free(buf);
        return fail(err, errlen, "out of memory");
    }
    w->opt.cache_mode = QC_CACHE_WRITEBACK;
    w->opt.force = force;
    r = qc_file_open(&w->img.file, image, QC_OPEN_CREATE | (force ? QC_OPEN_FORCE : 0), &why);
    if (r == QC_E_LOCKED) {
        fail(err, errlen, "Failed to get %s lock\nIs another process using the image [%s]?",
             why ? why : "\"write\"", image);
        goto out_free;
    }
    if (r < 0) {
        fail(err, errlen, "Could not create '%s': %s", image, qc_strerror(r));
        goto out_free;
    }
    if (io && (r = qc_io_opts_apply(io, &w->img.file, &what)) < 0) {
        if (r == QC_E_SIDEFILE)
            fail(err, errlen, "%s", what);
        else
            fail(err, errlen, "%s: %s", what ? what : "log", qc_strerror(r));
        qc_file_close(&w->img.file);
        goto out_free;
    }

    /* a minimal header: size 0, no L1, one reftable cluster at cs */
    qc_put_be32(buf, QC_MAGIC);
    qc_put_be32(buf + 4, o->version);
    qc_put_be32(buf + 20, cbits);
    qc_put_be64(buf + 48, cs);
    qc_put_be32(buf + 56, 1);
    qc_put_be32(buf + 96, (uint32_t)__builtin_ctzll(o->refcount_bits));
    qc_put_be32(buf + 100, QC_HEADER_V3_LEN);
    buf[104] = (uint8_t)o->compression_type;
    if (o->lazy_refcounts)
        qc_put_be64(buf + 80, QC_COMPAT_LAZY_REFCOUNTS);
    qc_put_be64(buf + 72, (o->compression_type ? QC_INCOMPAT_COMPRESSION : 0) |
                          (o->extended_l2 ? QC_INCOMPAT_EXTL2 : 0));
    r = qc_file_write(&w->img.file, 0, buf, (size_t)cs, QC_EV_HEADER_UPDATE);
    if (r == 0) {
        memset(buf, 0, 3 * (size_t)cs);
        qc_put_be64(buf, 2 * cs);
        r = qc_file_write(&w->img.file, cs, buf, 2 * (size_t)cs, QC_EV_REFTABLE_UPDATE);
    }
    if (r < 0) {
        fail(err, errlen, "Could not write qcow2 header: %s", qc_strerror(r));
        qc_file_close(&w->img.file);
        unlink(image);
        goto out_free;
    }

    /* open it as an image and make it consistent */
    r = qc_image_reload(&w->img, QC_VALIDATE_WRITE);
    if (r == 0)
        r = qc_w_init_state(w);
    if (r < 0) {
        fail(err, errlen, "Could not open '%s': %s", image, qc_strerror(r));
        goto out_abandon;
    }
    r = (int)qc_alloc_clusters(w, 3 * cs);
    if (r != 0) {
        fail(err, errlen, "Could not allocate clusters for qcow2 header and refcount table: %s",
             qc_strerror(r < 0 ? r : -EIO));
        goto out_abandon;
    }
    r = qc_w_update_header(w);
    if (r < 0) {
        fail(err, errlen, "Could not update qcow2 header: %s", qc_strerror(r));
        goto out_abandon;
    }

    /* the size: the L1 table, preallocation, then the header field */
    r = qc_grow_l1(w, size_to_l1(w, size), true);
    if (r == 0 && o->preallocate_metadata)
        r = preallocate(w, 0, size);
    if (r == 0)
        r = qc_write_caches(w);
    if (r == 0) {
        uint8_t be[8];
        qc_put_be64(be, size);
        r = qc_file_write(&w->img.file, 24, be, 8, QC_EV_HEADER_UPDATE);
        if (r == 0)
            r = qc_file_flush(&w->img.file);
        w->size = size;
    }
    if (r < 0) {
        if (r == -EFBIG)
            fail(err, errlen, "The image size is too large for file format 'qcow2' "
                 "(try using a larger cluster size)");
        else
            fail(err, errlen, "Could not resize image: %s", qc_strerror(r));
        goto out_abandon;
    }
    w->guest_unflushed = true;   /* the resize counts as a write */

    if (o->backing_file_set) {
        free(w->img.backing_name);
        free(w->img.backing_format);
        w->img.backing_name = strdup(o->backing_file);
        w->img.backing_format = o->backing_fmt_set ? strdup(o->backing_fmt) : NULL;
        r = qc_w_update_header(w);
        if (r < 0) {
            fail(err, errlen, "Could not assign backing file '%s' with format '%s': %s",
                 o->backing_file, o->backing_fmt, qc_strerror(r));
            goto out_abandon;
        }
    }
    r = qc_writer_close(w);
    if (stats)
        *stats = w->img.file;
    free(w);
    free(buf);
    if (r < 0)
        return fail(err, errlen, "Could not close '%s': %s", image, qc_strerror(r));
    return 0;

out_abandon:
    qc_writer_abandon(w);
    unlink(image);   /* as qemu-img: a failed creation leaves no file */
out_free:
    free(w);
    free(buf);
    return -1;
}
