#include "qc_l2.h"

#include "qc_endian.h"

bool qc_compressed_encode(const struct qc_compressed_geom *g, uint64_t offset,
                          uint64_t len, uint64_t *raw)
{
    uint64_t nsec;

    if (len == 0 || offset > g->offset_mask || offset > QC_L2E_OFFSET_MASK)
        return false;
    nsec = ((offset + len - 1) >> 9) - (offset >> 9);
    if (nsec > g->csize_mask)
        return false;
    *raw = offset | (nsec << g->csize_shift);
    return true;
}

struct qc_l2_entry qc_l2_entry_decode(uint64_t raw, uint64_t bitmap, bool extl2,
                                      bool data_file)
{
    struct qc_l2_entry e = { .raw = raw, .bitmap = bitmap };

    e.copied = (raw & QC_OFLAG_COPIED) != 0;
    if (raw & QC_OFLAG_COMPRESSED) {
        e.type = QC_CT_COMPRESSED;
        return e;
    }
    e.offset = raw & QC_L2E_OFFSET_MASK;
    e.reserved = raw & QC_L2E_RESERVED_MASK;
    if ((raw & QC_OFLAG_ZERO) && !extl2) {
        e.type = e.offset ? QC_CT_ZERO_ALLOC : QC_CT_ZERO_PLAIN;
    } else if (e.offset == 0 && !(data_file && e.copied)) {
        e.type = QC_CT_UNALLOCATED;
    } else {
        e.type = QC_CT_NORMAL;
    }
    return e;
}

enum qc_subcluster_type qc_l2_subcluster_type(const struct qc_l2_entry *e, bool extl2,
                                              unsigned sc)
{
    if (!extl2) {
        switch (e->type) {
        case QC_CT_COMPRESSED: return QC_SCT_COMPRESSED;
        case QC_CT_ZERO_PLAIN: return QC_SCT_ZERO_PLAIN;
        case QC_CT_ZERO_ALLOC: return QC_SCT_ZERO_ALLOC;
        case QC_CT_UNALLOCATED: return QC_SCT_UNALLOCATED_PLAIN;
        default: return QC_SCT_NORMAL;
        }
    }
    {
        uint32_t alloc = (uint32_t)e->bitmap;
        uint32_t zero = (uint32_t)(e->bitmap >> 32);
        uint32_t bit = 1u << (sc & 31);

        if (e->type == QC_CT_COMPRESSED)
            return QC_SCT_COMPRESSED;   /* the bitmap is checked elsewhere */
        if (e->type == QC_CT_NORMAL) {
            if (alloc & zero)
                return QC_SCT_INVALID;
            if (zero & bit)
                return QC_SCT_ZERO_ALLOC;
            if (alloc & bit)
                return QC_SCT_NORMAL;
            return QC_SCT_UNALLOCATED_ALLOC;
        }
        /* offset 0 */
        if (alloc)
            return QC_SCT_INVALID;
        if (zero & bit)
            return QC_SCT_ZERO_PLAIN;
        return QC_SCT_UNALLOCATED_PLAIN;
    }
}

const char *qc_cluster_type_name(enum qc_cluster_type t)
{
    switch (t) {
    case QC_CT_UNALLOCATED: return "unallocated";
    case QC_CT_ZERO_PLAIN: return "zero";
    case QC_CT_ZERO_ALLOC: return "zero-alloc";
    case QC_CT_NORMAL: return "normal";
    case QC_CT_COMPRESSED: return "compressed";
    default: return "?";
    }
}

const char *qc_subcluster_type_name(enum qc_subcluster_type t)
{
    switch (t) {
    case QC_SCT_NORMAL: return "normal";
    case QC_SCT_COMPRESSED: return "compressed";
    case QC_SCT_ZERO_PLAIN: return "zero-plain";
    case QC_SCT_ZERO_ALLOC: return "zero-alloc";
    case QC_SCT_UNALLOCATED_PLAIN: return "unallocated-plain";
    case QC_SCT_UNALLOCATED_ALLOC: return "unallocated-alloc";
    case QC_SCT_INVALID: return "invalid";
    default: return "?";
    }
}

/* Trailing ones / zeros of a 32-bit word; 32 when the word has none. */
static unsigned cto32(uint32_t v)
{
    return v == UINT32_MAX ? 32 : (unsigned)__builtin_ctz(~v);
}

static unsigned ctz32(uint32_t v)
{
    return v == 0 ? 32 : (unsigned)__builtin_ctz(v);
}

