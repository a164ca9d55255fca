/*
 * qcow2.py's commands as the script carries them out (see qc_pyscript.h):
 * the header and extension list as it loads them, its edits as the writes
 * it makes in order, and the exceptions it stops with.
 */
#include "qc_pyscript.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc_endian.h"
#include "qc_ext.h"
#include "qc_header.h"
#include "qc_util.h"

#define PY_HEADER_LEN 104
#define PY_NFIELDS (QC_HF_HEADER_LENGTH + 1)

/* A Python int as the script holds it: a value, negative, or above 2^64. */
struct py_int {
    uint64_t v;     /* the magnitude when neg */
    bool neg, big;
};

struct py_ext {
    struct py_int magic;
    uint32_t length;
    uint8_t *data;      /* NULL with none: the bitmaps extension's None */
    size_t len;
    bool none;
};

struct py_header {
    struct py_int f[PY_NFIELDS];
    uint64_t cluster_bits;
    struct py_ext *exts;
    size_t n;
    bool has_backing;
    uint8_t *backing;
    size_t backing_len;
};

static int raise_exc(struct qc_py_exc *exc, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int raise_exc(struct qc_py_exc *exc, const char *type, const char *fmt, ...)
{
    va_list ap;

    snprintf(exc->type, sizeof exc->type, "%s", type);
    va_start(ap, fmt);
    vsnprintf(exc->msg, sizeof exc->msg, fmt, ap);
    va_end(ap);
    return 1;
}

void qc_py_exc_print(FILE *err, const struct qc_py_exc *exc)
{
    fprintf(err, "Traceback (most recent call last):\n%s: %s\n", exc->type, exc->msg);
}

/* Python's repr() of a str (the bytes of S taken as Latin-1 where they are
 * not ASCII; enough for file names in messages). */
static void py_repr(char *buf, size_t len, const char *s)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    size_t used = 0;

    used += (size_t)snprintf(buf + used, len - used, "%c", q);
    for (const unsigned char *p = (const unsigned char *)s; *p && used < len; p++) {
        if (*p == '\\' || *p == (unsigned char)q)
            used += (size_t)snprintf(buf + used, len - used, "\\%c", *p);
        else if (*p == '\n' || *p == '\t' || *p == '\r')
            used += (size_t)snprintf(buf + used, len - used, "\\%c",
                                     *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r');
        else if (*p < 0x20 || *p == 0x7f)
            used += (size_t)snprintf(buf + used, len - used, "\\x%02x", *p);
        else
            used += (size_t)snprintf(buf + used, len - used, "%c", *p);
    }
    if (used < len)
        snprintf(buf + used, len - used, "%c", q);
}

static const char *oserror_type(int err)
{
    switch (err) {
    case ENOENT: return "FileNotFoundError";
    case EACCES: case EPERM: return "PermissionError";
    case EISDIR: return "IsADirectoryError";
    case ENOTDIR: return "NotADirectoryError";
    case EEXIST: return "FileExistsError";
    default: return "OSError";
    }
}

int qc_pyscript_open(struct qc_file *f, const char *path, struct qc_py_exc *exc)
{
    char name[400];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int err = errno;

    if (fd >= 0) {
        int r;

        close(fd);
        r = qc_file_open(f, path, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL);
        if (r == 0)
            return 0;
        err = r < 0 && r > QC_E_RANGE ? -r : EIO;   /* -errno, or one of ours */
    }
    py_repr(name, sizeof name, path);
    raise_exc(exc, oserror_type(err), "[Errno %d] %s: %s", err, strerror(err), name);
    return -1;
}

int qc_pyscript_dump(FILE *out, struct qc_file *f, bool header, bool json,
                     struct qc_py_exc *exc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int r;

    if (!mem)
        return raise_exc(exc, "MemoryError", "out of memory");
    r = qc_pyscript_dump_text(mem, f, header, exc);
    fclose(mem);
    if (r == 0 && json)
        qc_pyscript_dump_json(out, f, header);
    else if (r == 0)
        fwrite(text, 1, len, out);
    else if (!exc->type[0])
        raise_exc(exc, "struct.error", "unpack requires a buffer of 8 bytes");
    free(text);
    return r ? 1 : 0;
}

/* --- the script's view of the file -------------------------------------- */

static void header_free(struct py_header *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->exts[i].data);
    free(h->exts);
    free(h->backing);
    memset(h, 0, sizeof *h);
}

