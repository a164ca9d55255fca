/* Write plans of a repair, their execution, and their backups (qc_plan.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>

#include "qc_endian.h"
#include "qc_plan.h"
#include "qc_sidefile.h"
#include "qc_view.h"

#define BACKUP_MAGIC "QCREPBK1"
#define BACKUP_MAX_RANGE (64ull << 20)   /* one range never exceeds a 2 MiB cluster by much */

void qc_plan_init(struct qc_plan *p)
{
    memset(p, 0, sizeof *p);
}

void qc_plan_free(struct qc_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].data);
        free(p->v[i].what);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

static struct qc_plan_step *add_step(struct qc_plan *p)
{
    if (p->n == p->cap) {
        size_t n = p->cap ? p->cap * 2 : 32;
        struct qc_plan_step *v = realloc(p->v, n * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = n;
    }
    memset(&p->v[p->n], 0, sizeof p->v[p->n]);
    return &p->v[p->n++];
}

/* A new step OP whose "what" is FMT formatted; NULL when memory ran out. */
static struct qc_plan_step *add_step_v(struct qc_plan *p, enum qc_plan_op op,
                                       const char *fmt, va_list ap)
{
    struct qc_plan_step *s;
    char *what = NULL;

    if (vasprintf(&what, fmt, ap) < 0)
        return NULL;
    if (!(s = add_step(p))) {
        free(what);
        return NULL;
    }
    s->op = op;
    s->what = what;
    return s;
}

int qc_plan_write(struct qc_plan *p, uint64_t off, const void *data, size_t len,
                  enum qc_event ev, const char *fmt, ...)
{
    struct qc_plan_step *s;
    uint8_t *copy = malloc(len ? len : 1);
    va_list ap;

    if (!copy)
        return QC_E_NOMEM;
    va_start(ap, fmt);
    s = add_step_v(p, QC_PLAN_WRITE, fmt, ap);
    va_end(ap);
    if (!s) {
        free(copy);
        return QC_E_NOMEM;
    }
    memcpy(copy, data, len);
    s->off = off;
    s->len = len;
    s->data = copy;
    s->ev = ev;
    return 0;
}

int qc_plan_write_fill(struct qc_plan *p, uint64_t off, size_t len, qc_plan_fill_fn fill,
                       void *ctx, uint64_t arg, enum qc_event ev, const char *fmt, ...)
{
    struct qc_plan_step *s;
    va_list ap;

    va_start(ap, fmt);
    s = add_step_v(p, QC_PLAN_WRITE, fmt, ap);
    va_end(ap);
    if (!s)
        return QC_E_NOMEM;
    s->off = off;
    s->len = len;
    s->fill = fill;
    s->fill_ctx = ctx;
    s->fill_arg = arg;
    s->ev = ev;
    return 0;
}

/* The bytes of write step S: its own, or made into a new buffer (*OWNED). */
static int step_bytes(const struct qc_plan_step *s, const uint8_t **out, uint8_t **owned)
{
    uint8_t *b;
    int r;

    *owned = NULL;
    if (s->data) {
        *out = s->data;
        return 0;
    }
    if (!(b = malloc(s->len ? (size_t)s->len : 1)))
        return QC_E_NOMEM;
    if ((r = s->fill(s->fill_ctx, s->fill_arg, b, (size_t)s->len)) < 0) {
        free(b);
        return r;
    }
    *out = b;
    *owned = b;
    return 0;
}

int qc_plan_grow(struct qc_plan *p, uint64_t size, const char *fmt, ...)
{
    struct qc_plan_step *s;
    va_list ap;

    va_start(ap, fmt);
    s = add_step_v(p, QC_PLAN_GROW, fmt, ap);
    va_end(ap);
    if (!s)
        return QC_E_NOMEM;
    s->off = size;
    return 0;
}

int qc_plan_flush(struct qc_plan *p)
{
    struct qc_plan_step *s;

    if (!p->n || p->v[p->n - 1].op == QC_PLAN_FLUSH)
        return 0;
    if (!(s = add_step(p)))
        return QC_E_NOMEM;
    s->op = QC_PLAN_FLUSH;
    return 0;
}

int qc_plan_overlay(const struct qc_plan *p, uint64_t off, void *buf, size_t len)
{
    uint64_t end = off + len;

    for (size_t i = 0; i < p->n; i++) {
        const struct qc_plan_step *s = &p->v[i];
        const uint8_t *d;
        uint8_t *owned;
        uint64_t a, b;
        int r;
        if (s->op != QC_PLAN_WRITE || s->off >= end || s->off + s->len <= off)
            continue;
        if ((r = step_bytes(s, &d, &owned)) < 0)
            return r;
        a = s->off > off ? s->off : off;
        b = s->off + s->len < end ? s->off + s->len : end;
        memcpy((uint8_t *)buf + (a - off), d + (a - s->off), (size_t)(b - a));
        free(owned);
    }
    return 0;
}

int qc_plan_read(const struct qc_plan *p, struct qc_file *f, uint64_t off, void *buf, size_t len)
{
    int r = qc_file_read_qemu(f, off, buf, len);

    if (r < 0)
        return r;
    return qc_plan_overlay(p, off, buf, len);
}

size_t qc_plan_nwrites(const struct qc_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->v[i].op != QC_PLAN_FLUSH;
    return n;
}

int qc_plan_execute(const struct qc_plan *p, struct qc_file *f)
{
    int r = 0;

    for (size_t i = 0; i < p->n && r == 0; i++) {
        const struct qc_plan_step *s = &p->v[i];
        switch (s->op) {
        case QC_PLAN_WRITE: {
            const uint8_t *d;
            uint8_t *owned;
            if ((r = step_bytes(s, &d, &owned)) == 0)
                r = qc_file_write(f, s->off, d, (size_t)s->len, s->ev);
            free(owned);
            break;
        }
        case QC_PLAN_GROW:
            if (s->off > f->size)
                r = qc_file_truncate(f, s->off);
            break;
        case QC_PLAN_FLUSH:
            r = qc_file_flush(f);
            break;
        }
    }
    if (r == 0)
        r = qc_file_flush(f);
    return r;
}

void qc_plan_print(FILE *out, const struct qc_plan *p)
{
    size_t w = 0;

    for (size_t i = 0; i < p->n; i++) {
        const struct qc_plan_step *s = &p->v[i];
        switch (s->op) {
        case QC_PLAN_WRITE:
            fprintf(out, "write %zu: offset 0x%" PRIx64 " length %" PRIu64 ": %s\n", ++w, s->off,
                    s->len, s->what);
            break;
        case QC_PLAN_GROW:
            fprintf(out, "write %zu: grow the file to %" PRIu64 " bytes: %s\n", ++w, s->off,
                    s->what);
            break;
        case QC_PLAN_FLUSH:
            fprintf(out, "flush\n");
            break;
        }
    }
}

struct json_object *qc_plan_json(const struct qc_plan *p)
{
    struct json_object *a = json_object_new_array();

