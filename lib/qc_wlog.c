/* Write logs: our own record and dm-log-writes (blklogwrites) logs. */
#include "qc_wlog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A record entry: u8 op, u8 event, u16 and u32 zero, u64 offset, u64
 * length, u64 data length, then the data; all little-endian. */
#define REC_HDR 32

/* dm-log-writes entry flags */
#define DM_FLUSH    1u
#define DM_FUA      2u
#define DM_DISCARD  4u
#define DM_MARK     8u
#define DM_METADATA 16u

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int push(struct qc_wlog *l, size_t *cap, const struct qc_wlog_entry *e)
{
    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct qc_wlog_entry *v = realloc(l->v, ncap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        *cap = ncap;
    }
    l->v[l->n++] = *e;
    return 0;
}

static int parse_record(struct qc_wlog *l, char *err, size_t errlen)
{
    const uint8_t *b = l->buf;
    size_t pos = 8, cap = 0;

    l->format = QC_WLOG_RECORD;
    while (pos < l->buf_len) {
        struct qc_wlog_entry e = { 0 };
        uint64_t dlen;

        if (l->buf_len - pos < REC_HDR)
            return fail(err, errlen, "record cut short at byte %zu", pos);
        e.op = (enum qc_wlog_op)b[pos];
        e.event = b[pos + 1];
        e.offset = get_le64(b + pos + 8);
        e.length = get_le64(b + pos + 16);
        dlen = get_le64(b + pos + 24);
        pos += REC_HDR;
        if (e.op < QC_WLOG_WRITE || e.op > QC_WLOG_CRASH)
            return fail(err, errlen, "unknown record operation %u at byte %zu",
                        (unsigned)b[pos - REC_HDR], pos - REC_HDR);
        if (dlen > l->buf_len - pos)
            return fail(err, errlen, "record data cut short at byte %zu", pos);
        if (e.op == QC_WLOG_WRITE) {
            if (dlen != e.length)
                return fail(err, errlen, "write of %llu bytes carries %llu bytes of data",
                            (unsigned long long)e.length, (unsigned long long)dlen);
            e.data = b + pos;
        } else if (dlen) {
            return fail(err, errlen, "unexpected data at byte %zu", pos);
        }
        pos += dlen;
        if (push(l, &cap, &e) < 0)
            return fail(err, errlen, "out of memory");
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* docs/qemu-behaviour.md §7.2: entries follow the superblock, each on a
 * sector boundary; the superblock only counts those up to the last flush,
 * so the tail after it is read until an all-zero or impossible entry. */
static int parse_dm(struct qc_wlog *l, char *err, size_t errlen)
{
    const uint8_t *b = l->buf;
    uint64_t ss = 512, pos, i = 0;
    size_t cap = 0;

    l->format = QC_WLOG_DM_LOG_WRITES;
    if (l->buf_len < 28)
        return fail(err, errlen, "dm-log-writes log shorter than its superblock");
    if (get_le64(b) == QC_WLOG_DM_MAGIC) {
        if (get_le64(b + 8) != 1)
            return fail(err, errlen, "unsupported dm-log-writes version %llu",
                        (unsigned long long)get_le64(b + 8));
        ss = get_le32(b + 24);
        if (ss < 512 || ss > (1u << 23) || (ss & (ss - 1)))
            return fail(err, errlen, "invalid log sector size %llu", (unsigned long long)ss);
        l->nr_entries = get_le64(b + 16);
        l->superblock_valid = true;
    } else if (get_le64(b) != 0) {
        return fail(err, errlen, "not a dm-log-writes log (bad magic)");
    }
    l->sector_size = (uint32_t)ss;

    for (pos = ss; pos + 32 <= l->buf_len; i++) {
        const uint8_t *p = b + pos;
        uint64_t sector = get_le64(p), nr = get_le64(p + 8);
        uint64_t flags = get_le64(p + 16), data_len = get_le64(p + 24);
        bool counted = i < l->nr_entries;
        struct qc_wlog_entry e = { 0 };
        uint64_t room = (l->buf_len - pos) / ss;

        if (!counted && all_zero(p, 32))
            break;
        if ((flags & ~(uint64_t)(DM_FLUSH | DM_FUA | DM_DISCARD | DM_MARK | DM_METADATA)) ||
            data_len > ss - 32 || (!(flags & DM_DISCARD) && nr >= room) ||
            sector > UINT64_MAX / ss || nr > UINT64_MAX / ss ||
            sector * ss > UINT64_MAX - nr * ss) {
            if (!counted)
                break;   /* a tail that was never completed */
            return fail(err, errlen, "invalid dm-log-writes entry %llu at byte %llu",
                        (unsigned long long)i, (unsigned long long)pos);
        }
        if ((flags & DM_FLUSH) && nr && !(flags & DM_DISCARD)) {
            /* a write with a preflush: the flush comes first */
            e.op = QC_WLOG_FLUSH;
            if (push(l, &cap, &e) < 0)
                return fail(err, errlen, "out of memory");
        }
        if (flags & DM_MARK) {
            e.op = QC_WLOG_MARK;
        } else if (flags & DM_DISCARD) {
            e.op = QC_WLOG_DISCARD;
            e.offset = sector * ss;
            e.length = nr * ss;
        } else if (nr) {
            e.op = QC_WLOG_WRITE;
            e.offset = sector * ss;
            e.length = nr * ss;
            e.data = p + ss;
        } else if (flags & DM_FLUSH) {
            e.op = QC_WLOG_FLUSH;
        } else {
            e.op = QC_WLOG_MARK;   /* an empty write: nothing to apply */
        }
        if (e.op != QC_WLOG_MARK && push(l, &cap, &e) < 0)
            return fail(err, errlen, "out of memory");
        if ((flags & DM_FUA) && e.op == QC_WLOG_WRITE) {
            struct qc_wlog_entry f = { .op = QC_WLOG_FLUSH };
            if (push(l, &cap, &f) < 0)
                return fail(err, errlen, "out of memory");
        }
        pos += ss + ((flags & DM_DISCARD) ? 0 : nr * ss);
    }
    l->parsed_entries = (size_t)i;
    if (i < l->nr_entries)
        return fail(err, errlen, "log ends after %llu of %llu entries",
                    (unsigned long long)i, (unsigned long long)l->nr_entries);
    return 0;
}

int qc_wlog_parse(struct qc_wlog *l, uint8_t *buf, size_t len, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->buf = buf;
    l->buf_len = len;
    if (len >= 8 && memcmp(buf, QC_WLOG_RECORD_MAGIC, 8) == 0)
        return parse_record(l, err, errlen);
    return parse_dm(l, err, errlen);
}

int qc_wlog_load(struct qc_wlog *l, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf;

    memset(l, 0, sizeof *l);
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(err, errlen, "%s: not a regular file", path);
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        fclose(f);
        return fail(err, errlen, "%s: out of memory", path);
    }
    if (st.st_size && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        fclose(f);
        return fail(err, errlen, "%s: read error", path);
    }
    fclose(f);
    return qc_wlog_parse(l, buf, (size_t)st.st_size, err, errlen);
}

void qc_wlog_free(struct qc_wlog *l)
{
    free(l->v);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

int qc_wlog_put_magic(FILE *out)
{
    return fwrite(QC_WLOG_RECORD_MAGIC, 1, 8, out) == 8 ? 0 : -1;
}

int qc_wlog_put(FILE *out, enum qc_wlog_op op, uint8_t event, uint64_t offset,
                uint64_t length, const void *data)
{
    uint8_t h[REC_HDR] = { 0 };
    uint64_t dlen = op == QC_WLOG_WRITE ? length : 0;

    h[0] = (uint8_t)op;
    h[1] = event;
    put_le64(h + 8, offset);
    put_le64(h + 16, length);
    put_le64(h + 24, dlen);
    if (fwrite(h, 1, sizeof h, out) != sizeof h)
        return -1;
    if (dlen && fwrite(data, 1, (size_t)dlen, out) != dlen)
        return -1;
    return 0;
}

static int grow(uint8_t **buf, uint64_t *len, uint64_t *cap, uint64_t need, uint64_t limit)
{
    if (need > limit)
        return -1;
    if (need > *cap) {
        uint64_t ncap = *cap ? *cap : 65536;
        uint8_t *nb;
        while (ncap < need)
            ncap *= 2;
        if (ncap > SIZE_MAX)
            return -1;
        nb = realloc(*buf, (size_t)ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    if (need > *len) {
        memset(*buf + *len, 0, (size_t)(need - *len));
        *len = need;
    }
    return 0;
}

int qc_wlog_apply(const struct qc_wlog_entry *e, uint8_t **buf, uint64_t *len,
                  uint64_t *cap, uint64_t torn_bytes, uint64_t limit)
{
    uint64_t n = e->length;

    if (torn_bytes != UINT64_MAX && torn_bytes < n)
        n = torn_bytes;
    switch (e->op) {
    case QC_WLOG_WRITE:
    case QC_WLOG_ZERO:
        if (e->offset > limit || n > limit - e->offset)
            return -1;
        if (grow(buf, len, cap, e->offset + n, limit) < 0)
            return -1;
        if (e->op == QC_WLOG_WRITE)
            memcpy(*buf + e->offset, e->data, (size_t)n);
        else
            memset(*buf + e->offset, 0, (size_t)n);
        return 0;
    case QC_WLOG_DISCARD:
        if (e->offset < *len) {
            uint64_t end = e->length > *len - e->offset ? *len : e->offset + e->length;
            memset(*buf + e->offset, 0, (size_t)(end - e->offset));
        }
        return 0;
    case QC_WLOG_TRUNCATE:
        if (e->offset > *len)
            return grow(buf, len, cap, e->offset, limit);
        *len = e->offset;
        return 0;
    default:
        return 0;
    }
}
