/*
 * Editing the header cluster: feature bits, header fields, header
 * extensions (what qc-setfeature and qc-shell -w change).
 *
 * An edit holds the header the way qemu-iotests' qcow2.py holds it (the
 * 104-byte version 3 layout; for version 2 the feature masks read as 0,
 * refcount_order as 4 and header_length as 72) and a copy of the extension
 * list.  Requests change that copy; qc_edit_plan() then computes the bytes of
 * the file before and after, the guards a request trips, and the span that
 * qc_edit_write() writes in one piece.
 *
 * The bytes equal what qcow2.py's set-feature-bit, set-header,
 * add-header-ext and del-header-ext write, except where that script is
 * wrong (docs/qc-setfeature.1 lists every difference):
 *  - the whole header is written (qcow2.py leaves its last byte);
 *  - header bytes past the old header end read as zero, and the bytes the
 *    old extension area and backing file name occupied past the new end are
 *    cleared (qcow2.py leaves them);
 *  - every extension with a deleted magic goes (qcow2.py skips the one
 *    after each match), and a bitmaps extension is kept as it is (qcow2.py
 *    stops with a TypeError);
 *  - the extension area is rewritten only when the list or header_length
 *    changes, and only when it parses cleanly; otherwise only the header
 *    fields are written.
 */
#ifndef QC_EDIT_H
#define QC_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qc_ext.h"
#include "qc_feature.h"
#include "qc_header.h"
#include "qc_image.h"

/* Requests that are carried out only with --force. */
enum qc_edit_guard {
    QC_GUARD_V2_FEATURES,   /* feature bits on a version 2 image */
    QC_GUARD_INCOMPAT_SET,  /* setting an incompatible bit */
    QC_GUARD_DIRTY_CLEAR,   /* clearing dirty or lazy_refcounts on a dirty image */
    QC_GUARD_EXT_FIT,       /* extensions past the end of the header cluster */
    QC_GUARD_END_MAGIC,     /* adding an extension with magic 0 (the end marker) */
    QC_GUARD_COUNT
};

struct qc_edit_guard_hit {
    enum qc_edit_guard kind;
    char *message;
};

/* A named byte range of the planned layout (for the dry-run listing). */
struct qc_edit_region {
    uint64_t off, len;
    char name[48];
};

struct qc_edit {
    struct qc_image *img;
    bool loaded_v2;                 /* version was 2 when read */
    uint64_t old[QC_HF_COUNT];      /* the header as read (qcow2.py view) */
    uint64_t v[QC_HF_COUNT];        /* the header as requested */
    bool touched[QC_HF_COUNT];      /* a request named this field */
    struct qc_ext_list exts;        /* the extension list as requested */
    bool exts_changed;
    bool end_magic_added;
    char **log;                     /* what the requests did, in order */
    size_t nlog;

    /* filled by qc_edit_plan() */
    bool rewrite;                   /* the extension area is rewritten */
    uint8_t *before, *after;        /* file bytes [0, len) */
    uint64_t len;
    uint64_t file_size;             /* bytes of [0, len) that exist before */
    uint64_t first, end;            /* span written; first == end: nothing */
    uint64_t new_end, old_end;      /* end of the extension area (and name) */
    struct qc_edit_region *regions;
    size_t nregions;
    struct qc_edit_guard_hit *guards;
    size_t nguards;
    char *note;                     /* a request carried out in part, or NULL */
    char *qemu_refusal;             /* QEMU's open error for the result, when new */

    char error[256];                /* why the last call failed */
};

/* Starts an edit of IMG (opened by qc_image_open).  Fails when the file
 * ends inside the header. */
int qc_edit_init(struct qc_edit *e, struct qc_image *img);
void qc_edit_free(struct qc_edit *e);

/* Requests.  Fields take qcow2.py's names (qc_header_field_lookup) plus
 * compression_type; values must fit the field's width. */
int qc_edit_set_field(struct qc_edit *e, enum qc_header_field f, uint64_t value);
int qc_edit_feature(struct qc_edit *e, enum qc_feature_group g, unsigned bit, bool set);
int qc_edit_add_ext(struct qc_edit *e, uint32_t magic, const uint8_t *data, size_t len);
/* Removes every extension with MAGIC; returns how many (0: nothing to do). */
size_t qc_edit_del_ext(struct qc_edit *e, uint32_t magic);

/* Computes the result of the requests so far.  Returns 0, or a negative code
 * with e->error set when they cannot be carried out (an extension change on
 * an extension area that does not parse, ...). */
int qc_edit_plan(struct qc_edit *e);

/* Writes the planned span (one write, then a flush).  Nothing is written
 * when no byte changes. */
int qc_edit_write(struct qc_edit *e, struct qc_file *f);

/* Human listings of a plan: what changed (one line per change), and the
 * changed bytes before and after, labelled with the field they belong to. */
void qc_edit_print_summary(FILE *out, const struct qc_edit *e);
void qc_edit_print_diff(FILE *out, const struct qc_edit *e);

/* --- qc-setfeature's requests (lib/qc_view_edit.c) ----------------------- */
enum qc_edit_req_kind {
    QC_REQ_SET_HEADER,      /* FIELD=VALUE */
    QC_REQ_ADD_EXT,         /* MAGIC=DATA */
    QC_REQ_ADD_EXT_FILE,    /* MAGIC=FILE ('-': stdin) */
    QC_REQ_DEL_EXT,         /* MAGIC */
    QC_REQ_FEATURE,         /* GROUP:BIT or a feature name */
};

struct qc_edit_request {
    enum qc_edit_req_kind kind;
    const char *arg;                /* as given (not copied) */
    enum qc_header_field field;
    uint64_t value;
    uint32_t magic;
    enum qc_feature_group group;
    unsigned bit;
    uint8_t *data;                  /* extension payload (owned) */
    size_t len;
};

/* Parses ARG as a request of KIND.  Returns 0; 64 with a usage message in
 * MSG; or 1 with an error in MSG (an unreadable FILE). */
int qc_edit_request_parse(struct qc_edit_request *q, enum qc_edit_req_kind kind,
                          const char *arg, char *msg, size_t msglen);
void qc_edit_request_free(struct qc_edit_request *q);

struct qc_edit_run_opts {
    bool clear;      /* features are cleared, not set */
    bool force;      /* carry out despite guards */
    bool dry_run;    /* print the changed bytes, write nothing */
    bool verbose;    /* print what changed */
};

/* Carries out REQS on IMG (opened for writing unless dry_run) as
 * qc-setfeature does: guards and notes on ERR (named after PROG and PATH),
 * listings on OUT.  Returns the exit status (0, or 1). */
int qc_edit_run(FILE *out, FILE *err, const char *prog, struct qc_image *img, const char *path,
                const struct qc_edit_request *reqs, size_t n, const struct qc_edit_run_opts *o);

/* qc-setfeature --list: every known, named or set bit with its state. */
void qc_view_feature_list(FILE *out, const struct qc_image *img);

#endif
