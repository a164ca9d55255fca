/*
 * Views of an image for people and scripts: the text, hex and JSON renderings
 * shared by qc-dump and qc-shell.
 */
#ifndef QC_VIEW_H
#define QC_VIEW_H

#include <stdio.h>

#include <json-c/json.h>

#include "qc_image.h"

enum qc_dump_era {
    QC_ERA_CURRENT,   /* qemu-iotests qcow2.py since QEMU 5.1 */
    QC_ERA_LEGACY,    /* the 2012 qcow2.py */
};

/* qcow2.py dump-header: header fields, then extensions.  Returns 0, or 1
 * when the header or extension area could not be read whole (what could be
 * read has been printed). */
int qc_view_header(FILE *out, struct qc_image *img, enum qc_dump_era era);
/* qcow2.py dump-header-exts */
int qc_view_exts(FILE *out, struct qc_image *img, enum qc_dump_era era);
/* Annotated hexdump of the header, each extension and each feature-table
 * entry. */
int qc_view_hex(FILE *out, struct qc_image *img);
/* The feature table joined with the header. */
int qc_view_features(FILE *out, struct qc_image *img);

/* JSON sections (json-c objects; caller puts them). */
struct json_object *qc_json_header(struct qc_image *img);
struct json_object *qc_json_extensions(struct qc_image *img);
struct json_object *qc_json_feature_table(struct qc_image *img);
struct json_object *qc_json_features(struct qc_image *img);
struct json_object *qc_json_problems(const struct qc_problems *p);

/* Exact unsigned 64-bit JSON number. */
struct json_object *qc_json_u64(uint64_t v);

/* A JSON string of TEXT made valid UTF-8 (other bytes become U+FFFD). */
struct json_object *qc_json_text(const char *text);

/* Prints a JSON document the way every tool does (4-space indent). */
void qc_json_print(FILE *out, struct json_object *o);

/* Is every byte in python's string.printable? */
bool qc_py_printable(const uint8_t *p, size_t n);

#endif
