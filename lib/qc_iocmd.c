/* qemu-io's commands on a writer: syntax, messages, statistics lines. */
#include "qc_iocmd.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_util.h"

#define REQUEST_MAX_BYTES 2147483136ull   /* BDRV_REQUEST_MAX_BYTES */

struct cmd_info {
    const char *name, *alt, *args, *oneline;
    int argmin, argmax;     /* -1: no maximum */
    enum qc_iocmd_kind kind;
};

static const struct cmd_info cmds[] = {
    { "write", "w", "[-bcCfnquz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset", 2, -1, QC_IOCMD_WRITE },
    { "read", "r", "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset", 2, -1, QC_IOCMD_READ },
    { "discard", "d", "[-Cq] off len",
      "discards a number of bytes at a specified offset", 2, -1, QC_IOCMD_DISCARD },
    { "flush", "f", "", "flush all in-core file state to disk", 0, 0, QC_IOCMD_FLUSH },
    { "abort", NULL, "", "simulate a program crash using abort(3)", 0, 0, QC_IOCMD_ABORT },
    { "quit", "q", "", "exit the program", 0, 0, QC_IOCMD_QUIT },
};

static void usage(FILE *out, const struct cmd_info *ci)
{
    fprintf(out, "%s %s -- %s\n", ci->name, ci->args, ci->oneline);
}

/* qemu-io's cvtnum: qemu_strtosz, then at most INT64_MAX */
static int cvtnum(const char *arg, uint64_t *v, FILE *out, FILE *err, const char *prog)
{
    bool hex_suffix;
    int r = qc_parse_qemu_size(arg, v, &hex_suffix);

    if (r == 0 && *v > (uint64_t)INT64_MAX)
        r = -ERANGE;
    if (r == -EINVAL)
        fprintf(out, "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n", arg);
    else if (r == -ERANGE)
        fprintf(out, "Parsing error: argument too large -- %s\n", arg);
    else if (hex_suffix)
        fprintf(err, "%s: warning: Using a multiplier suffix on hex numbers is deprecated: %s\n",
                prog, arg);
    return r;
}

