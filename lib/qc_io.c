/* File I/O: bounds checks, locking, the write log and crash injection. */
#include "qc_io.h"
#include "qc_sidefile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qc_util.h"
#include "qc_wlog.h"

static const char *const event_names[QC_EV_COUNT] = {
    [QC_EV_NONE] = "none",
    [QC_EV_L1_UPDATE] = "l1_update",
    [QC_EV_L1_GROW_ALLOC_TABLE] = "l1_grow_alloc_table",
    [QC_EV_L1_GROW_WRITE_TABLE] = "l1_grow_write_table",
    [QC_EV_L1_GROW_ACTIVATE_TABLE] = "l1_grow_activate_table",
    [QC_EV_L2_UPDATE] = "l2_update",
    [QC_EV_L2_UPDATE_COMPRESSED] = "l2_update_compressed",
    [QC_EV_L2_ALLOC_COW_READ] = "l2_alloc_cow_read",
    [QC_EV_L2_ALLOC_WRITE] = "l2_alloc_write",
    [QC_EV_WRITE_AIO] = "write_aio",
    [QC_EV_WRITE_COMPRESSED] = "write_compressed",
    [QC_EV_COW_WRITE] = "cow_write",
    [QC_EV_REFTABLE_GROW] = "reftable_grow",
    [QC_EV_REFTABLE_UPDATE] = "reftable_update",
    [QC_EV_REFBLOCK_UPDATE] = "refblock_update",
    [QC_EV_REFBLOCK_UPDATE_PART] = "refblock_update_part",
    [QC_EV_REFBLOCK_ALLOC] = "refblock_alloc",
    [QC_EV_REFBLOCK_ALLOC_HOOKUP] = "refblock_alloc_hookup",
    [QC_EV_REFBLOCK_ALLOC_WRITE] = "refblock_alloc_write",
    [QC_EV_REFBLOCK_ALLOC_WRITE_BLOCKS] = "refblock_alloc_write_blocks",
    [QC_EV_REFBLOCK_ALLOC_WRITE_TABLE] = "refblock_alloc_write_table",
    [QC_EV_REFBLOCK_ALLOC_SWITCH_TABLE] = "refblock_alloc_switch_table",
    [QC_EV_CLUSTER_ALLOC] = "cluster_alloc",
    [QC_EV_CLUSTER_ALLOC_BYTES] = "cluster_alloc_bytes",
    [QC_EV_CLUSTER_FREE] = "cluster_free",
    [QC_EV_CLUSTER_ALLOC_SPACE] = "cluster_alloc_space",
    [QC_EV_REFBLOCK_LOAD] = "refblock_load",
    [QC_EV_L2_LOAD] = "l2_load",
    [QC_EV_COW_READ] = "cow_read",
    [QC_EV_REFTABLE_LOAD] = "reftable_load",
    [QC_EV_FLUSH_TO_OS] = "flush_to_os",
    [QC_EV_FLUSH_TO_DISK] = "flush_to_disk",
    [QC_EV_READ_AIO] = "read_aio",
    [QC_EV_READ_BACKING_AIO] = "read_backing_aio",
    [QC_EV_READ_COMPRESSED] = "read_compressed",
    [QC_EV_PWRITEV] = "pwritev",
    [QC_EV_PWRITEV_ZERO] = "pwritev_zero",
    [QC_EV_PWRITEV_DONE] = "pwritev_done",
    [QC_EV_VMSTATE_LOAD] = "vmstate_load",
    [QC_EV_VMSTATE_SAVE] = "vmstate_save",
    [QC_EV_L1_SHRINK_WRITE_TABLE] = "l1_shrink_write_table",
    [QC_EV_L1_SHRINK_FREE_L2_CLUSTERS] = "l1_shrink_free_l2_clusters",
    [QC_EV_EMPTY_IMAGE_PREPARE] = "empty_image_prepare",
    [QC_EV_COR_WRITE] = "cor_write",
    [QC_EV_PWRITEV_RMW_HEAD] = "pwritev_rmw_head",
    [QC_EV_PWRITEV_RMW_AFTER_HEAD] = "pwritev_rmw_after_head",
    [QC_EV_PWRITEV_RMW_TAIL] = "pwritev_rmw_tail",
    [QC_EV_PWRITEV_RMW_AFTER_TAIL] = "pwritev_rmw_after_tail",
    [QC_EV_HEADER_UPDATE] = "header_update",
    [QC_EV_SNAPSHOT_UPDATE] = "snapshot_update",
    [QC_EV_REPAIR] = "repair",
    [QC_EV_RESTORE] = "restore",
};

