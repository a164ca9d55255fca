/*
 * A read-fault shim for the abuse tests, loaded with LD_PRELOAD: pread on
 * the file named by QC_FAULT_FILE (compared by device and inode) succeeds
 * QC_FAULT_AFTER times, then fails: with EIO (QC_FAULT_MODE=eio, the
 * default) or by returning 0, as a file that shrank would (QC_FAULT_MODE=eof).
 * QC_FAULT_OFFSET, when set, counts and fails only reads at that offset.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static int target_known, have_target;
static dev_t target_dev;
static ino_t target_ino;
static long reads;

static int is_target(int fd)
{
    struct stat st;

    if (!target_known) {
        const char *p = getenv("QC_FAULT_FILE");
        target_known = 1;
        if (p && stat(p, &st) == 0) {
            have_target = 1;
            target_dev = st.st_dev;
            target_ino = st.st_ino;
        }
    }
    return have_target && fstat(fd, &st) == 0 && st.st_dev == target_dev &&
           st.st_ino == target_ino;
}

static ssize_t faulty(pread_fn real, int fd, void *buf, size_t len, off_t off)
{
    const char *after = getenv("QC_FAULT_AFTER"), *at = getenv("QC_FAULT_OFFSET");
    const char *mode = getenv("QC_FAULT_MODE");

    if (after && is_target(fd) && (!at || strtoll(at, NULL, 0) == (long long)off) &&
        reads++ >= strtol(after, NULL, 0)) {
        if (mode && strcmp(mode, "eof") == 0)
            return 0;
        errno = EIO;
        return -1;
    }
    return real(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    static pread_fn real;
    if (!real)
        real = (pread_fn)dlsym(RTLD_NEXT, "pread");
    return faulty(real, fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
    static pread_fn real;
    if (!real)
        real = (pread_fn)dlsym(RTLD_NEXT, "pread64");
    return faulty(real, fd, buf, len, off);
}
