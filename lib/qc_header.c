/* The qcow2 header: parse, validate as QEMU does at open, serialize. */
#include "qc_header.h"
#include "qc_snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qc_endian.h"
#include "qc_io.h"

static const struct qc_header_field_info fields[QC_HF_COUNT] = {
    [QC_HF_MAGIC]                   = { "magic",                   0,   4, true,  false },
    [QC_HF_VERSION]                 = { "version",                 4,   4, false, false },
    [QC_HF_BACKING_FILE_OFFSET]     = { "backing_file_offset",     8,   8, true,  false },
    [QC_HF_BACKING_FILE_SIZE]       = { "backing_file_size",       16,  4, true,  false },
    [QC_HF_CLUSTER_BITS]            = { "cluster_bits",            20,  4, false, false },
    [QC_HF_SIZE]                    = { "size",                    24,  8, false, false },
    [QC_HF_CRYPT_METHOD]            = { "crypt_method",            32,  4, false, false },
    [QC_HF_L1_SIZE]                 = { "l1_size",                 36,  4, false, false },
    [QC_HF_L1_TABLE_OFFSET]         = { "l1_table_offset",         40,  8, true,  false },
    [QC_HF_REFCOUNT_TABLE_OFFSET]   = { "refcount_table_offset",   48,  8, true,  false },
    [QC_HF_REFCOUNT_TABLE_CLUSTERS] = { "refcount_table_clusters", 56,  4, false, false },
    [QC_HF_NB_SNAPSHOTS]            = { "nb_snapshots",            60,  4, false, false },
    [QC_HF_SNAPSHOT_OFFSET]         = { "snapshot_offset",         64,  8, true,  false },
    [QC_HF_INCOMPATIBLE_FEATURES]   = { "incompatible_features",   72,  8, false, true  },
    [QC_HF_COMPATIBLE_FEATURES]     = { "compatible_features",     80,  8, false, true  },
    [QC_HF_AUTOCLEAR_FEATURES]      = { "autoclear_features",      88,  8, false, true  },
    [QC_HF_REFCOUNT_ORDER]          = { "refcount_order",          96,  4, false, false },
    [QC_HF_HEADER_LENGTH]           = { "header_length",           100, 4, false, false },
    [QC_HF_COMPRESSION_TYPE]        = { "compression_type",        104, 1, false, false },
};

const struct qc_header_field_info *qc_header_field_info(enum qc_header_field f)
{
    return (unsigned)f < QC_HF_COUNT ? &fields[f] : NULL;
}

enum qc_header_field qc_header_field_lookup(const char *name)
{
    for (int i = 0; i < QC_HF_COUNT; i++)
        if (strcmp(fields[i].name, name) == 0)
            return (enum qc_header_field)i;
    if (strcmp(name, "snapshots_offset") == 0)
        return QC_HF_SNAPSHOT_OFFSET;
    return QC_HF_COUNT;
}

static uint64_t read_field(const uint8_t *buf, size_t len, const struct qc_header_field_info *fi)
{
    if (fi->offset + fi->size > len)
        return 0;
    switch (fi->size) {
    case 1: return buf[fi->offset];
    case 4: return qc_be32(buf + fi->offset);
    default: return qc_be64(buf + fi->offset);
    }
}

static void write_field(uint8_t *buf, size_t len, const struct qc_header_field_info *fi,
                        uint64_t v)
{
    if (fi->offset + fi->size > len)
        return;
    switch (fi->size) {
    case 1: buf[fi->offset] = (uint8_t)v; break;
    case 4: qc_put_be32(buf + fi->offset, (uint32_t)v); break;
    default: qc_put_be64(buf + fi->offset, v); break;
    }
}

uint64_t qc_header_field_get(const uint8_t *buf, size_t len, enum qc_header_field f)
{
    return (unsigned)f < QC_HF_COUNT ? read_field(buf, len, &fields[f]) : 0;
}

void qc_header_field_put(uint8_t *buf, size_t len, enum qc_header_field f, uint64_t v)
{
    if ((unsigned)f < QC_HF_COUNT)
        write_field(buf, len, &fields[f], v);
}