static int ext_push(struct py_header *h, struct py_ext *e)
{
    struct py_ext *n = realloc(h->exts, (h->n + 1) * sizeof *n);

    if (!n) {
        free(e->data);
        return -1;
    }
    h->exts = n;
    h->exts[h->n++] = *e;
    return 0;
}

/* Reads up to LEN bytes at OFF as Python's read() does (short at EOF). */
static uint8_t *read_short(struct qc_file *f, uint64_t off, uint64_t len, size_t *got)
{
    uint64_t have = off < f->size ? f->size - off : 0;
    uint8_t *buf;

    if (have > len)
        have = len;
    buf = malloc(have ? (size_t)have : 1);
    if (buf && have && qc_file_read(f, off, buf, (size_t)have) < 0) {
        free(buf);
        return NULL;
    }
    *got = (size_t)have;
    return buf;
}

static int load_exts(struct py_header *h, struct qc_file *f)
{
    uint64_t pos = h->f[QC_HF_HEADER_LENGTH].v, bfo = h->f[QC_HF_BACKING_FILE_OFFSET].v;

    while ((h->cluster_bits >= 64 || pos < (1ull << h->cluster_bits)) && !(bfo && pos >= bfo)) {
        uint8_t hd[8];
        struct py_ext e = { 0 };

        if (qc_file_read(f, pos, hd, 8) < 0)
            return -1;
        pos += 8;
        e.magic.v = qc_be32(hd);
        e.length = qc_be32(hd + 4);
        if (e.magic.v == 0)
            break;
        if (e.magic.v == QC_EXT_BITMAPS) {
            e.none = true;
            pos += 24;
        } else {
            e.data = read_short(f, pos, ((uint64_t)e.length + 7) & ~7ull, &e.len);
            if (!e.data)
                return -1;
            pos += e.len;
        }
        if (ext_push(h, &e) < 0)
            return -1;
    }
    return 0;
}

/* QcowHeader(fd): every exception the load can raise comes from the reads
 * the dump makes, so the dump (to nowhere) tells it. */
static int header_load(struct py_header *h, struct qc_file *f, struct qc_py_exc *exc)
{
    uint8_t raw[PY_HEADER_LEN];
    FILE *null = fopen("/dev/null", "w");
    int r;

    memset(h, 0, sizeof *h);
    if (!null)
        return raise_exc(exc, "OSError", "[Errno %d] %s: '/dev/null'", errno, strerror(errno));
    r = qc_pyscript_dump(null, f, true, false, exc);
    fclose(null);
    if (r)
        return 1;
    if (qc_file_read(f, 0, raw, sizeof raw) < 0)
        return raise_exc(exc, "struct.error", "unpack requires a buffer of 104 bytes");
    for (int i = 0; i < PY_NFIELDS; i++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
        h->f[i].v = fi->size == 8 ? qc_be64(raw + fi->offset) : qc_be32(raw + fi->offset);
    }
    if (h->f[QC_HF_VERSION].v == 2) {
        h->f[QC_HF_INCOMPATIBLE_FEATURES].v = h->f[QC_HF_COMPATIBLE_FEATURES].v = 0;
        h->f[QC_HF_AUTOCLEAR_FEATURES].v = 0;
        h->f[QC_HF_REFCOUNT_ORDER].v = 4;
        h->f[QC_HF_HEADER_LENGTH].v = 72;
    }
    h->cluster_bits = h->f[QC_HF_CLUSTER_BITS].v;
    if (load_exts(h, f) < 0)
        return raise_exc(exc, "MemoryError", "out of memory");
    if (h->f[QC_HF_BACKING_FILE_OFFSET].v) {
        uint64_t bfo = h->f[QC_HF_BACKING_FILE_OFFSET].v;
        if (bfo > (uint64_t)INT64_MAX)
            return raise_exc(exc, "ValueError", "cannot fit 'int' into an offset-sized integer");
        h->has_backing = true;
        h->backing = read_short(f, bfo, h->f[QC_HF_BACKING_FILE_SIZE].v, &h->backing_len);
        if (!h->backing)
            return raise_exc(exc, "MemoryError", "out of memory");
    }
    return 0;
}

