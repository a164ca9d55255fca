/* Streaming JSON in qc_json_print's layout. */
#include "qc_jsonw.h"

#include <inttypes.h>

#include "qc_view.h"

static void indent(FILE *out, unsigned depth)
{
    static const char spaces[] = "                                                                ";

    for (size_t n = (size_t)depth * 4; n;) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        fwrite(spaces, 1, k, out);
        n -= k;
    }
}

size_t qc_json_put_control(FILE *out, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    if (u[0] == 0x7f) {
        fputs("\\u007f", out);
        return 1;
    }
    if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
        fprintf(out, "\\u%04x", u[1]);
        return 2;
    }
    return 0;
}

static void put_json_text(FILE *out, const char *s)
{
    while (*s) {
        size_t n = qc_json_put_control(out, s);
        if (!n)
            fputc(*s, out), n = 1;
        s += n;
    }
}

void qc_json_write_indented(FILE *out, struct json_object *o, unsigned depth)
{
    const char *s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    bool line_start = false;

    /* json-c indents by two spaces; the documents we print use four.
     * Strings never hold a raw newline, so leading spaces are indentation. */
    for (; *s; s++) {
        /* an empty array or object on one line: [] and {} */
        if ((*s == '[' || *s == '{') && s[1] == '\n') {
            const char *q = s + 2;
            while (*q == ' ')
                q++;
            if (*q == (*s == '[' ? ']' : '}')) {
                fputc(*s, out);
                fputc(*q, out);
                s = q;
                line_start = false;
                continue;
            }
        }
        size_t ctl = qc_json_put_control(out, s);
        if (ctl) {
            s += ctl - 1;
            line_start = false;
            continue;
        }
        if (line_start && *s == ' ')
            fputs("  ", out);
        else
            fputc(*s, out);
        if (*s == '\n') {
            line_start = true;
            indent(out, depth);
        } else if (*s != ' ') {
            line_start = false;
        }
    }
}

void qc_jw_init(struct qc_jw *w, FILE *out)
{
    w->out = out;
    w->depth = 0;
    w->overflow = false;
}

/* Member names: the views' own identifiers go out as they are (nothing in
 * them needs escaping); anything else is escaped by json-c. */
static void put_key(FILE *out, const char *s)
{
    struct json_object *j;
    const char *p = s;

    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
        p++;
    if (!*p) {
        fputc('"', out);
        fputs(s, out);
        fputs("\": ", out);
        return;
    }
    j = json_object_new_string(s);

    fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_NOSLASHESCAPE), out);
    fputs(": ", out);
    json_object_put(j);
}

/* The separator and indentation before a member or element, and its key. */
static void item(struct qc_jw *w, const char *key)
{
    if (w->depth) {
        bool *has = &w->has_items[w->depth - 1];
        fputs(*has ? ",\n" : "\n", w->out);
        *has = true;
        indent(w->out, w->depth);
    }
    if (key)
        put_key(w->out, key);
}

static void open_container(struct qc_jw *w, const char *key, char open, char close)
{
    item(w, key);
    fputc(open, w->out);
    if (w->depth >= QC_JW_MAX_DEPTH) {
        w->overflow = true;   /* a caller bug: the views' nesting is fixed */
        return;
    }
    w->closer[w->depth] = close;
    w->has_items[w->depth++] = false;
}

static void close_container(struct qc_jw *w)
{
    char c;

    if (!w->depth)
        return;
    c = w->closer[--w->depth];
    if (w->has_items[w->depth]) {
        fputc('\n', w->out);
        indent(w->out, w->depth);
    }
    fputc(c, w->out);
}

void qc_jw_begin_object(struct qc_jw *w, const char *key) { open_container(w, key, '{', '}'); }
void qc_jw_end_object(struct qc_jw *w) { close_container(w); }
void qc_jw_begin_array(struct qc_jw *w, const char *key) { open_container(w, key, '[', ']'); }
void qc_jw_end_array(struct qc_jw *w) { close_container(w); }

void qc_jw_u64(struct qc_jw *w, const char *key, uint64_t v)
{
    item(w, key);
    fprintf(w->out, "%" PRIu64, v);
}

void qc_jw_bool(struct qc_jw *w, const char *key, bool v)
{
    item(w, key);
    fputs(v ? "true" : "false", w->out);
}

void qc_jw_text(struct qc_jw *w, const char *key, const char *text)
{
    struct json_object *j = qc_json_text(text);

    item(w, key);
    put_json_text(w->out, json_object_to_json_string_ext(j, JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
}

void qc_jw_value(struct qc_jw *w, const char *key, struct json_object *v)
{
    item(w, key);
    qc_json_write_indented(w->out, v, w->depth);
}

void qc_jw_finish(struct qc_jw *w)
{
    while (w->depth)
        close_container(w);
    fputc('\n', w->out);
}
