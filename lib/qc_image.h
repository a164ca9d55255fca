/* An opened image: the file, its header, extensions, feature names and
 * geometry, and the problems QEMU would report when opening it. */
#ifndef QC_IMAGE_H
#define QC_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_ext.h"
#include "qc_feature.h"
#include "qc_header.h"
#include "qc_io.h"
#include "qc_problem.h"

struct qc_image {
    struct qc_file file;
    struct qc_header hdr;
    struct qc_ext_list exts;
    struct qc_feature_table features;

    uint8_t *cluster0;         /* the extension area's bytes, as far as the file has them */
    size_t cluster0_len;
    bool pad_eof;              /* cluster0 zero-filled past EOF (QC_IMAGE_PAD_EOF) */
    bool read_failed;          /* qc_image_open: the file opened, reading it failed */

    char *backing_name;        /* NUL-terminated, NULL if none or unreadable */
    char *backing_format;      /* from the extension, NULL if none */
    char *data_file_name;      /* from the extension, NULL if none */

    /* geometry, valid when geometry_ok */
    bool geometry_ok;
    unsigned cluster_bits;
    uint64_t cluster_size;
    bool extended_l2;
    unsigned l2_bits;          /* log2 of entries per L2 table */
    uint64_t l2_entries;
    unsigned l2_entry_size;    /* 8 or 16 */
    unsigned refcount_order;
    unsigned refcount_bits;
    uint64_t refblock_entries;
    unsigned subcluster_size;  /* extended L2 only */

    /* open-time findings (header, extensions), in QEMU's order */
    struct qc_problems problems;
    /* The first problem that makes QEMU refuse the image (for the mode the
     * image was validated in), or NULL. */
    const struct qc_problem *open_error;
};

enum qc_validate_mode {
    QC_VALIDATE_OPEN,     /* as a read-only open (qemu-img info, map, convert) */
    QC_VALIDATE_CHECK,    /* as qemu-img check opens (BDRV_O_CHECK); cluster 0 is read
                             zero-padded, as the block layer reads past EOF */
    QC_VALIDATE_WRITE,    /* as a read-write open */
};

/* qc_image_open flag (besides the QC_OPEN_* file flags): read the header
 * area as QEMU does, with bytes past the end of the file as zeros, so that a
 * truncated header is judged on zero-filled fields as qemu-img judges it. */
#define QC_IMAGE_PAD_EOF 0x100u

/* Opens and parses.  Returns 0 when the file could be opened and starts
 * with the qcow2 magic (even if QEMU would refuse it: see open_error),
 * QC_E_FORMAT when the magic is wrong or the file is shorter than 4 bytes,
 * or a negative errno / QC_E_LOCKED. */
int qc_image_open(struct qc_image *img, const char *path, unsigned open_flags,
                  enum qc_validate_mode mode, const char **lock_why);
void qc_image_close(struct qc_image *img);

/* Re-runs the validation (after edits) in MODE. */
void qc_image_validate(struct qc_image *img, enum qc_validate_mode mode);

/* Rereads header and extensions from the file (after a write). */
int qc_image_reload(struct qc_image *img, enum qc_validate_mode mode);

/* QEMU's locks on the backing chain of an image opened for writing (each
 * backing file: read used, write and resize not shared), held until
 * qc_backing_locks_release.  The chain is followed through qcow2 headers
 * as far as its files are regular files that open; what does not open is
 * left to the tool's own open to report.  QC_E_LOCKED (with QEMU's message
 * in MSG) when another process holds a backing file for writing; FORCE
 * ignores conflicts. */
#define QC_MAX_BACKING_LOCKS 32
struct qc_backing_locks {
    int fd[QC_MAX_BACKING_LOCKS];
    unsigned n;
};
int qc_backing_locks_take(const char *path, bool force, struct qc_backing_locks *bl,
                          char *msg, size_t msglen);
void qc_backing_locks_release(struct qc_backing_locks *bl);

/* The feature name for a bit: the image's table first, then ours. */
const char *qc_image_feature_name(const struct qc_image *img,
                                  enum qc_feature_group g, unsigned bit);

/* Adds to P the image at PATH and every file its header chain names (the
 * external data file, the backing files, as far as their headers can be
 * read), so that a file a tool creates is never one of them. */
struct qc_protect;
void qc_image_protect_chain(const char *path, struct qc_protect *p);

#endif
