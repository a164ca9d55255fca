/*
 * A write plan: the ordered list of changes a repair makes to an image
 * (writes, file growth, flushes), built in memory before the first byte is
 * written, so that it can be shown (--dry-run), saved for undo (--backup,
 * qc_backup.h)
 * and then carried out through qc_io (write log, crash injection).
 */
#ifndef QC_PLAN_H
#define QC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qc_io.h"

enum qc_plan_op {
    QC_PLAN_WRITE,
    QC_PLAN_GROW,     /* extend the file to OFF bytes (never shrinks) */
    QC_PLAN_FLUSH,
};

/* Makes the LEN bytes of a write whose content is derived when needed. */
typedef int (*qc_plan_fill_fn)(void *ctx, uint64_t arg, uint8_t *buf, size_t len);

struct qc_plan_step {
    enum qc_plan_op op;
    uint64_t off;
    uint64_t len;
    uint8_t *data;          /* LEN bytes for a write, or NULL: FILL makes them */
    qc_plan_fill_fn fill;
    void *fill_ctx;
    uint64_t fill_arg;
    enum qc_event ev;
    char *what;             /* what the change fixes */
};

struct qc_plan {
    struct qc_plan_step *v;
    size_t n, cap;
    unsigned stage;          /* current stage number (for the listing) */
};

void qc_plan_init(struct qc_plan *p);
void qc_plan_free(struct qc_plan *p);

/* Appends a write of LEN bytes from DATA (copied).  WHAT: printf format. */
int qc_plan_write(struct qc_plan *p, uint64_t off, const void *data, size_t len,
                  enum qc_event ev, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* A write of LEN bytes that FILL(CTX, ARG) makes when the plan is carried
 * out (or read through): large derived content is not held in memory.
 * CTX must stay valid, and what FILL derives from unchanged, as long as the
 * plan is used. */
int qc_plan_write_fill(struct qc_plan *p, uint64_t off, size_t len, qc_plan_fill_fn fill,
                       void *ctx, uint64_t arg, enum qc_event ev, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int qc_plan_grow(struct qc_plan *p, uint64_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A flush, unless the plan is empty or already ends with one. */
int qc_plan_flush(struct qc_plan *p);

/* Copies into BUF what the plan's writes so far put in [OFF, OFF+LEN),
 * in plan order, over what BUF holds (the file's bytes): the content a
 * later step must start from so that it never writes back bytes an
 * earlier step changed. */
int qc_plan_overlay(const struct qc_plan *p, uint64_t off, void *buf, size_t len);
/* QEMU's read of F (qc_file_read_qemu) with the plan's writes so far on top. */
int qc_plan_read(const struct qc_plan *p, struct qc_file *f, uint64_t off, void *buf, size_t len);

/* Number of writes (and growths) in the plan. */
size_t qc_plan_nwrites(const struct qc_plan *p);

/* Carries the plan out on F (opened for writing). */
int qc_plan_execute(const struct qc_plan *p, struct qc_file *f);

/* The listing --dry-run prints: one line per step. */
void qc_plan_print(FILE *out, const struct qc_plan *p);
struct json_object;
struct json_object *qc_plan_json(const struct qc_plan *p);

#endif
