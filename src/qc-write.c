/* qc-write: write guest data like QEMU, and crash on purpose. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc_sidefile.h"
#include "qc_image.h"
#include "qc_follow.h"
#include "qc_check.h"
#include "qc_iocmd.h"
#include "qc_util.h"
#include "qc_version.h"
#include "qc_writer.h"

static const char usage_text[] =
    "Usage: qc-write [OPTIONS] IMAGE [-c CMD]...\n"
    "       qc-write --create SIZE [-o OPTIONS] IMAGE [-c CMD]...\n"
    "\n"
    "Writes guest data into a qcow2 image with QEMU's allocation and write order,\n"
    "taking qemu-io commands (write [-P PATTERN] [-z [-u]] [-c] OFF LEN,\n"
    "read [-P PATTERN] [-v] OFF LEN, discard OFF LEN, flush, abort) from -c\n"
    "options, or one per line from standard input when there is none.\n"
    "\n"
    "  -c, --cmd CMD          run a command (may be repeated)\n"
    "  -t, --cache MODE       writeback (default), writethrough or unsafe\n"
    "  -r, --read-only        open read-only (no lock, no write; reads only)\n"
    "  -f, --format FMT       image format; only qcow2\n"
    "      --create SIZE      create IMAGE first, as qemu-img create -f qcow2\n"
    "  -o, --options OPTS     qemu-img create options for --create (cluster_size,\n"
    "                         compat, lazy_refcounts, refcount_bits, extended_l2,\n"
    "                         compression_type, preallocation, backing_file,\n"
    "                         backing_fmt)\n"
    "      --stats            at exit, print the writes to the file by kind, with\n"
    "                         the flushes that followed each kind\n"
    "      --no-repair        refuse a dirty image instead of repairing it\n"
    "      --force            ignore locks held on the image by other processes,\n"
    "                         replace an existing write log or record\n"
    QC_FOLLOW_OPTIONS_HELP
    QC_IO_OPTIONS_HELP
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Exit status: 0 success, 1 a command or the open failed, 63 not qcow2,\n"
    "64 usage error, 99 simulated power failure, 134 abort.\n";

#define PROG "qc-write"

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    return 64;
}

struct stats {
    uint64_t writes[QC_WC_COUNT], bytes[QC_WC_COUNT], flushes[QC_WC_COUNT];
};

/* The lines of the repair of a dirty image, on stderr as QEMU prints them
 * when it opens such an image for writing. */
static void print_repair_line(void *opaque, const struct qc_check_event *ev)
{
    (void)opaque;
    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    fprintf(stderr, "%s%s%s", (ev->flags & QC_EVL_PROGNAME) ? PROG ": " : "", qc_esc_qemu(ev->line),
            (ev->flags & QC_EVL_NO_NL) ? "" : "\n");
}

static void add_stats(struct stats *st, const struct qc_file *f)
{
    for (int i = 0; i < QC_WC_COUNT; i++) {
        st->writes[i] += f->class_writes[i];
        st->bytes[i] += f->class_bytes[i];
        st->flushes[i] += f->class_flushes[i];
    }
}

/* Writes to the file by kind; a flush counts for the kind of the last
 * write before it (the write it made durable). */
static void print_stats(const struct stats *st)
{
    uint64_t tw = 0, tb = 0, tf = 0;

    printf("%-16s %8s %14s %8s\n", "kind", "writes", "bytes", "flushes");
    for (int i = 0; i < QC_WC_COUNT; i++) {
        printf("%-16s %8llu %14llu %8llu\n", qc_write_class_name((enum qc_write_class)i),
               (unsigned long long)st->writes[i], (unsigned long long)st->bytes[i],
               (unsigned long long)st->flushes[i]);
        tw += st->writes[i];
        tb += st->bytes[i];
        tf += st->flushes[i];
    }
    printf("%-16s %8llu %14llu %8llu\n", "total", (unsigned long long)tw,
           (unsigned long long)tb, (unsigned long long)tf);
}

