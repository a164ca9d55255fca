/* Persistent dirty bitmaps (docs/format.md §8): directory and tables. */
#ifndef QC_BITMAP_H
#define QC_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"

#define QC_BME_FLAG_IN_USE  (1u << 0)
#define QC_BME_FLAG_AUTO    (1u << 1)
#define QC_BME_FLAG_EXTRA   (1u << 2)

#define QC_BMT_OFFSET_MASK   0x00FFFFFFFFFFFE00ull
#define QC_BMT_RESERVED_MASK 0xFF000000000001FEull
#define QC_BMT_ALL_ONES      1ull

#define QC_BITMAP_DIR_ENTRY_FIXED 24

struct qc_bitmap {
    uint64_t entry_offset;     /* file offset of the directory entry */
    uint64_t table_offset;
    uint32_t table_size;       /* entries */
    uint32_t flags;
    uint8_t type;
    uint8_t granularity_bits;
    uint16_t name_size;
    uint32_t extra_data_size;
    char *name;                /* name_size bytes + NUL (as far as present) */
    size_t entry_len;          /* bytes the entry takes, padded to 8 */
};

struct qc_bitmap_dir {
    struct qc_bitmap *v;
    size_t n;
    bool truncated;            /* the directory ended early */
};

/* Parses NB entries out of the directory bytes BUF[0..LEN) read from
 * DIR_OFFSET.  Stops (truncated = true) at an entry that does not fit. */
int qc_bitmap_dir_parse(struct qc_bitmap_dir *d, const uint8_t *buf, size_t len,
                        uint64_t dir_offset, uint32_t nb);
void qc_bitmap_dir_free(struct qc_bitmap_dir *d);

enum qc_bmt_kind { QC_BMT_ALL_ZEROES, QC_BMT_ALL_ONES_KIND, QC_BMT_SERIALIZED, QC_BMT_INVALID };

/* QEMU's limits on a directory entry (qcow2-bitmap.c check_dir_entry). */
#define QC_BITMAP_MAX_TABLE_SIZE   0x8000000ull
#define QC_BITMAP_MAX_PHYS_SIZE    0x20000000ull
#define QC_BITMAP_MIN_GRANULARITY  9
#define QC_BITMAP_MAX_GRANULARITY  31
#define QC_BITMAP_MAX_NAME_SIZE    1023
#define QC_BITMAP_RESERVED_FLAGS   0xfffffffcu

/* Does entry B satisfy QEMU's constraints for an image of DISK_SIZE bytes
 * with CLUSTER_SIZE-byte clusters?  (QEMU refuses to open it otherwise:
 * "Bitmap 'NAME' doesn't satisfy the constraints".) */
bool qc_bitmap_entry_valid(const struct qc_bitmap *b, uint64_t cluster_size, uint64_t disk_size);

/* Classifies a bitmap table entry as qcow2.py does. */
enum qc_bmt_kind qc_bitmap_table_entry_kind(uint64_t entry);
const char *qc_bitmap_table_kind_name(enum qc_bmt_kind k);

/* QEMU's limits (block/qcow2-bitmap.c) */
#define QC_BITMAP_MAX_DIR_SIZE     (1024ull * 65535)

/* The directory as QEMU 7.2 loads it (at open and again in the check):
 * the same walk, the same constraints (DISK_LEN = the virtual size rounded
 * down to 512) and the same first failure.  Returns 0, or -errno with a
 * malloc'ed *ERR.  D keeps the entries accepted so far. */
int qc_bitmap_dir_load_qemu(struct qc_file *f, uint64_t dir_offset, uint64_t dir_size,
                            uint32_t nb_bitmaps, unsigned cluster_bits, uint64_t disk_len,
                            struct qc_bitmap_dir *d, char **err);

/* A bitmap table as QEMU loads it: every entry validated.  Returns 0 with
 * *TABLE (host order, table_size entries, malloc'ed), -EIO, -ENOMEM, or
 * -EINVAL with *BAD_INDEX = the first invalid entry. */
int qc_bitmap_table_load_qemu(struct qc_file *f, const struct qc_bitmap *b,
                              unsigned cluster_bits, uint64_t **table, uint32_t *bad_index);

/* Is ENTRY a valid bitmap table entry for QEMU? */
bool qc_bitmap_table_entry_valid(uint64_t entry, unsigned cluster_bits);

/* The number of table entries QEMU expects for a bitmap of 2^GRAN_BITS-byte
 * granularity over DISK_LEN bytes (its serialization size in clusters). */
uint64_t qc_bitmap_table_size_needed(uint64_t disk_len, unsigned gran_bits,
                                     unsigned cluster_bits);

#endif
