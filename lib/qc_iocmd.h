/*
 * qemu-io's command language for a writer: write [-P pat] [-z [-u]] [-c],
 * read [-P pat [-s off] [-l len]] [-v], discard, flush, abort, with
 * qemu-io's syntax, messages and exit-status rules (docs/qemu-behaviour.md
 * §5).  Each command is framed in the write record (qc_file_mark) so a crash
 * tester knows which commands had started and which a flush acknowledged.
 */
#ifndef QC_IOCMD_H
#define QC_IOCMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qc_writer.h"

enum qc_iocmd_kind {
    QC_IOCMD_NONE,      /* empty line or comment */
    QC_IOCMD_WRITE,
    QC_IOCMD_READ,
    QC_IOCMD_DISCARD,
    QC_IOCMD_FLUSH,
    QC_IOCMD_ABORT,
    QC_IOCMD_QUIT,
};

struct qc_iocmd {
    enum qc_iocmd_kind kind;
    uint64_t offset, length;
    int pattern;             /* byte written (0xcd by default) or verified */
    bool pattern_set;        /* -P */
    bool zero, unmap, compressed;
    bool quiet, csv, verbose;
    uint64_t pattern_offset, pattern_length;   /* read -s / -l */
};

/* Parses one command line.  Returns 0 (C filled in), or -1 after printing
 * qemu-io's message for the error (to OUT or ERR, as qemu-io does).  PROG
 * names the tool in warnings. */
int qc_iocmd_parse(const char *line, struct qc_iocmd *c, FILE *out, FILE *err,
                   const char *prog);

struct qc_iocmd_session {
    struct qc_writer *w;
    FILE *out;
    FILE *err;
    const char *prog;
    uint64_t index;          /* commands run so far */
    bool failed;             /* some command failed: exit status 1 */
};

/* Parses and runs one command line.  Returns 0 to go on, 1 when the
 * session must end (quit), 2 for abort (the caller stops without closing
 * the image). */
int qc_iocmd_run_line(struct qc_iocmd_session *s, const char *line);

/* Closes the writer (flush, clean close) and marks every command
 * acknowledged once that succeeded.  Returns 0 or a negative code. */
int qc_iocmd_close(struct qc_iocmd_session *s);

/* qemu-io's size and rate rendering ("4 KiB", "1.500 KiB", "512 bytes"). */
void qc_iocmd_cvtstr(double value, char *out, size_t len);

#endif
