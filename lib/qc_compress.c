#include "qc_compress.h"

#include <errno.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "qc_header.h"

static int inflate_raw(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
    z_stream s;
    int r;

    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -12) != Z_OK)
        return -EIO;
    s.next_in = (Bytef *)(uintptr_t)src;
    s.avail_in = (uInt)src_len;
    s.next_out = dst;
    s.avail_out = (uInt)dst_len;
    r = inflate(&s, Z_FINISH);
    /* The compressed size is only known to the sector, so input may be left
     * over (Z_BUF_ERROR); what matters is a completely filled cluster. */
    r = ((r == Z_STREAM_END || r == Z_BUF_ERROR) && s.avail_out == 0) ? 0 : -EIO;
    inflateEnd(&s);
    return r;
}

static int zstd_frames(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_outBuffer out = { dst, dst_len, 0 };
    ZSTD_inBuffer in = { src, src_len, 0 };
    size_t zr = 0;
    int r = 0;

    if (!dctx)
        return -EIO;
    /* Several frames may follow each other; stop once the cluster is full
     * and insist on progress at every step. */
    while (out.pos < out.size) {
        size_t in_pos = in.pos, out_pos = out.pos;
        zr = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(zr)) {
            r = -EIO;
            break;
        }
        if (in_pos >= in.pos && out_pos >= out.pos) {
            r = -EIO;
            break;
        }
    }
    /* a frame that is not fully flushed means more data than a cluster */
    if (zr > 0)
        r = -EIO;
    ZSTD_freeDCtx(dctx);
    return r;
}

int qc_decompress(unsigned type, const uint8_t *src, size_t src_len,
                  uint8_t *dst, size_t dst_len)
{
    switch (type) {
    case QC_COMPRESSION_ZLIB: return inflate_raw(src, src_len, dst, dst_len);
    case QC_COMPRESSION_ZSTD: return zstd_frames(src, src_len, dst, dst_len);
    default: return -EIO;
    }
}

static long deflate_raw(const uint8_t *src, size_t src_len, uint8_t *dst, size_t cap)
{
    z_stream s;
    long n;
    int r;

    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -EIO;
    s.next_in = (Bytef *)(uintptr_t)src;
    s.avail_in = (uInt)src_len;
    s.next_out = dst;
    s.avail_out = (uInt)cap;
    r = deflate(&s, Z_FINISH);
    if (r == Z_STREAM_END)
        n = (long)(cap - s.avail_out);
    else if (r == Z_OK)
        n = -ENOSPC;
    else
        n = -EIO;
    deflateEnd(&s);
    return n;
}

static long zstd_compress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t cap)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_outBuffer out = { dst, cap, 0 };
    ZSTD_inBuffer in = { src, src_len, 0 };
    size_t zr;
    long n;

    if (!cctx)
        return -EIO;
    zr = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
    if (ZSTD_isError(zr))
        n = ZSTD_getErrorCode(zr) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EIO;
    else if (zr > 0)
        n = -ENOSPC;   /* output buffer full before the frame ended */
    else
        n = (long)out.pos;
    ZSTD_freeCCtx(cctx);
    return n;
}

long qc_compress(unsigned type, const uint8_t *src, size_t src_len, uint8_t *dst, size_t cap)
{
    switch (type) {
    case QC_COMPRESSION_ZLIB: return deflate_raw(src, src_len, dst, cap);
    case QC_COMPRESSION_ZSTD: return zstd_compress(src, src_len, dst, cap);
    default: return -EIO;
    }
}
