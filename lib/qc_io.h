/*
 * File I/O: the single place where image bytes are read and written.
 *
 * Reads are bounds-checked against the file size; writes go through the
 * write log, the statistics and the crash-injection hooks.  Writers take
 * QEMU-compatible image locks (open-file-description locks on bytes 100+i
 * and 200+i, see docs/qemu-behaviour.md §2.2).
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
    QC_E_SIDEFILE = -1005, /* a log or output file was refused (the reason is given) */
    QC_E_SHRANK = -1006,  /* the file ended early: it shrank after it was opened */
};

/* Kinds of writes: QEMU blkdebug event names (docs/qemu-behaviour.md §6). */
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
    /* blkdebug events that are not writes themselves; --crash-at on them
     * stops before the next write */
    QC_EV_REFBLOCK_LOAD,
    QC_EV_L2_LOAD,
    QC_EV_COW_READ,
    QC_EV_REFTABLE_LOAD,
    QC_EV_FLUSH_TO_OS,
    QC_EV_FLUSH_TO_DISK,
    QC_EV_READ_AIO,
    QC_EV_READ_BACKING_AIO,
    QC_EV_READ_COMPRESSED,
    QC_EV_PWRITEV,           /* before every write to the file */
    QC_EV_PWRITEV_ZERO,      /* before every write-zeroes to the file */
    QC_EV_PWRITEV_DONE,      /* after every write to the file */
    /* known to blkdebug, never fired by the writers here */
    QC_EV_VMSTATE_LOAD,
    QC_EV_VMSTATE_SAVE,
    QC_EV_L1_SHRINK_WRITE_TABLE,
    QC_EV_L1_SHRINK_FREE_L2_CLUSTERS,
    QC_EV_EMPTY_IMAGE_PREPARE,
    QC_EV_COR_WRITE,
    QC_EV_PWRITEV_RMW_HEAD,
    QC_EV_PWRITEV_RMW_AFTER_HEAD,
    QC_EV_PWRITEV_RMW_TAIL,
    QC_EV_PWRITEV_RMW_AFTER_TAIL,
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
    /* flushes by the kind of the last write before them (what they made durable) */
    uint64_t class_flushes[QC_WC_COUNT];
    enum qc_write_class last_class;

    struct qc_crash crash;
    bool crash_armed;         /* --crash-at's event has fired: stop at the next write */
    FILE *log;                /* JSON Lines write log, or NULL */
    FILE *record;             /* binary record with data (qc_wlog.h), or NULL */
    bool no_flush;            /* cache=unsafe: flushes are not issued */
    bool unflushed;           /* something was written since the last flush */
};

#define QC_OPEN_WRITE   0x1u  /* read-write */
#define QC_OPEN_FORCE   0x2u  /* ignore lock conflicts */
#define QC_OPEN_NOLOCK  0x4u  /* take no locks (tests, private copies) */
#define QC_OPEN_CREATE  0x8u  /* create/truncate (implies write) */
#define QC_OPEN_BACKING 0x10u /* read-only, locked as a writer's backing file */

/* Opens PATH.  Read-only opens take no lock unless BACKING.  Returns 0 or a
 * negative code; on QC_E_LOCKED, *why (if given) is what QEMU's message
 * names: "Failed to get %s lock" with \"write\" or shared \"write\" etc. */
int qc_file_open(struct qc_file *f, const char *path, unsigned flags,
                 const char **why);
void qc_file_close(struct qc_file *f);

/* Rereads the file's length (another open file may have changed it). */
int qc_file_refresh_size(struct qc_file *f);

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
/* Every change to the file goes through the functions below: each counts
 * as one write for --crash-after, fires its event EV (and pwritev), is
 * logged, recorded with its data, and may be the point of a simulated
 * power failure. */

/* Write; may grow the file. */
int qc_file_write(struct qc_file *f, uint64_t off, const void *buf, size_t len,
                  enum qc_event ev);
/* Makes [off, off+len) read as zeros, growing the file if needed
 * (fallocate ZERO_RANGE where the file system has it, else zeros written). */
int qc_file_write_zeroes(struct qc_file *f, uint64_t off, uint64_t len,
                         enum qc_event ev);
/* Releases [off, off+len) inside the file (hole punch, size kept).  Where
 * the file system cannot punch holes nothing changes, as for QEMU. */
int qc_file_discard(struct qc_file *f, uint64_t off, uint64_t len, enum qc_event ev);
int qc_file_truncate(struct qc_file *f, uint64_t size);