int main(int argc, char **argv)
{
    enum { O_CREATE = 256, O_STATS, O_NO_REPAIR, O_FORCE, O_VERSION, O_UNSAFE_ORDER };
    static const struct option opts[] = {
        { "cmd", required_argument, NULL, 'c' },
        { "cache", required_argument, NULL, 't' },
        { "read-only", no_argument, NULL, 'r' },
        { "format", required_argument, NULL, 'f' },
        { "options", required_argument, NULL, 'o' },
        { "create", required_argument, NULL, O_CREATE },
        { "stats", no_argument, NULL, O_STATS },
        { "no-repair", no_argument, NULL, O_NO_REPAIR },
        { "force", no_argument, NULL, O_FORCE },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        /* test only: write L2 entries before the refcounts that protect them */
        { "unsafe-order-l2-first", no_argument, NULL, O_UNSAFE_ORDER },
        QC_IO_LONG_OPTIONS,
        QC_FOLLOW_LONG_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    struct qc_writer_options wopt = { .cache_mode = QC_CACHE_WRITEBACK };
    struct qc_create_options copt;
    struct qc_io_opts io;
    struct qc_writer w;
    struct qc_iocmd_session s;
    const char **cmds = NULL;
    size_t ncmds = 0;
    const char *create_size = NULL, *image;
    bool stats = false, create = false, no_repair = false;
    struct stats st;
    char err[512];
    int c, r, rc = 0;

    memset(&st, 0, sizeof st);
    qc_io_opts_init(&io);
    qc_create_options_init(&copt);
    cmds = calloc((size_t)argc + 1, sizeof *cmds);
    if (!cmds)
        return 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:t:f:o:hr", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cmds[ncmds++] = optarg;
            break;
        case 't':
            if (!strcmp(optarg, "writeback"))
                wopt.cache_mode = QC_CACHE_WRITEBACK;
            else if (!strcmp(optarg, "writethrough"))
                wopt.cache_mode = QC_CACHE_WRITETHROUGH;
            else if (!strcmp(optarg, "unsafe"))
                wopt.cache_mode = QC_CACHE_UNSAFE;
            else {
                free(cmds);
                return usage_error("invalid cache mode '%s' (writeback, writethrough, unsafe)",
                                   optarg);
            }
            break;
        case 'f':
            if (strcmp(optarg, "qcow2")) {
                free(cmds);
                return usage_error("unsupported format '%s' (only qcow2)", optarg);
            }
            break;
        case 'o':
            if (qc_create_parse_options(&copt, optarg, err, sizeof err) < 0) {
                fprintf(stderr, PROG ": %s\n", err);
                free(cmds);
                return 1;
            }
            break;
        case O_CREATE:
            create = true;
            create_size = optarg;
            break;
        case 'r': wopt.readonly = true; break;
        case O_STATS: stats = true; break;
        case O_NO_REPAIR: no_repair = true; break;
        case O_FORCE: wopt.force = io.overwrite = true; break;
        case O_UNSAFE_ORDER: wopt.unsafe_order = true; break;
        case 'h':
            fputs(usage_text, stdout);
            free(cmds);
            return 0;
        case O_VERSION:
            printf(PROG " %s\n", QC_VERSION);
            free(cmds);
            return 0;
        case ':':
            free(cmds);
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            r = qc_io_opts_parse(&io, c, optarg, err, sizeof err);
            if (r == 0)
                r = qc_follow_opt_parse(c, optarg, err, sizeof err);
            if (r == 1)
                break;
            free(cmds);
            if (r < 0)
                return usage_error("%s", err);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc - 1) {
        free(cmds);
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    }
    image = optind < argc ? argv[optind] : NULL;
    if (!image) {
        free(cmds);
        return usage_error("%s", "missing IMAGE");
    }
    /* the log and the record are never a file the image reads */
    static struct qc_protect chain_files;
    qc_protect_init(&chain_files);
    qc_image_protect_chain(image, &chain_files);
    io.protect = &chain_files;
    if (wopt.readonly && create) {
        free(cmds);
        return usage_error("%s", "--read-only and --create exclude each other");
    }

    if (create) {
        struct qc_file cstats;
        char line[4096];

        {
            uint64_t sz;
            if (!qc_parse_size(create_size, &sz)) {
                free(cmds);
                fprintf(stderr, PROG ": Invalid image size specified '%s'\n", create_size);
                return 1;
            }
            copt.size = sz;
            copt.size_set = true;
        }
        if (qc_create_check_backing(&copt, image, err, sizeof err) < 0) {
            fprintf(stderr, PROG ": %s: %s\n", qc_esc(image), err);
            free(cmds);
            return 1;
        }
        qc_create_formatting_line(&copt, image, line, sizeof line);
        printf("%s\n", line);
        fflush(stdout);
        memset(&cstats, 0, sizeof cstats);
        if (qc_create(image, &copt, ncmds ? NULL : &io, wopt.force, &cstats, err, sizeof err) < 0) {
            fprintf(stderr, PROG ": %s: %s\n", qc_esc(image), err);
            free(cmds);
            return 1;
        }
        add_stats(&st, &cstats);
        if (!ncmds) {
            free(cmds);
            if (stats)
                print_stats(&st);
            return 0;
        }
    }

    wopt.repair_dirty = !no_repair;
    wopt.repair_sink = print_repair_line;
    r = qc_writer_open(&w, image, &wopt, &io);
    if (r < 0) {
        free(cmds);
        if (r == QC_E_FORMAT) {
            fprintf(stderr, PROG ": %s: not a qcow2 image (bad magic)\n", qc_esc(image));
            return 63;
        }
        fprintf(stderr, PROG ": can't open device %s: %s\n", qc_esc_qemu(image), w.errmsg);
        return 1;
    }
    memset(&s, 0, sizeof s);
    s.w = &w;
    s.out = stdout;
    s.err = stderr;
    s.prog = PROG;
    if (ncmds) {
        for (size_t i = 0; i < ncmds && rc == 0; i++)
            rc = qc_iocmd_run_line(&s, cmds[i]);
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (rc == 0 && getline(&line, &cap, stdin) > 0)
            rc = qc_iocmd_run_line(&s, line);
        free(line);
    }
    free(cmds);
    if (rc == 2) {
        /* abort: stop dead, nothing more is written */
        fflush(stdout);
        fflush(stderr);
        _exit(134);
    }
    r = qc_iocmd_close(&s);
    if (r < 0) {
        fprintf(stderr, PROG ": %s: closing failed: %s\n", qc_esc(image), qc_strerror(r));
        s.failed = true;
    }
    add_stats(&st, &w.img.file);
    if (stats)
        print_stats(&st);
    return s.failed ? 1 : 0;
}
