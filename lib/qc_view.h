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

/* --- metadata tables -------------------------------------------------------
 * One entry per line with its flags decoded.  Reads stay inside the file:
 * what lies past its end is reported, never invented.  The text views
 * return 0, or 1 when (part of) the table could not be shown (the reason
 * is printed); the JSON sections carry an "error" member instead. */
int qc_view_l1(FILE *out, struct qc_image *img, bool nonzero);
/* ALL: every L2 table the active L1 names; else that of L1 entry INDEX. */
int qc_view_l2(FILE *out, struct qc_image *img, bool all, uint64_t index, bool nonzero);
/* Refcount table and every refcount block it names, any refcount width. */
int qc_view_refcounts(FILE *out, struct qc_image *img, bool nonzero);
int qc_view_snapshots(FILE *out, struct qc_image *img);
/* Bitmaps extension, directory and each bitmap table. */
int qc_view_bitmaps(FILE *out, struct qc_image *img, bool nonzero);
struct json_object *qc_json_l1(struct qc_image *img, bool nonzero);
struct json_object *qc_json_l2(struct qc_image *img, bool all, uint64_t index, bool nonzero);
struct json_object *qc_json_refcounts(struct qc_image *img, bool nonzero);
struct json_object *qc_json_snapshots(struct qc_image *img);
struct json_object *qc_json_bitmaps(struct qc_image *img, bool nonzero);

/* --- hexdump -C ----------------------------------------------------------
 * Byte-identical to util-linux `hexdump -C`: 16-byte lines, a repeated
 * full line folded into one "*", partial lines always shown, and a closing
 * line with the offset where the data ended (none when that offset is 0). */
struct qc_hexdump {
    FILE *out;
    uint64_t addr;             /* offset of the next byte */
    uint8_t line[16];
    size_t fill;               /* bytes in LINE */
    uint8_t prev[16];
    bool have_prev;            /* PREV holds the last full line shown */
    bool starred;              /* "*" printed for the current run */
};

void qc_hexdump_start(struct qc_hexdump *h, FILE *out, uint64_t addr);
void qc_hexdump_feed(struct qc_hexdump *h, const uint8_t *p, size_t n);
void qc_hexdump_finish(struct qc_hexdump *h);

struct qc_file;
struct qc_node;
/* `hexdump -C -s OFF -n LEN FILE`: host bytes of F.  Returns 0 or a
 * negative code (read error). */
int qc_view_host_hexdump(FILE *out, struct qc_file *f, uint64_t off, uint64_t len);
/* The same for guest bytes of node N, as hexdump -C would show that range
 * of a raw copy of the disk.  Returns 0, or the negative code of
 * qc_guest_read (*FAIL_OFFSET tells where). */
int qc_view_guest_hexdump(FILE *out, struct qc_node *n, uint64_t off, uint64_t len,
                          uint64_t *fail_offset);

/* --- the guest map -------------------------------------------------------- */
struct qc_map_entry;
struct qc_chain;

/* One entry as a JSON object with qemu-img map's members. */
struct json_object *qc_map_entry_json(const struct qc_map_entry *e);

/* Streams the map of the chain as qemu-img map --output=json (opening "[",
 * entries separated by ",\n", closing "]\n").  On failure the output stops
 * where qemu-img's does; returns the negative error. */
int qc_view_map_json(FILE *out, struct qc_chain *c, uint64_t *fail_offset);
/* A table of every map entry for people. */
int qc_view_map_text(FILE *out, struct qc_chain *c, uint64_t *fail_offset);
/* The map as a JSON array (for the combined document). */
int qc_json_map(struct qc_chain *c, struct json_object **arr, uint64_t *fail_offset);

/* qemu-img check's summary (stdout) for a check result, and its JSON
 * (qemu-img's keys in its order, plus "problems"). */
struct qc_check_result;
void qc_check_print_human(FILE *out, const struct qc_check_result *r);
struct json_object *qc_check_result_json(const char *path, const struct qc_check_result *r);

/* Is every byte in python's string.printable? */
bool qc_py_printable(const uint8_t *p, size_t n);

#endif
