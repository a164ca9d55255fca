/*
 * Reads of metadata as qemu-img performs them (zeros past the end of the
 * file, EIO where QEMU's block layer refuses a request), served from one
 * buffer so that neighbouring small reads cost one system call.
 */
#ifndef QC_READER_H
#define QC_READER_H

#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"

struct qc_reader {
    struct qc_file *file;
    uint8_t *buf;
    size_t cap;
    uint64_t off;       /* file offset of buf[0] */
    size_t len;         /* bytes of buf that are valid (zeros past EOF included) */
};

int qc_reader_init(struct qc_reader *r, struct qc_file *f, size_t cap);
void qc_reader_free(struct qc_reader *r);

/* LEN bytes at OFF into DST; -EIO exactly where QEMU's read of that request
 * would fail. */
int qc_reader_read(struct qc_reader *r, uint64_t off, void *dst, size_t len);

/* A pointer to LEN (<= cap) bytes at OFF, valid until the next call. */
int qc_reader_peek(struct qc_reader *r, uint64_t off, size_t len, const uint8_t **p);

#endif