const char *qc_event_name(enum qc_event ev)
{
    if ((unsigned)ev >= QC_EV_COUNT || !event_names[ev])
        return "none";
    return event_names[ev];
}

enum qc_event qc_event_from_name(const char *name)
{
    for (int i = 1; i < QC_EV_COUNT; i++)
        if (event_names[i] && strcmp(event_names[i], name) == 0)
            return (enum qc_event)i;
    return QC_EV_NONE;
}

enum qc_write_class qc_event_class(enum qc_event ev)
{
    switch (ev) {
    case QC_EV_WRITE_AIO: case QC_EV_WRITE_COMPRESSED: case QC_EV_COW_WRITE:
    case QC_EV_CLUSTER_ALLOC_SPACE:
        return QC_WC_DATA;
    case QC_EV_L2_UPDATE: case QC_EV_L2_UPDATE_COMPRESSED:
    case QC_EV_L2_ALLOC_WRITE: case QC_EV_L2_ALLOC_COW_READ:
        return QC_WC_L2;
    case QC_EV_L1_UPDATE: case QC_EV_L1_GROW_WRITE_TABLE:
    case QC_EV_L1_GROW_ALLOC_TABLE:
        return QC_WC_L1;
    case QC_EV_REFBLOCK_UPDATE: case QC_EV_REFBLOCK_UPDATE_PART:
    case QC_EV_REFBLOCK_ALLOC: case QC_EV_REFBLOCK_ALLOC_WRITE:
    case QC_EV_REFBLOCK_ALLOC_WRITE_BLOCKS:
        return QC_WC_REFBLOCK;
    case QC_EV_REFTABLE_GROW: case QC_EV_REFTABLE_UPDATE:
    case QC_EV_REFBLOCK_ALLOC_HOOKUP: case QC_EV_REFBLOCK_ALLOC_WRITE_TABLE:
        return QC_WC_REFTABLE;
    case QC_EV_HEADER_UPDATE: case QC_EV_L1_GROW_ACTIVATE_TABLE:
    case QC_EV_REFBLOCK_ALLOC_SWITCH_TABLE:
        return QC_WC_HEADER;
    default:
        return QC_WC_OTHER;
    }
}

const char *qc_write_class_name(enum qc_write_class c)
{
    static const char *const n[QC_WC_COUNT] = {
        "data", "L2", "L1", "refcount block", "refcount table", "header", "other"
    };
    return (unsigned)c < QC_WC_COUNT ? n[c] : "other";
}

/* --- locking ------------------------------------------------------------ */

/* QEMU permission bits (docs/qemu-behaviour.md §2.2): 0 consistent read,
 * 1 write, 2 write unchanged, 3 resize.  Byte 100+i = "uses", 200+i =
 * "refuses to share". */
enum { PERM_READ = 0, PERM_WRITE = 1, PERM_WRITE_UNCHANGED = 2, PERM_RESIZE = 3 };
/* What QEMU's "Failed to get %s lock" names: a permission we want that
 * someone refuses to share, or one we refuse to share that someone uses. */
static const char *const perm_lock_names[4] = {
    "\"consistent read\"", "\"write\"", "\"write unchanged\"", "\"resize\""
};
static const char *const shared_lock_names[4] = {
    "shared \"consistent read\"", "shared \"write\"", "shared \"write unchanged\"",
    "shared \"resize\""
};
static int lock_cmd_get(void)
{
#ifdef F_OFD_GETLK
    return F_OFD_GETLK;
#else
    return F_GETLK;
#endif
}

static int lock_cmd_set(void)
{
#ifdef F_OFD_SETLK
    return F_OFD_SETLK;
#else
    return F_SETLK;
#endif
}

