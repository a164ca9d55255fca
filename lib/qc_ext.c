#include "qc_ext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_io.h"

const char *qc_ext_name(uint32_t magic)
{
    switch (magic) {
    case QC_EXT_BACKING_FORMAT: return "Backing format";
    case QC_EXT_FEATURE_TABLE: return "Feature table";
    case QC_EXT_BITMAPS: return "Bitmaps";
    case QC_EXT_CRYPTO: return "Crypto header";
    case QC_EXT_DATA_FILE: return "Data file";
    default: return NULL;
    }
}

static const uint32_t known_magics[] = {
    QC_EXT_BACKING_FORMAT, QC_EXT_FEATURE_TABLE, QC_EXT_BITMAPS, QC_EXT_CRYPTO,
    QC_EXT_DATA_FILE,
};

const uint32_t *qc_ext_known_magics(size_t *n)
{
    *n = sizeof known_magics / sizeof known_magics[0];
    return known_magics;
}

bool qc_ext_lookup_name(const char *name, uint32_t *magic)
{
    for (size_t i = 0; i < sizeof known_magics / sizeof known_magics[0]; i++) {
        const char *k = qc_ext_name(known_magics[i]), *p = name;
        for (; *k && *p; k++, p++) {
            char a = *k == ' ' ? '_' : (char)tolower((unsigned char)*k);
            char b = *p == ' ' ? '_' : (char)tolower((unsigned char)*p);
            if (a != b)
                break;
        }
        if (!*k && !*p) {
            *magic = known_magics[i];
            return true;
        }
    }
    return false;
}

static int push(struct qc_ext_list *l, const struct qc_ext *e)
{
    /* the area is at most 2 MiB, so at most 256 Ki extensions */
    struct qc_ext *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return QC_E_NOMEM;
    l->v = v;
    l->v[l->n++] = *e;
    return 0;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~7ull;
}

int qc_ext_parse(struct qc_ext_list *l, const uint8_t *buf, size_t len,
                 uint64_t start, uint64_t end)
{
    uint64_t off = start;

    memset(l, 0, sizeof *l);
    l->start = start;
    l->end = end;
    l->end_marker = UINT64_MAX;
    l->bad_offset = UINT64_MAX;

    while (off < end) {
        struct qc_ext e = { 0 };
        uint64_t payload, padded, have;

        if (off + 8 > end) {
            l->status = QC_EXT_TOO_LARGE;
            l->bad_offset = off;
            return 0;
        }
        if (off + 8 > len) {
            /* QEMU reads zeros past the end of the file: that is an end
             * marker for it, but the area is cut short. */
            l->status = QC_EXT_TRUNCATED;
            l->bad_offset = off;
            return 0;
        }
        e.offset = off;
        e.magic = qc_be32(buf + off);
        e.length = qc_be32(buf + off + 4);
        if (e.magic == QC_EXT_END) {
            /* QEMU checks the length of the end marker too */
            if (e.length > end - (off + 8)) {
                l->status = QC_EXT_TOO_LARGE;
                l->bad_offset = off;
                return 0;
            }
            l->end_marker = off;
            return 0;
        }
        payload = off + 8;
        if (e.length > end - payload) {
            l->status = QC_EXT_TOO_LARGE;
            l->bad_offset = off;
            /* keep what is there so that dumps can show it */
        }
        padded = pad8(e.length);
        have = payload < len ? len - payload : 0;
        e.avail = (size_t)(have < e.length ? have : e.length);
        e.padded_avail = (size_t)(have < padded ? have : padded);
        e.data = malloc(e.padded_avail ? e.padded_avail : 1);
        if (!e.data)
            return QC_E_NOMEM;
        if (e.padded_avail)
            memcpy(e.data, buf + payload, e.padded_avail);
        if (push(l, &e) < 0) {
            free(e.data);
            return QC_E_NOMEM;
        }
        if (l->status == QC_EXT_TOO_LARGE)
            return 0;
        if (e.avail < e.length) {
            l->status = QC_EXT_TRUNCATED;
            l->bad_offset = off;
            return 0;
        }
        off = payload + padded;
    }
    return 0;
}

