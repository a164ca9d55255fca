/* Write plans of a repair and their execution (qc_plan.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qc_endian.h"
#include "qc_plan.h"
#include "qc_view.h"

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
