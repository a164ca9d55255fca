/*
 * Write logs: the record a qc tool keeps of every change it makes to an
 * image file, data included (--record), and dm-log-writes logs as QEMU's
 * blklogwrites driver writes them (docs/qemu-behaviour.md §7).  Both read
 * into the same list of operations, so a crash tester can rebuild the file
 * as it was after any prefix of the writes.
 */
#ifndef QC_WLOG_H
#define QC_WLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum qc_wlog_op {
    QC_WLOG_WRITE = 1,     /* DATA (LENGTH bytes) at OFFSET */
    QC_WLOG_ZERO = 2,      /* [OFFSET, +LENGTH) reads as zeros; may grow the file */
    QC_WLOG_DISCARD = 3,   /* [OFFSET, +LENGTH) released (reads as zeros), size kept */
    QC_WLOG_TRUNCATE = 4,  /* the file becomes OFFSET bytes long */
    QC_WLOG_FLUSH = 5,     /* everything before is on stable storage */
    QC_WLOG_MARK = 6,      /* a marker: OFFSET = kind (enum qc_mark), LENGTH = value */
    QC_WLOG_CRASH = 7,     /* the writer stopped here (simulated power failure) */
};

struct qc_wlog_entry {
    enum qc_wlog_op op;
    uint8_t event;         /* enum qc_event of the write (records only) */
    uint64_t offset;
    uint64_t length;
    const uint8_t *data;   /* QC_WLOG_WRITE: points into the loaded log */
};

enum qc_wlog_format { QC_WLOG_RECORD, QC_WLOG_DM_LOG_WRITES };

struct qc_wlog {
    enum qc_wlog_format format;
    struct qc_wlog_entry *v;
    size_t n;
    uint8_t *buf;          /* the whole log file */
    size_t buf_len;
    /* dm-log-writes only */
    uint32_t sector_size;
    uint64_t nr_entries;   /* as the superblock says (entries up to the last flush) */
    bool superblock_valid; /* false for a log that never saw a flush */
    size_t parsed_entries; /* entries found, counted or not */
};

/* Magic at the start of a record file. */
#define QC_WLOG_RECORD_MAGIC "QCWLOG01"
/* dm-log-writes superblock magic ("rhswfsj" little-endian). */
#define QC_WLOG_DM_MAGIC 0x6A736677736872ull

/* Loads PATH, recognising the format by its first bytes.  Returns 0, or -1
 * with a message in ERR. */
int qc_wlog_load(struct qc_wlog *l, const char *path, char *err, size_t errlen);
/* Parses BUF (taken over: freed by qc_wlog_free). */
int qc_wlog_parse(struct qc_wlog *l, uint8_t *buf, size_t len, char *err, size_t errlen);
void qc_wlog_free(struct qc_wlog *l);

/* Writing a record: the magic once, then one call per operation.
 * Returns 0 or -1 (I/O error on OUT). */
int qc_wlog_put_magic(FILE *out);
int qc_wlog_put(FILE *out, enum qc_wlog_op op, uint8_t event, uint64_t offset,
                uint64_t length, const void *data);

/* Applies entry E to the file image held in *BUF (*LEN bytes, capacity
 * *CAP), growing it as needed; TORN_BYTES, when not UINT64_MAX, limits a
 * write or zeroing to its first TORN_BYTES bytes.  Returns 0 or -1 (out of
 * memory, or a length beyond LIMIT). */
int qc_wlog_apply(const struct qc_wlog_entry *e, uint8_t **buf, uint64_t *len,
                  uint64_t *cap, uint64_t torn_bytes, uint64_t limit);

#endif
