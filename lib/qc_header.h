/* The qcow2 image header (docs/format.md §1): parse, validate, serialize. */
#ifndef QC_HEADER_H
#define QC_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_feature.h"
#include "qc_problem.h"

#define QC_MAGIC            0x514649FBu
#define QC_HEADER_V2_LEN    72u
#define QC_HEADER_V3_MIN    104u
#define QC_HEADER_V3_LEN    112u   /* what QEMU >= 5.0 writes */
#define QC_MAX_BACKING_NAME 1023u

/* Incompatible feature bits */
#define QC_INCOMPAT_DIRTY        (1ull << 0)
#define QC_INCOMPAT_CORRUPT      (1ull << 1)
#define QC_INCOMPAT_DATA_FILE    (1ull << 2)
#define QC_INCOMPAT_COMPRESSION  (1ull << 3)
#define QC_INCOMPAT_EXTL2        (1ull << 4)
#define QC_INCOMPAT_KNOWN        0x1Full
/* Compatible */
#define QC_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QC_COMPAT_KNOWN          0x1ull
/* Autoclear */
#define QC_AUTOCLEAR_BITMAPS     (1ull << 0)
#define QC_AUTOCLEAR_DATA_RAW    (1ull << 1)
#define QC_AUTOCLEAR_KNOWN       0x3ull

enum qc_crypt { QC_CRYPT_NONE = 0, QC_CRYPT_AES = 1, QC_CRYPT_LUKS = 2 };
enum qc_compression { QC_COMPRESSION_ZLIB = 0, QC_COMPRESSION_ZSTD = 1 };

/* Header field identifiers in on-disk order; names are qcow2.py's. */
enum qc_header_field {
    QC_HF_MAGIC, QC_HF_VERSION, QC_HF_BACKING_FILE_OFFSET, QC_HF_BACKING_FILE_SIZE,
    QC_HF_CLUSTER_BITS, QC_HF_SIZE, QC_HF_CRYPT_METHOD, QC_HF_L1_SIZE,
    QC_HF_L1_TABLE_OFFSET, QC_HF_REFCOUNT_TABLE_OFFSET, QC_HF_REFCOUNT_TABLE_CLUSTERS,
    QC_HF_NB_SNAPSHOTS, QC_HF_SNAPSHOT_OFFSET, QC_HF_INCOMPATIBLE_FEATURES,
    QC_HF_COMPATIBLE_FEATURES, QC_HF_AUTOCLEAR_FEATURES, QC_HF_REFCOUNT_ORDER,
    QC_HF_HEADER_LENGTH, QC_HF_COMPRESSION_TYPE,
    QC_HF_COUNT
};

struct qc_header_field_info {
    const char *name;     /* qcow2.py name */
    unsigned offset;      /* byte offset in the header */
    unsigned size;        /* 1, 4 or 8 */
    bool hex;             /* qcow2.py prints it with %#x */
    bool feature_mask;    /* printed as a bit list (current) / %#x (2012) */
};

const struct qc_header_field_info *qc_header_field_info(enum qc_header_field f);
/* Returns QC_HF_COUNT if NAME is not a field name (qcow2.py names, plus
 * "snapshots_offset" as an alias). */
enum qc_header_field qc_header_field_lookup(const char *name);

struct qc_header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3; for v2 these hold QEMU's implied values (0, 0, 0, 4, 72) */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;      /* 0 unless header_length > 104 */
    bool has_compression_type;     /* byte 104 is part of the header */

    /* The raw bytes of the header as read (up to header_length, or the
     * 104/112-byte struct), so that serialization keeps padding and unknown
     * trailing fields byte for byte. */
    uint8_t *raw;
    size_t raw_len;
    size_t avail;                  /* bytes of the header the file holds */
};

/* Parses the header from BUF (the first LEN bytes of the file).  Never
 * fails on content: returns QC_E_RANGE only if LEN < 72, after filling what
 * it could.  Copies the raw bytes. */
int qc_header_parse(struct qc_header *h, const uint8_t *buf, size_t len);
void qc_header_free(struct qc_header *h);

uint64_t qc_header_field_value(const struct qc_header *h, enum qc_header_field f);
/* Field F of the raw header bytes BUF (LEN long): read (0 when it does not
 * fit) and written (not at all when it does not fit), big-endian. */
uint64_t qc_header_field_get(const uint8_t *buf, size_t len, enum qc_header_field f);
void qc_header_field_put(uint8_t *buf, size_t len, enum qc_header_field f, uint64_t v);
/* Sets a field in the parsed struct and in the raw bytes. */
int qc_header_set_field(struct qc_header *h, enum qc_header_field f, uint64_t v);

/* Effective on-disk header length: 72 for v2, header_length for v3. */
uint32_t qc_header_len(const struct qc_header *h);

/* Serializes the header into OUT (at least qc_header_len() bytes): the raw
 * bytes with every known field rewritten from the struct. */
void qc_header_serialize(const struct qc_header *h, uint8_t *out, size_t len);

/* Geometry helpers (valid only for cluster_bits in 9..21 after validation,
 * but safe for any value: clamped to avoid undefined shifts). */
uint64_t qc_header_cluster_size(const struct qc_header *h);
bool qc_header_extended_l2(const struct qc_header *h);

/* Validation as QEMU at open (docs/qemu-behaviour.md §1.1 rows 1-23), in
 * QEMU's order; the first failing rule is reported, as QEMU stops there.
 * FT (may be NULL) names unknown incompatible bits.  check_mode skips the
 * rules QEMU skips when opening for `qemu-img check`.  Extension rules are
 * in qc_image. */
void qc_header_validate(const struct qc_header *h, const struct qc_feature_table *ft,
                        bool check_mode, struct qc_problems *problems);

#endif
