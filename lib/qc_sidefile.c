/* Side files: created exclusively, never one of the files an image reads. */
#include "qc_util.h"
#include "qc_sidefile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qc_io.h"

void qc_protect_init(struct qc_protect *p)
{
    p->n = 0;
}

static void protect_stat(struct qc_protect *p, const struct stat *st, const char *what)
{
    if (p->n >= QC_PROTECT_MAX)
        return;
    p->f[p->n].dev = st->st_dev;
    p->f[p->n].ino = st->st_ino;
    p->f[p->n].what = what;
    p->n++;
}

void qc_protect_add_fd(struct qc_protect *p, int fd, const char *what)
{
    struct stat st;

    if (fd >= 0 && fstat(fd, &st) == 0)
        protect_stat(p, &st, what);
}

void qc_protect_add_path(struct qc_protect *p, const char *path, const char *what)
{
    struct stat st;

    if (path && stat(path, &st) == 0)
        protect_stat(p, &st, what);
}

static const char *protected_as(const struct qc_protect *p, const struct stat *st)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (p->f[i].dev == st->st_dev && p->f[i].ino == st->st_ino)
            return p->f[i].what;
    return NULL;
}

const char *qc_protect_match(const struct qc_protect *p, const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? protected_as(p, &st) : NULL;
}

static int refuse(int fd, char *err, size_t errlen, const char *why)
{
    if (fd >= 0)
        close(fd);
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* An existing file, replaced on request: never through a symlink at PATH,
 * a regular file (or, when asked, a character device), checked on the
 * opened descriptor so that a link made meanwhile is still caught. */
static int open_existing(const char *path, const struct qc_protect *p, unsigned flags,
                         char *err, size_t errlen)
{
    struct stat st;
    const char *what;
    int fd = open(path, ((flags & QC_SIDE_LOCK) ? O_RDWR : O_WRONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ELOOP)
            return refuse(-1, err, errlen, "is a symbolic link: refusing to write through it");
        return refuse(-1, err, errlen, strerror(errno));
    }
    if (fstat(fd, &st) < 0)
        return refuse(fd, err, errlen, strerror(errno));
    if ((what = protected_as(p, &st)) != NULL) {
        char why[160];
        snprintf(why, sizeof why, "is %s: refusing to overwrite it", what);
        return refuse(fd, err, errlen, why);
    }
    if (S_ISCHR(st.st_mode) && (flags & QC_SIDE_DEVICE))
        return fd;
    if (!S_ISREG(st.st_mode))
        return refuse(fd, err, errlen, "is not a regular file");
    return fd;
}

int qc_sidefile_open(const char *path, const struct qc_protect *p, unsigned flags,
                     char *err, size_t errlen)
{
    struct stat st;
    const char *what;
    bool created = false;
    int fd;

    /* Through links too: a symlink or hard link to the image is the image. */
    if ((what = qc_protect_match(p, path)) != NULL) {
        char why[160];
        snprintf(why, sizeof why, "is %s: refusing to overwrite it", what);
        return refuse(-1, err, errlen, why);
    }
    /* read access too when locking: QEMU's locks are shared (read) locks */
    fd = open(path, ((flags & QC_SIDE_LOCK) ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_NOFOLLOW |
                        O_CLOEXEC, 0600);
    if (fd >= 0) {
        created = true;
    } else if (errno == EEXIST) {
        bool device = (flags & QC_SIDE_DEVICE) && lstat(path, &st) == 0 && S_ISCHR(st.st_mode);
        if (!(flags & QC_SIDE_FORCE) && !device) {
            if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
                return refuse(-1, err, errlen,
                              "is a symbolic link: refusing to write through it");
            return refuse(-1, err, errlen, (flags & QC_SIDE_KEEP)
                                               ? "exists: refusing to replace it"
                                               : "exists (--force replaces it)");
        }
        if ((fd = open_existing(path, p, flags, err, errlen)) < 0)
            return -1;
    } else {
        return refuse(-1, err, errlen, strerror(errno));
    }
    {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    if (flags & QC_SIDE_LOCK) {
        const char *perm = NULL;
        int r = qc_fd_lock_writer(fd, false, &perm);
        if (r < 0) {
            char why[200];
            if (r == QC_E_LOCKED)
                snprintf(why, sizeof why,
                         "another process holds it (%s lock): is it in use by a running QEMU?",
                         perm ? perm : "\"write\"");
            else
                snprintf(why, sizeof why, "cannot lock: %s", qc_strerror(r));
            if (created)
                unlink(path);
            return refuse(fd, err, errlen, why);
        }
    }
    /* a replaced file becomes what a created one is: empty, mode 0600 */
    if (!created && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (ftruncate(fd, 0) < 0 || fchmod(fd, 0600) < 0))
        return refuse(fd, err, errlen, strerror(errno));
    return fd;
}

FILE *qc_sidefile_fopen(const char *path, const struct qc_protect *p, unsigned flags,
                        char *err, size_t errlen)
{
    int fd = qc_sidefile_open(path, p, flags, err, errlen);
    FILE *f;

    if (fd < 0)
        return NULL;
    if (!(f = fdopen(fd, "w"))) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
    }
    return f;
}
