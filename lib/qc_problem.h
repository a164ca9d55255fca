/*
 * The problem catalogue: every kind of damage or oddity the library can
 * report, with its stable identifier, severity and whether qc-repair fixes
 * it.  Check, repair, dump and setfeature all report through this one list.
 */
#ifndef QC_PROBLEM_H
#define QC_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qc_severity {
    QC_SEV_INFO,        /* not counted by qemu-img check */
    QC_SEV_LEAK,        /* counted as a leak */
    QC_SEV_CORRUPTION,  /* counted as a corruption */
    QC_SEV_ERROR,       /* counted as a check error (check could not complete) */
};

#define QC_PROBLEM_KINDS(X) \
    /* header, as QEMU validates at open (docs/qemu-behaviour.md §1.1) */ \
    X(BAD_MAGIC,            "bad-magic",            ERROR,  false, "not a qcow2 image") \
    X(UNSUPPORTED_VERSION,  "unsupported-version",  ERROR,  false, "version is not 2 or 3") \
    X(BAD_CLUSTER_BITS,     "bad-cluster-size",     ERROR,  false, "cluster_bits outside 9..21") \
    X(HEADER_TOO_SHORT,     "header-too-short",     ERROR,  false, "v3 header_length below 104") \
    X(HEADER_TOO_LONG,      "header-too-long",      ERROR,  false, "header_length exceeds the cluster size") \
    X(HEADER_LENGTH_ALIGN,  "header-length-unaligned", INFO, false, "header_length not a multiple of 8") \
    X(BAD_BACKING_OFFSET,   "bad-backing-offset",   ERROR,  false, "backing_file_offset beyond cluster 0") \
    X(BAD_COMPRESSION_TYPE, "bad-compression-type", ERROR,  false, "compression_type unknown or inconsistent with incompatible bit 3") \
    X(UNKNOWN_INCOMPAT,     "unknown-incompatible-feature", ERROR, false, "unknown incompatible feature bits set") \
    X(UNKNOWN_COMPAT,       "unknown-compatible-feature", INFO, false, "unknown compatible feature bits set") \
    X(UNKNOWN_AUTOCLEAR,    "unknown-autoclear-feature", INFO, true, "unknown autoclear feature bits set") \
    X(CORRUPT_BIT,          "corrupt",              INFO,   true,  "corrupt bit set") \
    X(DIRTY_BIT,            "dirty",                INFO,   true,  "dirty bit set: refcounts may be stale") \
    X(BAD_SUBCLUSTER_SIZE,  "bad-subcluster-size",  ERROR,  false, "extended L2 with subclusters below 512 bytes") \
    X(BAD_REFCOUNT_ORDER,   "bad-refcount-order",   ERROR,  false, "refcount_order above 6") \
    X(NO_REFTABLE,          "no-refcount-table",    INFO,   false, "refcount_table_clusters is 0") \
    X(REFTABLE_TOO_LARGE,   "refcount-table-too-large", ERROR, false, "refcount table above 8 MiB") \
    X(BAD_REFTABLE_OFFSET,  "bad-refcount-table-offset", ERROR, false, "refcount table offset unaligned or overflowing") \
    X(SNAPSHOT_TABLE_TOO_LARGE, "snapshot-table-too-large", ERROR, false, "more than 65536 snapshots") \
    X(BAD_SNAPSHOT_OFFSET,  "bad-snapshot-table-offset", ERROR, false, "snapshot table offset unaligned") \
    X(L1_TOO_LARGE,         "l1-too-large",         ERROR,  false, "active L1 table above 32 MiB") \
    X(BAD_L1_OFFSET,        "bad-l1-offset",        ERROR,  false, "active L1 table offset unaligned") \
    X(IMAGE_TOO_BIG,        "image-too-big",        ERROR,  false, "virtual size needs more than INT_MAX L1 entries") \
    X(L1_TOO_SMALL,         "l1-too-small",         ERROR,  false, "L1 table does not cover the virtual size") \
    X(BAD_CRYPT_METHOD,     "bad-crypt-method",     ERROR,  false, "unknown encryption method") \
    X(DATA_FILE_REQUIRED,   "data-file-required",   INFO,   false, "external data file bit set without a data file name") \
    X(RAW_WITHOUT_DATA_FILE,"raw-without-data-file",INFO,   false, "raw external data bit without external data file bit") \
    X(MISSING_CRYPTO_HEADER,"missing-crypto-header",ERROR,  false, "LUKS image without a crypto header extension") \
    X(BACKING_NAME_TOO_LONG,"backing-name-too-long",ERROR,  false, "backing file name too long or past cluster 0") \
    X(TRUNCATED_HEADER,     "truncated-header",     ERROR,  false, "the file ends inside the header") \
    /* header extensions (docs/format.md §3, docs/qemu-behaviour.md §1.3) */ \
    X(EXT_TOO_LARGE,        "extension-too-large",  ERROR,  false, "header extension runs past the extension area") \
    X(EXT_TRUNCATED,        "extension-truncated",  ERROR,  false, "header extension runs past the end of the file") \
    X(EXT_NO_END,           "extension-no-end-marker", INFO, false, "extension area has no end marker") \
    X(EXT_BACKING_FORMAT,   "bad-backing-format-extension", ERROR, false, "backing format name of 16 bytes or more") \
    X(EXT_CRYPTO,           "bad-crypto-extension", ERROR,  false, "crypto header extension invalid") \
    X(LUKS_HEADER,          "bad-luks-header",      ERROR,  false, "LUKS header that QEMU cannot open with the key") \
    X(EXT_BITMAPS,          "bad-bitmaps-extension",ERROR,  false, "bitmaps extension invalid") \
    X(EXT_FEATURE_TABLE,    "bad-feature-table",    INFO,   false, "feature name table length not a multiple of 48") \
    X(EXT_DUPLICATE,        "duplicate-extension",  INFO,   false, "a known extension appears more than once") \
    X(BITMAPS_WITHOUT_AUTOCLEAR, "bitmaps-inconsistent", INFO, false, "bitmaps extension present but autoclear bit 0 clear") \
    /* opening for a check (qemu-img check's refusals) */ \
    X(NOT_QCOW2,            "not-qcow2",            ERROR,  false, "not an image format with a check (probed as raw)") \
    X(LEGACY_QCOW,          "legacy-qcow",          ERROR,  false, "qcow version 1 image: QEMU's qcow driver has no check") \
    X(OPEN_FAILED,          "open-failed",          ERROR,  false, "the file cannot be opened") \
    X(L1_UNREADABLE,        "l1-unreadable",        ERROR,  false, "active L1 table past QEMU's largest readable offset") \
    X(REFTABLE_UNREADABLE,  "refcount-table-unreadable", ERROR, false, "refcount table past QEMU's largest readable offset") \
    X(ENCRYPTED,            "encrypted",            ERROR,  false, "encrypted image: the check needs the key") \
    X(DATA_FILE_MISSING,    "data-file-missing",    ERROR,  false, "the external data file cannot be opened") \
    X(BITMAP_DIRECTORY,     "bad-bitmap-directory", ERROR,  false, "bitmap directory or bitmap table refused by QEMU") \
    X(SIZE_TOO_LARGE,       "size-too-large",       ERROR,  false, "virtual size beyond QEMU's largest block device") \
    X(BACKING_OPEN_FAILED,  "backing-open-failed",  ERROR,  false, "the backing file cannot be opened") \
    X(NOT_FOLLOWED,         "file-not-followed",    ERROR,  false, "a backing or data file the header names lies outside the image's directory") \
    X(TOO_MANY_CLUSTERS,    "too-many-clusters",    INFO,   false, "file of more than INT_MAX clusters (qemu-img check refuses it)") \
    /* qemu-img check's findings (docs/qemu-behaviour.md §3.3-§3.8, in QEMU's words) */ \
    X(REFCOUNT_MISMATCH,    "refcount-mismatch",    CORRUPTION, true, "on-disk refcount below the references found") \
    X(LEAK,                 "leak",                 LEAK,   true,  "on-disk refcount above the references found") \
    X(REFCOUNT_UNREADABLE,  "refcount-unreadable",  ERROR,  true,  "refcount cannot be read (bad refcount block)") \
    X(REFCOUNT_OVERFLOW,    "refcount-overflow",    CORRUPTION, false, "more references than the refcount width can count") \
    X(BEYOND_EOF,           "beyond-eof",           CORRUPTION, false, "a reference ends one cluster or more past the end of the file") \
    X(L1_RESERVED,          "l1-reserved-bits",     CORRUPTION, false, "L1 entry with reserved bits set") \
    X(L2_TABLE_UNALIGNED,   "unaligned-l2-table",   CORRUPTION, false, "L1 entry pointing to an unaligned L2 table") \
    X(L2_RESERVED,          "l2-reserved-bits",     CORRUPTION, false, "L2 entry with reserved bits set") \
    X(COMPRESSED_COPIED,    "compressed-copied",    CORRUPTION, false, "compressed cluster with OFLAG_COPIED") \
    X(COMPRESSED_DATA_FILE, "compressed-with-data-file", CORRUPTION, false, "compressed cluster in an image with an external data file") \
    X(COMPRESSED_BITMAP,    "compressed-with-bitmap", CORRUPTION, false, "compressed cluster with a subcluster bitmap") \
    X(SUBCLUSTER_BITMAP,    "bad-subcluster-bitmap", CORRUPTION, false, "subcluster both allocated and zero") \
    X(UNALLOCATED_BITMAP,   "unallocated-with-bitmap", CORRUPTION, false, "unallocated cluster with allocated subclusters") \
    X(L2_UNALIGNED,         "unaligned-l2",         CORRUPTION, true, "L2 entry pointing to an unaligned cluster") \
    X(REFTABLE_RESERVED,    "reftable-reserved-bits", CORRUPTION, true, "refcount table entry with reserved bits set") \
    X(REFBLOCK_UNALIGNED,   "unaligned-refblock",   CORRUPTION, true,  "refcount table entry pointing to an unaligned block") \
    X(REFBLOCK_OUTSIDE,     "refblock-outside-image", CORRUPTION, true, "refcount block beyond the end of the file") \
    X(OVERLAP,              "overlap",              CORRUPTION, true,  "refcount block sharing its cluster with other data") \
    X(OFLAG_COPIED,         "oflag-copied",         CORRUPTION, true,  "OFLAG_COPIED does not match refcount == 1") \
    X(SNAPSHOT_L1_UNALIGNED,"snapshot-l1-unaligned", CORRUPTION, false, "snapshot L1 table not cluster aligned") \
    X(SNAPSHOT_L1_TOO_LARGE,"snapshot-l1-too-large", CORRUPTION, false, "snapshot L1 table above 32 MiB") \
    X(SNAPSHOTS_DATA_FILE,  "snapshots-with-data-file", CORRUPTION, false, "internal snapshots in an image with an external data file") \
    X(SNAPSHOT_INCOMPLETE,  "snapshot-incomplete",  CORRUPTION, true,  "v3 snapshot entry with less than 16 bytes of extra data") \
    X(SNAPSHOT_OVERHANG,    "snapshot-overhang",    CORRUPTION, true,  "more than 65536 snapshots: the ones past the limit are discarded by -r all") \
    X(SNAPSHOT_EXTRA_TOO_LARGE, "snapshot-extra-too-large", CORRUPTION, true, "snapshot entry with more than 1024 bytes of extra data: cut by -r all") \
    X(SNAPSHOT_TABLE_TOO_BIG, "snapshot-table-too-big", CORRUPTION, true, "snapshot table above 64 MiB: the entries from there on are discarded by -r all") \
    X(SNAPSHOT_TABLE_INVALID, "bad-snapshot-table", ERROR, true,  "snapshot table pointer or contents refused: check stopped") \
    X(CHECK_IO_ERROR,       "check-io-error",       ERROR,  false, "a table QEMU cannot read: check stopped") \
    X(CHECK_NO_MEMORY,      "check-out-of-memory",  ERROR,  false, "a reference so far out that QEMU runs out of memory: check stopped") \
    X(CHECK_ABORT,          "check-abort",          ERROR,  false, "a reference so far out that qemu-img check aborts") \
    X(BITMAP_CHECK_FAILED,  "bad-bitmap-table",     CORRUPTION, false, "bitmap table refused during the check: check stopped") \
    /* findings qemu-img check is silent about */ \
    X(METADATA_OVERLAP,     "metadata-overlap",     INFO,   false, "a metadata cluster is also used by another structure or as data") \
    X(COMPRESSED_PAST_EOF,  "compressed-past-eof",  INFO,   false, "compressed data runs past the end of the file") \
    X(COMPRESSED_CORRUPT,   "compressed-corrupt",   INFO,   false, "compressed cluster that does not inflate to a full cluster") \
    X(SNAPSHOT_L1_PAST_EOF, "snapshot-l1-past-eof", INFO,   false, "snapshot L1 table partly past the end of the file") \
    X(SNAPSHOT_DUPLICATE_ID,"snapshot-duplicate-id", INFO,  false, "two snapshots with the same ID") \
    X(BITMAP_IN_USE,        "bitmap-in-use",        INFO,   false, "bitmap marked in use (inconsistent)") \
    X(BITMAP_TABLE_DAMAGE,  "bitmap-table-damage",  INFO,   false, "bitmap table entry or data cluster past the end of the file") \
    X(L2_PAST_EOF,          "l2-past-eof",          INFO,   false, "L2 table partly past the end of the file (read as zeros)") \
    X(REFBLOCK_PAST_EOF,    "refblock-past-eof",    INFO,   false, "refcount block partly past the end of the file (read as zeros)") \
    X(LOST_METADATA,        "lost-metadata",        INFO,   false, "leaked clusters that look like lost metadata (L2 tables mapping other leaked clusters): qc-repair refuses, qc-salvage recovers") \
    X(QEMU_REPORT,          "report",               INFO,   false, "a line of QEMU's report that is not a finding of its own")