static int parse_pattern(const char *arg, FILE *out)
{
    char *end;
    long p = strtol(arg, &end, 0);
    if (p < 0 || p > UCHAR_MAX || *end != '\0') {
        fprintf(out, "%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return (int)p;
}

/* Splits LINE on spaces and tabs, like qemu-io's breakline. */
static char **split(const char *line, int *argc)
{
    size_t len = strlen(line);
    char **argv = calloc(len / 2 + 2, sizeof *argv);
    char *copy = strdup(line), *p, *tok, *save = NULL;
    int n = 0;

    if (!argv || !copy) {
        free(argv);
        free(copy);
        return NULL;
    }
    for (p = copy; (tok = strtok_r(p, " \t\r\n", &save)); p = NULL)
        argv[n++] = tok;
    argv[n] = NULL;
    if (n == 0)
        free(copy);
    *argc = n;
    return argv;
}

static void free_argv(char **argv, int argc)
{
    if (argc > 0)
        free(argv[0]);   /* all tokens live in one copy */
    free(argv);
}

/* OFFSET and LENGTH of a request (ARGV[0], ARGV[1]); with LIMIT, a length
 * over qemu-io's request maximum is refused. */
static int parse_range(struct qc_iocmd *c, char **argv, bool limit, FILE *out, FILE *err,
                       const char *prog)
{
    if (cvtnum(argv[0], &c->offset, out, err, prog) < 0)
        return -1;
    if (cvtnum(argv[1], &c->length, out, err, prog) < 0)
        return -1;
    if (limit && c->length > REQUEST_MAX_BYTES) {
        fprintf(out, "length cannot exceed %llu, given %s\n", REQUEST_MAX_BYTES, argv[1]);
        return -1;
    }
    return 0;
}

static int parse_write(struct qc_iocmd *c, const struct cmd_info *ci, int argc, char **argv,
                       FILE *out, FILE *err, const char *prog)
{
    int opt, n = 0;
    bool fua = false, nofallback = false, bflag = false, sflag = false;

    c->pattern = 0xcd;
    optind = 0;
    opterr = 1;
    while ((opt = getopt(argc, argv, "bcCfnpP:quzs:")) != -1) {
        switch (opt) {
        case 'b': bflag = true; break;
        case 'c': c->compressed = true; break;
        case 'C': c->csv = true; break;
        case 'f': fua = true; break;
        case 'n': nofallback = true; break;
        case 'p': break;
        case 'P':
            c->pattern_set = true;
            if ((c->pattern = parse_pattern(optarg, out)) < 0)
                return -1;
            break;
        case 'q': c->quiet = true; break;
        case 's': sflag = true; break;
        case 'u': c->unmap = true; break;
        case 'z': c->zero = true; break;
        default:
            usage(out, ci);
            return -1;
        }
    }
    if (optind != argc - 2) {
        usage(out, ci);
        return -1;
    }
    if (bflag && c->zero) {
        fprintf(out, "-b and -z cannot be specified at the same time\n");
        return -1;
    }
    if (fua && (bflag || c->compressed)) {
        fprintf(out, "-f and -b or -c cannot be specified at the same time\n");
        return -1;
    }
    if (nofallback && !c->zero) {
        fprintf(out, "-n requires -z to be specified\n");
        return -1;
    }
    if (c->unmap && !c->zero) {
        fprintf(out, "-u requires -z to be specified\n");
        return -1;
    }
    n = (int)c->zero + (int)c->pattern_set + (int)sflag;
    if (n > 1) {
        fprintf(out, "Only one of -z, -P, and -s can be specified at the same time\n");
        return -1;
    }
    if (parse_range(c, argv + optind, false, out, err, prog) < 0)
        return -1;
    if (c->length > REQUEST_MAX_BYTES && !nofallback) {
        fprintf(out, "length cannot exceed %llu without -n, given %s\n",
                REQUEST_MAX_BYTES, argv[optind + 1]);
        return -1;
    }
    if (bflag || c->compressed) {
        if (c->offset % 512) {
            fprintf(out, "%llu is not a sector-aligned value for 'offset'\n",
                    (unsigned long long)c->offset);
            return -1;
        }
        if (c->length % 512) {
            fprintf(out, "%llu is not a sector-aligned value for 'count'\n",
                    (unsigned long long)c->length);
            return -1;
        }
    }
    /* accepted by qemu-io, not offered here */
    if (bflag || sflag || fua || nofallback) {
        fprintf(err, "%s: write: -%c is not supported\n", prog,
                bflag ? 'b' : sflag ? 's' : fua ? 'f' : 'n');
        return -1;
    }
    return 0;
}

static int parse_read(struct qc_iocmd *c, const struct cmd_info *ci, int argc, char **argv,
                      FILE *out, FILE *err, const char *prog)
{
    bool lflag = false, sflag = false, bflag = false;
    int opt;

    optind = 0;
    opterr = 1;
    while ((opt = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (opt) {
        case 'b': bflag = true; break;
        case 'C': c->csv = true; break;
        case 'l':
            lflag = true;
            if (cvtnum(optarg, &c->pattern_length, out, err, prog) < 0)
                return -1;
            break;
        case 'p': break;
        case 'P':
            c->pattern_set = true;
            if ((c->pattern = parse_pattern(optarg, out)) < 0)
                return -1;
            break;
        case 'q': c->quiet = true; break;
        case 's':
            sflag = true;
            if (cvtnum(optarg, &c->pattern_offset, out, err, prog) < 0)
                return -1;
            break;
        case 'v': c->verbose = true; break;
        default:
            usage(out, ci);
            return -1;
        }
    }
    if (optind != argc - 2) {
        usage(out, ci);
        return -1;
    }
    if (parse_range(c, argv + optind, true, out, err, prog) < 0)
        return -1;
    if (!c->pattern_set && (lflag || sflag)) {
        usage(out, ci);
        return -1;
    }
    if (!lflag)
        c->pattern_length = c->length - (c->pattern_offset < c->length ? c->pattern_offset
                                                                       : c->length);
    if ((!lflag && c->pattern_offset > c->length) ||
        c->pattern_length > c->length || c->pattern_offset > c->length - c->pattern_length) {
        fprintf(out, "pattern verification range exceeds end of read data\n");
        return -1;
    }
    if (bflag) {
        fprintf(err, "%s: read: -b is not supported\n", prog);
        return -1;
    }
    return 0;
}

static int parse_discard(struct qc_iocmd *c, const struct cmd_info *ci, int argc, char **argv,
                         FILE *out, FILE *err, const char *prog)
{
    int opt;

    optind = 0;
    opterr = 1;
    while ((opt = getopt(argc, argv, "Cq")) != -1) {
        switch (opt) {
        case 'C': c->csv = true; break;
        case 'q': c->quiet = true; break;
        default:
            usage(out, ci);
            return -1;
        }
    }
    if (optind != argc - 2) {
        usage(out, ci);
        return -1;
    }
    if (parse_range(c, argv + optind, true, out, err, prog) < 0)
        return -1;
    return 0;
}

int qc_iocmd_parse(const char *line, struct qc_iocmd *c, FILE *out, FILE *err, const char *prog)
{
    const struct cmd_info *ci = NULL;
    char **argv;
    int argc, r = 0, nargs;
    const char *p = line;

    memset(c, 0, sizeof *c);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '#' || *p == '\0' || *p == '\n' || *p == '\r') {
        c->kind = QC_IOCMD_NONE;
        return 0;
    }
    argv = split(line, &argc);
    if (!argv)
        return -1;
    if (argc == 0) {
        free_argv(argv, argc);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[0], cmds[i].name) || (cmds[i].alt && !strcmp(argv[0], cmds[i].alt)))
            ci = &cmds[i];
    if (!ci) {
        fprintf(err, "command \"%s\" not found\n", argv[0]);
        free_argv(argv, argc);
        return -1;
    }
    nargs = argc - 1;
    if (nargs < ci->argmin || (ci->argmax >= 0 && nargs > ci->argmax)) {
        if (ci->argmax == -1)
            fprintf(err, "bad argument count %d to %s, expected at least %d arguments\n",
                    nargs, argv[0], ci->argmin);
        else if (ci->argmin == ci->argmax)
            fprintf(err, "bad argument count %d to %s, expected %d arguments\n",
                    nargs, argv[0], ci->argmin);
        else
            fprintf(err, "bad argument count %d to %s, expected between %d and %d arguments\n",
                    nargs, argv[0], ci->argmin, ci->argmax);
        free_argv(argv, argc);
        return -1;
    }
    c->kind = ci->kind;
    switch (ci->kind) {
    case QC_IOCMD_WRITE: r = parse_write(c, ci, argc, argv, out, err, prog); break;
    case QC_IOCMD_READ: r = parse_read(c, ci, argc, argv, out, err, prog); break;
    case QC_IOCMD_DISCARD: r = parse_discard(c, ci, argc, argv, out, err, prog); break;
    default: break;
    }
    free_argv(argv, argc);
    return r;
}

/* --- reports --- */

void qc_iocmd_cvtstr(double v, char *str, size_t size)
{
    static const struct { double unit; const char *suffix; } u[] = {
        { 1152921504606846976.0, " EiB" }, { 1125899906842624.0, " PiB" },
        { 1099511627776.0, " TiB" }, { 1073741824.0, " GiB" }, { 1048576.0, " MiB" },
        { 1024.0, " KiB" },
    };
    const char *suffix = " bytes";
    char *trim;

    snprintf(str, size, "%f", v);
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        if (v >= u[i].unit) {
            snprintf(str, size, "%.3f", v / u[i].unit);
            suffix = u[i].suffix;
            break;
        }
    }
    trim = strstr(str, ".000");
    if (trim)
        *trim = '\0';
    if (strlen(str) + strlen(suffix) < size)
        strcat(str, suffix);
}