    for (size_t i = 0; i < p->n; i++) {
        const struct qc_plan_step *s = &p->v[i];
        struct json_object *o = json_object_new_object();
        switch (s->op) {
        case QC_PLAN_WRITE:
            json_object_object_add(o, "op", json_object_new_string("write"));
            json_object_object_add(o, "offset", qc_json_u64(s->off));
            json_object_object_add(o, "length", qc_json_u64(s->len));
            json_object_object_add(o, "event", json_object_new_string(qc_event_name(s->ev)));
            json_object_object_add(o, "fixes", qc_json_text(s->what));
            break;
        case QC_PLAN_GROW:
            json_object_object_add(o, "op", json_object_new_string("grow"));
            json_object_object_add(o, "length", qc_json_u64(s->off));
            json_object_object_add(o, "fixes", qc_json_text(s->what));
            break;
        case QC_PLAN_FLUSH:
            json_object_object_add(o, "op", json_object_new_string("flush"));
            break;
        }
        json_object_array_add(a, o);
    }
    return a;
}

/* --- backup and undo ---------------------------------------------------------- */

struct bwriter {
    FILE *fp;
    uLong crc;
    bool failed;
};

static void bw_put(struct bwriter *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    b->crc = crc32(b->crc, data, (uInt)len);
    if (len && fwrite(data, 1, len, b->fp) != len)
        b->failed = true;
}

static void bw_u64(struct bwriter *b, uint64_t v)
{
    uint8_t x[8];
    qc_put_be64(x, v);
    bw_put(b, x, 8);
}

int qc_backup_save(const struct qc_plan *p, struct qc_file *f, const char *path,
                   const char **err)
{
    struct bwriter b = { NULL, 0, false };
    uint64_t nranges = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint8_t crc[4];
    int fd, r = 0;

    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].op == QC_PLAN_WRITE && p->v[i].off < f->size)
            nranges++;
    /* Never the image (a typo, a symlink or a hard link to it), never an
     * existing file: a backup that replaced an earlier one would lose it. */
    {
        static _Thread_local char msg[512];
        struct qc_protect prot;

        qc_protect_init(&prot);
        qc_protect_add_fd(&prot, f->fd, "the image");
        if ((fd = qc_sidefile_open(path, &prot, 0, msg, sizeof msg)) < 0) {
            *err = msg;
            return -EPERM;
        }
    }
    if (!(b.fp = fdopen(fd, "wb"))) {
        r = -errno;
        close(fd);
        *err = "cannot create the backup file";
        return r;
    }
    b.crc = crc32(0, NULL, 0);
    bw_put(&b, BACKUP_MAGIC, 8);
    bw_u64(&b, f->size);
    bw_u64(&b, nranges);
    for (size_t i = 0; i < p->n && !b.failed; i++) {
        const struct qc_plan_step *s = &p->v[i];
        uint64_t len;
        if (s->op != QC_PLAN_WRITE || s->off >= f->size)
            continue;
        len = s->len < f->size - s->off ? s->len : f->size - s->off;
        if (len > cap) {
            uint8_t *nb = realloc(buf, (size_t)len);
            if (!nb) {
                r = QC_E_NOMEM;
                break;
            }
            buf = nb;
            cap = (size_t)len;
        }
        if ((r = qc_file_read(f, s->off, buf, (size_t)len)) < 0) {
            *err = "cannot read the image";
            break;
        }
        bw_u64(&b, s->off);
        bw_u64(&b, len);
        bw_put(&b, buf, (size_t)len);
    }
    free(buf);
    qc_put_be32(crc, (uint32_t)b.crc);
    if (!b.failed && r == 0 && fwrite(crc, 1, 4, b.fp) != 4)
        b.failed = true;
    if (!b.failed && r == 0 && (fflush(b.fp) != 0 || fsync(fileno(b.fp)) != 0))
        b.failed = true;
    if (b.failed && r == 0) {
        r = -(errno ? errno : EIO);
        *err = "cannot write the backup file";
    }
    if (fclose(b.fp) != 0 && r == 0) {
        r = -(errno ? errno : EIO);
        *err = "cannot write the backup file";
    }
    return r;
}