/* Bits FROM..TO-1 of a 32-bit word. */
static uint32_t bit_range(unsigned from, unsigned to)
{
    uint64_t hi = to >= 32 ? 0xFFFFFFFFull : (1ull << to) - 1;
    uint64_t lo = (1ull << from) - 1;
    return (uint32_t)(hi & ~lo);
}

int qc_l2_subcluster_range(const struct qc_l2_entry *e, bool extl2, unsigned sc_from,
                           enum qc_subcluster_type *type)
{
    uint32_t alloc = (uint32_t)e->bitmap, zero = (uint32_t)(e->bitmap >> 32);
    unsigned n = qc_l2_subclusters(extl2);

    if (sc_from >= n)
        sc_from = n - 1;
    *type = qc_l2_subcluster_type(e, extl2, sc_from);
    if (*type == QC_SCT_INVALID)
        return -1;
    if (!extl2 || *type == QC_SCT_COMPRESSED)
        return (int)(n - sc_from);
    switch (*type) {
    case QC_SCT_NORMAL:
        return (int)(cto32(alloc | bit_range(0, sc_from)) - sc_from);
    case QC_SCT_ZERO_PLAIN:
    case QC_SCT_ZERO_ALLOC:
        return (int)(cto32(zero | bit_range(0, sc_from)) - sc_from);
    default:
        return (int)(ctz32((zero | alloc) & ~bit_range(0, sc_from)) - sc_from);
    }
}

struct qc_l2_entry qc_l2_table_entry(const uint8_t *table, bool extl2, bool data_file,
                                     uint64_t i)
{
    const uint8_t *p = table + i * (extl2 ? 16 : 8);
    return qc_l2_entry_decode(qc_be64(p), extl2 ? qc_be64(p + 8) : 0, extl2, data_file);
}

int64_t qc_l2_count_contiguous(const uint8_t *table, bool extl2, bool data_file,
                               uint64_t cluster_size, uint64_t l2_index,
                               uint64_t nb_clusters, unsigned sc, uint64_t *bad_index)
{
    unsigned per = qc_l2_subclusters(extl2);
    enum qc_subcluster_type expect = QC_SCT_NORMAL, t;
    uint64_t expect_off = 0;
    bool check_off = false;
    int64_t count = 0;

    for (uint64_t i = 0; i < nb_clusters; i++) {
        unsigned first = i == 0 ? sc : 0;
        struct qc_l2_entry e = qc_l2_table_entry(table, extl2, data_file, l2_index + i);
        int r = qc_l2_subcluster_range(&e, extl2, first, &t);

        /* an invalid entry fails the query even after a good run */
        if (r < 0) {
            *bad_index = l2_index + i;
            return -1;
        }
        if (i == 0) {
            if (t == QC_SCT_COMPRESSED)
                return r;
            expect = t;
            expect_off = e.raw & QC_L2E_OFFSET_MASK;
            check_off = t == QC_SCT_NORMAL || t == QC_SCT_ZERO_ALLOC ||
                        t == QC_SCT_UNALLOCATED_ALLOC;
        } else if (t != expect) {
            break;
        } else if (check_off) {
            expect_off += cluster_size;
            if ((e.raw & QC_L2E_OFFSET_MASK) != expect_off)
                break;
        }
        count += r;
        if (first + (unsigned)r < per)
            break;
        if (i == 0 && !extl2) {
            /* Standard entries: the run goes on while each entry has the
             * expected offset and the same flags that decide its type, so
             * one masked compare per entry gives the same count. */
            uint64_t want = expect_off | (expect == QC_SCT_ZERO_ALLOC || expect == QC_SCT_ZERO_PLAIN
                                          ? QC_OFLAG_ZERO : 0);
            const uint64_t sel = QC_OFLAG_COMPRESSED | QC_OFLAG_ZERO | QC_L2E_OFFSET_MASK;
            const uint8_t *p = table + (l2_index + 1) * 8;
            bool unalloc = expect == QC_SCT_UNALLOCATED_PLAIN;
            uint64_t j = 1;

            for (; j < nb_clusters; j++, p += 8) {
                uint64_t raw = qc_be64(p);
                if (check_off)
                    want = (want & ~QC_L2E_OFFSET_MASK) | (expect_off + j * cluster_size);
                if ((raw & sel) != want)
                    break;
                /* with a data file, offset 0 plus COPIED is a normal cluster */
                if (unalloc && data_file && (raw & QC_OFLAG_COPIED))
                    break;
            }
            return count + (int64_t)(j - 1);
        }
    }
    return count;
}