static void timestr(double secs, char *ts, size_t size, bool fixed)
{
    unsigned long long s = (unsigned long long)secs;
    double frac = secs - (double)s;

    if (fixed || s)
        snprintf(ts, size, "%llu:%02llu:%02llu.%02u", s / 3600, (s / 60) % 60, s % 60,
                 (unsigned)(frac * 100));
    else
        snprintf(ts, size, "%05.2f sec", frac);
}

static void print_report(FILE *out, const char *op, double secs, uint64_t offset,
                         uint64_t count, bool csv)
{
    char s1[64], s2[64], ts[64];
    double total = (double)count;

    if (secs <= 0)
        secs = 1e-9;
    timestr(secs, ts, sizeof ts, csv);
    if (!csv) {
        qc_iocmd_cvtstr(total, s1, sizeof s1);
        qc_iocmd_cvtstr(total / secs, s2, sizeof s2);
        fprintf(out, "%s %llu/%llu bytes at offset %llu\n", op, (unsigned long long)count,
                (unsigned long long)count, (unsigned long long)offset);
        fprintf(out, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, 1, ts, s2, 1.0 / secs);
    } else {
        fprintf(out, "%llu,%d,%s,%.3f,%.3f\n", (unsigned long long)count, 1, ts,
                total / secs, 1.0 / secs);
    }
}