void qc_ext_list_free(struct qc_ext_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int qc_ext_list_copy(struct qc_ext_list *dst, const struct qc_ext_list *src)
{
    *dst = *src;
    dst->v = NULL;
    dst->n = 0;
    if (!src->n)
        return 0;
    dst->v = calloc(src->n, sizeof *dst->v);
    if (!dst->v)
        return QC_E_NOMEM;
    for (size_t i = 0; i < src->n; i++) {
        const struct qc_ext *e = &src->v[i];
        dst->v[i] = *e;
        dst->v[i].data = malloc(e->padded_avail ? e->padded_avail : 1);
        if (!dst->v[i].data) {
            dst->n = i;
            qc_ext_list_free(dst);
            return QC_E_NOMEM;
        }
        memcpy(dst->v[i].data, e->data, e->padded_avail);
        dst->n = i + 1;
    }
    return 0;
}

const struct qc_ext *qc_ext_find(const struct qc_ext_list *l, uint32_t magic)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].magic == magic)
            return &l->v[i];
    return NULL;
}

bool qc_ext_bitmaps_decode(const struct qc_ext *e, struct qc_ext_bitmaps *b)
{
    memset(b, 0, sizeof *b);
    if (!e || e->avail < 24)
        return false;
    b->nb_bitmaps = qc_be32(e->data);
    b->reserved32 = qc_be32(e->data + 4);
    b->directory_size = qc_be64(e->data + 8);
    b->directory_offset = qc_be64(e->data + 16);
    return true;
}

bool qc_ext_crypto_decode(const struct qc_ext *e, struct qc_ext_crypto *c)
{
    memset(c, 0, sizeof *c);
    if (!e || e->avail < 16)
        return false;
    c->offset = qc_be64(e->data);
    c->length = qc_be64(e->data + 8);
    return true;
}

uint64_t qc_ext_list_size(const struct qc_ext_list *l)
{
    uint64_t n = 8;
    for (size_t i = 0; i < l->n; i++)
        n += 8 + pad8(l->v[i].length);
    return n;
}

void qc_ext_serialize(const struct qc_ext_list *l, uint8_t *out)
{
    uint64_t off = 0;

    for (size_t i = 0; i < l->n; i++) {
        const struct qc_ext *e = &l->v[i];
        uint64_t padded = pad8(e->length);
        qc_put_be32(out + off, e->magic);
        qc_put_be32(out + off + 4, e->length);
        memset(out + off + 8, 0, padded);
        memcpy(out + off + 8, e->data, e->padded_avail < padded ? e->padded_avail : padded);
        off += 8 + padded;
    }
    memset(out + off, 0, 8);
}

int qc_ext_append(struct qc_ext_list *l, uint32_t magic, const uint8_t *data, size_t len)
{
    struct qc_ext e = { 0 };
    uint64_t padded = pad8(len);

    if (len > UINT32_MAX)
        return QC_E_RANGE;
    e.magic = magic;
    e.length = (uint32_t)len;
    e.offset = UINT64_MAX;
    e.data = calloc(1, padded ? padded : 1);
    if (!e.data)
        return QC_E_NOMEM;
    if (len)
        memcpy(e.data, data, len);
    e.avail = len;
    e.padded_avail = (size_t)padded;
    if (push(l, &e) < 0) {
        free(e.data);
        return QC_E_NOMEM;
    }
    return 0;
}

size_t qc_ext_remove(struct qc_ext_list *l, uint32_t magic)
{
    size_t w = 0, removed = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].magic == magic) {
            free(l->v[i].data);
            removed++;
        } else {
            l->v[w++] = l->v[i];
        }
    }
    l->n = w;
    return removed;
}
