/* Guest reads and raw export. */
#include "qc_guest.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc_compress.h"
#include "qc_l2.h"
#include "qc_map.h"

/* Inflates the compressed cluster described by L2 entry ENTRY into the
 * node's cluster buffer (kept for the next read of the same cluster). */
static int load_compressed(struct qc_node *n, uint64_t entry)
{
    struct qc_compressed_geom g = qc_compressed_geom(n->img.cluster_bits);
    struct qc_compressed_desc d = qc_compressed_decode(&g, entry);
    uint64_t cs = n->img.cluster_size;
    uint8_t *src;
    int r;

    if (n->cluster_valid && n->cluster_entry == entry)
        return 0;
    if (!n->cluster_buf && !(n->cluster_buf = malloc((size_t)cs)))
        return -ENOMEM;
    n->cluster_valid = false;
    /* at most 2 clusters of input: the sector count field is that small */
    src = malloc((size_t)d.size);
    if (!src)
        return -ENOMEM;
    r = qc_node_pread(n->file, d.offset, src, (size_t)d.size);
    if (r == 0)
        r = qc_decompress(n->img.hdr.compression_type, src, (size_t)d.size,
                          n->cluster_buf, (size_t)cs) < 0 ? -EIO : 0;
    free(src);
    if (r < 0)
        return -EIO;
    n->cluster_entry = entry;
    n->cluster_valid = true;
    return 0;
}

static int read_qcow2(struct qc_node *n, uint64_t off, uint8_t *buf, size_t len,
                      uint64_t *fail_offset)
{
    while (len) {
        struct qc_host_range hr;
        uint64_t req = len < INT_MAX ? len : INT_MAX;
        size_t cnt;
        int r = qc_node_host_offset(n, off, req, &hr);

        if (r < 0) {
            *fail_offset = off;
            return -EIO;
        }
        cnt = (size_t)hr.bytes;
        if (cnt == 0) {
            *fail_offset = off;
            return -EIO;
        }
        switch (hr.type) {
        case QC_SCT_ZERO_PLAIN:
        case QC_SCT_ZERO_ALLOC:
            memset(buf, 0, cnt);
            break;
        case QC_SCT_UNALLOCATED_PLAIN:
        case QC_SCT_UNALLOCATED_ALLOC:
            if (n->backing) {
                r = qc_guest_read(n->backing, off, buf, cnt, fail_offset);
                if (r < 0)
                    return r;
            } else {
                memset(buf, 0, cnt);
            }
            break;
        case QC_SCT_NORMAL:
            if (n->encrypted)
                return -ENOTSUP;
            if (qc_node_pread(n->data, hr.host, buf, cnt) < 0) {
                *fail_offset = off;
                return -EIO;
            }
            break;
        case QC_SCT_COMPRESSED:
            if (n->encrypted)
                return -ENOTSUP;
            if (load_compressed(n, hr.l2_entry) < 0) {
                *fail_offset = off;
                return -EIO;
            }
            memcpy(buf, n->cluster_buf + (off & (n->img.cluster_size - 1)), cnt);
            break;
        default:
            *fail_offset = off;
            return -EIO;
        }
        buf += cnt;
        off += cnt;
        len -= cnt;
    }
    return 0;
}

int qc_guest_read(struct qc_node *n, uint64_t off, void *buf, size_t len,
                  uint64_t *fail_offset)
{
    uint8_t *p = buf;
    size_t in = len;
    uint64_t dummy;

    if (!fail_offset)
        fail_offset = &dummy;
    /* past the node's end: zeros, as the block layer fills them */
    if (off >= n->length)
        in = 0;
    else if (len > n->length - off)
        in = (size_t)(n->length - off);
    memset(p + in, 0, len - in);
    if (!in)
        return 0;
    if (n->kind == QC_NODE_RAW) {
        if (qc_node_pread(n->file, off, p, in) < 0) {
            *fail_offset = off;
            return -EIO;
        }
        return 0;
    }
    return read_qcow2(n, off, p, in, fail_offset);
}

/* --- raw export -------------------------------------------------------- */

#define EXPORT_CHUNK (2u << 20)
#define SPARSE_BLOCK 4096u

static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    static const uint8_t zeros[SPARSE_BLOCK];
    size_t i = 0;

    while (i < len) {
        size_t n = len - i < SPARSE_BLOCK ? len - i : SPARSE_BLOCK;
        if (memcmp(buf + i, zeros, n) != 0) {
            const uint8_t *q = buf + i;
            size_t left = n;
            uint64_t at = off + i;
            while (left) {
                ssize_t w = pwrite(fd, q, left, (off_t)at);
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    return -errno;
                }
                q += w;
                at += (uint64_t)w;
                left -= (size_t)w;
            }
        }
        i += n;
    }
    return 0;
}

/* The status of every range first (qemu-img convert checks the whole
 * source before copying), then each range again with its data. */
int qc_guest_stream(struct qc_chain *c, qc_guest_fn fn, void *ctx,
                    enum qc_export_stage *stage, uint64_t *fail_offset)
{
    struct qc_node *top = c->top;
    uint64_t len = top->length, off;
    struct qc_map_entry e;
    uint8_t *buf = NULL;
    int r;

    *fail_offset = 0;
    *stage = QC_EXPORT_STATUS;
    for (off = 0; off < len; off += e.length) {
        if ((r = qc_map_entry_at(top, off, len - off, &e)) < 0) {
            *fail_offset = off;
            return r;
        }
    }
    buf = malloc(EXPORT_CHUNK);
    if (!buf)
        return -ENOMEM;
    for (off = 0; off < len; off += e.length) {
        if ((r = qc_map_entry_at(top, off, len - off, &e)) < 0) {
            *stage = QC_EXPORT_STATUS;
            *fail_offset = off;
            goto out;
        }
        if (e.zero) {
            *stage = QC_EXPORT_WRITE;
            *fail_offset = off;
            if ((r = fn(ctx, off, NULL, e.length, &e)) < 0)
                goto out;
            continue;
        }
        for (uint64_t done = 0; done < e.length;) {
            size_t n = e.length - done < EXPORT_CHUNK ? (size_t)(e.length - done) : EXPORT_CHUNK;
            *stage = QC_EXPORT_READ;
            r = qc_guest_read(top, off + done, buf, n, fail_offset);
            if (r < 0)
                goto out;
            *stage = QC_EXPORT_WRITE;
            *fail_offset = off + done;
            if ((r = fn(ctx, off + done, buf, n, &e)) < 0)
                goto out;
            done += n;
        }
    }
    *stage = QC_EXPORT_OK;
    r = 0;
out:
    free(buf);
    return r;
}

static int write_piece(void *ctx, uint64_t off, const uint8_t *data, uint64_t len,
                       const struct qc_map_entry *e)
{
    (void)e;
    if (!data)
        return 0;   /* the new file reads as zeros already */
    return write_sparse(*(int *)ctx, data, (size_t)len, off);
}

int qc_guest_export_raw(struct qc_chain *c, int out_fd, enum qc_export_stage *stage,
                        uint64_t *fail_offset)
{
    uint64_t len = c->top->length;

    *stage = QC_EXPORT_WRITE;
    *fail_offset = 0;
    if (ftruncate(out_fd, 0) < 0 || ftruncate(out_fd, (off_t)len) < 0)
        return -errno;
    return qc_guest_stream(c, write_piece, &out_fd, stage, fail_offset);
}