static void dump_buffer(FILE *out, const uint8_t *p, uint64_t offset, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 16) {
        uint64_t n = len - i < 16 ? len - i : 16;
        fprintf(out, "%08llx:  ", (unsigned long long)(offset + i));
        for (uint64_t j = 0; j < n; j++)
            fprintf(out, "%02x ", p[i + j]);
        fputc(' ', out);
        for (uint64_t j = 0; j < n; j++)
            fputc(isalnum(p[i + j]) ? p[i + j] : '.', out);
        fputc('\n', out);
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *errstr(int r)
{
    return strerror(r > -1000 ? -r : (r == QC_E_NOMEM ? ENOMEM : EIO));
}

static int run_write(struct qc_iocmd_session *s, const struct qc_iocmd *c)
{
    uint8_t *buf = NULL;
    double t0, t1;
    int r;

    if (!c->zero) {
        buf = malloc(c->length ? (size_t)c->length : 1);
        if (!buf) {
            fprintf(s->out, "write failed: %s\n", strerror(ENOMEM));
            return -1;
        }
        memset(buf, c->pattern, (size_t)c->length);
    }
    t0 = now();
    if (c->zero)
        r = qc_writer_pwrite_zeroes(s->w, c->offset, c->length, c->unmap);
    else if (c->compressed)
        r = qc_writer_pwrite_compressed(s->w, c->offset, buf, c->length);
    else
        r = qc_writer_pwrite(s->w, c->offset, buf, c->length);
    t1 = now();
    free(buf);
    if (r < 0) {
        fprintf(s->out, "write failed: %s\n", errstr(r));
        return -1;
    }
    if (!c->quiet)
        print_report(s->out, "wrote", t1 - t0, c->offset, c->length, c->csv);
    return 0;
}

static int run_read(struct qc_iocmd_session *s, const struct qc_iocmd *c)
{
    uint8_t *buf = malloc(c->length ? (size_t)c->length : 1);
    double t0, t1;
    int r, ret = 0;

    if (!buf) {
        fprintf(s->out, "read failed: %s\n", strerror(ENOMEM));
        return -1;
    }
    t0 = now();
    r = qc_writer_pread(s->w, c->offset, buf, c->length);
    t1 = now();
    if (r < 0) {
        fprintf(s->out, "read failed: %s\n", errstr(r));
        free(buf);
        return -1;
    }
    if (c->pattern_set) {
        for (uint64_t i = 0; i < c->pattern_length; i++) {
            if (buf[c->pattern_offset + i] != (uint8_t)c->pattern) {
                fprintf(s->out, "Pattern verification failed at offset %llu, %llu bytes\n",
                        (unsigned long long)(c->offset + c->pattern_offset),
                        (unsigned long long)c->pattern_length);
                ret = -1;
                break;
            }
        }
    }
    if (!c->quiet) {
        if (c->verbose)
            dump_buffer(s->out, buf, c->offset, c->length);
        print_report(s->out, "read", t1 - t0, c->offset, c->length, c->csv);
    }
    free(buf);
    return ret;
}

static int run_discard(struct qc_iocmd_session *s, const struct qc_iocmd *c)
{
    double t0 = now(), t1;
    int r = qc_writer_pdiscard(s->w, c->offset, c->length);

    t1 = now();
    if (r < 0) {
        fprintf(s->out, "discard failed: %s\n", errstr(r));
        return -1;
    }
    if (!c->quiet)
        print_report(s->out, "discard", t1 - t0, c->offset, c->length, c->csv);
    return 0;
}

static void mark(struct qc_iocmd_session *s, enum qc_mark kind, uint64_t v)
{
    qc_file_mark(&s->w->img.file, kind, v);
}

int qc_iocmd_run_line(struct qc_iocmd_session *s, const char *line)
{
    struct qc_iocmd c;
    uint64_t k;
    int r = 0;

    if (qc_iocmd_parse(line, &c, s->out, s->err, s->prog) < 0) {
        s->failed = true;
        return 0;
    }
    if (c.kind == QC_IOCMD_NONE)
        return 0;
    if (c.kind == QC_IOCMD_QUIT)
        return 1;
    if (c.kind == QC_IOCMD_ABORT)
        return 2;
    if (s->w->opt.readonly && (c.kind == QC_IOCMD_WRITE || c.kind == QC_IOCMD_DISCARD)) {
        fprintf(s->err, "%s: Block node is read-only\n", s->prog);
        s->failed = true;
        return 0;
    }
    k = s->index++;
    mark(s, QC_MARK_BEGIN, k);
    switch (c.kind) {
    case QC_IOCMD_WRITE: r = run_write(s, &c); break;
    case QC_IOCMD_READ: r = run_read(s, &c); break;
    case QC_IOCMD_DISCARD: r = run_discard(s, &c); break;
    case QC_IOCMD_FLUSH:
        r = qc_writer_flush(s->w);
        if (r < 0)
            fprintf(s->out, "flush failed: %s\n", errstr(r));
        break;
    default: break;
    }
    if (r < 0)
        mark(s, QC_MARK_FAILED, k);
    mark(s, QC_MARK_END, k);
    /* what is on stable storage now: everything up to this command after a
     * flush, or after a write in writethrough mode (write -c excepted) */
    if (r == 0 && (c.kind == QC_IOCMD_FLUSH ||
                   (s->w->opt.cache_mode == QC_CACHE_WRITETHROUGH && c.kind == QC_IOCMD_WRITE &&
                    !c.compressed)))
        mark(s, QC_MARK_ACK, k + 1);
    if (r < 0)
        s->failed = true;
    /* stdout is left to stdio's buffering, as qemu-io does: to a file or
     * a pipe, its lines come after the error lines of stderr */
    return 0;
}

int qc_iocmd_close(struct qc_iocmd_session *s)
{
    int r = qc_writer_shutdown(s->w);
    if (r == 0)
        mark(s, QC_MARK_ACK, s->index);
    qc_writer_abandon(s->w);
    return r;
}