int qc_backup_restore(const char *path, struct qc_file *f, size_t *nranges, const char **err)
{
    uint8_t *all = NULL, *p;
    size_t len = 0, cap = 0;
    uint64_t old_len, n, pos;
    FILE *fp = fopen(path, "rb");
    int r = 0;

    *nranges = 0;
    if (!fp) {
        *err = "cannot open the backup file";
        return -errno;
    }
    /* the whole backup is read and verified before a byte is restored */
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            uint8_t *nb = nc > cap ? realloc(all, nc) : NULL;
            if (!nb) {
                free(all);
                fclose(fp);
                *err = "backup file too large";
                return QC_E_NOMEM;
            }
            all = nb;
            cap = nc;
        }
        got = fread(all + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    *err = "not a qc-repair backup file (or damaged)";
    if (len < 28 || memcmp(all, BACKUP_MAGIC, 8) != 0 ||
        qc_be32(all + len - 4) != (uint32_t)crc32(crc32(0, NULL, 0), all, (uInt)(len - 4))) {
        free(all);
        return QC_E_FORMAT;
    }
    old_len = qc_be64(all + 8);
    n = qc_be64(all + 16);
    /* validate every range first */
    pos = 24;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off, l;
        if (len - 4 - pos < 16) {
            free(all);
            return QC_E_FORMAT;
        }
        off = qc_be64(all + pos);
        l = qc_be64(all + pos + 8);
        pos += 16;
        if (l > len - 4 - pos || off > (uint64_t)INT64_MAX - l || l > BACKUP_MAX_RANGE) {
            free(all);
            return QC_E_FORMAT;
        }
        pos += l;
    }
    if (pos != len - 4 || old_len > (uint64_t)INT64_MAX) {
        free(all);
        return QC_E_FORMAT;
    }
    /* ranges were saved in plan order, each with the bytes from before the
     * repair: putting them back in reverse order leaves the oldest bytes */
    {
        uint64_t *starts = calloc(n ? (size_t)n : 1, sizeof *starts);
        if (!starts) {
            free(all);
            return QC_E_NOMEM;
        }
        pos = 24;
        for (uint64_t i = 0; i < n; i++) {
            starts[i] = pos;
            pos += 16 + qc_be64(all + pos + 8);
        }
        *err = "cannot write the image";
        for (uint64_t i = n; i-- > 0 && r == 0;) {
            p = all + starts[i];
            r = qc_file_write(f, qc_be64(p), p + 16, (size_t)qc_be64(p + 8), QC_EV_RESTORE);
            if (r == 0)
                (*nranges)++;
        }
        free(starts);
    }
    if (r == 0 && f->size != old_len)
        r = qc_file_truncate(f, old_len);
    if (r == 0)
        r = qc_file_flush(f);
    free(all);
    return r;
}
