/* File I/O: bounds checks, locking, the write log and crash injection. */
#include "qc_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

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

/* QEMU permission bits (qcow2-facts §11): 0 consistent read, 1 write,
 * 2 write unchanged, 3 resize.  Byte 100+i = "uses", 200+i = "refuses to
 * share". */
enum { PERM_READ = 0, PERM_WRITE = 1, PERM_WRITE_UNCHANGED = 2, PERM_RESIZE = 3 };
static const char *const perm_names[4] = {
    "consistent read", "write", "write unchanged", "resize"
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

/* A read-write user as QEMU: uses read, write, resize; refuses to share
 * write and resize.  Checks every conflict before taking anything. */
static int lock_as_writer(int fd, bool force, const char **why)
{
    static const int uses[] = { PERM_READ, PERM_WRITE, PERM_RESIZE };
    static const int unshared[] = { PERM_WRITE, PERM_RESIZE };
    bool locked;
    int r;

    if (!force) {
        for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
            if ((r = byte_locked_by_other(fd, 200 + uses[i], &locked)) < 0)
                return r;
            if (locked) {
                if (why)
                    *why = perm_names[uses[i]];
                return QC_E_LOCKED;
            }
        }
        for (size_t i = 0; i < sizeof unshared / sizeof unshared[0]; i++) {
            if ((r = byte_locked_by_other(fd, 100 + unshared[i], &locked)) < 0)
                return r;
            if (locked) {
                if (why)
                    *why = perm_names[unshared[i]];
                return QC_E_LOCKED;
            }
        }
    }
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
        if ((r = take_byte(fd, 100 + uses[i])) < 0 && !force)
            return r;
    for (size_t i = 0; i < sizeof unshared / sizeof unshared[0]; i++)
        if ((r = take_byte(fd, 200 + unshared[i])) < 0 && !force)
            return r;
    return 0;
}

int qc_file_probe_locks(const char *path, bool *in_use, bool *writer)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
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
     * refused below, and the flag is dropped for the files we keep */
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
    if (f->writable && !(flags & QC_OPEN_NOLOCK)) {
        int r = lock_as_writer(f->fd, flags & QC_OPEN_FORCE, why);
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
}

/* --- reads -------------------------------------------------------------- */

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
            return QC_E_RANGE;  /* file shrank under us */
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

static void log_record(struct qc_file *f, const char *event, uint64_t off,
                       uint64_t len, bool is_flush)
{
    struct json_object *o;

    if (!f->log)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "seq", json_object_new_uint64(
                               is_flush ? f->nflushes : f->nwrites));
    if (!is_flush) {
        json_object_object_add(o, "offset", json_object_new_uint64(off));
        json_object_object_add(o, "length", json_object_new_uint64(len));
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
        fprintf(f->log, "{\"crash\":true,\"writes\":%llu}\n",
                (unsigned long long)f->nwrites);
        fflush(f->log);
    }
    _exit(QC_CRASH_EXIT);
}

/* The part of a torn write that lands: the first half of its 512-byte
 * sectors (at least one sector when the write spans more than one). */
static size_t torn_prefix(size_t len)
{
    size_t sectors = len / 512;
    if (sectors <= 1)
        return 0;
    return (sectors / 2) * 512;
}

int qc_file_write(struct qc_file *f, uint64_t off, const void *buf, size_t len,
                  enum qc_event ev)
{
    bool last_before_crash = false;
    size_t n = len;
    int r;

    if (!f->writable)
        return -EBADF;
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return QC_E_RANGE;
    if (f->crash.at_event != QC_EV_NONE && f->crash.at_event == ev &&
        f->event_count[ev] + 1 >= f->crash.at_count)
        crash_now(f);
    if (f->crash.after >= 0) {
        if (f->nwrites >= (uint64_t)f->crash.after)
            crash_now(f);
        last_before_crash = f->nwrites + 1 == (uint64_t)f->crash.after;
    }
    if (last_before_crash && f->crash.torn)
        n = torn_prefix(len);

    f->nwrites++;
    f->event_count[ev]++;
    f->class_writes[qc_event_class(ev)]++;
    f->class_bytes[qc_event_class(ev)] += len;
    log_record(f, qc_event_name(ev), off, len, false);

    r = pwrite_full(f->fd, buf, n, off);
    if (r < 0)
        return r;
    if (off + n > f->size)
        f->size = off + n;
    if (last_before_crash && f->crash.torn)
        crash_now(f);
    return 0;
}

int qc_file_flush(struct qc_file *f)
{
    if (!f->writable)
        return 0;
    f->nflushes++;
    if (!f->no_flush && fdatasync(f->fd) < 0 && errno != EINVAL)
        return -errno;
    f->epoch++;
    log_record(f, "flush", 0, 0, true);
    return 0;
}

int qc_file_truncate(struct qc_file *f, uint64_t size)
{
    if (!f->writable)
        return -EBADF;
    if (size > (uint64_t)INT64_MAX)
        return QC_E_RANGE;
    if (ftruncate(f->fd, (off_t)size) < 0)
        return -errno;
    f->size = size;
    return 0;
}
