/* qc-salvage's run: open read-only, analyse, write the outputs
 * (qc_salvage_output.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qc_io.h"
#include "qc_salvage.h"
#include "qc_salvage_output.h"
#include "qc_sidefile.h"
#include "qc_util.h"
#include "qc_view.h"
#include "qc_writer.h"

struct run {
    const struct qc_salvage_output *o;
    const char *prog;
    struct qc_file f;
    struct qc_protect prot;
    struct qc_salvage s;
    struct qc_salvage_backing back;
    uint8_t *buf;
};

static int fail(struct run *r, const char *what, const char *why)
{
    fprintf(stderr, "%s: ", r->prog);
    qc_fput_escaped(stderr, what, strlen(what));
    fprintf(stderr, ": %s\n", why);
    return 1;
}

static void progress(void *opaque, uint64_t done, uint64_t total)
{
    (void)opaque;
    fprintf(stderr, "\rscanning clusters: %3u%%", (unsigned)(total ? done * 100 / total : 100));
    if (done == total)
        fputs("\r                        \r", stderr);
    fflush(stderr);
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Each recovered cluster, with the length that lies inside the disk. */
typedef int (*cluster_fn)(struct run *r, uint64_t guest, const uint8_t *buf, size_t len,
                          void *opaque);

struct backing_walk {
    struct run *r;
    cluster_fn fn;
    void *opaque;
};

/* The gaps an intact table leaves to the backing file, read through it. */
static int backing_span(void *opaque, const struct qc_salvage_range *g)
{
    struct backing_walk *b = opaque;
    struct run *r = b->r;
    if (g->status != QC_SV_KNOWN || g->entry || g->host)
        return 0;
    uint64_t cs = r->s.cluster_size;
    for (uint64_t off = g->guest; off < g->guest + g->len; off += cs) {
        size_t len = g->guest + g->len - off < cs ? (size_t)(g->guest + g->len - off) : (size_t)cs;
        int rc = qc_salvage_backing_read(&r->back, off, r->buf, len);
        if (rc)
            return fail(r, "backing file", qc_strerror(rc));
        if (!all_zero(r->buf, len) && (rc = b->fn(r, off, r->buf, len, b->opaque)) != 0)
            return rc;
    }
    return 0;
}

static int each_recovered(struct run *r, cluster_fn fn, void *opaque)
{
    struct qc_salvage *s = &r->s;
    if (s->backing_read) {
        struct backing_walk b = { r, fn, opaque };
        int rc = qc_salvage_spans(s, false, backing_span, &b);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < s->nr; i++) {
        const struct qc_salvage_range *g = &s->r[i];
        if (g->status != QC_SV_KNOWN && g->status != QC_SV_RECONSTRUCTED)
            continue;
        int rc = qc_salvage_read_cluster(s, g, r->buf);
        if (rc)
            return fail(r, r->o->image, qc_strerror(rc));
        size_t len = g->len < s->cluster_size ? (size_t)g->len : (size_t)s->cluster_size;
        if (!all_zero(r->buf, len) && (rc = fn(r, g->guest, r->buf, len, opaque)) != 0)
            return rc;
    }
    return 0;
}

static int raw_cluster(struct run *r, uint64_t guest, const uint8_t *buf, size_t len,
                       void *opaque)
{
    int fd = *(int *)opaque;
    if (pwrite(fd, buf, len, (off_t)guest) != (ssize_t)len)
        return fail(r, r->o->out, strerror(errno));
    return 0;
}

static int open_out(struct run *r, int *fd)
{
    char err[256];
    *fd = qc_sidefile_open(r->o->out, &r->prot, r->o->force ? QC_SIDE_FORCE : 0, err,
                           sizeof(err));
    return *fd < 0 ? fail(r, r->o->out, err) : 0;
}

static int write_raw(struct run *r)
{
    int fd, rc = open_out(r, &fd);
    if (rc)
        return rc;
    if (ftruncate(fd, (off_t)r->s.virtual_size) != 0)
        rc = fail(r, r->o->out, strerror(errno));
    if (rc == 0)
        rc = each_recovered(r, raw_cluster, &fd);
    if (close(fd) != 0 && rc == 0)
        rc = fail(r, r->o->out, strerror(errno));
    return rc;
}

static int qcow2_cluster(struct run *r, uint64_t guest, const uint8_t *buf, size_t len,
                         void *opaque)
{
    int rc = qc_writer_pwrite(opaque, guest, buf, len);
    return rc ? fail(r, r->o->out, qc_strerror(rc)) : 0;
}

/* qcow2 output: the side file is created first (its rules), then the
 * creator and the writer work on that same inode through /proc. */
