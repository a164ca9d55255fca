#include "qc_l2.h"

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