enum qc_problem_kind {
#define QC_PK_ENUM(name, id, sev, fix, desc) QC_P_##name,
    QC_PROBLEM_KINDS(QC_PK_ENUM)
#undef QC_PK_ENUM
    QC_P_COUNT
};

struct qc_problem_info {
    const char *id;              /* stable identifier, as in JSON "kind" */
    enum qc_severity severity;   /* default severity */
    bool repairable;             /* qc-repair fixes it */
    const char *description;
};

const struct qc_problem_info *qc_problem_info(enum qc_problem_kind kind);
const char *qc_severity_name(enum qc_severity sev);

#define QC_NO_OFFSET UINT64_MAX

struct qc_problem {
    enum qc_problem_kind kind;
    enum qc_severity severity;
    uint64_t offset;      /* host byte offset involved, or QC_NO_OFFSET */
    uint64_t cluster;     /* host cluster index involved, or QC_NO_OFFSET */
    uint64_t value;       /* a kind-specific number (entry, count...) */
    char *message;        /* the message QEMU prints, or our own wording */
};

struct qc_problems {
    struct qc_problem *v;
    size_t n, cap;
    size_t dropped;       /* problems not kept once the list is full */
    size_t limit;         /* 0 = default limit */
};

/* Appends a problem with the catalogue's severity; printf-style message. */
struct qc_problem *qc_problem_add(struct qc_problems *list, enum qc_problem_kind kind,
                                  uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
struct qc_problem *qc_problem_add_sev(struct qc_problems *list, enum qc_problem_kind kind,
                                      enum qc_severity sev, uint64_t offset,
                                      const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool qc_problems_has(const struct qc_problems *list, enum qc_problem_kind kind);
void qc_problems_free(struct qc_problems *list);

#endif
