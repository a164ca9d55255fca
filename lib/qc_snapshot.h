/* The internal snapshot table (docs/format.md §7). */
#ifndef QC_SNAPSHOT_H
#define QC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QC_SNAPSHOT_ENTRY_FIXED   40
#define QC_SNAPSHOT_MAX_EXTRA     1024
#define QC_SNAPSHOT_MAX           65536
#define QC_SNAPSHOT_TABLE_MAX     (64ull << 20)

struct qc_snapshot {
    uint64_t entry_offset;     /* file offset of this entry */
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint16_t id_str_size;
    uint16_t name_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size;
    uint32_t extra_data_size;
    /* extra data fields, when the extra data is long enough */
    bool has_vm_state_size_large, has_disk_size, has_icount;
    uint64_t vm_state_size_large;
    uint64_t disk_size;
    uint64_t icount;
    uint8_t *extra;            /* raw extra data (extra_data_size bytes) */
    char *id_str;              /* NUL-terminated copies */
    char *name;
    uint64_t entry_len;        /* bytes the entry takes, padded to 8 */
};

struct qc_snapshot_table {
    struct qc_snapshot *v;
    size_t n;
    uint64_t offset;           /* snapshots_offset */
    uint64_t size;             /* bytes the parsed entries take */
    bool truncated;            /* an entry ran past the bytes given */
    size_t too_much_extra;     /* index+1 of the first entry with extra > 1024, or 0 */
    /* a repairing read (qc_snapshot_table_read_qemu_repair): */
    struct qc_snapshot_drop {
        uint32_t index, size;  /* entry whose extra data was cut to 1024 bytes, old size */
    } *drops;
    size_t ndrops;
    uint32_t discarded;        /* entries dropped from the end: the table grew too big */
};

/* Parses NB entries from BUF[0..LEN) (the bytes at OFFSET).  Entries whose
 * extra data exceeds 1024 bytes are still parsed (too_much_extra notes the
 * first); parsing stops at the first entry that does not fit. */
int qc_snapshot_table_parse(struct qc_snapshot_table *t, const uint8_t *buf, size_t len,
                            uint64_t offset, uint32_t nb);
void qc_snapshot_table_free(struct qc_snapshot_table *t);

/* Reads NB entries at OFFSET as QEMU 7.2 reads the table for a check
 * (qcow2_do_read_snapshots without repair): zeros past the end of the file,
 * the same limits and the same order of failures.  T->size gets the byte
 * length QEMU counts (end of the last name, not padded).  On failure
 * returns -errno and sets *ERR (and *HINT when QEMU adds one; both
 * malloc'ed); T keeps the entries read before the failure. */
struct qc_file;
int qc_snapshot_table_read_qemu(struct qc_file *f, uint64_t offset, uint32_t nb,
                                struct qc_snapshot_table *t, char **err, char **hint);

/* The same read as qemu-img check -r all does it: extra data above 1024
 * bytes is cut to its first 1024 bytes (the entry's full size is still
 * skipped; T->drops lists each), and when the table grows too big the
 * entries from that one on are discarded (T->discarded) instead of failing. */
int qc_snapshot_table_read_qemu_repair(struct qc_file *f, uint64_t offset, uint32_t nb,
                                       struct qc_snapshot_table *t, char **err, char **hint);

/* The table as QEMU writes it back (qcow2_write_snapshots): every entry
 * with at least the 24 known bytes of extra data (missing fields: the
 * 32-bit VM state size, DISK_SIZE, no icount), ID and name cut at their
 * first NUL.  *OUT (malloc'ed, *LEN bytes; NULL for an empty table).
 * Returns -EFBIG when the result exceeds 64 MiB. */
int qc_snapshot_table_serialize_qemu(const struct qc_snapshot_table *t, uint64_t disk_size,
                                     uint8_t **out, uint64_t *len);

/* Serializes entry S (with the extra data it has) into OUT (capacity
 * qc_snapshot_entry_size(S)); returns bytes written. */
uint64_t qc_snapshot_entry_size(const struct qc_snapshot *s);
uint64_t qc_snapshot_entry_serialize(const struct qc_snapshot *s, uint8_t *out);

#endif
