/*
 * crashtest: prove that a qcow2 writer's crashes are repairable.
 *
 * Records every write a workload makes (qc-write's --record, or a
 * dm-log-writes log from QEMU's blklogwrites driver), rebuilds the image as
 * a power failure after any prefix of those writes would leave it (with
 * --torn, the last write cut at a sector boundary; with --reorder, any
 * subset of the writes since the last flush), and for each distinct state:
 * runs qc-check, repairs, requires a clean image for qc-check and
 * qemu-img check, and compares every guest byte with a model of what the
 * workload's acknowledged writes guarantee.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>

#include "qc_endian.h"
#include "qc_header.h"
#include "qc_iocmd.h"
#include "qc_util.h"
#include "qc_version.h"
#include "qc_view.h"
#include "qc_wlog.h"
#include "qc_writer.h"

extern char **environ;

#define PROG "crashtest"
#define CHUNK (64u * 1024)
#define MAX_SUBSET 8
#define FILE_LIMIT (64ull << 30)   /* largest image file rebuilt in memory */

static const char usage_text[] =
    "Usage: crashtest [--workload FILE] [--size SIZE] [-o CREATE_OPTS] [-t MODE]\n"
    "                 [--base IMAGE] [--torn] [--reorder] [--json] [-j N]\n"
    "       crashtest --replay LOG --base IMAGE [--workload FILE] [--torn] [--reorder]\n"
    "                 [--damaged-base] [--json] [-j N]\n"
    "\n"
    "Runs a workload of qc-write commands (qemu-io syntax, one per line) on a new\n"
    "image (qc-write --create SIZE -o CREATE_OPTS, default 64M) or on a copy of\n"
    "--base, records every write, and checks every state a power failure could\n"
    "leave: qc-check runs, the repair makes the image clean for qc-check and\n"
    "qemu-img check, every write a flush acknowledged reads back intact and no\n"
    "other guest byte changed.  With --replay, the writes come from a\n"
    "dm-log-writes LOG (QEMU's blklogwrites driver) or a --record of a qc tool\n"
    "made on BASE.\n"
    "\n"
    "  --workload FILE     commands (default: a short built-in workload)\n"
    "  --size SIZE         virtual size of the new image (default 64M)\n"
    "  -o OPTS             qemu-img create options for the new image\n"
    "  -t MODE             qc-write cache mode: writeback (default), writethrough,\n"
    "                      unsafe\n"
    "  --base IMAGE        start from a copy of IMAGE instead of a new image\n"
    "  --torn              also the last write cut at its first, middle and last\n"
    "                      sector boundary\n"
    "  --reorder           also every subset of the writes since the last flush\n"
    "                      (up to 8 of them; beyond, each single one left out)\n"
    "  --damaged-base      BASE may be damaged (the writes replayed are a repair's):\n"
    "                      it need not be clean, qc-check may also exit 1 (check\n"
    "                      errors), and corruption in a state is not blamed on the\n"
    "                      order of the writes\n"
    "  --json              one JSON document instead of text\n"
    "  -j, --jobs N        states checked in parallel (default: CPUs)\n"
    "  --writer-opt OPT    extra qc-write option (e.g. --unsafe-order-l2-first,\n"
    "                      test only)\n"
    "  --keep              keep the work directory\n"
    "  --final FILE        also write the image as it is after every write\n"
    "  -h, --help          this text\n"
    "      --version       version\n"
    "\n"
    "Exit status: 0 every state passed, 1 some state failed, 2 the run could not\n"
    "be set up, 64 usage error.\n";

static const char default_workload[] =
    "write -P 0x11 0 64k\n"
    "write -P 0x22 1M 4k\n"
    "flush\n"
    "write -P 0x33 32k 64k\n"
    "write -z 1M 64k\n"
    "discard 0 64k\n"
    "flush\n"
    "write -P 0x44 2M 8k\n";

/* --- options and tools --- */

struct options {
    const char *workload, *size, *create_opts, *mode, *replay, *base, *final;
    bool torn, reorder, json, keep, damaged_base;
    int jobs;
    const char **writer_opts;
    int nwriter_opts;
};

struct tools {
    char *qc_write, *qc_check, *qc_repair, *qemu_img;
};

static struct options opt;
static struct tools tools;
static char workdir[1024];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void cleanup_workdir(void)
{
    char cmd[PATH_MAX + 16];
    if (!workdir[0] || opt.keep)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
    if (system(cmd) != 0)
        fprintf(stderr, PROG ": could not remove %s\n", workdir);
    workdir[0] = '\0';
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup_workdir();
    exit(2);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *sibling(const char *name)
{
    char self[PATH_MAX], *slash, *p;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    if (n <= 0)
        return NULL;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    p = xmalloc(strlen(self) + strlen(name) + 2);
    sprintf(p, "%s/%s", self, name);
    if (access(p, X_OK) == 0)
        return p;
    free(p);
    return NULL;
}

static char *in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];

    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (n && n + strlen(name) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return xstrdup(buf);
        }
        path = colon ? colon + 1 : NULL;
    }
    return NULL;
}

static void find_tools(void)
{
    tools.qc_write = sibling("qc-write");
    tools.qc_check = sibling("qc-check");
    tools.qc_repair = sibling("qc-repair");
    tools.qemu_img = in_path("qemu-img");
    if (!tools.qc_write && !opt.replay)
        die("qc-write not found next to crashtest (run make)");
    if (!tools.qc_repair && !tools.qemu_img)
        die("no repairer: neither qc-repair (not built) nor qemu-img (not installed)");
}

/* --- running programs --- */

struct run_result {
    int status;          /* exit status, or 128+signal */
    char *out;           /* stdout and stderr together */
    char *stdout_only;
};

static void run_free(struct run_result *r)
{
    free(r->out);
    free(r->stdout_only);
    r->out = r->stdout_only = NULL;
}

