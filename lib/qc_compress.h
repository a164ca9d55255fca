/* Compressed clusters (docs/format.md §4.3): raw deflate (window 4 KiB) and
 * zstd frames, through zlib and libzstd, with QEMU's acceptance rules. */
#ifndef QC_COMPRESS_H
#define QC_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* Inflates SRC into exactly DST_LEN bytes (one cluster).  Succeeds only when
 * the whole output is filled, as QEMU requires; trailing input is ignored.
 * Returns 0 or -EIO. */
int qc_decompress(unsigned compression_type, const uint8_t *src, size_t src_len,
                  uint8_t *dst, size_t dst_len);

/* Compresses SRC into DST (capacity DST_CAP, QEMU uses cluster_size - 1).
 * Returns the compressed length, -ENOSPC when it does not fit (QEMU then
 * writes the cluster uncompressed), or -EIO. */
long qc_compress(unsigned compression_type, const uint8_t *src, size_t src_len,
                 uint8_t *dst, size_t dst_cap);

#endif