static int write_qcow2(struct run *r)
{
    int fd, rc = open_out(r, &fd);
    if (rc)
        return rc;
    char path[64], err[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct qc_create_options copt;
    qc_create_options_init(&copt);
    copt.size = r->s.virtual_size;
    copt.size_set = true;
    copt.cluster_size = r->s.cluster_size;
    copt.cluster_size_set = true;
    if (qc_create(path, &copt, NULL, true, NULL, err, sizeof(err)) != 0) {
        close(fd);
        return fail(r, r->o->out, err);
    }
    struct qc_writer *w = calloc(1, sizeof(*w));
    struct qc_writer_options wopt = { .cache_mode = QC_CACHE_WRITEBACK, .no_backing = true };
    if (!w || qc_writer_open(w, path, &wopt, NULL) != 0) {
        rc = fail(r, r->o->out, w ? w->errmsg : "out of memory");
        free(w);
        close(fd);
        return rc;
    }
    rc = each_recovered(r, qcow2_cluster, w);
    int crc = qc_writer_close(w);
    if (crc && rc == 0)
        rc = fail(r, r->o->out, qc_strerror(crc));
    free(w);
    close(fd);
    return rc;
}

static int write_lost_found(struct run *r)
{
    const char *dir = r->o->lost_found;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(r, dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(r, dir, "not a directory");
    for (size_t i = 0; i < r->s.no; i++) {
        if (strcmp(r->s.o[i].looks_like, "data") != 0)
            continue;
        char path[4096], err[256];
        snprintf(path, sizeof(path), "%s/%" PRIx64 ".bin", dir, r->s.o[i].host);
        int64_t got = qc_file_read_padded(&r->f, r->s.o[i].host, r->buf, r->s.cluster_size);
        if (got < 0)
            return fail(r, r->o->image, qc_strerror((int)got));
        int fd = qc_sidefile_open(path, &r->prot, r->o->force ? QC_SIDE_FORCE : 0, err,
                                  sizeof(err));
        if (fd < 0)
            return fail(r, path, err);
        bool ok = write(fd, r->buf, r->s.cluster_size) == (ssize_t)r->s.cluster_size;
        if (close(fd) != 0 || !ok)
            return fail(r, path, strerror(errno));
    }
    return 0;
}

static int write_side_stream(struct run *r, const char *path, bool map)
{
    char err[256];
    FILE *out = r->o->dry_run ? stdout
                : qc_sidefile_fopen(path, &r->prot, r->o->force ? QC_SIDE_FORCE : 0, err,
                                    sizeof(err));
    if (!out)
        return fail(r, path, err);
    if (map) {
        qc_salvage_write_map(&r->s, out);
    } else {
        struct json_object *j = qc_salvage_report_json(&r->s, r->o->image);
        qc_json_print(out, j);
        json_object_put(j);
    }
    if (out == stdout)
        return fflush(out) ? fail(r, "stdout", strerror(errno)) : 0;
    return fclose(out) != 0 ? fail(r, path, strerror(errno)) : 0;
}

/* Every output named is checked before the first is written, so that a
 * refused map or report leaves no half-done run behind. */
static int refuse_protected(struct run *r)
{
    const char *paths[] = { r->o->dry_run ? NULL : r->o->out, r->o->map, r->o->report };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const char *what = paths[i] ? qc_protect_match(&r->prot, paths[i]) : NULL;
        if (what) {
            char why[160];
            snprintf(why, sizeof(why), "is %s: refusing to overwrite it", what);
            return fail(r, paths[i], why);
        }
    }
    return 0;
}

static int write_outputs(struct run *r)
{
    int rc = refuse_protected(r);
    if (rc)
        return rc;
    if (!r->o->dry_run)
        rc = r->o->raw ? write_raw(r) : write_qcow2(r);
    if (rc == 0 && r->o->map)
        rc = write_side_stream(r, r->o->map, true);
    if (rc == 0 && (r->o->report || r->o->dry_run))
        rc = write_side_stream(r, r->o->report, false);
    if (rc == 0 && r->o->lost_found && !r->o->dry_run)
        rc = write_lost_found(r);
    return rc;
}

static void summary(struct run *r)
{
    struct qc_salvage_totals t;
    qc_salvage_totals(&r->s, &t);
    fprintf(stderr, "%s: known %" PRIu64 ", reconstructed %" PRIu64 ", unallocated %" PRIu64
            ", lost %" PRIu64 " bytes; %zu orphan clusters\n", r->prog,
            t.bytes[QC_SV_KNOWN], t.bytes[QC_SV_RECONSTRUCTED], t.bytes[QC_SV_UNALLOCATED],
            t.bytes[QC_SV_LOST], r->s.no);
}

/* A backing file that cannot be opened leaves its ranges lost, with a note. */
static void open_backing(struct run *r)
{
    char *why = NULL;
    if (!r->s.has_backing)
        return;
    if (qc_salvage_backing_open(&r->s, &r->back, r->o->image, &why) != 0) {
        fprintf(stderr, "%s: the backing file is not read (its ranges are lost): ", r->prog);
        qc_fput_escaped(stderr, why ? why : "", why ? strlen(why) : 0);
        fputc('\n', stderr);
    } else {
        qc_protect_add_fd(&r->prot, qc_salvage_backing_fd(&r->back), "its backing file");
    }
    free(why);
}

int qc_salvage_run(const struct qc_salvage_output *o, const char *prog)
{
    struct run r = { .o = o, .prog = prog };
    int rc = qc_file_open(&r.f, o->image, 0, NULL);
    if (rc)
        return fail(&r, o->image, qc_strerror(rc));
    qc_protect_init(&r.prot);
    qc_protect_add_fd(&r.prot, r.f.fd, "the image");
    qc_salvage_init(&r.s);
    if (o->progress)
        r.s.progress = progress;
    struct qc_salvage_options sopt = { .snapshot = o->snapshot };
    rc = qc_salvage_analyse(&r.s, &r.f, &sopt);
    int status;
    if (rc == QC_SALVAGE_UNRECOGNISABLE) {
        status = 63;
        fail(&r, o->image, "not recognisable as qcow2, even by scanning its clusters");
    } else if (rc) {
        status = fail(&r, o->image, r.s.err[0] ? r.s.err : qc_strerror(rc));
    } else {
        open_backing(&r);
        r.buf = malloc(r.s.cluster_size);
        status = r.buf ? write_outputs(&r) : fail(&r, o->image, "out of memory");
        if (status == 0) {
            summary(&r);
            status = qc_salvage_exit_status(&r.s);
        }
    }
    free(r.buf);
    qc_salvage_backing_close(&r.back);
    qc_salvage_free(&r.s);
    qc_file_close(&r.f);
    return status;
}