/* Is byte BYTE locked by another open file description? */
static int byte_locked_by_other(int fd, off_t byte, bool *locked)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = byte, .l_len = 1 };
    if (fcntl(fd, lock_cmd_get(), &fl) < 0) {
        if (errno == EINVAL && lock_cmd_get() != F_GETLK) {
            fl.l_type = F_WRLCK;
            fl.l_pid = 0;
            if (fcntl(fd, F_GETLK, &fl) < 0)
                return -errno;
        } else {
            return -errno;
        }
    }
    *locked = fl.l_type != F_UNLCK;
    return 0;
}

static int take_byte(int fd, off_t byte)
{
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                        .l_start = byte, .l_len = 1 };
    if (fcntl(fd, lock_cmd_set(), &fl) < 0) {
        int e = errno;
        if (e == EINVAL && fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        return -e;
    }
    return 0;
}

static void release_byte(int fd, off_t byte)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
                        .l_start = byte, .l_len = 1 };
    if (fcntl(fd, lock_cmd_set(), &fl) < 0)
        (void)fcntl(fd, F_SETLK, &fl);
}

/* Test hook: QC_TEST_LOCK_DELAY_MS widens the window between taking the
 * lock bytes and checking for conflicts, so that a test can start another
 * process inside it (tests/abuse/locks.sh).  Read nowhere else. */
static void test_lock_delay(void)
{
    const char *v = getenv("QC_TEST_LOCK_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    struct timespec ts;

    if (ms <= 0 || ms > 60000)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Checks the bytes of a lock as raw_check_lock_bytes does: first every
 * permission we use against the "refuses to share" bytes, then every
 * permission we refuse to share against the "uses" bytes. */
static int check_lock_bytes(int fd, unsigned uses, unsigned unshared, const char **why)
{
    bool locked;
    int r;

    for (int i = 0; i < 4; i++) {
        if (!((uses >> i) & 1))
            continue;
        if ((r = byte_locked_by_other(fd, 200 + i, &locked)) < 0)
            return r;
        if (locked) {
            if (why)
                *why = perm_lock_names[i];
            return QC_E_LOCKED;
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!((unshared >> i) & 1))
            continue;
        if ((r = byte_locked_by_other(fd, 100 + i, &locked)) < 0)
            return r;
        if (locked) {
            if (why)
                *why = shared_lock_names[i];
            return QC_E_LOCKED;
        }
    }
    return 0;
}

/* Takes the "uses" bytes of USES and the "refuses to share" bytes of
 * UNSHARED, then checks for conflicts, as QEMU does (raw_apply_lock_bytes,
 * then raw_check_lock_bytes): taking first means that of two processes
 * starting at once at least one sees the other.  A conflict is another
 * process using what we refuse to share, or refusing to share what we use;
 * on one, what was taken is given back. */
static int lock_perms(int fd, unsigned uses, unsigned unshared, bool force,
                      const char **why)
{
    int r = 0;

    for (int i = 0; i < 4 && r == 0; i++) {
        if ((uses >> i) & 1)
            r = take_byte(fd, 100 + i);
        if (r == 0 && ((unshared >> i) & 1))
            r = take_byte(fd, 200 + i);
    }
    if (force)
        return 0;
    test_lock_delay();
    if (r == 0)
        r = check_lock_bytes(fd, uses, unshared, why);
    if (r < 0)
        for (int i = 0; i < 4; i++) {
            release_byte(fd, 100 + i);
            release_byte(fd, 200 + i);
        }
    return r;
}

#define PERM(p) (1u << (p))

/* A read-write user as QEMU: uses read, write, resize; refuses to share
 * write and resize. */
int qc_fd_lock_writer(int fd, bool force, const char **why)
{
    return lock_perms(fd, PERM(PERM_READ) | PERM(PERM_WRITE) | PERM(PERM_RESIZE),
                      PERM(PERM_WRITE) | PERM(PERM_RESIZE), force, why);
}

/* A backing file under a writer, as QEMU locks it: consistent read used,
 * write refused to others (a running writer of the base is a conflict). */
int qc_fd_lock_backing(int fd, bool force, const char **why)
{
    return lock_perms(fd, PERM(PERM_READ), PERM(PERM_WRITE) | PERM(PERM_RESIZE), force, why);
}

int qc_file_probe_locks(const char *path, bool *in_use, bool *writer)
{
    /* opened as qc_file_open opens a read-only look: a FIFO must not block,
     * the access time is left alone where allowed */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOATIME);
    struct stat st;

    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
        close(fd);
        return -EINVAL;
    }
    *in_use = *writer = false;
    for (int i = 0; i < 4; i++) {
        bool l1 = false, l2 = false;
        int r = byte_locked_by_other(fd, 100 + i, &l1);
        if (r == 0)
            r = byte_locked_by_other(fd, 200 + i, &l2);
        if (r < 0) {
            close(fd);
            return r;
        }
        if (l1 || l2)
            *in_use = true;
        if (i == PERM_WRITE && l1)
            *writer = true;
    }
    close(fd);
    return 0;
}

