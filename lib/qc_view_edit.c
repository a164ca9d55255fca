/* qc-setfeature's requests, their guards and their report (shared by
 * qc-setfeature and qc-shell -w). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_edit.h"
#include "qc_util.h"
#include "qc_view.h"

/* An extension payload can never be larger than the largest header cluster. */
#define MAX_EXT_DATA (2u << 20)

/* python's int(x, 0), or a size with a qemu suffix */
static bool parse_number(const char *s, uint64_t *v)
{
    bool neg;
    if (qc_parse_pyint(s, v, &neg))
        return !neg || *v == 0;
    return qc_parse_size(s, v);
}

static bool parse_magic(const char *s, uint32_t *magic)
{
    uint64_t v;
    bool neg;
    if (!qc_parse_pyint(s, &v, &neg) || (neg && v) || v > UINT32_MAX)
        return false;
    *magic = (uint32_t)v;
    return true;
}

/* "MAGIC=REST": the magic, and REST in *rest */
static bool split_magic(const char *arg, uint32_t *magic, const char **rest)
{
    const char *eq = strchr(arg, '=');
    char *m;
    bool ok;
    if (!eq || !(m = strndup(arg, (size_t)(eq - arg))))
        return false;
    ok = parse_magic(m, magic);
    free(m);
    *rest = eq + 1;
    return ok;
}

/* Reads all of PATH ('-': stdin), at most MAX_EXT_DATA bytes. */
static int read_data_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    uint8_t *buf;
    size_t n = 0;

    if (!f)
        return -errno;
    buf = malloc(MAX_EXT_DATA + 1);
    if (!buf) {
        if (f != stdin)
            fclose(f);
        return QC_E_NOMEM;
    }
    while (n <= MAX_EXT_DATA) {
        size_t k = fread(buf + n, 1, MAX_EXT_DATA + 1 - n, f);
        if (k == 0)
            break;
        n += k;
    }
    if (ferror(f) || n > MAX_EXT_DATA) {
        int e = ferror(f) ? -EIO : -EFBIG;
        if (f != stdin)
            fclose(f);
        free(buf);
        return e;
    }
    if (f != stdin)
        fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return rc;
}

int qc_edit_request_parse(struct qc_edit_request *q, enum qc_edit_req_kind kind,
                          const char *arg, char *msg, size_t msglen)
{
    const char *rest, *eq;
    char *name;
    int r;

    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->arg = arg;
    switch (kind) {
    case QC_REQ_SET_HEADER:
        if (!(eq = strchr(arg, '=')))
            return say(msg, msglen, 64, "--set-header takes FIELD=VALUE, not '%s'", arg);
        if (!(name = strndup(arg, (size_t)(eq - arg))))
            return say(msg, msglen, 1, "%s", qc_strerror(QC_E_NOMEM));
        q->field = qc_header_field_lookup(name);
        free(name);
        if (q->field == QC_HF_COUNT)
            return say(msg, msglen, 64, "'%s' is not a known header field", arg);
        if (!parse_number(eq + 1, &q->value))
            return say(msg, msglen, 64, "'%s' is not a valid number", eq + 1);
        if (qc_header_field_info(q->field)->size < 8 &&
            q->value >> (8 * qc_header_field_info(q->field)->size))
            return say(msg, msglen, 64, "'%s': the value does not fit the field", arg);
        return 0;
    case QC_REQ_ADD_EXT:
    case QC_REQ_ADD_EXT_FILE:
        if (!split_magic(arg, &q->magic, &rest))
            return say(msg, msglen, 64, kind == QC_REQ_ADD_EXT
                       ? "--add-ext takes MAGIC=DATA with a 32-bit MAGIC, not '%s'"
                       : "--add-ext-file takes MAGIC=FILE with a 32-bit MAGIC, not '%s'", arg);
        if (kind == QC_REQ_ADD_EXT) {
            q->len = strlen(rest);
            if (!(q->data = (uint8_t *)strdup(rest)))
                return say(msg, msglen, 1, "%s", qc_strerror(QC_E_NOMEM));
        } else if ((r = read_data_file(rest, &q->data, &q->len)) < 0) {
            return say(msg, msglen, 1, "%s: %s", rest, r == -EFBIG
                       ? "larger than the largest header cluster (2 MiB)" : qc_strerror(r));
        }
        return 0;
    case QC_REQ_DEL_EXT:
        if (!parse_magic(arg, &q->magic))
            return say(msg, msglen, 64, "'%s' is not a valid magic number", arg);
        return 0;
    case QC_REQ_FEATURE:
        if (!qc_feature_parse_spec(arg, &q->group, &q->bit))
            return say(msg, msglen, 64, "'%s' is not a feature: use GROUP:BIT (incompatible, "
                       "compatible, autoclear; BIT 0-63) or a name from --list", arg);
        return 0;
    }
    return 0;
}

