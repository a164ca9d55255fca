/* Buffered metadata reads with qemu-img's semantics. */
#include "qc_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int qc_reader_init(struct qc_reader *r, struct qc_file *f, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->file = f;
    r->cap = cap ? cap : 65536;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : QC_E_NOMEM;
}

void qc_reader_free(struct qc_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int fill(struct qc_reader *r, uint64_t off)
{
    uint64_t room = UINT64_MAX - off;
    size_t n = r->cap;
    int64_t got;

    if (room < n)
        n = (size_t)room;
    got = qc_file_read_padded(r->file, off, r->buf, n);
    if (got < 0) {
        r->len = 0;
        return (int)got;
    }
    r->off = off;
    r->len = n;
    return 0;
}

int qc_reader_peek(struct qc_reader *r, uint64_t off, size_t len, const uint8_t **p)
{
    int e;

    if (!qc_qemu_read_ok(off, len))
        return -EIO;
    if (len > r->cap)
        return QC_E_RANGE;
    if (!(off >= r->off && r->len && off - r->off <= r->len && len <= r->len - (off - r->off))) {
        if ((e = fill(r, off)) < 0)
            return e;
    }
    *p = r->buf + (off - r->off);
    return 0;
}

int qc_reader_read(struct qc_reader *r, uint64_t off, void *dst, size_t len)
{
    uint8_t *d = dst;

    if (!qc_qemu_read_ok(off, len))
        return -EIO;
    while (len) {
        size_t n = len < r->cap ? len : r->cap;
        const uint8_t *p;
        int e = qc_reader_peek(r, off, n, &p);
        if (e < 0)
            return e;
        memcpy(d, p, n);
        d += n;
        off += n;
        len -= n;
    }
    return 0;
}