bool qc_warn_live_writer(FILE *err, const char *prog, const char *path)
{
    bool in_use = false, writer = false;

    if (qc_file_probe_locks(path, &in_use, &writer) < 0 || !writer)
        return false;
    fprintf(err, "%s: warning: %s: another process holds the image for writing "
            "(qemu-img would refuse it: Failed to get shared \"write\" lock); "
            "its metadata may be stale (-U: no warning)\n", prog, qc_esc(path));
    return true;
}

/* --- open / close ------------------------------------------------------- */

int qc_file_open(struct qc_file *f, const char *path, unsigned flags,
                 const char **why)
{
    struct stat st;
    int oflags = O_CLOEXEC;

    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->crash.after = -1;
    if (flags & QC_OPEN_CREATE)
        flags |= QC_OPEN_WRITE;
    f->writable = flags & QC_OPEN_WRITE;
    oflags |= f->writable ? O_RDWR : O_RDONLY;
    if (flags & QC_OPEN_CREATE)
        oflags |= O_CREAT;

    /* O_NONBLOCK: a FIFO named by an image must not block the open; it is
     * refused below, and the flag is dropped for the files we keep.  A
     * read-only look leaves even the access time alone where allowed. */
    f->fd = -1;
    if (!f->writable)
        f->fd = open(path, oflags | O_NONBLOCK | O_NOATIME, 0644);
    if (f->fd < 0)
        f->fd = open(path, oflags | O_NONBLOCK, 0644);
    if (f->fd < 0)
        return -errno;
    if (fstat(f->fd, &st) < 0) {
        int e = -errno;
        close(f->fd);
        f->fd = -1;
        return e;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        close(f->fd);
        f->fd = -1;
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    {
        int fl = fcntl(f->fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    f->size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        f->size = end > 0 ? (uint64_t)end : 0;
    }
    f->path = strdup(path);
    if (!f->path) {
        close(f->fd);
        f->fd = -1;
        return QC_E_NOMEM;
    }
    if ((f->writable || (flags & QC_OPEN_BACKING)) && !(flags & QC_OPEN_NOLOCK)) {
        bool force = flags & QC_OPEN_FORCE;
        int r = f->writable ? qc_fd_lock_writer(f->fd, force, why)
                            : qc_fd_lock_backing(f->fd, force, why);
        if (r < 0) {
            qc_file_close(f);
            return r;
        }
        f->locked = true;
    }
    if ((flags & QC_OPEN_CREATE) && f->size) {
        if (ftruncate(f->fd, 0) < 0) {
            int e = -errno;
            qc_file_close(f);
            return e;
        }
        f->size = 0;
    }
    return 0;
}

void qc_file_close(struct qc_file *f)
{
    if (f->fd >= 0)
        close(f->fd);   /* OFD locks go with the last descriptor */
    f->fd = -1;
    free(f->path);
    f->path = NULL;
    if (f->log)
        fclose(f->log);
    if (f->record)
        fclose(f->record);
    f->log = f->record = NULL;
}

/* --- reads -------------------------------------------------------------- */

int qc_file_refresh_size(struct qc_file *f)
{
    struct stat st;

    if (fstat(f->fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        if (end < 0)
            return -errno;
        f->size = (uint64_t)end;
    } else {
        f->size = (uint64_t)st.st_size;
    }
    return 0;
}

bool qc_file_has(const struct qc_file *f, uint64_t off, uint64_t len)
{
    return off <= f->size && len <= f->size - off;
}

static int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return QC_E_SHRANK;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int qc_file_read(struct qc_file *f, uint64_t off, void *buf, size_t len)
{
    if (!qc_file_has(f, off, len) || off > (uint64_t)INT64_MAX)
        return QC_E_RANGE;
    return pread_full(f->fd, buf, len, off);
}

int64_t qc_file_read_padded(struct qc_file *f, uint64_t off, void *buf, size_t len)
{
    uint64_t avail = off < f->size ? f->size - off : 0;
    size_t n = avail < len ? (size_t)avail : len;
    int r;

    if (n) {
        r = pread_full(f->fd, buf, n, off);
        if (r < 0)
            return r;
    }
    memset((uint8_t *)buf + n, 0, len - n);
    return (int64_t)n;
}

int qc_file_read_qemu(struct qc_file *f, uint64_t off, void *buf, size_t len)
{
    int64_t r;

    if (!qc_qemu_read_ok(off, len))
        return -EIO;
    r = qc_file_read_padded(f, off, buf, len);
    return r < 0 ? (int)r : 0;
}

/* --- writes ------------------------------------------------------------- */

static int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

enum op_kind { OP_WRITE, OP_ZERO, OP_DISCARD, OP_TRUNCATE };

static const char *const op_names[] = { "write", "zero", "discard", "truncate" };

static void log_record(struct qc_file *f, const char *event, enum op_kind op,
                       uint64_t off, uint64_t len, bool is_flush)
{
    struct json_object *o;

    if (!f->log)
        return;
    o = json_object_new_object();
    if (is_flush) {
        /* flushes are numbered apart; "after" is the number of writes before */
        json_object_object_add(o, "flush", json_object_new_uint64(f->nflushes));
        json_object_object_add(o, "after", json_object_new_uint64(f->nwrites));
    } else {
        json_object_object_add(o, "seq", json_object_new_uint64(f->nwrites));
    }
    if (!is_flush) {
        json_object_object_add(o, "offset", json_object_new_uint64(off));
        json_object_object_add(o, "length", json_object_new_uint64(len));
        if (op != OP_WRITE)
            json_object_object_add(o, "op", json_object_new_string(op_names[op]));
    }
    json_object_object_add(o, "event", json_object_new_string(event));
    json_object_object_add(o, "epoch", json_object_new_uint64(f->epoch));
    fprintf(f->log, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(f->log);
    json_object_put(o);
}

/* A simulated power failure: nothing more reaches the file. */
static void crash_now(struct qc_file *f)
{
    if (f->log) {
        fprintf(f->log, "{\"crash\":true,\"writes\":%" PRIu64 "}\n", f->nwrites);
        fflush(f->log);
    }
    if (f->record) {
        qc_wlog_put(f->record, QC_WLOG_CRASH, 0, f->nwrites, 0, NULL);
        fflush(f->record);
    }
    fflush(stdout);
    fprintf(stderr, "%s: simulated power failure after %" PRIu64 " writes\n",
            f->path ? f->path : "image", f->nwrites);
    fflush(stderr);
    _exit(QC_CRASH_EXIT);
}

void qc_file_event(struct qc_file *f, enum qc_event ev)
{
    if ((unsigned)ev >= QC_EV_COUNT)
        return;
    f->event_count[ev]++;
    if (f->crash.at_event != QC_EV_NONE && f->crash.at_event == ev &&
        f->event_count[ev] == (f->crash.at_count ? f->crash.at_count : 1))
        f->crash_armed = true;
}

/* How much of a write that a crash interrupts lands: up to the 512-byte
 * boundary in the middle of it (sectors are atomic, so a write within one
 * sector does not land at all). */
static uint64_t torn_prefix(uint64_t off, uint64_t len)
{
    uint64_t first = (off / 512 + 1) * 512;         /* first boundary inside */
    uint64_t last = ((off + len - 1) / 512) * 512;  /* last boundary inside */
    uint64_t mid;

    if (len == 0 || first > last)
        return 0;
    mid = first + ((last - first) / 512 / 2) * 512;
    return mid - off;
}

/* Bookkeeping before a change: events, crash points.  Returns how many
 * bytes of it may land (LEN unless torn) and sets *crash_after when the
 * crash comes right after it. */
static uint64_t before_change(struct qc_file *f, enum qc_event ev, enum op_kind op,
                              uint64_t off, uint64_t len, bool *crash_after)
{
    uint64_t n = len;
    bool crash_here = false;

    *crash_after = false;
    qc_file_event(f, op == OP_ZERO ? QC_EV_PWRITEV_ZERO : QC_EV_PWRITEV);
    qc_file_event(f, ev);
    if (f->crash_armed)
        crash_here = true;
    if (f->crash.after >= 0) {
        /* --crash-after N: N writes land; with --torn the N-th only partly */
        if (f->nwrites >= (uint64_t)f->crash.after)
            crash_now(f);
        if (f->crash.torn && f->nwrites + 1 == (uint64_t)f->crash.after)
            crash_here = true;
    }
    if (crash_here) {
        if (!f->crash.torn || op == OP_TRUNCATE || op == OP_DISCARD)
            crash_now(f);
        n = torn_prefix(off, len);
        if (n == 0)
            crash_now(f);
        *crash_after = true;
    }
    f->nwrites++;
    f->class_writes[qc_event_class(ev)]++;
    f->class_bytes[qc_event_class(ev)] += len;
    f->last_class = qc_event_class(ev);
    log_record(f, qc_event_name(ev), op, off, len, false);
    return n;
}

static void after_change(struct qc_file *f, bool crash_after)
{
    f->unflushed = true;
    qc_file_event(f, QC_EV_PWRITEV_DONE);
    if (crash_after)
        crash_now(f);
}

static void record(struct qc_file *f, enum qc_wlog_op op, enum qc_event ev,
                   uint64_t a, uint64_t b, const void *data)
{
    if (f->record)
        qc_wlog_put(f->record, op, (uint8_t)ev, a, b, data);
}

int qc_file_write(struct qc_file *f, uint64_t off, const void *buf, size_t len,
                  enum qc_event ev)
{
    bool crash_after;
    uint64_t n;
    int r;

    if (!f->writable)
        return -EBADF;
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return QC_E_RANGE;
    n = before_change(f, ev, OP_WRITE, off, len, &crash_after);
    record(f, QC_WLOG_WRITE, ev, off, n, buf);
    r = pwrite_full(f->fd, buf, (size_t)n, off);
    if (r < 0)
        return r;
    if (off + n > f->size)
        f->size = off + n;
    after_change(f, crash_after);
    return 0;
}

static int write_zero_bytes(struct qc_file *f, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[65536];

    while (len) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        int r = pwrite_full(f->fd, zeros, n, off);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

int qc_file_write_zeroes(struct qc_file *f, uint64_t off, uint64_t len, enum qc_event ev)
{
    bool crash_after;
    uint64_t n;
    int r = 0;

    if (!f->writable)
        return -EBADF;
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return QC_E_RANGE;
    n = before_change(f, ev, OP_ZERO, off, len, &crash_after);
    record(f, QC_WLOG_ZERO, ev, off, n, NULL);
    if (n && fallocate(f->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)n) < 0)
        r = write_zero_bytes(f, off, n);
    if (r < 0)
        return r;
    if (off + n > f->size)
        f->size = off + n;
    after_change(f, crash_after);
    return 0;
}

int qc_file_discard(struct qc_file *f, uint64_t off, uint64_t len, enum qc_event ev)
{
    bool crash_after;

    if (!f->writable)
        return -EBADF;
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return QC_E_RANGE;
    before_change(f, ev, OP_DISCARD, off, len, &crash_after);
    if (len && fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         (off_t)off, (off_t)len) == 0)
        record(f, QC_WLOG_DISCARD, ev, off, len, NULL);
    after_change(f, crash_after);
    return 0;
}

int qc_file_truncate(struct qc_file *f, uint64_t size)
{
    bool crash_after;

    if (!f->writable)
        return -EBADF;
    if (size > (uint64_t)INT64_MAX)
        return QC_E_RANGE;
    before_change(f, QC_EV_NONE, OP_TRUNCATE, size, 0, &crash_after);
    record(f, QC_WLOG_TRUNCATE, QC_EV_NONE, size, 0, NULL);
    if (ftruncate(f->fd, (off_t)size) < 0)
        return -errno;
    f->size = size;
    after_change(f, crash_after);
    return 0;
}

int qc_file_flush(struct qc_file *f)
{
    /* cache=unsafe: nothing is flushed, so no epoch ends */
    if (!f->writable || !f->unflushed || f->no_flush)
        return 0;
    f->nflushes++;
    f->class_flushes[f->last_class]++;
    if (fdatasync(f->fd) < 0 && errno != EINVAL)
        return -errno;
    f->unflushed = false;
    f->epoch++;
    record(f, QC_WLOG_FLUSH, QC_EV_NONE, 0, 0, NULL);
    log_record(f, "flush", OP_WRITE, 0, 0, true);
    return 0;
}

void qc_file_mark(struct qc_file *f, enum qc_mark kind, uint64_t value)
{
    record(f, QC_WLOG_MARK, QC_EV_NONE, (uint64_t)kind, value, NULL);
    if (f->record && kind == QC_MARK_ACK)
        fflush(f->record);
}

/* --- options shared by the writing tools -------------------------------- */

void qc_io_opts_init(struct qc_io_opts *o)
{
    memset(o, 0, sizeof *o);
    o->crash.after = -1;
}

int qc_io_opts_parse(struct qc_io_opts *o, int opt, const char *arg,
                     char *err, size_t errlen)
{
    uint64_t v;

    switch (opt) {
    case QC_IO_OPT_CRASH_AFTER:
        if (!qc_parse_size(arg, &v) || v > (uint64_t)INT64_MAX) {
            snprintf(err, errlen, "invalid --crash-after '%s'", arg);
            return -1;
        }
        o->crash.after = (int64_t)v;
        return 1;
    case QC_IO_OPT_CRASH_AT: {
        char name[64];
        const char *colon = strchr(arg, ':');
        size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
        enum qc_event ev;

        if (n >= sizeof name) {
            snprintf(err, errlen, "unknown event in --crash-at '%s'", arg);
            return -1;
        }
        memcpy(name, arg, n);
        name[n] = '\0';
        ev = qc_event_from_name(name);
        if (ev == QC_EV_NONE || ev >= QC_EV_HEADER_UPDATE) {
            snprintf(err, errlen, "unknown event '%s' in --crash-at", name);
            return -1;
        }
        v = 1;
        if (colon && (!qc_parse_size(colon + 1, &v) || v == 0)) {
            snprintf(err, errlen, "invalid count in --crash-at '%s'", arg);
            return -1;
        }
        o->crash.at_event = ev;
        o->crash.at_count = v;
        return 1;
    }
    case QC_IO_OPT_TORN:
        o->crash.torn = true;
        return 1;
    case QC_IO_OPT_WRITE_LOG:
        o->write_log = arg;
        return 1;
    case QC_IO_OPT_RECORD:
        o->record = arg;
        return 1;
    default:
        return 0;
    }
}

/* The log and the record are side files: never the image itself (through a
 * symlink or a hard link either), never written through a symlink at their
 * own name, mode 0600.  An existing file is replaced only when the user
 * asked (--force): an earlier log may be the only trace of a crash. */
static FILE *open_side_log(const char *path, const struct qc_file *f,
                           const struct qc_io_opts *o, const char **what)
{
    bool overwrite = o->overwrite;
    static _Thread_local char msg[600];
    char why[512];
    struct qc_protect prot;
    FILE *fp;

    qc_protect_init(&prot);
    qc_protect_add_fd(&prot, f->fd, "the image");
    for (size_t i = 0; o->protect && i < o->protect->n && prot.n < QC_PROTECT_MAX; i++)
        prot.f[prot.n++] = o->protect->f[i];
    fp = qc_sidefile_fopen(path, &prot, overwrite ? QC_SIDE_FORCE | QC_SIDE_DEVICE : 0,
                           why, sizeof why);
    if (!fp) {
        snprintf(msg, sizeof msg, "%s: %s", path, why);
        *what = msg;
    }
    return fp;
}

int qc_io_opts_apply(const struct qc_io_opts *o, struct qc_file *f, const char **what)
{
    f->crash = o->crash;
    if (o->write_log && !(f->log = open_side_log(o->write_log, f, o, what)))
        return QC_E_SIDEFILE;
    if (o->record) {
        if (!(f->record = open_side_log(o->record, f, o, what)))
            return QC_E_SIDEFILE;
        if (qc_wlog_put_magic(f->record) < 0) {
            *what = o->record;
            return -errno;
        }
    }
    return 0;
}
