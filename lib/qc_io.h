/*
 * File I/O: the single place where image bytes are read and written.
 *
 * Reads are bounds-checked against the file size; writes go through the
 * write log, the statistics and the crash-injection hooks.  Writers take
 * QEMU-compatible image locks (open-file-description locks on bytes 100+i
 * and 200+i, see qcow2-facts §11).
 */
#ifndef QC_IO_H
#define QC_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Error codes used across the library (negative errno values also occur). */
enum {
    QC_OK = 0,
    QC_E_RANGE = -1000,   /* offset/length outside the file or overflowing */
    QC_E_NOMEM = -1001,
    QC_E_LOCKED = -1002,  /* another process holds a conflicting lock */
    QC_E_CRASH = -1003,   /* simulated power failure (never returned: exits) */
    QC_E_FORMAT = -1004,  /* structure cannot be parsed */
};

/* Kinds of writes: QEMU blkdebug event names (qcow2-facts §9). */
enum qc_event {
    QC_EV_NONE = 0,
    QC_EV_L1_UPDATE,
    QC_EV_L1_GROW_ALLOC_TABLE,
    QC_EV_L1_GROW_WRITE_TABLE,
    QC_EV_L1_GROW_ACTIVATE_TABLE,
    QC_EV_L2_UPDATE,
    QC_EV_L2_UPDATE_COMPRESSED,
    QC_EV_L2_ALLOC_COW_READ,
    QC_EV_L2_ALLOC_WRITE,
    QC_EV_WRITE_AIO,
    QC_EV_WRITE_COMPRESSED,
    QC_EV_COW_WRITE,
    QC_EV_REFTABLE_GROW,
    QC_EV_REFTABLE_UPDATE,
    QC_EV_REFBLOCK_UPDATE,
    QC_EV_REFBLOCK_UPDATE_PART,
    QC_EV_REFBLOCK_ALLOC,
    QC_EV_REFBLOCK_ALLOC_HOOKUP,
    QC_EV_REFBLOCK_ALLOC_WRITE,
    QC_EV_REFBLOCK_ALLOC_WRITE_BLOCKS,
    QC_EV_REFBLOCK_ALLOC_WRITE_TABLE,
    QC_EV_REFBLOCK_ALLOC_SWITCH_TABLE,
    QC_EV_CLUSTER_ALLOC,
    QC_EV_CLUSTER_ALLOC_BYTES,
    QC_EV_CLUSTER_FREE,
    QC_EV_CLUSTER_ALLOC_SPACE,
    QC_EV_HEADER_UPDATE,     /* not a blkdebug name: header rewrites */
    QC_EV_SNAPSHOT_UPDATE,   /* not a blkdebug name: snapshot table writes */
    QC_EV_REPAIR,            /* not a blkdebug name: qc-repair writes */
    QC_EV_RESTORE,           /* not a blkdebug name: undo of a repair */
    QC_EV_COUNT
};

const char *qc_event_name(enum qc_event ev);
/* Returns QC_EV_NONE when the name is unknown. */
enum qc_event qc_event_from_name(const char *name);

/* Statistics classes for --stats (what lazy refcounts save). */
enum qc_write_class {
    QC_WC_DATA, QC_WC_L2, QC_WC_L1, QC_WC_REFBLOCK, QC_WC_REFTABLE,
    QC_WC_HEADER, QC_WC_OTHER, QC_WC_COUNT
};
enum qc_write_class qc_event_class(enum qc_event ev);
const char *qc_write_class_name(enum qc_write_class c);

/* Crash injection settings, shared by every writing tool. */
struct qc_crash {
    int64_t after;            /* stop after this many writes; -1 = off */
    enum qc_event at_event;   /* stop before the K-th write of this kind */
    uint64_t at_count;        /* K (1-based) */
    bool torn;                /* last write before the crash lands partly */
};

struct qc_file {
    int fd;
    bool writable;
    bool locked;
    uint64_t size;            /* current file length */
    char *path;

    /* write accounting */
    uint64_t nwrites;
    uint64_t nflushes;
    uint64_t epoch;           /* flush epoch: number of completed flushes */
    uint64_t event_count[QC_EV_COUNT];
    uint64_t class_writes[QC_WC_COUNT];
    uint64_t class_bytes[QC_WC_COUNT];

    struct qc_crash crash;
    FILE *log;                /* JSON Lines write log, or NULL */
    bool no_flush;            /* cache=unsafe: flushes are not issued */
};

#define QC_OPEN_WRITE   0x1u  /* read-write */
#define QC_OPEN_FORCE   0x2u  /* ignore lock conflicts */
#define QC_OPEN_NOLOCK  0x4u  /* take no locks (tests, private copies) */
#define QC_OPEN_CREATE  0x8u  /* create/truncate (implies write) */

/* Opens PATH.  Read-only opens take no lock.  Returns 0 or a negative code;
 * on QC_E_LOCKED, *why (if given) names the conflicting permission. */
int qc_file_open(struct qc_file *f, const char *path, unsigned flags,
                 const char **why);
void qc_file_close(struct qc_file *f);

/* True when [off, off+len) lies inside the file (overflow-safe). */
bool qc_file_has(const struct qc_file *f, uint64_t off, uint64_t len);

/* Exact read: fails with QC_E_RANGE unless [off, off+len) is inside the file. */
int qc_file_read(struct qc_file *f, uint64_t off, void *buf, size_t len);

/* QEMU-style read: bytes past the end of the file read as zeros.  Returns the
 * number of bytes that came from the file, or a negative code. */
int64_t qc_file_read_padded(struct qc_file *f, uint64_t off, void *buf, size_t len);

/* QEMU's block layer refuses requests that end past this offset
 * (BDRV_MAX_LENGTH = 2^63 - 2^30) or start at a negative int64 offset. */
#define QC_QEMU_MAX_LENGTH 0x7FFFFFFFC0000000ull

/* Would QEMU's block layer accept a read of LEN bytes at OFF? */
static inline bool qc_qemu_read_ok(uint64_t off, uint64_t len)
{
    return off <= QC_QEMU_MAX_LENGTH && len <= QC_QEMU_MAX_LENGTH - off;
}

/* A read as qemu-img performs it: -EIO where QEMU's block layer refuses the
 * request (qc_qemu_read_ok), otherwise zeros past the end of the file. */
int qc_file_read_qemu(struct qc_file *f, uint64_t off, void *buf, size_t len);

/* Write through the log and crash hooks; may grow the file. */
int qc_file_write(struct qc_file *f, uint64_t off, const void *buf, size_t len,
                  enum qc_event ev);
int qc_file_flush(struct qc_file *f);
int qc_file_truncate(struct qc_file *f, uint64_t size);

/* Lock probing without taking anything: true if some other process holds a
 * lock on the QEMU permission bytes (100..103, 200..203).  *writer is set
 * when someone holds the "write" permission. */
int qc_file_probe_locks(const char *path, bool *in_use, bool *writer);

/* Exit status used for a simulated power failure. */
#define QC_CRASH_EXIT 99

#endif