/* --- update(): the writes the script makes ------------------------------ */

/* struct.pack's complaint about V for a field of SIZE bytes, or NULL. */
static const char *pack_error(const struct py_int *v, unsigned size)
{
    if (size == 8)
        return v->neg && v->v ? "int too large to convert" : v->big ? "int too large to convert" : NULL;
    if ((v->neg && v->v) || v->big)
        return "argument out of range";
    return v->v > UINT32_MAX ? "'I' format requires 0 <= number <= 4294967295" : NULL;
}

static int write_at(struct qc_file *f, uint64_t *pos, const void *buf, size_t len,
                    struct qc_py_exc *exc)
{
    if (len && qc_file_write(f, *pos, buf, len, QC_EV_NONE) < 0)
        return raise_exc(exc, "OSError", "[Errno %d] %s", EIO, strerror(EIO));
    *pos += len;
    return 0;
}

/* update_extensions(): the extensions and an end marker from header_length
 * on, then the backing file name. */
static int write_exts(struct py_header *h, struct qc_file *f, uint64_t *pos,
                      struct qc_py_exc *exc)
{
    const struct py_int *hl = &h->f[QC_HF_HEADER_LENGTH];
    struct py_ext end = { 0 };

    if (hl->big || hl->v > (uint64_t)INT64_MAX)
        return raise_exc(exc, hl->neg ? "OSError" : "ValueError", hl->neg ?
                         "[Errno 22] Invalid argument" :
                         "cannot fit 'int' into an offset-sized integer");
    if (hl->neg && hl->v)
        return raise_exc(exc, "OSError", "[Errno 22] Invalid argument");
    *pos = hl->v;
    for (size_t i = 0; i <= h->n; i++) {
        const struct py_ext *e = i < h->n ? &h->exts[i] : &end;
        const char *why = pack_error(&e->magic, 4);
        uint8_t hd[8];

        if (why)
            return raise_exc(exc, "struct.error", "%s", why);
        qc_put_be32(hd, (uint32_t)e->magic.v);
        qc_put_be32(hd + 4, e->length);
        if (write_at(f, pos, hd, 8, exc))
            return 1;
        if (e->none)
            return raise_exc(exc, "TypeError", "a bytes-like object is required, not 'NoneType'");
        if (write_at(f, pos, e->data, e->len, exc))
            return 1;
    }
    if (h->has_backing) {
        h->f[QC_HF_BACKING_FILE_OFFSET] = (struct py_int){ *pos, false, false };
        if (write_at(f, pos, h->backing, h->backing_len, exc))
            return 1;
    }
    return 0;
}

/* buf[0:header_bytes-1] of the 104 packed bytes */
static size_t header_slice(const struct py_int *hb)
{
    if (hb->big)
        return hb->neg ? 0 : PY_HEADER_LEN;
    if (hb->neg && hb->v)
        return hb->v + 1 >= PY_HEADER_LEN ? 0 : (size_t)(PY_HEADER_LEN - hb->v - 1);
    if (hb->v == 0)
        return PY_HEADER_LEN - 1;
    return hb->v - 1 > PY_HEADER_LEN ? PY_HEADER_LEN : (size_t)(hb->v - 1);
}

