/* L1 and L2 table entries (docs/format.md §5). */
#ifndef QC_L2_H
#define QC_L2_H

#include <stdbool.h>
#include <stdint.h>

#define QC_OFLAG_COPIED        (1ull << 63)
#define QC_OFLAG_COMPRESSED    (1ull << 62)
#define QC_OFLAG_ZERO          (1ull << 0)

#define QC_L1E_OFFSET_MASK     0x00FFFFFFFFFFFE00ull
#define QC_L1E_RESERVED_MASK   0x7F000000000001FFull
#define QC_L2E_OFFSET_MASK     0x00FFFFFFFFFFFE00ull
#define QC_L2E_RESERVED_MASK   0x3F000000000001FEull

/* Cluster types in QEMU's classification order. */
enum qc_cluster_type {
    QC_CT_UNALLOCATED,   /* offset 0, no flags: reads from backing / zeros */
    QC_CT_ZERO_PLAIN,    /* zero flag, no offset */
    QC_CT_ZERO_ALLOC,    /* zero flag, with an allocated cluster */
    QC_CT_NORMAL,        /* data at the offset */
    QC_CT_COMPRESSED,    /* compressed descriptor */
};

/* Subcluster types (extended L2), QEMU's QCow2SubclusterType. */
enum qc_subcluster_type {
    QC_SCT_NORMAL,
    QC_SCT_COMPRESSED,
    QC_SCT_ZERO_PLAIN,
    QC_SCT_ZERO_ALLOC,
    QC_SCT_UNALLOCATED_PLAIN,
    QC_SCT_UNALLOCATED_ALLOC,
    QC_SCT_INVALID,
};

struct qc_l1_entry {
    uint64_t raw;
    uint64_t l2_offset;        /* raw & QC_L1E_OFFSET_MASK */
    bool copied;
    uint64_t reserved;         /* raw & QC_L1E_RESERVED_MASK */
};

static inline struct qc_l1_entry qc_l1_entry_decode(uint64_t raw)
{
    struct qc_l1_entry e = {
        .raw = raw,
        .l2_offset = raw & QC_L1E_OFFSET_MASK,
        .copied = (raw & QC_OFLAG_COPIED) != 0,
        .reserved = raw & QC_L1E_RESERVED_MASK,
    };
    return e;
}

/* Compressed descriptor geometry for a cluster size (§4.4). */
struct qc_compressed_geom {
    unsigned csize_shift;      /* 62 - (cluster_bits - 8) */
    uint64_t csize_mask;       /* (1 << (cluster_bits - 8)) - 1 */
    uint64_t offset_mask;      /* (1 << csize_shift) - 1 */
};

static inline struct qc_compressed_geom qc_compressed_geom(unsigned cluster_bits)
{
    struct qc_compressed_geom g;
    g.csize_shift = 62 - (cluster_bits - 8);
    g.csize_mask = (1ull << (cluster_bits - 8)) - 1;
    g.offset_mask = (1ull << g.csize_shift) - 1;
    return g;
}

struct qc_compressed_desc {
    uint64_t offset;           /* host byte offset of the compressed data */
    uint64_t nb_sectors;       /* 512-byte sectors, counting the first */
    uint64_t size;             /* bytes: nb_sectors * 512 - (offset & 511) */
};

static inline struct qc_compressed_desc qc_compressed_decode(const struct qc_compressed_geom *g,
                                                             uint64_t raw)
{
    struct qc_compressed_desc d;
    d.offset = raw & g->offset_mask;
    d.nb_sectors = ((raw >> g->csize_shift) & g->csize_mask) + 1;
    d.size = d.nb_sectors * 512 - (d.offset & 511);
    return d;
}

/* Builds the descriptor bits (without OFLAG_COMPRESSED) for LEN bytes at
 * OFFSET; returns false if they do not fit the fields. */
bool qc_compressed_encode(const struct qc_compressed_geom *g, uint64_t offset,
                          uint64_t len, uint64_t *raw);

struct qc_l2_entry {
    uint64_t raw;
    uint64_t bitmap;           /* extended L2: subcluster bitmap, else 0 */
    enum qc_cluster_type type;
    uint64_t offset;           /* raw & QC_L2E_OFFSET_MASK (not for compressed) */
    bool copied;
    uint64_t reserved;         /* reserved bits set (not for compressed) */
};

/* QEMU's classification (qcow2_get_cluster_type).  EXTL2: extended L2 (the
 * zero flag is not used); DATA_FILE: external data file (offset 0 with
 * COPIED is a normal cluster). */
struct qc_l2_entry qc_l2_entry_decode(uint64_t raw, uint64_t bitmap, bool extl2,
                                      bool data_file);

/* QEMU's qcow2_get_subcluster_type for subcluster SC (0..31) of an entry. */
enum qc_subcluster_type qc_l2_subcluster_type(const struct qc_l2_entry *e, bool extl2,
                                              unsigned sc);

const char *qc_cluster_type_name(enum qc_cluster_type t);
const char *qc_subcluster_type_name(enum qc_subcluster_type t);

/* Subclusters per cluster: 32 with extended L2, else 1. */
static inline unsigned qc_l2_subclusters(bool extl2)
{
    return extl2 ? 32 : 1;
}

/* QEMU's qcow2_get_subcluster_range_type: the type of subcluster SC_FROM
 * and how many subclusters from SC_FROM on share it, up to the end of the
 * cluster.  Returns -1 (type INVALID) for an entry whose bitmap is
 * inconsistent. */
int qc_l2_subcluster_range(const struct qc_l2_entry *e, bool extl2, unsigned sc_from,
                           enum qc_subcluster_type *type);

/* Entry I of a raw (big-endian) L2 table with ENTRY_SIZE-byte entries. */
struct qc_l2_entry qc_l2_table_entry(const uint8_t *table, bool extl2, bool data_file,
                                     uint64_t i);

/* QEMU's count_contiguous_subclusters: starting at subcluster SC of entry
 * L2_INDEX, how many subclusters over at most NB_CLUSTERS entries share the
 * first one's type (and, for allocated types, continue its host offsets
 * cluster by cluster).  A compressed first entry counts alone.  Returns -1
 * when an INVALID entry is reached; *BAD_INDEX is then its index. */
int64_t qc_l2_count_contiguous(const uint8_t *table, bool extl2, bool data_file,
                               uint64_t cluster_size, uint64_t l2_index,
                               uint64_t nb_clusters, unsigned sc, uint64_t *bad_index);

#endif
