/*
 * A streaming JSON writer: members and elements are written as they come,
 * in the layout qc_json_print gives a whole document (4-space indentation,
 * empty containers as [] and {}), so a table of any length costs no memory.
 * Strings are escaped by json-c.
 */
#ifndef QC_JSONW_H
#define QC_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#define QC_JW_MAX_DEPTH 32

struct qc_jw {
    FILE *out;
    unsigned depth;                      /* open containers */
    bool has_items[QC_JW_MAX_DEPTH];     /* the container at each depth has one */
    char closer[QC_JW_MAX_DEPTH];        /* ] or } for each */
    bool overflow;                       /* nesting beyond QC_JW_MAX_DEPTH */
};

void qc_jw_init(struct qc_jw *w, FILE *out);
/* KEY is the member name inside an object, NULL for an array element or
 * the document itself. */
void qc_jw_begin_object(struct qc_jw *w, const char *key);
void qc_jw_end_object(struct qc_jw *w);
void qc_jw_begin_array(struct qc_jw *w, const char *key);
void qc_jw_end_array(struct qc_jw *w);
void qc_jw_u64(struct qc_jw *w, const char *key, uint64_t v);
void qc_jw_bool(struct qc_jw *w, const char *key, bool v);
/* TEXT made valid UTF-8 (as qc_json_text) and escaped. */
void qc_jw_text(struct qc_jw *w, const char *key, const char *text);
/* A json-c value, laid out at the writer's depth (not consumed). */
void qc_jw_value(struct qc_jw *w, const char *key, struct json_object *v);
/* Closes what is open and ends the document with a newline. */
void qc_jw_finish(struct qc_jw *w);

/* json-c leaves DEL and the C1 controls (U+0080 to U+009F) raw, and a
 * terminal may act on them; outside strings a document has neither, so
 * they are written as \u escapes.  Returns the bytes consumed at S (0: not
 * one of them, nothing written). */
size_t qc_json_put_control(FILE *out, const char *s);

/* O's pretty text with 4-space indentation, every line after the first
 * indented by DEPTH levels more; no closing newline. */
void qc_json_write_indented(FILE *out, struct json_object *o, unsigned depth);

#endif