static int header_update(struct py_header *h, struct qc_file *f, struct qc_py_exc *exc)
{
    struct py_int header_bytes = h->f[QC_HF_HEADER_LENGTH];
    uint8_t raw[PY_HEADER_LEN];
    uint64_t pos = 0;
    int r = write_exts(h, f, &pos, exc);

    if (!r && h->cluster_bits < 64 && pos > (1ull << h->cluster_bits))
        r = raise_exc(exc, "Exception", "I think I just broke the image...");
    for (int i = 0; !r && i < PY_NFIELDS; i++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
        const char *why = pack_error(&h->f[i], fi->size);
        if (why)
            r = raise_exc(exc, "struct.error", "%s", why);
        else if (fi->size == 8)
            qc_put_be64(raw + fi->offset, h->f[i].v);
        else
            qc_put_be32(raw + fi->offset, (uint32_t)h->f[i].v);
    }
    pos = 0;
    if (!r)
        r = write_at(f, &pos, raw, header_slice(&header_bytes), exc);
    if (qc_file_flush(f) < 0 && !r)
        r = raise_exc(exc, "OSError", "[Errno %d] %s", EIO, strerror(EIO));
    return r;
}

/* --- the commands -------------------------------------------------------- */

static bool parse_int(const char *s, struct py_int *v)
{
    return qc_parse_pyint_wide(s, &v->v, &v->neg, &v->big);
}

/* One character of a Python str made from UTF-8 bytes with surrogateescape:
 * its code point, and how many bytes it took. */
static uint32_t utf8_char(const unsigned char *p, size_t *len)
{
    uint32_t cp;
    size_t n;

    if (p[0] < 0x80)
        return *len = 1, p[0];
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, cp = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, cp = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, cp = p[0] & 0x07u;
    else
        return *len = 1, 0xdc00u + p[0];
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return *len = 1, 0xdc00u + p[0];
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return *len = 1, 0xdc00u + p[0];
    return *len = n, cp;
}

/* str.encode('ascii'): the UnicodeEncodeError for the first run of
 * characters above 0x7f, or 0. */
static int ascii_encode_check(const char *s, struct qc_py_exc *exc)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t pos = 0, len, start = 0, count = 0;
    uint32_t first = 0;

    for (; *p; p += len, pos++) {
        uint32_t cp = utf8_char(p, &len);
        if (cp < 0x80) {
            if (count)
                break;
            continue;
        }
        if (!count++)
            first = cp, start = pos;
    }
    if (!count)
        return 0;
    if (count > 1)
        return raise_exc(exc, "UnicodeEncodeError", "'ascii' codec can't encode characters "
                         "in position %zu-%zu: ordinal not in range(128)", start, start + count - 1);
    return raise_exc(exc, "UnicodeEncodeError", "'ascii' codec can't encode character '%s%0*"
                     PRIx32 "' in position %zu: ordinal not in range(128)",
                     first < 0x100 ? "\\x" : first < 0x10000 ? "\\u" : "\\U",
                     first < 0x100 ? 2 : first < 0x10000 ? 4 : 8, first, start);
}

static int set_header(FILE *out, struct py_header *h, struct qc_file *f, const char *name,
                      const char *value, struct qc_py_exc *exc)
{
    struct py_int v;
    int field = -1;

    if (!parse_int(value, &v)) {
        fprintf(out, "'%s' is not a valid number\n", value);
        return 1;
    }
    for (int i = 0; i < PY_NFIELDS; i++)
        if (strcmp(name, qc_header_field_info((enum qc_header_field)i)->name) == 0)
            field = i;
    if (field < 0) {
        fprintf(out, "'%s' is not a known header field\n", name);
        return 1;
    }
    if (header_load(h, f, exc))
        return 1;
    h->f[field] = v;
    return header_update(h, f, exc);
}

