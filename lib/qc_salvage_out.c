/* Reading what the salvage found, and summing it up (qc_salvage.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qc_compress.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_salvage_int.h"

int qc_salvage_inflate(struct qc_salvage *s, uint64_t raw, uint8_t *buf)
{
    struct qc_compressed_geom g = qc_compressed_geom(s->cluster_bits);
    struct qc_compressed_desc d = qc_compressed_decode(&g, raw & ~QC_OFLAG_COMPRESSED);
    if (d.offset >= s->f->size || d.size == 0 || d.size > 2 * s->cluster_size + 512)
        return -EIO;
    uint8_t *src = malloc((size_t)d.size);
    if (!src)
        return QC_E_NOMEM;
    /* QEMU reads a compressed cluster's last sector past the end as zeros */
    int64_t got = qc_file_read_padded(s->f, d.offset, src, (size_t)d.size);
    int rc = got < 0 ? (int)got : -EIO;
    if (got >= 0) {
        unsigned first = s->compression_known ? s->compression_type : 0;
        unsigned last = s->compression_known ? s->compression_type : 1;
        for (unsigned t = first; t <= last && rc != 0; t++)
            rc = qc_decompress(t, src, (size_t)d.size, buf, s->cluster_size);
    }
    free(src);
    return rc;
}

int qc_salvage_read_cluster(struct qc_salvage *s, const struct qc_salvage_range *r,
                            uint8_t *buf)
{
    if (r->status != QC_SV_KNOWN && r->status != QC_SV_RECONSTRUCTED) {
        memset(buf, 0, s->cluster_size);
        return 0;
    }
    if (r->entry & QC_OFLAG_COMPRESSED)
        return qc_salvage_inflate(s, r->entry, buf);
    if (!s->extl2 || r->alloc == 0xffffffffu)
        return qc_file_read(s->f, r->host, buf, s->cluster_size);
    /* the walk checked that the file holds the allocated subclusters */
    int64_t got = qc_file_read_padded(s->f, r->host, buf, s->cluster_size);
    if (got < 0)
        return (int)got;
    /* extended L2: subclusters not allocated read as zeros (no backing file
     * supplies them, or the range would be lost) */
    uint64_t sub = s->cluster_size / 32;
    for (unsigned sc = 0; sc < 32; sc++)
        if (!(r->alloc >> sc & 1))
            memset(buf + sc * sub, 0, (size_t)sub);
    return 0;
}

struct span_state {
    const struct qc_salvage *s;
    bool merge;
    struct qc_salvage_range cur;
    bool have;
    qc_salvage_span_fn fn;
    void *opaque;
};

static bool continues(const struct qc_salvage_range *a, const struct qc_salvage_range *b)
{
    if (a->status != b->status || a->evidence != b->evidence || a->guest + a->len != b->guest)
        return false;
    if (a->alloc != b->alloc)
        return false;
    if (a->status == QC_SV_KNOWN || a->status == QC_SV_RECONSTRUCTED)
        return !(a->entry & QC_OFLAG_COMPRESSED) && !(b->entry & QC_OFLAG_COMPRESSED) &&
               a->host + a->len == b->host;
    return true;
}

static int emit(struct span_state *st, const struct qc_salvage_range *r)
{
    if (st->merge && st->have && continues(&st->cur, r)) {
        st->cur.len += r->len;
        return 0;
    }
    int rc = st->have ? st->fn(st->opaque, &st->cur) : 0;
    st->cur = *r;
    st->have = true;
    return rc;
}

/* What a gap between mapped ranges is. */
static struct qc_salvage_range gap(const struct qc_salvage *s, uint64_t from, uint64_t to)
{
    struct qc_salvage_range g = { from, to - from, QC_SV_UNALLOCATED, 0, 0,
                                  "unallocated in an intact table", 0 };
    if (s->has_backing && s->backing_read) {
        g.status = QC_SV_KNOWN;
        g.evidence = "unallocated: read from the backing file";
    } else if (s->has_backing) {
        g.status = QC_SV_LOST;
        g.evidence = "unallocated: the backing file would supply it (not read)";
    }
    return g;
}

int qc_salvage_spans(const struct qc_salvage *s, bool merge, qc_salvage_span_fn fn,
                     void *opaque)
{
    struct span_state st = { .s = s, .merge = merge, .fn = fn, .opaque = opaque };
    uint64_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nr && rc == 0; i++) {
        if (s->r[i].guest > pos) {
            struct qc_salvage_range g = gap(s, pos, s->r[i].guest);
            rc = emit(&st, &g);
        }
        if (rc == 0)
            rc = emit(&st, &s->r[i]);
        pos = s->r[i].guest + s->r[i].len;
    }
    if (rc == 0 && pos < s->virtual_size) {
        struct qc_salvage_range g = gap(s, pos, s->virtual_size);
        rc = emit(&st, &g);
    }
    if (rc == 0 && st.have)
        rc = fn(opaque, &st.cur);
    return rc;
}

static int add_total(void *opaque, const struct qc_salvage_range *r)
{
    struct qc_salvage_totals *t = opaque;
    t->bytes[r->status] += r->len;
    return 0;
}

void qc_salvage_totals(const struct qc_salvage *s, struct qc_salvage_totals *t)
{
    memset(t, 0, sizeof(*t));
    qc_salvage_spans(s, true, add_total, t);
}

int qc_salvage_exit_status(const struct qc_salvage *s)
{
    struct qc_salvage_totals t;
    qc_salvage_totals(s, &t);
    if (t.bytes[QC_SV_LOST])
        return 3;
    return t.bytes[QC_SV_RECONSTRUCTED] ? 2 : 0;
}