/* fdatasync, skipped (as QEMU skips it) when nothing was written since the
 * previous one.  A flush ends a flush epoch. */
int qc_file_flush(struct qc_file *f);

/* A blkdebug event that is not itself a write: counted for --crash-at. */
void qc_file_event(struct qc_file *f, enum qc_event ev);

/* Marks in the binary record (what a writing tool was doing), for the
 * crash tester: commands begin and end, and which are acknowledged. */
enum qc_mark {
    QC_MARK_BEGIN = 1,        /* command VALUE starts */
    QC_MARK_END = 2,          /* command VALUE completed */
    QC_MARK_ACK = 3,          /* commands 0..VALUE-1 are on stable storage */
    QC_MARK_FAILED = 4,       /* command VALUE failed (its effect is unknown) */
};
void qc_file_mark(struct qc_file *f, enum qc_mark kind, uint64_t value);

/* Lock probing without taking anything: true if some other process holds a
 * lock on the QEMU permission bytes (100..103, 200..203).  *writer is set
 * when someone holds the "write" permission. */
int qc_file_probe_locks(const char *path, bool *in_use, bool *writer);

/* The read-only tools do not refuse an image a writer holds (qemu-img does,
 * without -U): they say once on ERR, naming PATH, that its metadata may be
 * stale.  Returns true when it warned. */
bool qc_warn_live_writer(FILE *err, const char *prog, const char *path);

/* QEMU's locks on a descriptor opened elsewhere, taken then checked as
 * QEMU does: as a read-write user (read, write, resize; write and resize
 * not shared), or as a writer's backing file (read; write and resize not
 * shared).  QC_E_LOCKED with *why naming the lock on a conflict (as for
 * qc_file_open);
 * FORCE takes what it can and ignores conflicts. */
int qc_fd_lock_writer(int fd, bool force, const char **why);
int qc_fd_lock_backing(int fd, bool force, const char **why);

/* Exit status used for a simulated power failure. */
#define QC_CRASH_EXIT 99

/* The crash-injection and logging options every writing tool accepts, for
 * getopt_long tables: { "crash-after", required_argument, NULL,
 * QC_IO_OPT_CRASH_AFTER } and so on (QC_IO_LONG_OPTIONS lists them all). */
enum {
    QC_IO_OPT_CRASH_AFTER = 0x4000,
    QC_IO_OPT_CRASH_AT,
    QC_IO_OPT_TORN,
    QC_IO_OPT_WRITE_LOG,
    QC_IO_OPT_RECORD,
};
#define QC_IO_LONG_OPTIONS \
    { "crash-after", 1, NULL, QC_IO_OPT_CRASH_AFTER }, \
    { "crash-at", 1, NULL, QC_IO_OPT_CRASH_AT }, \
    { "torn", 0, NULL, QC_IO_OPT_TORN }, \
    { "write-log", 1, NULL, QC_IO_OPT_WRITE_LOG }, \
    { "record", 1, NULL, QC_IO_OPT_RECORD }

#define QC_IO_OPTIONS_HELP \
    "      --crash-after N        let N writes reach the file, then stop as if power\n" \
    "                             failed (exit status 99)\n" \
    "      --crash-at EVENT[:K]   stop before the next write after the K-th firing of\n" \
    "                             the blkdebug event EVENT (default K=1)\n" \
    "      --torn                 the write the crash interrupts lands partly (cut at\n" \
    "                             a 512-byte boundary)\n" \
    "      --write-log FILE       one JSON line per write: seq, offset, length, event,\n" \
    "                             epoch (number of completed flushes)\n" \
    "      --record FILE          binary record of every write with its data (for\n" \
    "                             tools/crashtest)\n"

struct qc_protect;
struct qc_io_opts {
    struct qc_crash crash;
    const char *write_log;
    const char *record;
    bool overwrite;            /* an existing log or record may be replaced (--force) */
    /* files the log and record must never be, besides the image itself
     * (its data file, its backing chain: qc_image_protect_chain) */
    const struct qc_protect *protect;
};

void qc_io_opts_init(struct qc_io_opts *o);
/* Handles one of the options above.  Returns 1 when OPT was one of them,
 * 0 when it is not ours, -1 (with a message in ERR) for a bad argument. */
int qc_io_opts_parse(struct qc_io_opts *o, int opt, const char *arg,
                     char *err, size_t errlen);
/* Applies them to an opened file (opens the log files).  Returns 0 or a
 * negative errno; *what names the file that could not be opened. */
int qc_io_opts_apply(const struct qc_io_opts *o, struct qc_file *f, const char **what);

#endif