void qc_edit_request_free(struct qc_edit_request *q)
{
    free(q->data);
    q->data = NULL;
}

void qc_view_feature_list(FILE *out, const struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    const uint64_t masks[QC_FG_COUNT] = {
        h->incompatible_features, h->compatible_features, h->autoclear_features
    };

    if (h->version < 3)
        fprintf(out, "version %u image: no feature bits (they came with version 3)\n",
                h->version);
    fprintf(out, "%-20s %-16s %-5s %s\n", "feature", "bit", "state", "QEMU's name");
    for (int g = 0; g < QC_FG_COUNT; g++) {
        for (unsigned b = 0; b < 64; b++) {
            const char *shortname = qc_feature_short_name((enum qc_feature_group)g, b);
            const char *name = qc_image_feature_name(img, (enum qc_feature_group)g, b);
            char where[24];
            bool set = masks[g] & (1ull << b);
            if (!shortname && !set &&
                !qc_feature_table_name(&img->features, (enum qc_feature_group)g, b))
                continue;
            snprintf(where, sizeof where, "%s:%u",
                     qc_feature_group_name((enum qc_feature_group)g), b);
            fprintf(out, "%-20s %-16s %-5s %s\n", shortname ? shortname : "-", where,
                    set ? "set" : "clear", name ? qc_esc(name) : "(unknown)");
        }
    }
}

static int apply(struct qc_edit *e, FILE *err, const char *prog, const char *path,
                 const struct qc_edit_request *r, bool clear)
{
    switch (r->kind) {
    case QC_REQ_SET_HEADER:
        return qc_edit_set_field(e, r->field, r->value);
    case QC_REQ_ADD_EXT:
    case QC_REQ_ADD_EXT_FILE:
        return qc_edit_add_ext(e, r->magic, r->data, r->len);
    case QC_REQ_DEL_EXT:
        if (qc_edit_del_ext(e, r->magic) == 0)
            fprintf(err, "%s: %s: no header extension %#" PRIx32 " to delete\n",
                    prog, path, r->magic);
        return 0;
    case QC_REQ_FEATURE:
        return qc_edit_feature(e, r->group, r->bit, !clear);
    }
    return 0;
}

int qc_edit_run(FILE *out, FILE *err, const char *prog, struct qc_image *img, const char *path,
                const struct qc_edit_request *reqs, size_t n, const struct qc_edit_run_opts *o)
{
    struct qc_edit edit;
    int r, rc = 0;

    if (qc_edit_init(&edit, img) < 0) {
        fprintf(err, "%s: %s: %s\n", prog, path, qc_esc_qemu(edit.error));
        rc = 1;
        goto close;
    }
    for (size_t i = 0; i < n; i++) {
        if (apply(&edit, err, prog, path, &reqs[i], o->clear) < 0) {
            fprintf(err, "%s: %s: %s: %s\n", prog, path, reqs[i].arg, qc_esc_qemu(edit.error));
            rc = 1;
            goto close;
        }
    }
    if (qc_edit_plan(&edit) < 0) {
        fprintf(err, "%s: %s: %s\n", prog, path, qc_esc_qemu(edit.error));
        rc = 1;
        goto close;
    }
    for (size_t i = 0; i < edit.nguards; i++)
        fprintf(err, "%s: %s%s: %s\n", prog, o->force ? "warning: " : "", path,
                qc_esc_qemu(edit.guards[i].message));
    if (edit.nguards && !o->force) {
        fprintf(err, "%s: %s: nothing changed (--force overrides)\n", prog, path);
        rc = 1;
        goto close;
    }
    if (edit.note)
        fprintf(err, "%s: %s: %s\n", prog, path, qc_esc_qemu(edit.note));
    if (edit.qemu_refusal) {
        bool told = false;
        for (size_t i = 0; i < edit.nguards; i++)
            told |= edit.guards[i].kind == QC_GUARD_INCOMPAT_SET;
        if (!told)
            fprintf(err, "%s: warning: %s: QEMU will refuse to open the image: %s\n",
                    prog, path, qc_esc_qemu(edit.qemu_refusal));
    }
    if (o->dry_run) {
        qc_edit_print_summary(out, &edit);
        qc_edit_print_diff(out, &edit);
        fprintf(out, "dry run: nothing written\n");
        goto close;
    }
    if ((r = qc_edit_write(&edit, &img->file)) < 0) {
        fprintf(err, "%s: %s: write failed: %s\n", prog, path, qc_strerror(r));
        rc = 1;
        goto close;
    }
    if (o->verbose)
        qc_edit_print_summary(out, &edit);
close:
    qc_edit_free(&edit);
    return rc;
}
