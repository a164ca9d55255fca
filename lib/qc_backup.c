/* Backups of a repair and their undo (qc_backup.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "qc_backup.h"
#include "qc_endian.h"
#include "qc_sidefile.h"

#define BACKUP_MAGIC "QCREPBK2"
#define BACKUP_MAGIC_V1 "QCREPBK1"
#define TRAILER_MAGIC "QCREPEND"
#define HASH_LEN QC_BACKUP_HASH_LEN
#define BODY_HEAD_LEN 72u                    /* magic, B, A, H, identity hash, N */
#define RECORD_HEAD_LEN (24u + HASH_LEN)     /* offset, length, saved, hash */
#define TRAILER_LEN (16u + HASH_LEN)
#define BACKUP_MAX_RANGE (64ull << 20)       /* longer writes are split */
#define HEADER_MAX (2ull << 20)              /* the largest cluster */

static void sha256(const void *data, size_t len, uint8_t out[HASH_LEN])
{
    unsigned n = HASH_LEN;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
        memset(out, 0, HASH_LEN);
}

static void hex(const uint8_t *h, char out[2 * HASH_LEN + 1])
{
    for (size_t i = 0; i < HASH_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* --- records of a plan --------------------------------------------------------- */

/* The records of write step S, one per call: the part before the old end B
 * and the part past it, each cut into pieces of at most BACKUP_MAX_RANGE.
 * *POS starts at S->off; false when no record is left. */
static bool next_record(const struct qc_plan_step *s, uint64_t b, uint64_t *pos, uint64_t *off,
                        uint64_t *len, bool *saved)
{
    uint64_t end = s->off + s->len, stop;

    if (s->op != QC_PLAN_WRITE || *pos >= end)
        return false;
    stop = *pos < b && end > b ? b : end;
    if (stop - *pos > BACKUP_MAX_RANGE)
        stop = *pos + BACKUP_MAX_RANGE;
    *off = *pos;
    *len = stop - *pos;
    *saved = *pos < b;
    *pos = stop;
    return true;
}

static uint64_t count_records(const struct qc_plan *p, uint64_t b)
{
    uint64_t n = 0, pos, off, len;
    bool saved;

    for (size_t i = 0; i < p->n; i++)
        for (pos = p->v[i].off; next_record(&p->v[i], b, &pos, &off, &len, &saved);)
            n++;
    return n;
}

/* The file's length once the plan is carried out on a file of B bytes. */
static uint64_t planned_size(const struct qc_plan *p, uint64_t b)
{
    uint64_t a = b;

    for (size_t i = 0; i < p->n; i++) {
        const struct qc_plan_step *s = &p->v[i];
        if (s->op == QC_PLAN_WRITE && s->len && s->off + s->len > a)
            a = s->off + s->len;
        else if (s->op == QC_PLAN_GROW && s->off > a)
            a = s->off;
    }
    return a;
}

/* The header cluster's length: the cluster size the header names (512
 * bytes when it names none), at most the file. */
static uint64_t header_cluster_len(struct qc_file *f)
{
    uint8_t h[24];
    uint32_t bits = 9;
    uint64_t n;

    if (f->size >= sizeof h && qc_file_read(f, 0, h, sizeof h) == 0 && qc_be32(h + 20) >= 9 &&
        qc_be32(h + 20) <= 21)
        bits = qc_be32(h + 20);
    n = 1ull << bits;
    return n < f->size ? n : f->size;
}

/* Zeroes in BUF (the first H bytes of the file) the bytes of [OFF, OFF+LEN). */
static void mask_range(uint8_t *buf, uint64_t h, uint64_t off, uint64_t len)
{
    if (off < h)
        memset(buf + off, 0, (size_t)((len < h - off ? len : h - off)));
}

/* The identity hash of a plan's image: its header cluster with every saved
 * record zeroed. */
static int plan_identity(const struct qc_plan *p, struct qc_file *f, uint64_t h,
                         uint8_t out[HASH_LEN])
{
    uint8_t *buf = malloc(h ? (size_t)h : 1);
    uint64_t pos, off, len;
    bool saved;
    int r;

    if (!buf)
        return QC_E_NOMEM;
    if ((r = qc_file_read(f, 0, buf, (size_t)h)) < 0) {
        free(buf);
        return r;
    }
    for (size_t i = 0; i < p->n; i++)
        for (pos = p->v[i].off; next_record(&p->v[i], f->size, &pos, &off, &len, &saved);)
            if (saved)
                mask_range(buf, h, off, len);
    sha256(buf, (size_t)h, out);
    free(buf);
    return 0;
}

/* --- writing ------------------------------------------------------------------- */

struct bwriter {
    int fd;
    EVP_MD_CTX *md;
    int error;             /* first failure, negative */
};

/* 0, or a negative errno. */
static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void bw_put(struct bwriter *w, const void *data, size_t len)
{
    if (w->error)
        return;
    if (!EVP_DigestUpdate(w->md, data, len))
        w->error = QC_E_NOMEM;
    else
        w->error = write_all(w->fd, data, len);
}

static void bw_u64(struct bwriter *w, uint64_t v)
{
    uint8_t x[8];
    qc_put_be64(x, v);
    bw_put(w, x, 8);
}

/* Makes *BUF hold at least LEN bytes; false when memory ran out (*BUF
 * stays as it was). */
static bool grow_buffer(uint8_t **buf, uint64_t len)
{
    uint8_t *nb = realloc(*buf, len ? (size_t)len : 1);

    if (!nb)
        return false;
    *buf = nb;
    return true;
}

/* One record: the bytes F holds there now (saved or not), and the hash of
 * what they become once the whole plan is carried out. */
static int put_record(struct bwriter *w, const struct qc_plan *p, struct qc_file *f,
                      uint64_t off, uint64_t len, bool saved, uint8_t **buf, uint8_t **after)
{
    uint8_t hash[HASH_LEN];
    int r;

    if (!grow_buffer(buf, len) || !grow_buffer(after, len))
        return QC_E_NOMEM;
    if (saved && (r = qc_file_read(f, off, *buf, (size_t)len)) < 0)
        return r;
    if (saved)
        memcpy(*after, *buf, (size_t)len);
    else
        memset(*after, 0, (size_t)len);
    if ((r = qc_plan_overlay(p, off, *after, (size_t)len)) < 0)
        return r;
    sha256(*after, (size_t)len, hash);
    bw_u64(w, off);
    bw_u64(w, len);
    bw_u64(w, saved ? len : 0);
    bw_put(w, hash, HASH_LEN);
    if (saved)
        bw_put(w, *buf, (size_t)len);
    return w->error;
}

/* Every record of P, in plan order. */
static int put_records(struct bwriter *w, const struct qc_plan *p, struct qc_file *f)
{
    uint8_t *buf = NULL, *after = NULL;
    uint64_t pos, off, len;
    bool saved;
    int r = 0;

    for (size_t i = 0; i < p->n && r == 0; i++)
        for (pos = p->v[i].off;
             r == 0 && next_record(&p->v[i], f->size, &pos, &off, &len, &saved);)
            r = put_record(w, p, f, off, len, saved, &buf, &after);
    free(buf);
    free(after);
    return r;
}

/* Makes the new file's name durable: syncs the directory that holds PATH. */
static void sync_parent(const char *path)
{
    char *copy = strdup(path);
    int fd;

    if (!copy)
        return;
    if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

static int create_backup_file(struct qc_file *f, const char *path, const char **err)
{
    static _Thread_local char msg[512];
    struct qc_protect prot;
    int fd;

    /* Never the image (a typo, a symlink or a hard link to it), never an
     * existing file: a backup that replaced an earlier one would lose it. */
    qc_protect_init(&prot);
    qc_protect_add_fd(&prot, f->fd, "the image");
    if ((fd = qc_sidefile_open(path, &prot, QC_SIDE_KEEP, msg, sizeof msg)) < 0)
        *err = msg;
    return fd;
}

/* The body: head, records, hash; synced. */
static int write_body(struct bwriter *w, const struct qc_plan *p, struct qc_file *f,
                      uint64_t size_after, uint8_t body_hash[HASH_LEN], const char **err)
{
    uint64_t h = header_cluster_len(f);
    uint8_t id[HASH_LEN];
    unsigned n = HASH_LEN;
    int r;

    if ((r = plan_identity(p, f, h, id)) < 0) {
        *err = "cannot read the image";
        return r;
    }
    bw_put(w, BACKUP_MAGIC, 8);
    bw_u64(w, f->size);
    bw_u64(w, size_after);
    bw_u64(w, h);
    bw_put(w, id, HASH_LEN);
    bw_u64(w, count_records(p, f->size));
    if ((r = put_records(w, p, f)) < 0) {
        *err = w->error ? "cannot write the backup file" : "cannot read the image";
        return r;
    }
    if (!EVP_DigestFinal_ex(w->md, body_hash, &n))
        return QC_E_NOMEM;
    if ((r = write_all(w->fd, body_hash, HASH_LEN)) == 0 && fsync(w->fd) != 0)
        r = -(errno ? errno : EIO);
    if (r < 0)
        *err = "cannot write the backup file";
    return r;
}

int qc_backup_save(const struct qc_plan *p, struct qc_file *f, const char *path,
                   struct qc_backup_writer *bw, const char **err)
{
    struct bwriter w = { -1, NULL, 0 };
    int r;

    bw->fd = -1;
    if ((w.fd = create_backup_file(f, path, err)) < 0)
        return -EPERM;
    sync_parent(path);
    if (!(w.md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(w.md);
        close(w.fd);
        *err = "cannot hash the backup";
        return QC_E_NOMEM;
    }
    bw->size_after = planned_size(p, f->size);
    r = write_body(&w, p, f, bw->size_after, bw->body_hash, err);
    EVP_MD_CTX_free(w.md);
    if (r < 0) {
        close(w.fd);
        return r;
    }
    bw->fd = w.fd;
    return 0;
}

int qc_backup_finish(struct qc_backup_writer *w, const struct qc_file *f, const char **err)
{
    uint8_t t[HASH_LEN + TRAILER_LEN];
    int r = 0;

    if (w->fd < 0)
        return 0;
    memcpy(t, w->body_hash, HASH_LEN);
    memcpy(t + HASH_LEN, TRAILER_MAGIC, 8);
    qc_put_be64(t + HASH_LEN + 8, f->size);
    sha256(t, HASH_LEN + 16, t + HASH_LEN + 16);
    if (f->size != w->size_after) {
        *err = "the image's length after the repair is not the planned one";
        r = -EIO;
    } else if ((r = write_all(w->fd, t + HASH_LEN, TRAILER_LEN)) == 0 && fsync(w->fd) != 0) {
        r = -(errno ? errno : EIO);
    }
    if (r < 0 && f->size == w->size_after)
        *err = "cannot complete the backup file";
    if (close(w->fd) != 0 && r == 0) {
        *err = "cannot complete the backup file";
        r = -(errno ? errno : EIO);
    }
    w->fd = -1;
    return r;
}

void qc_backup_abandon(struct qc_backup_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

/* --- reading ------------------------------------------------------------------- */

/* The fixed head of the body; lengths checked against each other. */
static int parse_head(struct qc_backup *b, const uint8_t *buf, size_t len, uint64_t *n,
                      const char **err)
{
    if (len >= 8 && !memcmp(buf, BACKUP_MAGIC_V1, 8)) {
        *err = "a backup in the old format (version 1), which records nothing about the "
               "image it was made for; this qc-repair undoes version 2 backups only";
        return QC_E_FORMAT;
    }
    if (len < 8 || memcmp(buf, BACKUP_MAGIC, 8)) {
        *err = "not a qc-repair backup file";
        return QC_E_FORMAT;
    }
    *err = "damaged backup file: cut short";
    if (len < BODY_HEAD_LEN + HASH_LEN)
        return QC_E_FORMAT;
    b->size_before = qc_be64(buf + 8);
    b->size_after = qc_be64(buf + 16);
    b->header_len = qc_be64(buf + 24);
    b->header_hash = buf + 32;
    *n = qc_be64(buf + 64);
    *err = "damaged backup file: its lengths contradict each other";
    if (b->size_after < b->size_before || b->size_after > (uint64_t)INT64_MAX ||
        b->header_len > b->size_before || b->header_len > HEADER_MAX)
        return QC_E_FORMAT;
    *err = "damaged backup file: cut short";
    if (*n > (len - BODY_HEAD_LEN - HASH_LEN) / RECORD_HEAD_LEN)
        return QC_E_FORMAT;
    return 0;
}

/* Record I at *POS: bounds checked against the file and the lengths. */
static int parse_record(struct qc_backup *b, size_t i, size_t *pos, const char **err)
{
    struct qc_backup_record *rec = &b->v[i];
    const uint8_t *p = b->buf + *pos;
    uint64_t saved;

    *err = "damaged backup file: cut short";
    if (b->len - HASH_LEN - *pos < RECORD_HEAD_LEN)
        return QC_E_FORMAT;
    rec->off = qc_be64(p);
    rec->len = qc_be64(p + 8);
    saved = qc_be64(p + 16);
    rec->after_hash = p + 24;
    *pos += RECORD_HEAD_LEN;
    if (saved > b->len - HASH_LEN - *pos)
        return QC_E_FORMAT;
    *err = "damaged backup file: a range lies out of bounds";
    if ((saved != 0 && saved != rec->len) || rec->len > BACKUP_MAX_RANGE ||
        rec->off > b->size_after || rec->len > b->size_after - rec->off)
        return QC_E_FORMAT;
    if (saved ? rec->off + rec->len > b->size_before : rec->off < b->size_before)
        return QC_E_FORMAT;
    rec->before = saved ? b->buf + *pos : NULL;
    *pos += (size_t)saved;
    return 0;
}

/* After the body's hash at POS: nothing (a repair that did not finish) or
 * the trailer. */
static int parse_trailer(struct qc_backup *b, size_t pos, const char **err)
{
    const uint8_t *t = b->buf + pos + HASH_LEN;
    uint8_t h[HASH_LEN];
    size_t rest = b->len - pos - HASH_LEN;

    b->finished = false;
    if (rest == 0)
        return 0;
    *err = "damaged backup file: the trailer written after the repair is damaged";
    if (rest != TRAILER_LEN)
        return QC_E_FORMAT;
    sha256(b->buf + pos, HASH_LEN + 16, h);
    if (memcmp(t, TRAILER_MAGIC, 8) || qc_be64(t + 8) != b->size_after ||
        memcmp(t + 16, h, HASH_LEN))
        return QC_E_FORMAT;
    b->finished = true;
    return 0;
}

int qc_backup_parse(struct qc_backup *b, uint8_t *buf, size_t len, const char **err)
{
    uint8_t h[HASH_LEN];
    uint64_t n;
    size_t pos = BODY_HEAD_LEN;
    int r;

    memset(b, 0, sizeof *b);
    b->buf = buf;
    b->len = len;
    if ((r = parse_head(b, buf, len, &n, err)) < 0)
        return r;
    if (!(b->v = calloc(n ? (size_t)n : 1, sizeof *b->v))) {
        *err = "backup file too large";
        return QC_E_NOMEM;
    }
    b->n = (size_t)n;
    for (size_t i = 0; i < b->n; i++)
        if ((r = parse_record(b, i, &pos, err)) < 0)
            return r;
    sha256(buf, pos, h);
    if (memcmp(buf + pos, h, HASH_LEN)) {
        *err = "damaged backup file: its checksum does not match";
        return QC_E_FORMAT;
    }
    return parse_trailer(b, pos, err);
}

int qc_backup_load(struct qc_backup *b, const char *path, const char **err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);  /* a FIFO must not block */
    struct stat st;
    uint8_t *buf;
    size_t got = 0;

    memset(b, 0, sizeof *b);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        *err = "cannot open the backup file";
        return e;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SIZE_MAX / 2 ||
        !(buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        close(fd);
        *err = S_ISREG(st.st_mode) ? "backup file too large" : "the backup is not a regular file";
        return S_ISREG(st.st_mode) ? QC_E_NOMEM : QC_E_FORMAT;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return qc_backup_parse(b, buf, got, err);
}

void qc_backup_free(struct qc_backup *b)
{
    free(b->buf);
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* --- checking and restoring ---------------------------------------------------- */

struct verifier {
    const struct qc_backup *b;
    struct qc_file *f;
    qc_backup_say_fn say;
    void *ctx;
    struct qc_backup_state *st;
};

static void differs(struct verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void differs(struct verifier *v, const char *fmt, ...)
{
    char line[640];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    v->st->differences++;
    if (v->say)
        v->say(v->ctx, line);
}

static int verify_identity(struct verifier *v)
{
    const struct qc_backup *b = v->b;
    char want[2 * HASH_LEN + 1], got[2 * HASH_LEN + 1];
    uint8_t h[HASH_LEN], *buf;
    int r;

    if (v->f->size < b->header_len) {
        v->st->wrong_image = true;
        differs(v, "the image is not the one this backup was made for: it is %" PRIu64
                " bytes long, shorter than the header cluster (%" PRIu64 " bytes)",
                v->f->size, b->header_len);
        return 0;
    }
    if (!(buf = malloc(b->header_len ? (size_t)b->header_len : 1)))
        return QC_E_NOMEM;
    if ((r = qc_file_read(v->f, 0, buf, (size_t)b->header_len)) == 0) {
        for (size_t i = 0; i < b->n; i++)
            if (b->v[i].before)
                mask_range(buf, b->header_len, b->v[i].off, b->v[i].len);
        sha256(buf, (size_t)b->header_len, h);
        if (memcmp(h, b->header_hash, HASH_LEN)) {
            v->st->wrong_image = true;
            hex(b->header_hash, want);
            hex(h, got);
            differs(v, "the image is not the one this backup was made for: its header "
                    "cluster outside the repaired ranges (%" PRIu64 " bytes) has sha256 %s, "
                    "not %s", b->header_len, got, want);
        }
    }
    free(buf);
    return r;
}

/* The length: A once the repair finished (or B once an undo cut it back),
 * anything from B to A when it stopped on the way. */
static void verify_length(struct verifier *v)
{
    const struct qc_backup *b = v->b;
    uint64_t size = v->f->size;

    if (b->finished && size != b->size_after && size != b->size_before)
        differs(v, "the image is %" PRIu64 " bytes long; the repair left it %" PRIu64
                " bytes long", size, b->size_after);
    else if (!b->finished && (size < b->size_before || size > b->size_after))
        differs(v, "the image is %" PRIu64 " bytes long; the repair, which did not finish, "
                "left it between %" PRIu64 " and %" PRIu64 " bytes long", size,
                b->size_before, b->size_after);
}

/* Record I: its old bytes (already restored), or what the repair wrote;
 * *OLD is set when it holds its old bytes. */
static int verify_record(struct verifier *v, size_t i, uint8_t *buf, bool *old)
{
    const struct qc_backup_record *rec = &v->b->v[i];
    char want[2 * HASH_LEN + 1], got[2 * HASH_LEN + 1], before[2 * HASH_LEN + 1];
    uint8_t h[HASH_LEN];
    int r;

    *old = false;
    if (!qc_file_has(v->f, rec->off, rec->len)) {
        differs(v, "range %zu of %zu (offset 0x%" PRIx64 ", %" PRIu64 " bytes) lies past the "
                "end of the image (%" PRIu64 " bytes)", i + 1, v->b->n, rec->off, rec->len,
                v->f->size);
        return 0;
    }
    if ((r = qc_file_read(v->f, rec->off, buf, (size_t)rec->len)) < 0)
        return r;
    if (rec->before && !memcmp(buf, rec->before, (size_t)rec->len)) {
        *old = true;
        return 0;
    }
    sha256(buf, (size_t)rec->len, h);
    if (!memcmp(h, rec->after_hash, HASH_LEN))
        return 0;
    hex(rec->after_hash, want);
    hex(h, got);
    if (rec->before) {
        sha256(rec->before, (size_t)rec->len, h);
        hex(h, before);
        differs(v, "range %zu of %zu (offset 0x%" PRIx64 ", %" PRIu64 " bytes) holds neither "
                "what the repair wrote there (sha256 %s) nor what it held before (sha256 %s): "
                "found sha256 %s", i + 1, v->b->n, rec->off, rec->len, want, before, got);
    } else {
        differs(v, "range %zu of %zu (offset 0x%" PRIx64 ", %" PRIu64 " bytes, past the old "
                "end of the file) no longer holds what the repair wrote there: sha256 %s "
                "expected, %s found", i + 1, v->b->n, rec->off, rec->len, want, got);
    }
    return 0;
}

int qc_backup_verify(const struct qc_backup *b, struct qc_file *f, qc_backup_say_fn say,
                     void *ctx, struct qc_backup_state *st)
{
    struct verifier v = { b, f, say, ctx, st };
    uint64_t longest = 1;
    uint8_t *buf;
    size_t old = 0, saved = 0;
    int r;

    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].len > longest)
            longest = b->v[i].len;
    if (!(buf = malloc((size_t)longest)))
        return QC_E_NOMEM;
    if ((r = verify_identity(&v)) == 0)
        verify_length(&v);
    for (size_t i = 0; i < b->n && r == 0; i++) {
        bool is_old;
        /* past the old end: checked once the repair finished, and while the
         * file still has them (an undo that stopped after cutting it back) */
        if (!b->v[i].before && (!b->finished || f->size != b->size_after))
            continue;
        r = verify_record(&v, i, buf, &is_old);
        old += is_old;
        saved += b->v[i].before != NULL;
    }
    free(buf);
    st->already_restored = r == 0 && !st->differences && old == saved && f->size == b->size_before;
    return r;
}

int qc_backup_apply(const struct qc_backup *b, struct qc_file *f, size_t *nranges)
{
    int r = 0;

    *nranges = 0;
    /* records are in plan order, each with the bytes from before the
     * repair: putting them back last first leaves the oldest bytes */
    for (size_t i = b->n; i-- > 0 && r == 0;) {
        const struct qc_backup_record *rec = &b->v[i];
        if (!rec->before)
            continue;
        r = qc_file_write(f, rec->off, rec->before, (size_t)rec->len, QC_EV_RESTORE);
        if (r == 0)
            (*nranges)++;
    }
    if (r == 0 && f->size != b->size_before)
        r = qc_file_truncate(f, b->size_before);
    if (r == 0)
        r = qc_file_flush(f);
    return r;
}