static char *read_fd_all(int fd)
{
    size_t cap = 4096, n = 0;
    char *b = xmalloc(cap);
    for (;;) {
        ssize_t k;
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
        k = read(fd, b + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    b[n] = '\0';
    return b;
}

/* Runs ARGV with stdin from STDIN_PATH (or /dev/null); stdout and stderr
 * are captured apart.  Returns 0, or -1 when it could not start. */
static int run(char *const argv[], const char *stdin_path, struct run_result *res)
{
    posix_spawn_file_actions_t fa;
    int out[2], err[2], st;
    pid_t pid;

    memset(res, 0, sizeof *res);
    if (pipe(out) < 0 || pipe(err) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(out[0]); close(out[1]); close(err[0]); close(err[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    /* stderr is small; read stdout first, then stderr */
    res->stdout_only = read_fd_all(out[0]);
    {
        char *e = read_fd_all(err[0]);
        res->out = xmalloc(strlen(res->stdout_only) + strlen(e) + 1);
        sprintf(res->out, "%s%s", res->stdout_only, e);
        free(e);
    }
    close(out[0]);
    close(err[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static bool sanitizer_report(const char *s)
{
    return strstr(s, "AddressSanitizer") || strstr(s, "LeakSanitizer") ||
           strstr(s, "UndefinedBehaviorSanitizer") || strstr(s, "runtime error:");
}

/* --- files --- */

static uint8_t *read_file(const char *path, uint64_t *len)
{
    struct stat st;
    uint8_t *b;
    int fd = open(path, O_RDONLY);
    size_t got = 0;

    if (fd < 0 || fstat(fd, &st) < 0)
        die("%s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size > FILE_LIMIT)
        die("%s: larger than %llu bytes", path, FILE_LIMIT);
    b = xmalloc((size_t)st.st_size);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n <= 0)
            die("%s: read error", path);
        got += (size_t)n;
    }
    close(fd);
    *len = (uint64_t)st.st_size;
    return b;
}

static void write_file(const char *path, const uint8_t *b, uint64_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t done = 0;

    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, b + done, (size_t)(len - done));
        if (n <= 0)
            die("%s: write error", path);
        done += (uint64_t)n;
    }
    close(fd);
}

/* --- the model of the guest disk --- */

enum effect_kind { E_NONE, E_BYTE, E_ZERO, E_DISCARD };

struct effect {
    enum effect_kind kind;
    uint64_t off, len;
    uint8_t val;
};

struct model {
    uint64_t size;              /* guest bytes */
    uint64_t nchunks;
    uint8_t **base;             /* base guest content per chunk, NULL = zeros */
    uint8_t **backing;          /* what the backing chain holds, NULL = zeros */
    struct effect *eff;         /* one per command */
    uint64_t ncmds;
    bool *touched;              /* chunk touched by some effect */
};

static struct model model;

static void model_read_base(const char *image)
{
    struct qc_writer_options wo = { .readonly = true, .no_lock = true };
    struct qc_writer w;
    uint8_t *buf = xmalloc(CHUNK);

    if (qc_writer_open(&w, image, &wo, NULL) < 0)
        die("%s: %s", image, w.errmsg);
    model.size = w.size;
    model.nchunks = (model.size + CHUNK - 1) / CHUNK;
    model.base = xcalloc(model.nchunks, sizeof *model.base);
    model.backing = xcalloc(model.nchunks, sizeof *model.backing);
    model.touched = xcalloc(model.nchunks, sizeof *model.touched);
    for (uint64_t c = 0; c < model.nchunks; c++) {
        uint64_t off = c * CHUNK, n = model.size - off < CHUNK ? model.size - off : CHUNK;
        bool nz = false;
        if (qc_writer_pread(&w, off, buf, n) < 0)
            die("%s: cannot read guest offset %llu", image, (unsigned long long)off);
        for (uint64_t i = 0; i < n && !nz; i++)
            nz = buf[i] != 0;
        if (nz) {
            model.base[c] = xcalloc(1, CHUNK);
            memcpy(model.base[c], buf, n);
        }
        if (qc_writer_backing_pread(&w, off, buf, n) < 0)
            die("%s: cannot read its backing file", image);
        nz = false;
        for (uint64_t i = 0; i < n && !nz; i++)
            nz = buf[i] != 0;
        if (nz) {
            model.backing[c] = xcalloc(1, CHUNK);
            memcpy(model.backing[c], buf, n);
        }
    }
    qc_writer_abandon(&w);
    free(buf);
}

/* The effect of each command of the workload, in qc-write's numbering
 * (every command that parses, except quit and abort). */
static void model_parse_workload(const char *text)
{
    FILE *devnull = fopen("/dev/null", "w");
    const char *p = text;
    size_t cap = 16;

    model.eff = xcalloc(cap, sizeof *model.eff);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = xmalloc(n + 1);
        struct qc_iocmd c;

        memcpy(line, p, n);
        line[n] = '\0';
        p += n + (nl ? 1 : 0);
        if (qc_iocmd_parse(line, &c, devnull, devnull, PROG) == 0 && c.kind != QC_IOCMD_NONE &&
            c.kind != QC_IOCMD_QUIT && c.kind != QC_IOCMD_ABORT) {
            struct effect e = { E_NONE, c.offset, c.length, 0 };
            if (c.kind == QC_IOCMD_WRITE) {
                e.kind = c.zero ? E_ZERO : E_BYTE;
                e.val = (uint8_t)c.pattern;
            } else if (c.kind == QC_IOCMD_DISCARD) {
                e.kind = E_DISCARD;
            }
            if (e.off >= model.size)
                e.len = 0;
            else if (e.len > model.size - e.off)
                e.len = model.size - e.off;
            if (model.ncmds == cap) {
                struct effect *ne = realloc(model.eff, 2 * cap * sizeof *ne);
                if (!ne)
                    die("out of memory");
                model.eff = ne;
                cap *= 2;
            }
            model.eff[model.ncmds++] = e;
            if (e.kind != E_NONE && e.len)
                for (uint64_t ch = e.off / CHUNK; ch <= (e.off + e.len - 1) / CHUNK; ch++)
                    model.touched[ch] = true;
        }
        free(line);
        if (c.kind == QC_IOCMD_QUIT || c.kind == QC_IOCMD_ABORT)
            break;
    }
    fclose(devnull);
}

/* What the commands guarantee at a crash: commands [0, acked) are on
 * stable storage (failed ones excepted), commands [acked, started) and
 * failed ones may have landed or not. */
struct expectation {
    uint64_t started, acked;
    const bool *failed;         /* per command */
    bool exact_replay;          /* replay: every command counts as landed */
};

static bool in_flight(const struct expectation *x, uint64_t k)
{
    if (x->failed && x->failed[k])
        return k < x->started;
    return k >= x->acked && k < x->started;
}

static bool effect_allows(const struct effect *e, uint64_t off, uint8_t actual, uint64_t chunk)
{
    if (off < e->off || off >= e->off + e->len)
        return false;
    switch (e->kind) {
    case E_BYTE: return actual == e->val;
    case E_ZERO: return actual == 0;
    case E_DISCARD:
        return actual == 0 ||
               actual == (model.backing[chunk] ? model.backing[chunk][off % CHUNK] : 0);
    default: return false;
    }
}

static bool is_zero_buf(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Compares every guest byte of the image at PATH with the model.  Returns
 * 0, or -1 with the first wrong byte described in WHY. */
static int verify_data(const char *path, const struct expectation *x, char *why, size_t whylen)
{
    struct qc_writer_options wo = { .readonly = true, .no_lock = true };
    struct qc_writer w;
    uint8_t *actual = xmalloc(CHUNK), *expect = xmalloc(CHUNK);
    int ret = 0;

    if (qc_writer_open(&w, path, &wo, NULL) < 0) {
        snprintf(why, whylen, "cannot open the repaired image: %.120s", w.errmsg);
        free(actual);
        free(expect);
        return -1;
    }
    if (w.size != model.size) {
        snprintf(why, whylen, "virtual size %llu, expected %llu", (unsigned long long)w.size,
                 (unsigned long long)model.size);
        ret = -1;
        goto out;
    }
    for (uint64_t c = 0; c < model.nchunks && ret == 0; c++) {
        uint64_t off = c * CHUNK, n = model.size - off < CHUNK ? model.size - off : CHUNK;
        bool interesting = model.base[c] || model.backing[c] || model.touched[c];

        if (!interesting) {
            /* expected zeros: only regions that map to data need reading */
            uint64_t o = off;
            while (o < off + n && ret == 0) {
                enum qc_subcluster_type t;
                uint64_t host, m;
                if (qc_writer_map(&w, o, off + n - o, &t, &host, &m) < 0 || m == 0) {
                    snprintf(why, whylen, "guest offset %llu cannot be mapped: %.120s",
                             (unsigned long long)o, w.errmsg);
                    ret = -1;
                    break;
                }
                if (!(t == QC_SCT_ZERO_PLAIN || t == QC_SCT_ZERO_ALLOC ||
                      ((t == QC_SCT_UNALLOCATED_PLAIN || t == QC_SCT_UNALLOCATED_ALLOC) &&
                       !w.backing))) {
                    if (qc_writer_pread(&w, o, actual, m) < 0) {
                        snprintf(why, whylen, "guest offset %llu cannot be read",
                                 (unsigned long long)o);
                        ret = -1;
                    } else if (!is_zero_buf(actual, m)) {
                        for (uint64_t i = 0; i < m; i++) {
                            if (actual[i]) {
                                snprintf(why, whylen, "guest byte %llu reads 0x%02x, expected 0 "
                                         "(never written)", (unsigned long long)(o + i), actual[i]);
                                break;
                            }
                        }
                        ret = -1;
                    }
                }
                o += m;
            }
            continue;
        }
        if (qc_writer_pread(&w, off, actual, n) < 0) {
            snprintf(why, whylen, "guest offset %llu cannot be read: %.120s",
                     (unsigned long long)off, w.errmsg);
            ret = -1;
            break;
        }
        /* the acknowledged content */
        if (model.base[c])
            memcpy(expect, model.base[c], n);
        else
            memset(expect, 0, n);
        for (uint64_t k = 0; k < model.ncmds && k < x->acked; k++) {
            const struct effect *e = &model.eff[k];
            uint64_t a, b;
            if (e->kind == E_NONE || !e->len || (x->failed && x->failed[k]))
                continue;
            a = e->off > off ? e->off : off;
            b = e->off + e->len < off + n ? e->off + e->len : off + n;
            if (a >= b)
                continue;
            if (e->kind == E_BYTE)
                memset(expect + (a - off), e->val, b - a);
            else if (e->kind == E_ZERO)
                memset(expect + (a - off), 0, b - a);
            else {
                /* a discard is advisory: the old bytes, zeros, or the
                 * backing file's */
                for (uint64_t i = a - off; i < b - off; i++)
                    if (actual[i] == 0 ||
                        actual[i] == (model.backing[c] ? model.backing[c][i] : 0))
                        expect[i] = actual[i];
            }
        }
        if (!memcmp(actual, expect, n))
            continue;
        for (uint64_t i = 0; i < n; i++) {
            bool ok = actual[i] == expect[i];
            for (uint64_t k = 0; !ok && k < model.ncmds; k++)
                if (in_flight(x, k) && effect_allows(&model.eff[k], off + i, actual[i], c))
                    ok = true;
            if (!ok) {
                snprintf(why, whylen, "guest byte %llu reads 0x%02x, expected 0x%02x",
                         (unsigned long long)(off + i), actual[i], expect[i]);
                ret = -1;
                break;
            }
        }
    }
out:
    qc_writer_abandon(&w);
    free(actual);
    free(expect);
    return ret;
}

/* --- crash states --- */

enum state_kind { S_PREFIX, S_TORN, S_SUBSET };

struct state {
    enum state_kind kind;
    uint64_t prefix;            /* writes applied in full (S_PREFIX, S_TORN) */
    uint64_t torn_bytes;        /* S_TORN: bytes of write [prefix] that land */
    uint64_t *subset;           /* S_SUBSET: indices (into mods) of unflushed writes kept */
    size_t nsubset;
    uint64_t epoch_start;       /* S_SUBSET: writes before the last flush */
    uint64_t crash_point;       /* writes issued before the crash (markers up to it count) */
    bool dirty;                 /* the dirty bit as the state has it */
    struct expectation x;
};

struct result {
    uint32_t id;
    bool pass;
    bool data_lost;
    bool repaired;
    int64_t before_corruptions, before_leaks;
    int64_t fixed_corruptions, fixed_leaks;
    char before[96];
    char reason[240];
};

static struct qc_wlog wlog;
static uint64_t *mods;          /* indices of the operations that change the file */
static uint64_t nmods;
static bool *failed_cmds;
static bool log_complete;       /* replay: the log ends with a flush (a clean close) */

static bool is_mod(const struct qc_wlog_entry *e)
{
    return e->op == QC_WLOG_WRITE || e->op == QC_WLOG_ZERO || e->op == QC_WLOG_DISCARD ||
           e->op == QC_WLOG_TRUNCATE;
}

/* What the markers in log entries [0, END) say. */
static void expectation_until(uint64_t end, uint64_t p, struct expectation *x)
{

    memset(x, 0, sizeof *x);
    x->failed = failed_cmds;
    if (wlog.format == QC_WLOG_DM_LOG_WRITES) {
        /* QEMU's log says nothing about commands: any of them may be in
         * flight, and the whole log is everything done */
        x->started = model.ncmds;
        x->acked = p == nmods && log_complete ? model.ncmds : 0;
        return;
    }
    for (uint64_t i = 0; i < end; i++) {
        const struct qc_wlog_entry *e = &wlog.v[i];
        if (e->op != QC_WLOG_MARK)
            continue;
        if (e->offset == QC_MARK_BEGIN && e->length + 1 > x->started)
            x->started = e->length + 1;
        else if (e->offset == QC_MARK_ACK && e->length > x->acked)
            x->acked = e->length;
    }
}

/* A crash just before the (p+1)-th write: everything logged before that
 * write happened, flushes and acknowledgements included. */
static void expectation_at(uint64_t p, struct expectation *x)
{
    expectation_until(p < nmods ? mods[p] : wlog.n, p, x);
}

/* A crash while write P is in flight, or after it with some writes of its
 * epoch lost: nothing logged after write P happened (a completed flush
 * would have made the whole epoch durable). */
static void expectation_during(uint64_t p, struct expectation *x)
{
    expectation_until(mods[p], p, x);
}

/* The cut points of a torn write: the first, middle and last 512-byte
 * boundary inside it. */
static size_t torn_cuts(const struct qc_wlog_entry *e, uint64_t cuts[3])
{
    uint64_t first, last, mid;
    size_t n = 0;

    if (e->length == 0 || (e->op != QC_WLOG_WRITE && e->op != QC_WLOG_ZERO))
        return 0;
    first = (e->offset / 512 + 1) * 512;
    last = ((e->offset + e->length - 1) / 512) * 512;
    if (first > last)
        return 0;
    mid = first + ((last - first) / 1024) * 512;
    cuts[n++] = first - e->offset;
    if (mid != first)
        cuts[n++] = mid - e->offset;
    if (last != mid && last != first)
        cuts[n++] = last - e->offset;
    return n;
}

/* --- the hash set of states already seen --- */

struct seen {
    uint64_t *v;
    size_t cap, n;
};

static struct seen seen;

/* A 64-bit digest of an image file: CRC-32 and Adler-32 of its non-zero
 * 4 KiB pages and their positions (most of a crash state is zeros), and
 * its length. */
static uint64_t state_hash(const uint8_t *b, uint64_t len)
{
    static const uint8_t zero[4096];
    uLong c = crc32(0L, Z_NULL, 0), a = adler32(0L, Z_NULL, 0);

    for (uint64_t off = 0; off < len; off += sizeof zero) {
        uInt n = len - off < sizeof zero ? (uInt)(len - off) : (uInt)sizeof zero;
        uint8_t pos[8];
        if (!memcmp(b + off, zero, n))
            continue;
        qc_put_be64(pos, off);
        c = crc32(c, pos, sizeof pos);
        a = adler32(a, pos, sizeof pos);
        c = crc32(c, b + off, n);
        a = adler32(a, b + off, n);
    }
    return ((uint64_t)c << 32 | (uint64_t)a) ^ (len * 0x9E3779B97F4A7C15ull);
}

/* Returns true when H is new (and remembers it). */
static bool seen_add(uint64_t h)
{
    if (h == 0)
        h = 1;
    if (seen.n * 2 >= seen.cap) {
        size_t ncap = seen.cap ? seen.cap * 2 : 1024;
        uint64_t *nv = xcalloc(ncap, sizeof *nv);
        for (size_t i = 0; i < seen.cap; i++) {
            if (!seen.v[i])
                continue;
            size_t j = seen.v[i] & (ncap - 1);
            while (nv[j])
                j = (j + 1) & (ncap - 1);
            nv[j] = seen.v[i];
        }
        free(seen.v);
        seen.v = nv;
        seen.cap = ncap;
    }
    for (size_t j = h & (seen.cap - 1);; j = (j + 1) & (seen.cap - 1)) {
        if (seen.v[j] == h)
            return false;
        if (!seen.v[j]) {
            seen.v[j] = h;
            seen.n++;
            return true;
        }
    }
}

/* --- checking one state (in a child process) --- */

static json_object *parse_json_output(const char *s)
{
    const char *brace = strchr(s, '{');
    return brace ? json_tokener_parse(brace) : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void check_state(const char *path, const struct state *st, struct result *res)
{
    struct run_result rr;
    char why[200];
    bool checker_ran = false;

    res->pass = false;
    snprintf(res->before, sizeof res->before, "%s", st->dirty ? "dirty" : "");

    /* 1. qc-check must run */
    if (tools.qc_check) {
        char *argv[] = { tools.qc_check, "--output=json", (char *)path, NULL };
        json_object *j;
        if (run(argv, NULL, &rr) < 0) {
            snprintf(res->reason, sizeof res->reason, "qc-check could not be started");
            return;
        }
        if (sanitizer_report(rr.out) ||
            (rr.status != 0 && rr.status != 2 && rr.status != 3 &&
             !(opt.damaged_base && rr.status == 1))) {
            snprintf(res->reason, sizeof res->reason, "qc-check failed (exit %d)%s", rr.status,
                     sanitizer_report(rr.out) ? ", sanitizer report" : "");
            run_free(&rr);
            return;
        }
        j = parse_json_output(rr.stdout_only);
        res->before_corruptions = jint(j, "corruptions");
        res->before_leaks = jint(j, "leaks");
        json_object_put(j);
        run_free(&rr);
        checker_ran = true;
    }

    /* 2. repair */
    {
        char *qargv[] = { tools.qemu_img, "check", "-r", "all", "--output=json", (char *)path, NULL };
        char *cargv[] = { tools.qc_repair, "-r", "all", "--output=json", (char *)path, NULL };
        json_object *j;
        if (run(tools.qc_repair ? cargv : qargv, NULL, &rr) < 0) {
            snprintf(res->reason, sizeof res->reason, "the repairer could not be started");
            return;
        }
        if (sanitizer_report(rr.out) || rr.status != 0) {
            char *nl;
            snprintf(res->reason, sizeof res->reason, "repair failed (exit %d): %s", rr.status,
                     rr.out);
            if ((nl = strchr(res->reason, '\n')))
                *nl = '\0';
            run_free(&rr);
            return;
        }
        j = parse_json_output(rr.stdout_only);
        res->fixed_corruptions = jint(j, "corruptions-fixed");
        res->fixed_leaks = jint(j, "leaks-fixed");
        if (!tools.qc_repair && (jint(j, "corruptions") || jint(j, "leaks") ||
                                 jint(j, "check-errors"))) {
            snprintf(res->reason, sizeof res->reason,
                     "qemu-img check after repair: %lld corruptions, %lld leaks",
                     (long long)jint(j, "corruptions"), (long long)jint(j, "leaks"));
            json_object_put(j);
            run_free(&rr);
            return;
        }
        json_object_put(j);
        run_free(&rr);
        if (!checker_ran) {
            res->before_corruptions = res->fixed_corruptions;
            res->before_leaks = res->fixed_leaks;
        }
        res->repaired = res->fixed_corruptions || res->fixed_leaks || st->dirty;
    }
    {
        size_t n = strlen(res->before);
        if (!res->before_corruptions && !res->before_leaks)
            snprintf(res->before + n, sizeof res->before - n, "%sclean", n ? ", " : "");
        else
            snprintf(res->before + n, sizeof res->before - n, "%s%lld corruptions, %lld leaks",
                     n ? ", " : "", (long long)res->before_corruptions,
                     (long long)res->before_leaks);
    }

    /* 3. clean afterwards, for both checkers */
    if (tools.qc_check) {
        char *argv[] = { tools.qc_check, (char *)path, NULL };
        if (run(argv, NULL, &rr) < 0 || rr.status != 0 || sanitizer_report(rr.out)) {
            snprintf(res->reason, sizeof res->reason, "qc-check after repair: exit %d",
                     rr.status);
            run_free(&rr);
            return;
        }
        run_free(&rr);
    }
    /* qemu-img check -r all ends with a full check of the repaired image
     * (its JSON and exit status are that check's): a second run would
     * only repeat it */
    if (tools.qemu_img && tools.qc_repair) {
        char *argv[] = { tools.qemu_img, "check", "--output=json", (char *)path, NULL };
        json_object *j;
        if (run(argv, NULL, &rr) < 0) {
            snprintf(res->reason, sizeof res->reason, "qemu-img check could not be started");
            return;
        }
        j = parse_json_output(rr.stdout_only);
        if (rr.status != 0 || jint(j, "corruptions") || jint(j, "leaks") || jint(j, "check-errors")) {
            snprintf(res->reason, sizeof res->reason,
                     "qemu-img check after repair: exit %d, %lld corruptions, %lld leaks",
                     rr.status, (long long)jint(j, "corruptions"), (long long)jint(j, "leaks"));
            json_object_put(j);
            run_free(&rr);
            return;
        }
        json_object_put(j);
        run_free(&rr);
    }

    /* 4. metadata ordering: a crash may leak, but corrupt only an image
     * whose dirty bit says its refcounts are stale */
    if (!st->dirty && res->before_corruptions > 0 && !opt.damaged_base) {
        snprintf(res->reason, sizeof res->reason,
                 "%lld corruptions on an image not marked dirty: refcounts reached the file "
                 "after the tables that use them", (long long)res->before_corruptions);
        return;
    }

    /* 5. the data (a replay without its workload says nothing about it) */
    if (!(opt.replay && !opt.workload) && verify_data(path, &st->x, why, sizeof why) < 0) {
        res->data_lost = true;
        snprintf(res->reason, sizeof res->reason, "data: %s", why);
        return;
    }
    res->pass = true;
}

/* --- output --- */

static void describe_state(const struct state *st, char *out, size_t len)
{
    const struct qc_wlog_entry *last = st->prefix ? &wlog.v[mods[st->prefix - 1]] : NULL;
    size_t n;

    switch (st->kind) {
    case S_PREFIX:
        n = (size_t)snprintf(out, len, "after %llu/%llu writes", (unsigned long long)st->prefix,
                             (unsigned long long)nmods);
        if (last && n < len)
            snprintf(out + n, len - n, " (last: %s @0x%llx+0x%llx)",
                     last->event ? qc_event_name((enum qc_event)last->event) :
                     last->op == QC_WLOG_DISCARD ? "discard" : "write",
                     (unsigned long long)last->offset, (unsigned long long)last->length);
        break;
    case S_TORN: {
        const struct qc_wlog_entry *e = &wlog.v[mods[st->prefix]];
        snprintf(out, len, "after %llu/%llu writes, write %llu torn at %llu of %llu bytes (%s @0x%llx)",
                 (unsigned long long)st->prefix, (unsigned long long)nmods,
                 (unsigned long long)st->prefix + 1, (unsigned long long)st->torn_bytes,
                 (unsigned long long)e->length,
                 e->event ? qc_event_name((enum qc_event)e->event) : "write",
                 (unsigned long long)e->offset);
        break;
    }
    case S_SUBSET: {
        n = (size_t)snprintf(out, len, "crash after write %llu, of writes %llu-%llu only",
                             (unsigned long long)st->crash_point,
                             (unsigned long long)st->epoch_start + 1,
                             (unsigned long long)st->crash_point);
        for (size_t i = 0; i < st->nsubset && n < len; i++)
            n += (size_t)snprintf(out + n, len - n, "%s%llu", i ? "," : " ",
                                  (unsigned long long)st->subset[i] + 1);
        if (!st->nsubset && n < len)
            snprintf(out + n, len - n, " none");
        if (n < len)
            snprintf(out + n, len - n, " landed");
        break;
    }
    }
}

static void print_result_text(const struct state *st, const struct result *r)
{
    char d[512];
    describe_state(st, d, sizeof d);
    printf("state %u: %s | before: %s | repaired: ", r->id, d, r->before[0] ? r->before : "-");
    if (r->fixed_corruptions || r->fixed_leaks)
        printf("%lld corruptions, %lld leaks%s", (long long)r->fixed_corruptions,
               (long long)r->fixed_leaks, st->dirty ? ", dirty bit" : "");
    else
        printf("%s", st->dirty ? "dirty bit" : "nothing");
    if (r->pass)
        printf(" | PASS\n");
    else
        printf(" | FAIL: %s\n", r->reason);
}

static json_object *result_json(const struct state *st, const struct result *r)
{
    json_object *o = json_object_new_object();
    char d[512];

    describe_state(st, d, sizeof d);
    json_object_object_add(o, "id", json_object_new_int64(r->id));
    json_object_object_add(o, "kind", json_object_new_string(
        st->kind == S_PREFIX ? "prefix" : st->kind == S_TORN ? "torn" : "reordered"));
    json_object_object_add(o, "writes", qc_json_u64(st->crash_point));
    if (st->kind == S_TORN)
        json_object_object_add(o, "torn_bytes", qc_json_u64(st->torn_bytes));
    if (st->kind == S_SUBSET) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < st->nsubset; i++)
            json_object_array_add(a, qc_json_u64(st->subset[i] + 1));
        json_object_object_add(o, "landed", a);
        json_object_object_add(o, "epoch_start", qc_json_u64(st->epoch_start));
    }
    json_object_object_add(o, "description", json_object_new_string(d));
    json_object_object_add(o, "dirty", json_object_new_boolean(st->dirty));
    json_object_object_add(o, "corruptions", json_object_new_int64(r->before_corruptions));
    json_object_object_add(o, "leaks", json_object_new_int64(r->before_leaks));
    json_object_object_add(o, "corruptions-fixed", json_object_new_int64(r->fixed_corruptions));
    json_object_object_add(o, "leaks-fixed", json_object_new_int64(r->fixed_leaks));
    json_object_object_add(o, "acknowledged_commands", qc_json_u64(st->x.acked));
    json_object_object_add(o, "started_commands", qc_json_u64(st->x.started));
    json_object_object_add(o, "result", json_object_new_string(r->pass ? "pass" : "fail"));
    if (!r->pass)
        json_object_object_add(o, "reason", json_object_new_string(r->reason));
    return o;
}

/* --- the scheduler: states are built in order, checked in parallel --- */

/* Workers are forked once, after the model is built; each gets states
 * through a pipe and answers with a result. */
struct request {
    uint32_t id;
    struct state st;            /* subset pointer not used by workers */
};

struct worker {
    pid_t pid;
    int to, from;               /* request pipe, result pipe */
    bool busy;
};

static struct state *states;        /* by id */
static struct result *results;      /* by id */
static bool *done;
static size_t nstates, cap_states;
static uint32_t next_print;
static struct worker *workers;
static int nworkers;
static json_object *json_states;
static uint64_t duplicates, npass, nfail, nrepaired, nlost;

static void print_ready(void)
{
    while (next_print < nstates && done[next_print]) {
        const struct result *r = &results[next_print];
        if (opt.json)
            json_object_array_add(json_states, result_json(&states[next_print], r));
        else
            print_result_text(&states[next_print], r);
        next_print++;
    }
    if (!opt.json)
        fflush(stdout);
}

static bool read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void state_path(uint32_t id, char *path, size_t len)
{
    snprintf(path, len, "%s/state-%u.qcow2", workdir, id);
}

static void worker_loop(int in, int out)
{
    struct request q;

    while (read_full(in, &q, sizeof q)) {
        struct result r;
        char path[PATH_MAX];
        memset(&r, 0, sizeof r);
        r.id = q.id;
        q.st.subset = NULL;
        q.st.x.failed = failed_cmds;
        state_path(q.id, path, sizeof path);
        check_state(path, &q.st, &r);
        if (!write_full(out, &r, sizeof r))
            break;
    }
    _exit(0);
}

static void start_workers(void)
{
    workers = xcalloc((size_t)opt.jobs, sizeof *workers);
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < opt.jobs; i++) {
        int a[2], b[2];
        pid_t pid;
        if (pipe(a) < 0 || pipe(b) < 0)
            die("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(a[1]);
            close(b[0]);
            for (int j = 0; j < i; j++) {
                close(workers[j].to);
                close(workers[j].from);
            }
            worker_loop(a[0], b[1]);
        }
        close(a[0]);
        close(b[1]);
        workers[i].pid = pid;
        workers[i].to = a[1];
        workers[i].from = b[0];
        nworkers++;
    }
}

static void stop_workers(void)
{
    for (int i = 0; i < nworkers; i++) {
        int st;
        close(workers[i].to);
        close(workers[i].from);
        while (waitpid(workers[i].pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}

static void take_result(struct worker *wk)
{
    struct result r;
    char path[PATH_MAX];

    if (!read_full(wk->from, &r, sizeof r))
        die("a checker process died");
    wk->busy = false;
    results[r.id] = r;
    done[r.id] = true;
    if (r.pass) {
        npass++;
        state_path(r.id, path, sizeof path);
        unlink(path);
    } else {
        nfail++;
        opt.keep = true;
    }
    if (r.repaired)
        nrepaired++;
    if (r.data_lost)
        nlost++;
    print_ready();
}

/* Waits for one result; returns the worker that gave it. */
static struct worker *wait_result(void)
{
    fd_set rd;
    int maxfd = -1;

    FD_ZERO(&rd);
    for (int i = 0; i < nworkers; i++) {
        if (!workers[i].busy)
            continue;
        FD_SET(workers[i].from, &rd);
        if (workers[i].from > maxfd)
            maxfd = workers[i].from;
    }
    if (maxfd < 0)
        return NULL;
    while (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0)
        if (errno != EINTR)
            die("select: %s", strerror(errno));
    for (int i = 0; i < nworkers; i++) {
        if (workers[i].busy && FD_ISSET(workers[i].from, &rd)) {
            take_result(&workers[i]);
            return &workers[i];
        }
    }
    return NULL;
}

static void drain_workers(void)
{
    while (wait_result())
        ;
}

/* Writes the state file sparsely: all-zero pages become holes. */
static void write_state_file(const char *path, const uint8_t *b, uint64_t len)
{
    static const uint8_t zero[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t off = 0;

    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    while (off < len) {
        uint64_t n = len - off < sizeof zero ? len - off : sizeof zero;
        if (memcmp(b + off, zero, (size_t)n)) {
            ssize_t w = pwrite(fd, b + off, (size_t)n, (off_t)off);
            if (w != (ssize_t)n)
                die("%s: write error", path);
        }
        off += n;
    }
    if (ftruncate(fd, (off_t)len) < 0)
        die("%s: %s", path, strerror(errno));
    close(fd);
}

static void submit(struct state *st, const uint8_t *buf, uint64_t len)
{
    char path[PATH_MAX];
    struct worker *wk = NULL;
    struct request q;
    uint32_t id;

    if (!seen_add(state_hash(buf, len))) {
        free(st->subset);
        duplicates++;
        return;
    }
    st->dirty = len >= 80 && qc_be32(buf + 4) >= 3 && (qc_be64(buf + 72) & QC_INCOMPAT_DIRTY);
    if (nstates == cap_states) {
        cap_states = cap_states ? cap_states * 2 : 256;
        states = realloc(states, cap_states * sizeof *states);
        results = realloc(results, cap_states * sizeof *results);
        done = realloc(done, cap_states * sizeof *done);
        if (!states || !results || !done)
            die("out of memory");
    }
    id = (uint32_t)nstates++;
    states[id] = *st;
    done[id] = false;
    state_path(id, path, sizeof path);
    write_state_file(path, buf, len);

    for (int i = 0; i < nworkers && !wk; i++)
        if (!workers[i].busy)
            wk = &workers[i];
    if (!wk)
        wk = wait_result();
    memset(&q, 0, sizeof q);
    q.id = id;
    q.st = *st;
    if (!write_full(wk->to, &q, sizeof q))
        die("a checker process died");
    wk->busy = true;
}

/* --- building the states --- */

static uint8_t *base_buf;
static uint64_t base_len;

static void apply(const struct qc_wlog_entry *e, uint8_t **buf, uint64_t *len, uint64_t *cap,
                  uint64_t torn)
{
    if (qc_wlog_apply(e, buf, len, cap, torn, FILE_LIMIT) < 0)
        die("cannot rebuild the image (write beyond %llu bytes?)", FILE_LIMIT);
}

static uint8_t *copy_buf(const uint8_t *b, uint64_t len, uint64_t *cap)
{
    uint8_t *c = xmalloc((size_t)(len ? len : 1));
    memcpy(c, b, (size_t)len);
    *cap = len ? len : 1;
    return c;
}

/* Reordered and torn states: the drive lost some sector writes, not the
 * file's length, so the image keeps the length it has at the crash (bytes
 * that never landed read as zeros there). */
static void pad_to(uint8_t **b, uint64_t *len, uint64_t *cap, uint64_t want)
{
    if (*len >= want)
        return;
    if (want > *cap) {
        uint8_t *nb = realloc(*b, (size_t)want);
        if (!nb)
            die("out of memory");
        *b = nb;
        *cap = want;
    }
    memset(*b + *len, 0, (size_t)(want - *len));
    *len = want;
}

static uint64_t full_len_after(uint64_t len, const struct qc_wlog_entry *e)
{
    if ((e->op == QC_WLOG_WRITE || e->op == QC_WLOG_ZERO) && e->offset + e->length > len)
        return e->offset + e->length;
    if (e->op == QC_WLOG_TRUNCATE)
        return e->offset;
    return len;
}

static void make_state(enum state_kind kind, uint64_t p, struct state *st)
{
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->prefix = p;
    st->crash_point = p;
    expectation_at(p, &st->x);
}

static void enumerate(void)
{
    uint64_t cur_len = base_len, cur_cap, ep_len = base_len, ep_cap;
    uint8_t *cur = copy_buf(base_buf, base_len, &cur_cap);
    uint8_t *ep = copy_buf(base_buf, base_len, &ep_cap);   /* state at the last flush */
    uint64_t ep_start = 0;                                  /* writes before it */
    uint64_t op = 0;                                        /* next log entry */

    for (uint64_t p = 0; p <= nmods; p++) {
        struct state st;
        uint64_t end = p < nmods ? mods[p] : wlog.n;

        /* entries between write p-1 and write p: flushes move the epoch */
        for (; op < end; op++) {
            if (wlog.v[op].op == QC_WLOG_FLUSH) {
                free(ep);
                ep = copy_buf(cur, cur_len, &ep_cap);
                ep_len = cur_len;
                ep_start = p;
            }
        }

        make_state(S_PREFIX, p, &st);
        submit(&st, cur, cur_len);

        if (p == nmods) {
            if (opt.final)
                write_file(opt.final, cur, cur_len);
            break;
        }

        /* the next write, torn */
        if (opt.torn) {
            uint64_t cuts[3];
            size_t nc = torn_cuts(&wlog.v[mods[p]], cuts);
            for (size_t i = 0; i < nc; i++) {
                uint64_t tlen = cur_len, tcap;
                uint8_t *t = copy_buf(cur, cur_len, &tcap);
                apply(&wlog.v[mods[p]], &t, &tlen, &tcap, cuts[i]);
                make_state(S_TORN, p, &st);
                st.crash_point = p + 1;
                st.torn_bytes = cuts[i];
                expectation_during(p, &st.x);
                /* the drive keeps the size the file has once the write is done */
                pad_to(&t, &tlen, &tcap, full_len_after(cur_len, &wlog.v[mods[p]]));
                submit(&st, t, tlen);
                free(t);
            }
        }

        apply(&wlog.v[mods[p]], &cur, &cur_len, &cur_cap, UINT64_MAX);
        op = mods[p] + 1;

        /* writes since the last flush, in any subset containing the newest */
        if (opt.reorder) {
            uint64_t nu = p + 1 - ep_start;
            if (nu >= 2 && nu <= MAX_SUBSET) {
                for (uint64_t mask = 0; mask < (1ull << (nu - 1)); mask++) {
                    uint64_t full = mask | (1ull << (nu - 1));
                    uint64_t slen = ep_len, scap;
                    uint8_t *s;
                    if (full == (1ull << nu) - 1)
                        continue;   /* every write: the prefix state */
                    s = copy_buf(ep, ep_len, &scap);
                    make_state(S_SUBSET, p + 1, &st);
                    st.kind = S_SUBSET;
                    st.epoch_start = ep_start;
                    st.subset = xcalloc(nu, sizeof *st.subset);
                    for (uint64_t i = 0; i < nu; i++) {
                        if (!(full >> i & 1))
                            continue;
                        apply(&wlog.v[mods[ep_start + i]], &s, &slen, &scap, UINT64_MAX);
                        st.subset[st.nsubset++] = ep_start + i;
                    }
                    expectation_during(p, &st.x);
                    pad_to(&s, &slen, &scap, cur_len);
                    submit(&st, s, slen);
                    free(s);
                }
            } else if (nu > MAX_SUBSET) {
                for (uint64_t skip = 0; skip < nu; skip++) {
                    uint64_t slen = ep_len, scap;
                    uint8_t *s = copy_buf(ep, ep_len, &scap);
                    make_state(S_SUBSET, p + 1, &st);
                    st.kind = S_SUBSET;
                    st.epoch_start = ep_start;
                    st.subset = xcalloc(nu, sizeof *st.subset);
                    for (uint64_t i = 0; i < nu; i++) {
                        if (i == skip)
                            continue;
                        apply(&wlog.v[mods[ep_start + i]], &s, &slen, &scap, UINT64_MAX);
                        st.subset[st.nsubset++] = ep_start + i;
                    }
                    expectation_during(p, &st.x);
                    pad_to(&s, &slen, &scap, cur_len);
                    submit(&st, s, slen);
                    free(s);
                }
            }
        }
    }
    free(cur);
    free(ep);
}

/* --- setting up --- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *load_text(const char *path)
{
    uint64_t len;
    uint8_t *b = read_file(path, &len);
    char *s = xmalloc((size_t)len + 1);
    memcpy(s, b, (size_t)len);
    s[len] = '\0';
    free(b);
    return s;
}

static void copy_file(const char *from, const char *to)
{
    uint64_t len;
    uint8_t *b = read_file(from, &len);
    write_file(to, b, len);
    free(b);
}

/* The base image's backing file must be found from the work directory:
 * a relative name gets a symbolic link there. */
static void link_backing(const char *base)
{
    struct qc_writer_options wo = { .readonly = true, .no_lock = true, .no_backing = true };
    struct qc_writer w;
    const char *name;
    char *dir, *slash, target[PATH_MAX], dest[PATH_MAX], real[PATH_MAX];

    if (qc_writer_open(&w, base, &wo, NULL) < 0)
        die("%s: %s", base, w.errmsg);
    name = w.img.backing_name;
    if (!name || name[0] == '/') {
        qc_writer_abandon(&w);
        return;
    }
    if (strstr(name, ".."))
        die("%s: relative backing file names with '..' are not supported (give an absolute name)",
            base);
    dir = xstrdup(base);
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (snprintf(target, sizeof target, "%s/%s", slash ? dir : ".", name) >= (int)sizeof target)
        die("%s: backing file name too long", base);
    if (!realpath(target, real))
        die("%s: backing file %s: %s", base, target, strerror(errno));
    if (snprintf(dest, sizeof dest, "%s/%s", workdir, name) >= (int)sizeof dest)
        die("%s: backing file name too long", base);
    for (char *p = dest + strlen(workdir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(dest, 0755);
        *p = '/';
    }
    /* a hard dest (or a copy across file systems), not a symbolic dest: the
     * tools follow a header's name only to a file inside the image's
     * directory, and a dest out of it would be refused */
    if (link(real, dest) < 0 && errno != EEXIST) {
        if (errno != EXDEV && errno != EPERM)
            die("%s: %s", dest, strerror(errno));
        copy_file(real, dest);
    }
    free(dir);
    qc_writer_abandon(&w);
}

static void record_workload(const char *base_path, const char *workload_path)
{
    char run_img[PATH_MAX], rec[PATH_MAX];
    const char **argv = xcalloc((size_t)opt.nwriter_opts + 8, sizeof *argv);
    struct run_result rr;
    int n = 0;

    snprintf(run_img, sizeof run_img, "%s/run.qcow2", workdir);
    snprintf(rec, sizeof rec, "%s/record.bin", workdir);
    copy_file(base_path, run_img);
    argv[n++] = tools.qc_write;
    argv[n++] = "-t";
    argv[n++] = opt.mode;
    argv[n++] = "--record";
    argv[n++] = rec;
    for (int i = 0; i < opt.nwriter_opts; i++)
        argv[n++] = opt.writer_opts[i];
    argv[n++] = run_img;
    argv[n] = NULL;
    if (run((char *const *)argv, workload_path, &rr) < 0)
        die("cannot run %s", tools.qc_write);
    if (rr.status != 0 && rr.status != 134)
        die("the workload failed under qc-write (exit %d):\n%s", rr.status, rr.out);
    run_free(&rr);
    free(argv);
    {
        char err[256];
        if (qc_wlog_load(&wlog, rec, err, sizeof err) < 0)
            die("%s", err);
    }
}

int main(int argc, char **argv)
{
    enum { O_WORKLOAD = 256, O_SIZE, O_BASE, O_REPLAY, O_TORN, O_REORDER, O_JSON, O_KEEP,
           O_WRITER_OPT, O_VERSION, O_FINAL, O_DAMAGED_BASE };
    static const struct option lopts[] = {
        { "workload", required_argument, NULL, O_WORKLOAD },
        { "size", required_argument, NULL, O_SIZE },
        { "base", required_argument, NULL, O_BASE },
        { "replay", required_argument, NULL, O_REPLAY },
        { "torn", no_argument, NULL, O_TORN },
        { "reorder", no_argument, NULL, O_REORDER },
        { "json", no_argument, NULL, O_JSON },
        { "keep", no_argument, NULL, O_KEEP },
        { "jobs", required_argument, NULL, 'j' },
        { "writer-opt", required_argument, NULL, O_WRITER_OPT },
        { "final", required_argument, NULL, O_FINAL },
        { "damaged-base", no_argument, NULL, O_DAMAGED_BASE },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 }
    };
    char base_path[PATH_MAX], workload_path[PATH_MAX], *workload_text;
    const char *tmp;
    double t0, secs;
    int c;

    opt.size = "64M";
    opt.mode = "writeback";
    opt.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (opt.jobs < 1)
        opt.jobs = 1;
    opt.writer_opts = xcalloc((size_t)argc, sizeof *opt.writer_opts);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:t:j:h", lopts, NULL)) != -1) {
        switch (c) {
        case O_WORKLOAD: opt.workload = optarg; break;
        case O_SIZE: opt.size = optarg; break;
        case 'o': opt.create_opts = optarg; break;
        case 't':
            if (strcmp(optarg, "writeback") && strcmp(optarg, "writethrough") &&
                strcmp(optarg, "unsafe")) {
                fprintf(stderr, PROG ": invalid cache mode '%s'\n", optarg);
                return 64;
            }
            opt.mode = optarg;
            break;
        case O_BASE: opt.base = optarg; break;
        case O_REPLAY: opt.replay = optarg; break;
        case O_TORN: opt.torn = true; break;
        case O_REORDER: opt.reorder = true; break;
        case O_JSON: opt.json = true; break;
        case O_KEEP: opt.keep = true; break;
        case 'j':
            opt.jobs = atoi(optarg);
            if (opt.jobs < 1 || opt.jobs > 256) {
                fprintf(stderr, PROG ": invalid -j '%s'\n", optarg);
                return 64;
            }
            break;
        case O_WRITER_OPT: opt.writer_opts[opt.nwriter_opts++] = optarg; break;
        case O_FINAL: opt.final = optarg; break;
        case O_DAMAGED_BASE: opt.damaged_base = true; break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case O_VERSION:
            printf(PROG " %s\n", QC_VERSION);
            return 0;
        case ':':
            fprintf(stderr, PROG ": option '%s' needs an argument\n", argv[optind - 1]);
            return 64;
        default:
            fprintf(stderr, PROG ": unknown option '%s'\nTry '" PROG " --help' for more information.\n",
                    argv[optind - 1]);
            return 64;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return 64;
    }
    if (opt.replay && !opt.base) {
        fprintf(stderr, PROG ": --replay needs --base IMAGE\n");
        return 64;
    }

    find_tools();
    tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(workdir, sizeof workdir, "%s/crashtest.XXXXXX", tmp);
    if (!mkdtemp(workdir))
        die("cannot make a work directory in %s: %s", tmp, strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    /* the base image */
    snprintf(base_path, sizeof base_path, "%s/base.qcow2", workdir);
    if (opt.base) {
        link_backing(opt.base);
        copy_file(opt.base, base_path);
    } else {
        const char *cargv[8];
        struct run_result rr;
        int n = 0;
        cargv[n++] = tools.qc_write;
        cargv[n++] = "--create";
        cargv[n++] = opt.size;
        if (opt.create_opts) {
            cargv[n++] = "-o";
            cargv[n++] = opt.create_opts;
        }
        cargv[n++] = base_path;
        cargv[n] = NULL;
        if (run((char *const *)cargv, NULL, &rr) < 0 || rr.status != 0)
            die("creating the image failed:\n%s", rr.out ? rr.out : "");
        run_free(&rr);
    }
    base_buf = read_file(base_path, &base_len);

    /* the workload */
    if (opt.workload) {
        workload_text = load_text(opt.workload);
        snprintf(workload_path, sizeof workload_path, "%s", opt.workload);
    } else {
        workload_text = xstrdup(opt.replay ? "" : default_workload);
        snprintf(workload_path, sizeof workload_path, "%s/workload", workdir);
        write_file(workload_path, (const uint8_t *)workload_text, strlen(workload_text));
    }
    /* a replay without its workload checks the structure only, so its base
     * need not be readable (a damaged base that QEMU refuses to read) */
    if (!(opt.replay && !opt.workload))
        model_read_base(base_path);
    model_parse_workload(workload_text);
    free(workload_text);

    /* the writes */
    if (opt.replay) {
        char err[256];
        if (qc_wlog_load(&wlog, opt.replay, err, sizeof err) < 0)
            die("%s", err);
    } else {
        record_workload(base_path, workload_path);
    }
    log_complete = wlog.n && wlog.v[wlog.n - 1].op == QC_WLOG_FLUSH;
    mods = xcalloc(wlog.n, sizeof *mods);
    failed_cmds = xcalloc(model.ncmds, sizeof *failed_cmds);
    for (uint64_t i = 0; i < wlog.n; i++) {
        if (is_mod(&wlog.v[i]))
            mods[nmods++] = i;
        if (wlog.v[i].op == QC_WLOG_MARK && wlog.v[i].offset == QC_MARK_FAILED &&
            wlog.v[i].length < model.ncmds)
            failed_cmds[wlog.v[i].length] = true;
    }

    /* a base that is not clean would make every verdict meaningless, unless
     * the writes are a repair of its damage */
    if (tools.qemu_img && !opt.damaged_base) {
        char *qargv[] = { tools.qemu_img, "check", base_path, NULL };
        struct run_result rr;
        if (run(qargv, NULL, &rr) < 0 || rr.status != 0)
            die("the base image is not clean for qemu-img check:\n%s", rr.out ? rr.out : "");
        run_free(&rr);
    }

    if (opt.json) {
        json_states = json_object_new_array();
    } else {
        uint64_t nflush = 0;
        for (uint64_t i = 0; i < wlog.n; i++)
            nflush += wlog.v[i].op == QC_WLOG_FLUSH;
        printf("crashtest: %s, %llu commands, %llu writes, %llu flushes%s%s\n",
               !opt.replay ? "qc-write workload"
               : wlog.format == QC_WLOG_RECORD ? "replay of a write record"
                                                : "replay of a dm-log-writes log",
               (unsigned long long)model.ncmds, (unsigned long long)nmods,
               (unsigned long long)nflush, opt.torn ? ", torn" : "", opt.reorder ? ", reordered" : "");
        printf("crashtest: checker: %s; repair: %s\n",
               tools.qc_check ? "qc-check" : "qc-check not built, qemu-img check only",
               tools.qc_repair ? "qc-repair -r all" : "qemu-img check -r all (qc-repair not built)");
        fflush(stdout);
    }

    t0 = now();
    start_workers();
    enumerate();
    drain_workers();
    stop_workers();
    print_ready();
    secs = now() - t0;

    if (opt.json) {
        json_object *doc = json_object_new_object(), *sum = json_object_new_object();
        json_object_object_add(doc, "mode", json_object_new_string(opt.replay ? "replay" : "record"));
        json_object_object_add(doc, "commands", qc_json_u64(model.ncmds));
        json_object_object_add(doc, "writes", qc_json_u64(nmods));
        json_object_object_add(doc, "checker", json_object_new_string(
                                   tools.qc_check ? "qc-check" : "qemu-img check"));
        json_object_object_add(doc, "repairer", json_object_new_string(
                                   tools.qc_repair ? "qc-repair" : "qemu-img check -r all"));
        json_object_object_add(doc, "states", json_states);
        json_object_object_add(sum, "crash_states", qc_json_u64(nstates));
        json_object_object_add(sum, "identical_skipped", qc_json_u64(duplicates));
        json_object_object_add(sum, "passed", qc_json_u64(npass));
        json_object_object_add(sum, "failed", qc_json_u64(nfail));
        json_object_object_add(sum, "repaired", qc_json_u64(nrepaired));
        json_object_object_add(sum, "data_lost", qc_json_u64(nlost));
        json_object_object_add(sum, "seconds", json_object_new_double(secs));
        json_object_object_add(sum, "states_per_second",
                               json_object_new_double(secs > 0 ? (double)nstates / secs : 0));
        json_object_object_add(doc, "summary", sum);
        qc_json_print(stdout, doc);
        json_object_put(doc);
    } else {
        printf("crash states: %llu, repaired: %llu, data lost: %llu\n",
               (unsigned long long)nstates, (unsigned long long)nrepaired, (unsigned long long)nlost);
        printf("%s: %llu of %llu states passed (%llu identical states skipped) in %.2f s, "
               "%.1f states/s\n", nfail ? "FAIL" : "PASS", (unsigned long long)npass,
               (unsigned long long)nstates, (unsigned long long)duplicates, secs,
               secs > 0 ? (double)nstates / secs : 0.0);
    }
    if (nfail)
        fprintf(stderr, PROG ": failing states kept in %s\n", workdir);
    fflush(stdout);

    for (size_t i = 0; i < nstates; i++)
        free(states[i].subset);
    free(states);
    free(results);
    free(done);
    free(mods);
    free(failed_cmds);
    free(seen.v);
    free(base_buf);
    for (uint64_t i = 0; i < model.nchunks; i++) {
        free(model.base[i]);
        free(model.backing[i]);
    }
    free(model.base);
    free(model.backing);
    free(model.touched);
    free(model.eff);
    qc_wlog_free(&wlog);
    free(opt.writer_opts);
    free(tools.qc_write);
    free(tools.qc_check);
    free(tools.qc_repair);
    free(tools.qemu_img);
    cleanup_workdir();
    return nfail ? 1 : 0;
}
