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

/* A JSON string of TEXT made valid UTF-8: each byte that is not part of a
 * valid sequence becomes U+FFFD (JSON strings are Unicode; the exact bytes
 * are in the text and hex views).  Every string from the image goes into
 * JSON through this. */
struct json_object *qc_json_text(const char *text);
/* The same for N bytes (NULs included, as \u0000). */
struct json_object *qc_json_text_len(const char *text, size_t n);

/* Prints a JSON document the way every tool does (4-space indent).  Strings
 * from the image are safe in it: json-c writes control characters as
 * \u00XX, qc_json_text replaces bytes that are not UTF-8, and DEL and the
 * C1 controls are written as \u escapes too. */
void qc_json_print(FILE *out, struct json_object *o);
/* The same as one compact line (JSON Lines). */
void qc_json_print_line(FILE *out, struct json_object *o);

/* --- metadata tables -------------------------------------------------------
 * One entry per line with its flags decoded.  Reads stay inside the file:
 * what lies past its end is reported, never invented.  A table named by
 * several entries is shown once; later ones point back to the first.  A
 * run of two or more empty entries is shown as one line (one JSON object
 * {first, last, count, empty}), unless QC_TV_UNFOLD.  The text views
 * return 0, or 1 when (part of) the table could not be shown (the reason
 * is printed). */
enum qc_table_view_flags {
    QC_TV_NONZERO = 1u << 0,   /* hide empty entries */
    QC_TV_UNFOLD = 1u << 1,    /* every empty entry on its own line */
};
int qc_view_l1(FILE *out, struct qc_image *img, unsigned flags);
/* ALL: every L2 table the active L1 names; else that of L1 entry INDEX. */
int qc_view_l2(FILE *out, struct qc_image *img, bool all, uint64_t index, unsigned flags);
/* Refcount table and every refcount block it names, any refcount width. */
int qc_view_refcounts(FILE *out, struct qc_image *img, unsigned flags);
int qc_view_snapshots(FILE *out, struct qc_image *img);
/* Bitmaps extension, directory and each bitmap table. */
int qc_view_bitmaps(FILE *out, struct qc_image *img, unsigned flags);
/* The same as JSON objects streamed to W, as member KEY of the object W is
 * in (NULL: an array element or the document).  They carry an "error"
 * member where the text view prints one, and return 1 then, else 0. */
struct qc_jw;
int qc_json_l1(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags);
int qc_json_l2(struct qc_jw *w, const char *key, struct qc_image *img, bool all, uint64_t index,
               unsigned flags);
int qc_json_refcounts(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags);
int qc_json_snapshots(struct qc_jw *w, const char *key, struct qc_image *img);
int qc_json_bitmaps(struct qc_jw *w, const char *key, struct qc_image *img, unsigned flags);

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

/* --- qc-dump's views as commands ------------------------------------------
 * Each prints its view on OUT and its messages on ERR, named after PROG,
 * and returns qc-dump's exit status for it (0, 1, 63 not qcow2). */
enum qc_header_view { QC_HV_HEADER, QC_HV_LEGACY, QC_HV_EXTS, QC_HV_HEX, QC_HV_FEATURES };
/* One of the header views; returns as they do. */
int qc_view_header_as(FILE *out, struct qc_image *img, enum qc_header_view v);
/* The line that follows a header view that returned 1. */
void qc_view_header_incomplete(FILE *err, const char *prog, const char *path,
                               const struct qc_image *img);
/* The open-time problems of IMG as warnings. */
void qc_view_open_warnings(FILE *err, const char *prog, const struct qc_image *img);
/* The JSON document of the header views (filename, header, extensions,
 * feature_table, features, problems); *RC is 1 when the header or extension
 * area cannot be read whole. */
struct json_object *qc_json_image_doc(struct qc_image *img, const char *path, int *rc);

struct qc_chain;
/* Internal snapshot (ID or name) the guest views that follow show instead
 * of the active disk (qc_chain_open_snapshot); NULL: the active disk. */
void qc_view_set_snapshot(const char *spec);
/* Opens the chain of PATH for reading (qc_chain_open FLAGS); 0 or the
 * exit status after the message. */
int qc_view_open_chain(struct qc_chain *c, const char *path, unsigned flags, FILE *err,
                       const char *prog);
/* Guest bytes [OFF, OFF+LEN) as hexdump -C; BACKING follows the backing
 * file; NOTE says on ERR when an unopened backing file reads as zeros. */
/* Says on ERR that an encrypted image was DONE ("checked", "mapped", ...)
 * from its metadata alone, as QEMU would with the key. */
void qc_view_note_keyless(FILE *err, const char *prog, const char *path, const char *done);
int qc_view_read_cmd(FILE *out, FILE *err, const char *prog, const char *path,
                     uint64_t off, uint64_t len, bool backing, bool note);
/* The guest map: a table, or qemu-img map --output=json. */
int qc_view_map_cmd(FILE *out, FILE *err, const char *prog, const char *path, bool qemu_json);
/* The message of a map that failed part way; returns 1. */
int qc_view_map_failed(FILE *out, FILE *err, const char *prog);
/* Host bytes [OFF, OFF+LEN) of IMG's file as hexdump -C. */
int qc_view_hexdump_cmd(FILE *out, FILE *err, const char *prog, struct qc_image *img,
                        const char *path, uint64_t off, uint64_t len);

/* --- one offset -----------------------------------------------------------
 * What the host cluster holding OFF is used for (from the check's walk):
 * its refcount and state, and every reference to it. */
int qc_view_cluster(FILE *out, FILE *err, const char *prog, struct qc_image *img,
                    const char *path, uint64_t off);
/* Where guest offset OFF of the image at PATH lives: L1 and L2 entries,
 * their decoding, the subcluster, and how QEMU reads it. */
int qc_view_guest_where(FILE *out, FILE *err, const char *prog, const char *path, uint64_t off);

/* --- qemu-img check's report ---------------------------------------------- */
struct qc_check_event;
struct qc_check_result;

/* A check event sink (qc_check_opts.sink) printing QEMU's stderr lines to
 * the FILE given as opaque. */
void qc_view_check_event(void *err_file, const struct qc_check_event *ev);
/* qemu-img check's human summary (stdout). */
void qc_view_check_human(FILE *out, const struct qc_check_result *r);
/* qemu-img check --output=json's object for PATH, plus "problems". */
struct json_object *qc_json_check_result(const char *path, const struct qc_check_result *r);

struct qc_view_check_opts {
    bool json;       /* --output=json */
    bool lines;      /* one compact JSON object per line (several images) */
    bool quiet;      /* no summary */
};
/* Checks PATH and reports as qemu-img check does: problem and error lines
 * on ERR, the summary on OUT.  Returns qemu-img check's exit status. */
int qc_view_check(FILE *out, FILE *err, const char *path, const struct qc_view_check_opts *vo);

/* Is every byte in python's string.printable? */
bool qc_py_printable(const uint8_t *p, size_t n);

#endif
