/*
 * Guest bytes of an image as QEMU's read path produces them: data clusters
 * (zeros past the end of the file), compressed clusters (inflated as QEMU
 * does), zero flags, extended-L2 subclusters, external data files and
 * backing files; and the whole disk as `qemu-img convert -O raw` writes it.
 */
#ifndef QC_GUEST_H
#define QC_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "qc_chain.h"

/* Reads guest bytes [OFF, OFF+LEN) of node N.  Ranges N leaves unallocated
 * come from its backing file when one was opened, else read as zeros;
 * bytes at or past the node's length read as zeros.  Returns 0; -EIO when
 * QEMU's read fails (corrupt metadata, a compressed cluster that does not
 * inflate: *FAIL_OFFSET says where); -ENOTSUP for encrypted data. */
int qc_guest_read(struct qc_node *n, uint64_t off, void *buf, size_t len,
                  uint64_t *fail_offset);

/* Why a raw export failed. */
enum qc_export_stage {
    QC_EXPORT_OK,
    QC_EXPORT_STATUS,          /* block status of the source failed */
    QC_EXPORT_READ,            /* reading guest data failed */
    QC_EXPORT_WRITE,           /* writing the output failed */
};

struct qc_map_entry;

/* Called for each piece of the guest disk, in order and covering it once:
 * LEN bytes at guest offset OFF, DATA NULL when the range reads as zeros
 * (nothing is read for it), else at most 2 MiB of data.  E is the block
 * status of the range the piece belongs to.  A negative return stops the
 * walk. */
typedef int (*qc_guest_fn)(void *ctx, uint64_t off, const uint8_t *data, uint64_t len,
                           const struct qc_map_entry *e);

/* Streams the guest disk of the chain's top image through FN as qemu-img
 * convert reads it: every range's block status is checked before any data
 * is read; memory use is bounded by one 2 MiB buffer.  Returns 0 or a
 * negative code (FN's own, or -EIO/-ENOTSUP/-ENOMEM); *STAGE and
 * *FAIL_OFFSET say where it failed (QC_EXPORT_WRITE: FN failed). */
int qc_guest_stream(struct qc_chain *c, qc_guest_fn fn, void *ctx,
                    enum qc_export_stage *stage, uint64_t *fail_offset);

/* Writes the guest disk of the chain's top image to OUT_FD, as qemu-img
 * convert -O raw: the output is sized to the virtual size first, every
 * range is checked with block status before any data is copied, zero
 * ranges (and all-zero 4 KiB blocks) are left as holes.  Returns 0 or a
 * negative code; *STAGE and *FAIL_OFFSET say where it failed. */
int qc_guest_export_raw(struct qc_chain *c, int out_fd, enum qc_export_stage *stage,
                        uint64_t *fail_offset);

#endif
