/* Guest disk hashes through the streaming walk of qc_guest. */
#include "qc_hash.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "qc_map.h"

#define ZERO_FEED (64u << 10)

static const unsigned char zero_feed[ZERO_FEED];

const void *qc_hash_algorithm(const char *name)
{
    if (strcmp(name, "sha256") == 0)
        return EVP_sha256();
    if (strcmp(name, "sha1") == 0)
        return EVP_sha1();
    if (strcmp(name, "md5") == 0)
        return EVP_md5();
    return NULL;
}

/* Feeds LEN bytes of DATA, or LEN zeros when DATA is NULL. */
static int feed(EVP_MD_CTX *md, const uint8_t *data, uint64_t len)
{
    if (data)
        return EVP_DigestUpdate(md, data, (size_t)len) ? 0 : -ENOMEM;
    while (len) {
        size_t n = len < ZERO_FEED ? (size_t)len : ZERO_FEED;
        if (!EVP_DigestUpdate(md, zero_feed, n))
            return -ENOMEM;
        len -= n;
    }
    return 0;
}

static int hash_piece(void *ctx, uint64_t off, const uint8_t *data, uint64_t len,
                      const struct qc_map_entry *e)
{
    (void)off;
    (void)e;
    return feed(ctx, data, len);
}

int qc_guest_hash(struct qc_chain *c, const void *algorithm, unsigned char *out,
                  unsigned *out_len, enum qc_export_stage *stage, uint64_t *fail_offset)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int r;

    *stage = QC_EXPORT_WRITE;
    *fail_offset = 0;
    if (!md || !EVP_DigestInit_ex(md, algorithm, NULL)) {
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    r = qc_guest_stream(c, hash_piece, md, stage, fail_offset);
    if (r == 0 && !EVP_DigestFinal_ex(md, out, out_len))
        r = -ENOMEM;
    EVP_MD_CTX_free(md);
    return r;
}

/* --- per-block hashes ---------------------------------------------------- */

struct block_walk {
    EVP_MD_CTX *md;
    const struct qc_file *image_file;
    uint64_t cluster_size, disk_end;
    struct qc_hash_block cur;   /* the block being hashed */
    uint64_t filled;            /* its bytes fed so far */
    bool host_ok;               /* all of them stored at cur.host onwards */
    qc_hash_block_fn fn;
    void *ctx;
};

/* Where guest byte OFF of entry E lives in the image file, if it does. */
static bool host_of(const struct block_walk *w, const struct qc_map_entry *e,
                    uint64_t off, uint64_t *host)
{
    if (!e->has_offset || e->file != w->image_file)
        return false;
    *host = e->offset + (off - e->start);
    return true;
}

static int finish_block(struct block_walk *w)
{
    unsigned n;

    if (!EVP_DigestFinal_ex(w->md, w->cur.sha256, &n))
        return -ENOMEM;
    w->cur.has_host = w->host_ok;
    return w->fn(w->ctx, &w->cur);
}

static int map_piece(void *ctx, uint64_t off, const uint8_t *data, uint64_t len,
                     const struct qc_map_entry *e)
{
    struct block_walk *w = ctx;

    while (len) {
        uint64_t end = (off / w->cluster_size + 1) * w->cluster_size;
        uint64_t n = end - off < len ? end - off : len, host;
        bool stored = host_of(w, e, off, &host);
        int r;

        if (w->filled == 0) {
            if (!EVP_DigestInit_ex(w->md, EVP_sha256(), NULL))
                return -ENOMEM;
            w->cur.offset = off;
            w->host_ok = stored;
            w->cur.host = stored ? host : 0;
        } else if (!stored || host != w->cur.host + w->filled) {
            w->host_ok = false;
        }
        if ((r = feed(w->md, data, n)) < 0)
            return r;
        w->filled += n;
        if (off + n == end || off + n == w->disk_end) {
            w->cur.length = w->filled;
            w->filled = 0;
            if ((r = finish_block(w)) < 0)
                return r;
        }
        off += n;
        len -= n;
        if (data)
            data += n;
    }
    return 0;
}

int qc_guest_hash_map(struct qc_chain *c, qc_hash_block_fn fn, void *ctx,
                      enum qc_export_stage *stage, uint64_t *fail_offset)
{
    struct block_walk w;
    int r;

    memset(&w, 0, sizeof w);
    w.image_file = c->top->file;
    w.cluster_size = c->top->img.cluster_size;
    w.fn = fn;
    w.ctx = ctx;
    w.disk_end = c->top->length;   /* closes the last, shorter block */
    *stage = QC_EXPORT_WRITE;
    *fail_offset = 0;
    if (!(w.md = EVP_MD_CTX_new()))
        return -ENOMEM;
    r = qc_guest_stream(c, map_piece, &w, stage, fail_offset);
    EVP_MD_CTX_free(w.md);
    return r;
}

void qc_hash_hex(const unsigned char *d, unsigned len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * len] = '\0';
}
