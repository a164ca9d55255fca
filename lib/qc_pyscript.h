/*
 * qemu-iotests' qcow2.py, command for command (qc-qcow2py): its dumps, its
 * edits with the bytes it writes (faults included), its messages, and the
 * Python exception it would stop with.
 *
 * The script reads the 104-byte header, the extension list (from
 * header_length while below min(cluster size, backing_file_offset); the
 * bitmaps extension decoded with its directory and tables) and the backing
 * file name, all before it prints or writes anything.  An edit then writes,
 * in this order: every extension (8-byte header, then its payload as read:
 * padded to 8, short at the end of the file) and an end marker from
 * header_length on, the backing file name right after (its offset moved
 * there), and the header less its last byte (header_length - 1 bytes of the
 * 104, as Python slices).  A bitmaps extension has no payload object, so an
 * edit of an image that has one stops with a TypeError after writing that
 * extension's 8-byte header; the bytes written before an exception stay
 * written.  docs/qemu-behaviour.md §9 states it all; docs/qc-qcow2py.1 for
 * users.
 */
#ifndef QC_PYSCRIPT_H
#define QC_PYSCRIPT_H

#include <stdbool.h>
#include <stdio.h>

#include "qc_header.h"
#include "qc_io.h"

/* A Python exception: type ("struct.error") and text; type[0] == 0: none. */
struct qc_py_exc {
    char type[40];
    char msg[512];
};

/* Prints EXC as Python does on stderr, less the frame lines (which name
 * the script's own source): the Traceback line, then "TYPE: MSG". */
void qc_py_exc_print(FILE *err, const struct qc_py_exc *exc);

/* The header fields as qcow2.py reads them from RAW (its first 104 bytes),
 * with the script's defaults for a version 2 image. */
void qc_py_header_fields(const uint8_t *raw, uint64_t f[QC_HF_COUNT]);

/* Opens PATH as the script does (open(PATH, "r+b"), no locks).  Returns 0,
 * or -1 with the OSError in EXC. */
int qc_pyscript_open(struct qc_file *f, const char *path, struct qc_py_exc *exc);

/* dump-header (HEADER) or dump-header-exts, as text or (JSON) as -j prints
 * it.  Nothing reaches OUT unless the whole dump succeeds.  Returns 0, or 1
 * with the exception in EXC. */
int qc_pyscript_dump(FILE *out, struct qc_file *f, bool header, bool json,
                     struct qc_py_exc *exc);
/* The text dump itself (lib/qc_view_pydump.c); prints as it goes. */
int qc_pyscript_dump_text(FILE *out, struct qc_file *f, bool header, struct qc_py_exc *exc);
/* The -j dump (lib/qc_view_pyjson.c), for a file the text dump read
 * without an exception. */
void qc_pyscript_dump_json(FILE *out, struct qc_file *f, bool header);

enum qc_py_edit_kind {
    QC_PY_SET_HEADER,       /* a = FIELD, b = VALUE */
    QC_PY_ADD_EXT,          /* a = MAGIC, b = DATA (a Python str: UTF-8 bytes) */
    QC_PY_DEL_EXT,          /* a = MAGIC */
    QC_PY_SET_FEATURE_BIT,  /* a = GROUP, b = BIT */
};

/* Carries out one of the script's edits on F: its messages on OUT, the
 * bytes it writes written.  Returns the script's exit status: 0, or 1 after
 * a message (sys.exit(1)) or with an exception in EXC. */
int qc_pyscript_edit(FILE *out, struct qc_file *f, enum qc_py_edit_kind kind,
                     const char *a, const char *b, struct qc_py_exc *exc);

/* What sys.stdin.read() gives for the bytes of IN (on Linux: the bytes as
 * they are, UTF-8 with surrogateescape): a malloc'd NUL-terminated string
 * (a NUL byte ends it), or NULL when out of memory. */
char *qc_py_read_text(FILE *in);

#endif