static int add_ext(FILE *out, struct py_header *h, struct qc_file *f, const char *magic,
                   const char *data, struct qc_py_exc *exc)
{
    struct py_ext e = { 0 };
    size_t n = strlen(data);

    if (!parse_int(magic, &e.magic)) {
        fprintf(out, "'%s' is not a valid magic number\n", magic);
        return 1;
    }
    if (header_load(h, f, exc) || ascii_encode_check(data, exc))
        return 1;
    e.length = (uint32_t)n;
    e.len = (n + 7) & ~(size_t)7;
    e.data = calloc(1, e.len ? e.len : 1);
    if (!e.data || ext_push(h, &e) < 0)
        return raise_exc(exc, "MemoryError", "out of memory");
    memcpy(e.data, data, n);
    return header_update(h, f, exc);
}

static int del_ext(FILE *out, struct py_header *h, struct qc_file *f, const char *magic,
                   struct qc_py_exc *exc)
{
    struct py_int m;
    bool found = false;

    if (!parse_int(magic, &m)) {
        fprintf(out, "'%s' is not a valid magic number\n", magic);
        return 1;
    }
    if (header_load(h, f, exc))
        return 1;
    /* removing while iterating: the element after each removed one is
     * never looked at */
    for (size_t i = 0; i < h->n; i++) {
        if (m.neg || m.big || h->exts[i].magic.v != m.v)
            continue;
        found = true;
        free(h->exts[i].data);
        memmove(&h->exts[i], &h->exts[i + 1], (h->n - i - 1) * sizeof h->exts[i]);
        h->n--;
    }
    if (!found) {
        fprintf(out, "No such header extension\n");
        return 0;
    }
    return header_update(h, f, exc);
}

static int set_feature_bit(FILE *out, struct py_header *h, struct qc_file *f, const char *group,
                           const char *bit, struct qc_py_exc *exc)
{
    static const char *const groups[] = { "incompatible", "compatible", "autoclear" };
    static const int fields[] = { QC_HF_INCOMPATIBLE_FEATURES, QC_HF_COMPATIBLE_FEATURES,
                                  QC_HF_AUTOCLEAR_FEATURES };
    struct py_int b;

    if (!parse_int(bit, &b)) {
        fprintf(out, "'%s' is not a valid bit number in range [0, 64)\n", bit);
        return 1;
    }
    if ((b.neg && b.v) || b.big || b.v >= 64) {
        if (b.big)
            fprintf(out, "'%s' is not a valid bit number in range [0, 64)\n", bit);
        else
            fprintf(out, "'%s%" PRIu64 "' is not a valid bit number in range [0, 64)\n",
                    b.neg ? "-" : "", b.v);
        return 1;
    }
    if (header_load(h, f, exc))
        return 1;
    for (int g = 0; g < 3; g++) {
        if (strcmp(group, groups[g]) == 0) {
            h->f[fields[g]].v |= 1ull << b.v;
            return header_update(h, f, exc);
        }
    }
    fprintf(out, "'%s' is not a valid group, try 'incompatible', 'compatible', or 'autoclear'\n",
            group);
    return 1;
}

int qc_pyscript_edit(FILE *out, struct qc_file *f, enum qc_py_edit_kind kind,
                     const char *a, const char *b, struct qc_py_exc *exc)
{
    struct py_header h = { 0 };
    int r;

    switch (kind) {
    case QC_PY_SET_HEADER: r = set_header(out, &h, f, a, b, exc); break;
    case QC_PY_ADD_EXT: r = add_ext(out, &h, f, a, b, exc); break;
    case QC_PY_DEL_EXT: r = del_ext(out, &h, f, a, exc); break;
    default: r = set_feature_bit(out, &h, f, a, b, exc); break;
    }
    header_free(&h);
    return r;
}

char *qc_py_read_text(FILE *in)
{
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    int c;

    if (!s)
        return NULL;
    while ((c = getc(in)) != EOF) {
        if (n + 2 > cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        s[n++] = (char)c;
    }
    s[n] = 0;
    return s;
}