int qc_header_parse(struct qc_header *h, const uint8_t *buf, size_t len)
{
    size_t keep;

    memset(h, 0, sizeof *h);
    h->avail = len;
    h->magic = (uint32_t)read_field(buf, len, &fields[QC_HF_MAGIC]);
    h->version = (uint32_t)read_field(buf, len, &fields[QC_HF_VERSION]);
    h->backing_file_offset = read_field(buf, len, &fields[QC_HF_BACKING_FILE_OFFSET]);
    h->backing_file_size = (uint32_t)read_field(buf, len, &fields[QC_HF_BACKING_FILE_SIZE]);
    h->cluster_bits = (uint32_t)read_field(buf, len, &fields[QC_HF_CLUSTER_BITS]);
    h->size = read_field(buf, len, &fields[QC_HF_SIZE]);
    h->crypt_method = (uint32_t)read_field(buf, len, &fields[QC_HF_CRYPT_METHOD]);
    h->l1_size = (uint32_t)read_field(buf, len, &fields[QC_HF_L1_SIZE]);
    h->l1_table_offset = read_field(buf, len, &fields[QC_HF_L1_TABLE_OFFSET]);
    h->refcount_table_offset = read_field(buf, len, &fields[QC_HF_REFCOUNT_TABLE_OFFSET]);
    h->refcount_table_clusters = (uint32_t)read_field(buf, len, &fields[QC_HF_REFCOUNT_TABLE_CLUSTERS]);
    h->nb_snapshots = (uint32_t)read_field(buf, len, &fields[QC_HF_NB_SNAPSHOTS]);
    h->snapshots_offset = read_field(buf, len, &fields[QC_HF_SNAPSHOT_OFFSET]);

    if (h->version >= 3) {
        h->incompatible_features = read_field(buf, len, &fields[QC_HF_INCOMPATIBLE_FEATURES]);
        h->compatible_features = read_field(buf, len, &fields[QC_HF_COMPATIBLE_FEATURES]);
        h->autoclear_features = read_field(buf, len, &fields[QC_HF_AUTOCLEAR_FEATURES]);
        h->refcount_order = (uint32_t)read_field(buf, len, &fields[QC_HF_REFCOUNT_ORDER]);
        h->header_length = (uint32_t)read_field(buf, len, &fields[QC_HF_HEADER_LENGTH]);
        if (h->header_length > QC_HEADER_V3_MIN) {
            h->has_compression_type = true;
            h->compression_type = (uint8_t)read_field(buf, len, &fields[QC_HF_COMPRESSION_TYPE]);
        }
    } else {
        h->refcount_order = 4;
        h->header_length = QC_HEADER_V2_LEN;
    }

    /* Keep the whole header as the file has it: at least the 112-byte v3
     * struct (zero-filled where the file is short), or header_length when
     * that is longer and plausible (it is bounded by the cluster size). */
    keep = QC_HEADER_V3_LEN;
    if (h->version >= 3 && h->header_length > keep && h->header_length <= (1u << 21))
        keep = h->header_length;
    h->raw = calloc(1, keep);
    if (!h->raw)
        return QC_E_NOMEM;
    h->raw_len = keep;
    memcpy(h->raw, buf, len < keep ? len : keep);
    return len < QC_HEADER_V2_LEN ? QC_E_RANGE : 0;
}

void qc_header_free(struct qc_header *h)
{
    free(h->raw);
    h->raw = NULL;
    h->raw_len = 0;
}

uint64_t qc_header_field_value(const struct qc_header *h, enum qc_header_field f)
{
    switch (f) {
    case QC_HF_MAGIC: return h->magic;
    case QC_HF_VERSION: return h->version;
    case QC_HF_BACKING_FILE_OFFSET: return h->backing_file_offset;
    case QC_HF_BACKING_FILE_SIZE: return h->backing_file_size;
    case QC_HF_CLUSTER_BITS: return h->cluster_bits;
    case QC_HF_SIZE: return h->size;
    case QC_HF_CRYPT_METHOD: return h->crypt_method;
    case QC_HF_L1_SIZE: return h->l1_size;
    case QC_HF_L1_TABLE_OFFSET: return h->l1_table_offset;
    case QC_HF_REFCOUNT_TABLE_OFFSET: return h->refcount_table_offset;
    case QC_HF_REFCOUNT_TABLE_CLUSTERS: return h->refcount_table_clusters;
    case QC_HF_NB_SNAPSHOTS: return h->nb_snapshots;
    case QC_HF_SNAPSHOT_OFFSET: return h->snapshots_offset;
    case QC_HF_INCOMPATIBLE_FEATURES: return h->incompatible_features;
    case QC_HF_COMPATIBLE_FEATURES: return h->compatible_features;
    case QC_HF_AUTOCLEAR_FEATURES: return h->autoclear_features;
    case QC_HF_REFCOUNT_ORDER: return h->refcount_order;
    case QC_HF_HEADER_LENGTH: return h->header_length;
    case QC_HF_COMPRESSION_TYPE: return h->compression_type;
    default: return 0;
    }
}

