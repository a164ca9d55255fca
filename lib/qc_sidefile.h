/*
 * Files a tool creates beside an image: backups, undo files, write logs,
 * records, raw and salvage output, extracted clusters.
 *
 * Such a file is never one the image reads (the image, its data file, a
 * backing file: compared by device and inode after following links, so a
 * symlink or hard link to the image is caught), is created exclusively
 * without following a symlink at its own name, mode 0600, and an existing
 * file is replaced only when the caller says so (--force).  Output that
 * QEMU would lock (a raw export) is locked as a QEMU writer locks it.
 */
#ifndef QC_SIDEFILE_H
#define QC_SIDEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define QC_PROTECT_MAX 40

/* The files a side file must never be. */
struct qc_protect {
    size_t n;
    struct {
        dev_t dev;
        ino_t ino;
        const char *what;      /* "the image", "its data file", ... (static) */
    } f[QC_PROTECT_MAX];
};

void qc_protect_init(struct qc_protect *p);
/* Adds the file open at FD (ignored when FD < 0 or the table is full). */
void qc_protect_add_fd(struct qc_protect *p, int fd, const char *what);
/* Adds the file at PATH, following links (ignored when it does not exist). */
void qc_protect_add_path(struct qc_protect *p, const char *path, const char *what);
/* What PATH (links followed) is among the protected files, or NULL. */
const char *qc_protect_match(const struct qc_protect *p, const char *path);

#define QC_SIDE_FORCE 0x1u     /* an existing file may be replaced (truncated) */
#define QC_SIDE_LOCK  0x2u     /* take a QEMU writer's locks on it */
#define QC_SIDE_DEVICE 0x4u    /* an existing character device (/dev/null) is accepted */
#define QC_SIDE_KEEP   0x8u    /* an existing file is never replaced (no --force hint) */

/* Creates PATH for writing.  Returns the descriptor, or -1 with the reason
 * in ERR (without the path or a program name): PATH is a protected file,
 * exists (without FORCE), is a symbolic link, is not a regular file, or
 * another process holds it. */
int qc_sidefile_open(const char *path, const struct qc_protect *p, unsigned flags,
                     char *err, size_t errlen);
/* The same as a stdio stream opened "w". */
FILE *qc_sidefile_fopen(const char *path, const struct qc_protect *p, unsigned flags,
                        char *err, size_t errlen);

#endif
