/* Which files named by an image's header may be opened (qc_follow.h). */
#include "qc_follow.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qc_util.h"

#define ALLOW_MAX 64

static struct {
    bool header;
    size_t n;
    struct { dev_t dev; ino_t ino; } allowed[ALLOW_MAX];
} policy;

void qc_follow_header(bool on)
{
    policy.header = on;
}

int qc_follow_allow(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "--allow %s: %s", path, strerror(errno));
        return -1;
    }
    if (policy.n == ALLOW_MAX) {
        snprintf(err, errlen, "--allow: at most %d files", ALLOW_MAX);
        return -1;
    }
    policy.allowed[policy.n].dev = st.st_dev;
    policy.allowed[policy.n].ino = st.st_ino;
    policy.n++;
    return 0;
}

int qc_follow_opt_parse(int opt, const char *arg, char *err, size_t errlen)
{
    switch (opt) {
    case QC_FOLLOW_OPT_ALLOW:
        return qc_follow_allow(arg, err, errlen) < 0 ? -1 : 1;
    case QC_FOLLOW_OPT_HEADER:
        qc_follow_header(true);
        return 1;
    default:
        return 0;
    }
}

static bool allowed(const struct stat *st)
{
    for (size_t i = 0; i < policy.n; i++)
        if (policy.allowed[i].dev == st->st_dev && policy.allowed[i].ino == st->st_ino)
            return true;
    return false;
}

static bool has_dotdot(const char *name)
{
    for (const char *p = name; (p = strstr(p, "..")); p += 2)
        if ((p == name || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return true;
    return false;
}

/* Is the resolved path REAL inside the directory of IMAGE (resolved)? */
static bool inside_image_dir(const char *image, const char *real)
{
    char dir[PATH_MAX], rdir[PATH_MAX];
    const char *slash = strrchr(image, '/');
    size_t n;

    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == image)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - image), image);
    if (!realpath(dir, rdir))
        return false;
    n = strlen(rdir);
    if (n == 1)                         /* the image lives in / */
        return real[0] == '/' && real[1] != '\0';
    return strncmp(real, rdir, n) == 0 && real[n] == '/';
}

static char *refuse(const char *image, const char *name, const char *full,
                    enum qc_follow_kind kind, const char *why)
{
    char *s;
    if (asprintf(&s, "not following the %s '%s' named by the header of '%s' (%s); "
                 "--allow %s or --follow-header opens it",
                 kind == QC_FOLLOW_BACKING ? "backing file" : "data file", name, image, why,
                 full) < 0)
        return NULL;
    return s;
}

char *qc_follow_refusal(const char *image, const char *name, const char *full,
                        enum qc_follow_kind kind)
{
    char real[PATH_MAX];
    struct stat st;

    if (policy.header)
        return NULL;
    if (stat(full, &st) < 0)
        return NULL;            /* nothing there: the open fails as QEMU's does */
    if (allowed(&st))
        return NULL;
    if (name[0] == '/')
        return refuse(image, name, full, kind, "an absolute name");
    if (has_dotdot(name))
        return refuse(image, name, full, kind, "'..' in the name");
    if (!realpath(full, real) || !inside_image_dir(image, real))
        return refuse(image, name, full, kind, "it leads outside the image's directory");
    if (!S_ISREG(st.st_mode))
        return refuse(image, name, full, kind, "not a regular file");
    return NULL;
}