static uint64_t field_mask(unsigned size)
{
    return size == 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

int qc_header_set_field(struct qc_header *h, enum qc_header_field f, uint64_t v)
{
    const struct qc_header_field_info *fi = qc_header_field_info(f);
    uint8_t *nraw;

    if (!fi)
        return QC_E_RANGE;
    if (v & ~field_mask(fi->size))
        return QC_E_RANGE;
    if (fi->offset + fi->size > h->raw_len) {
        nraw = realloc(h->raw, fi->offset + fi->size);
        if (!nraw)
            return QC_E_NOMEM;
        memset(nraw + h->raw_len, 0, fi->offset + fi->size - h->raw_len);
        h->raw = nraw;
        h->raw_len = fi->offset + fi->size;
    }
    write_field(h->raw, h->raw_len, fi, v);
    /* Re-derive the struct from the raw bytes so v2/v3 rules stay in one place. */
    {
        uint8_t *raw = h->raw;
        size_t raw_len = h->raw_len, avail = h->avail;
        int r = qc_header_parse(h, raw, raw_len);
        free(raw);
        h->avail = avail;
        return r == QC_E_NOMEM ? r : 0;
    }
}

uint32_t qc_header_len(const struct qc_header *h)
{
    return h->version >= 3 ? h->header_length : QC_HEADER_V2_LEN;
}

void qc_header_serialize(const struct qc_header *h, uint8_t *out, size_t len)
{
    size_t n = h->raw_len < len ? h->raw_len : len;
    memset(out, 0, len);
    memcpy(out, h->raw, n);
    for (int i = 0; i < QC_HF_COUNT; i++) {
        if (i >= QC_HF_INCOMPATIBLE_FEATURES && h->version < 3)
            break;
        if (i == QC_HF_COMPRESSION_TYPE && !h->has_compression_type)
            break;
        write_field(out, len, &fields[i], qc_header_field_value(h, (enum qc_header_field)i));
    }
}

uint64_t qc_header_cluster_size(const struct qc_header *h)
{
    unsigned bits = h->cluster_bits;
    if (bits < 9 || bits > 30)
        bits = bits < 9 ? 9 : 30;
    return 1ull << bits;
}

bool qc_header_extended_l2(const struct qc_header *h)
{
    return h->version >= 3 && (h->incompatible_features & QC_INCOMPAT_EXTL2);
}

/* QEMU limits (qcow2.h) */
#define QCOW_MAX_REFTABLE_SIZE (8ull << 20)
#define QCOW_MAX_L1_SIZE       (32ull << 20)
#define QCOW_MAX_SNAPSHOTS     65536u

/* The L1 entries needed to map SIZE bytes, computed as QEMU does: the
 * rounding addition wraps for sizes within one L1 entry's span of 2^64, so
 * such sizes need no entries at all (and fail later, when the block layer
 * refreshes the sector count). */
static uint64_t size_to_l1(const struct qc_header *h, uint64_t size)
{
    unsigned l2_bits = h->cluster_bits - (qc_header_extended_l2(h) ? 4 : 3);
    unsigned shift = h->cluster_bits + l2_bits;
    return (size + (1ull << shift) - 1) >> shift;
}

void qc_header_validate(const struct qc_header *h, const struct qc_feature_table *ft,
                        bool check_mode, struct qc_problems *p)
{
    uint64_t cs, l1_needed, unknown;

    if (h->magic != QC_MAGIC) {
        qc_problem_add(p, QC_P_BAD_MAGIC, 0, "Image is not in qcow2 format");
        return;
    }
    if (h->avail < QC_HEADER_V2_LEN) {
        qc_problem_add(p, QC_P_TRUNCATED_HEADER, 0, "Could not read qcow2 header");
        return;
    }
    if (h->version < 2 || h->version > 3) {
        qc_problem_add(p, QC_P_UNSUPPORTED_VERSION, 4, "Unsupported qcow2 version %u", h->version);
        return;
    }
    if (h->cluster_bits < 9 || h->cluster_bits > 21) {
        qc_problem_add(p, QC_P_BAD_CLUSTER_BITS, 20, "Unsupported cluster size: 2^%u", h->cluster_bits);
        return;
    }
    cs = 1ull << h->cluster_bits;
    if (h->version >= 3 && h->header_length < QC_HEADER_V3_MIN) {
        qc_problem_add(p, QC_P_HEADER_TOO_SHORT, 100, "qcow2 header too short");
        return;
    }
    if (h->header_length > cs) {
        qc_problem_add(p, QC_P_HEADER_TOO_LONG, 100, "qcow2 header exceeds cluster size");
        return;
    }
    if (h->version >= 3 && h->avail < h->header_length) {
        qc_problem_add(p, QC_P_TRUNCATED_HEADER, 100, "Could not read qcow2 header");
        return;
    }
    if (h->backing_file_offset > cs) {
        qc_problem_add(p, QC_P_BAD_BACKING_OFFSET, 8, "Invalid backing file offset");
        return;
    }
    if (h->has_compression_type && h->compression_type > QC_COMPRESSION_ZSTD) {
        qc_problem_add(p, QC_P_BAD_COMPRESSION_TYPE, 104,
                       "qcow2: unknown compression type: %u", h->compression_type);
        return;
    }
    if (h->compression_type == QC_COMPRESSION_ZLIB &&
        (h->incompatible_features & QC_INCOMPAT_COMPRESSION)) {
        qc_problem_add(p, QC_P_BAD_COMPRESSION_TYPE, 72,
                       "qcow2: Compression type incompatible feature bit must not be set");
        return;
    }
    if (h->compression_type != QC_COMPRESSION_ZLIB &&
        !(h->incompatible_features & QC_INCOMPAT_COMPRESSION)) {
        qc_problem_add(p, QC_P_BAD_COMPRESSION_TYPE, 72,
                       "qcow2: Compression type incompatible feature bit must be set");
        return;
    }
    unknown = h->incompatible_features & ~QC_INCOMPAT_KNOWN;
    if (unknown) {
        char list[1024];
        qc_feature_unsupported_list(ft, unknown, list, sizeof list);
        qc_problem_add(p, QC_P_UNKNOWN_INCOMPAT, 72, "Unsupported qcow2 feature(s): %s", list);
        return;
    }
    if (qc_header_extended_l2(h) && cs / 32 < 512) {
        qc_problem_add(p, QC_P_BAD_SUBCLUSTER_SIZE, 20,
                       "Unsupported subcluster size: %llu", (unsigned long long)(cs / 32));
        return;
    }
    if (h->refcount_order > 6) {
        qc_problem_add(p, QC_P_BAD_REFCOUNT_ORDER, 96,
                       "Reference count entry width too large; may not exceed 64 bits");
        return;
    }
    if (h->refcount_table_clusters == 0 && !check_mode) {
        qc_problem_add_sev(p, QC_P_NO_REFTABLE, QC_SEV_ERROR, 56,
                           "Image does not contain a reference count table");
        return;
    }
    if ((uint64_t)h->refcount_table_clusters > QCOW_MAX_REFTABLE_SIZE / cs) {
        qc_problem_add(p, QC_P_REFTABLE_TOO_LARGE, 56, "Reference count table too large");
        return;
    }
    if ((h->refcount_table_offset & (cs - 1)) ||
        h->refcount_table_offset > (uint64_t)INT64_MAX - (uint64_t)h->refcount_table_clusters * cs) {
        qc_problem_add(p, QC_P_BAD_REFTABLE_OFFSET, 48, "Reference count table offset invalid");
        return;
    }
    if (!check_mode) {
        if (h->nb_snapshots > QCOW_MAX_SNAPSHOTS) {
            qc_problem_add(p, QC_P_SNAPSHOT_TABLE_TOO_LARGE, 60, "Snapshot table too large");
            return;
        }
        /* QEMU validates the table's offset whatever the number of entries:
         * it must be aligned and the table must end below INT64_MAX (an
         * offset of 2^63 is refused even with no snapshots). */
        if ((h->snapshots_offset & (cs - 1)) ||
            h->snapshots_offset > (uint64_t)INT64_MAX - (uint64_t)h->nb_snapshots * QC_SNAPSHOT_ENTRY_FIXED) {
            qc_problem_add(p, QC_P_BAD_SNAPSHOT_OFFSET, 64, "Snapshot table offset invalid");
            return;
        }
    }
    if ((uint64_t)h->l1_size > QCOW_MAX_L1_SIZE / 8) {
        qc_problem_add(p, QC_P_L1_TOO_LARGE, 36, "Active L1 table too large");
        return;
    }
    if ((h->l1_table_offset & (cs - 1)) ||
        h->l1_table_offset > (uint64_t)INT64_MAX - (uint64_t)h->l1_size * 8) {
        qc_problem_add(p, QC_P_BAD_L1_OFFSET, 40, "Active L1 table offset invalid");
        return;
    }
    l1_needed = size_to_l1(h, h->size);
    if (l1_needed > 0x7fffffffull) {
        qc_problem_add(p, QC_P_IMAGE_TOO_BIG, 24, "Image is too big");
        return;
    }
    if (h->l1_size < l1_needed) {
        qc_problem_add(p, QC_P_L1_TOO_SMALL, 36, "L1 table is too small");
        return;
    }
    if (h->crypt_method > QC_CRYPT_LUKS) {
        qc_problem_add(p, QC_P_BAD_CRYPT_METHOD, 32, "Unsupported encryption method %u",
                       h->crypt_method);
        return;
    }
}
