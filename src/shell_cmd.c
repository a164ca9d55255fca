/* qc-shell's command table and dispatch. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qc_chain.h"
#include "qc_check.h"
#include "qc_edit.h"
#include "qc_jsonw.h"
#include "qc_util.h"
#include "qc_view.h"
#include "shell_cmd.h"

#define PROG SHELL_PROG

struct cmd;
typedef int (*cmd_fn)(struct shell *sh, const struct cmd *c, int argc, char **argv,
                      const char *line);

/* What the arguments of a command are, for completion. */
enum arg_kind { A_NONE, A_COMMAND, A_FEATURE, A_FIELD, A_EXT, A_EXT_DATA, A_EXT_FILE };

#define C_IMAGE  0x1u   /* looks at the image: reread it first */
#define C_IOCMD  0x2u   /* a qemu-io command for the writer */
#define C_WRITES 0x4u   /* changes the image: needs -w */
#define C_QUIT   0x8u

struct cmd {
    const char *name;
    const char *synopsis;
    const char *help;
    cmd_fn run;
    unsigned flags;
    const char *opts;          /* options, space separated (completion) */
    enum arg_kind args;
};

/* --- helpers ------------------------------------------------------------ */

static int usage(struct shell *sh, const struct cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int usage(struct shell *sh, const struct cmd *c, const char *fmt, ...)
{
    va_list ap;

    fflush(sh->out);
    fprintf(sh->err, "%s: %s: ", PROG, c->name);
    va_start(ap, fmt);
    vfprintf(sh->err, fmt, ap);
    va_end(ap);
    fprintf(sh->err, "\nusage: %s\n", c->synopsis);
    return 64;
}

static bool is_opt(const char *a)
{
    return a[0] == '-' && a[1] != '\0';
}

/* Parses options of C that are plain flags, listed in NAMES (NULL-ended),
 * setting FLAGS[i]; positional arguments are gathered at the front of
 * ARGV.  Returns the number of positional arguments, or -1 after a usage
 * message. */
static int flags(struct shell *sh, const struct cmd *c, int argc, char **argv,
                 const char *const *names, bool *set)
{
    int npos = 0;
    bool only_pos = false;

    for (int i = 1; i < argc; i++) {
        size_t k;
        if (only_pos || !is_opt(argv[i])) {
            argv[1 + npos++] = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--") == 0) {
            only_pos = true;
            continue;
        }
        for (k = 0; names[k]; k++)
            if (strcmp(argv[i], names[k]) == 0)
                break;
        if (!names[k]) {
            usage(sh, c, "unknown option '%s'", argv[i]);
            return -1;
        }
        set[k] = true;
    }
    return npos;
}

static bool parse_num(struct shell *sh, const struct cmd *c, const char *what, const char *s,
                      uint64_t *v, int *rc)
{
    if (qc_parse_size(s, v))
        return true;
    *rc = usage(sh, c, "invalid %s '%s'", what, s);
    return false;
}

/* --- qc-dump's views ------------------------------------------------------ */

static int header_view(struct shell *sh, enum qc_header_view v, bool json)
{
    int rc;

    if (json) {
        struct json_object *doc = qc_json_image_doc(&sh->img, sh->path, &rc);
        qc_json_print(sh->out, doc);
        json_object_put(doc);
    } else {
        rc = qc_view_header_as(sh->out, &sh->img, v);
    }
    fflush(sh->out);
    if (rc)
        qc_view_header_incomplete(sh->err, PROG, sh->path, &sh->img);
    qc_view_open_warnings(sh->err, PROG, &sh->img);
    return rc;
}

static int cmd_header(struct shell *sh, const struct cmd *c, int argc, char **argv,
                      const char *line)
{
    static const char *const names[] = { "--legacy", "--exts", "--hex", "--features", "--json",
                                         NULL };
    static const enum qc_header_view views[] = { QC_HV_LEGACY, QC_HV_EXTS, QC_HV_HEX,
                                                 QC_HV_FEATURES };
    bool set[5] = { false };
    enum qc_header_view v = QC_HV_HEADER;
    int n, nviews = 0;

    (void)line;
    if ((n = flags(sh, c, argc, argv, names, set)) < 0)
        return 64;
    if (n)
        return usage(sh, c, "unexpected argument '%s'", argv[1]);
    for (int i = 0; i < 4; i++)
        if (set[i]) {
            v = views[i];
            nviews++;
        }
    if (nviews > 1)
        return usage(sh, c, "choose one of --legacy, --exts, --hex, --features");
    return header_view(sh, v, set[4]);
}

static int no_args(struct shell *sh, const struct cmd *c, int argc, char **argv)
{
    if (argc > 1)
        return usage(sh, c, "%s '%s'", is_opt(argv[1]) ? "unknown option" : "unexpected argument",
                     argv[1]);
    return 0;
}

static int cmd_header_alias(struct shell *sh, const struct cmd *c, int argc, char **argv,
                            const char *line)
{
    (void)line;
    if (no_args(sh, c, argc, argv))
        return 64;
    switch (c->name[0]) {
    case 'e': return header_view(sh, QC_HV_EXTS, false);
    case 'h': return header_view(sh, QC_HV_HEX, false);
    default: return header_view(sh, QC_HV_FEATURES, false);
    }
}

static const char *const table_opts[] = { "--nonzero", "--json", "--unfold", NULL };

/* A table view as JSON, streamed: the member qc-dump --json gives it.  1
 * when the view has an "error" (as the text view's exit status). */
static int table_json(struct shell *sh, const char *name, unsigned fl, bool all, uint64_t index)
{
    struct qc_jw w;
    int rc;

    qc_jw_init(&w, sh->out);
    switch (name[0]) {
    case 's': rc = qc_json_snapshots(&w, NULL, &sh->img); break;
    case 'l': rc = name[1] == '1' ? qc_json_l1(&w, NULL, &sh->img, fl)
                                  : qc_json_l2(&w, NULL, &sh->img, all, index, fl); break;
    case 'r': rc = qc_json_refcounts(&w, NULL, &sh->img, fl); break;
    default: rc = qc_json_bitmaps(&w, NULL, &sh->img, fl); break;
    }
    qc_jw_finish(&w);
    return rc;
}

/* The L1 table fields of the header, switched to the selected snapshot's
 * for an L1/L2 view and put back after it (writes use the active ones). */
struct l1_saved { uint64_t offset; uint32_t size; };

static int snap_begin(struct shell *sh, struct l1_saved *saved)
{
    char *msg = NULL;

    saved->offset = sh->img.hdr.l1_table_offset;
    saved->size = sh->img.hdr.l1_size;
    if (!sh->snapshot || qc_image_select_snapshot(&sh->img, sh->snapshot, &msg) == 0)
        return 0;
    fprintf(sh->err, "%s: Failed to load snapshot: %s\n", PROG, qc_esc_qemu(msg ? msg : "error"));
    free(msg);
    return 1;
}

static int snap_end(struct shell *sh, const struct l1_saved *saved, int rc)
{
    sh->img.hdr.l1_table_offset = saved->offset;
    sh->img.hdr.l1_size = saved->size;
    return rc;
}

static unsigned table_flags(const bool set[3])
{
    return (set[0] ? QC_TV_NONZERO : 0) | (set[2] ? QC_TV_UNFOLD : 0);
}

static int cmd_table(struct shell *sh, const struct cmd *c, int argc, char **argv,
                     const char *line)
{
    bool set[3] = { false, false, false };   /* --nonzero, --json, --unfold */
    unsigned fl;
    int n;

    (void)line;
    if ((n = flags(sh, c, argc, argv, table_opts, set)) < 0)
        return 64;
    if (n)
        return usage(sh, c, "unexpected argument '%s'", argv[1]);
    fl = table_flags(set);
    if (strcmp(c->name, "snapshots") == 0) {
        if (set[0])
            return usage(sh, c, "unknown option '--nonzero'");
        if (set[2])
            return usage(sh, c, "unknown option '--unfold'");
        return set[1] ? table_json(sh, c->name, 0, false, 0) : qc_view_snapshots(sh->out, &sh->img);
    }
    if (set[1] && c->name[0] == 'l') {
        struct l1_saved saved;
        if (snap_begin(sh, &saved))
            return snap_end(sh, &saved, 1);
        return snap_end(sh, &saved, table_json(sh, c->name, fl, false, 0));
    }
    if (set[1])
        return table_json(sh, c->name, fl, false, 0);
    switch (c->name[0]) {
    case 'l': {
        struct l1_saved saved;
        if (snap_begin(sh, &saved))
            return snap_end(sh, &saved, 1);
        return snap_end(sh, &saved, qc_view_l1(sh->out, &sh->img, fl));
    }
    case 'r': return qc_view_refcounts(sh->out, &sh->img, fl);
    default: return qc_view_bitmaps(sh->out, &sh->img, fl);
    }
}

static int cmd_l2(struct shell *sh, const struct cmd *c, int argc, char **argv,
                  const char *line)
{
    bool set[3] = { false, false, false };   /* --nonzero, --json, --unfold */
    struct l1_saved saved;
    bool all;
    uint64_t index = 0;
    int n;

    (void)line;
    if ((n = flags(sh, c, argc, argv, table_opts, set)) < 0)
        return 64;
    if (n != 1)
        return usage(sh, c, n ? "unexpected argument '%s'" : "missing INDEX%s",
                     n ? argv[2] : "");
    all = strcmp(argv[1], "all") == 0;
    if (!all && !qc_parse_size(argv[1], &index))
        return usage(sh, c, "invalid L1 index '%s' (a number or 'all')", argv[1]);
    if (snap_begin(sh, &saved))
        return snap_end(sh, &saved, 1);
    if (set[1])
        return snap_end(sh, &saved, table_json(sh, c->name, table_flags(set), all, index));
    return snap_end(sh, &saved, qc_view_l2(sh->out, &sh->img, all, index, table_flags(set)));
}

/* snapshot [ID|NAME|active]: which disk the guest and L1/L2 views show */
static int cmd_snapshot(struct shell *sh, const struct cmd *c, int argc, char **argv,
                        const char *line)
{
    static const char *const none[] = { NULL };
    struct l1_saved saved;
    char *old = sh->snapshot;
    int n;

    (void)line;
    if ((n = flags(sh, c, argc, argv, none, NULL)) < 0)
        return 64;
    if (n > 1)
        return usage(sh, c, "unexpected argument '%s'", argv[2]);
    if (n == 0) {
        fprintf(sh->out, "%s\n", sh->snapshot ? qc_esc(sh->snapshot) : "active");
        return 0;
    }
    if (strcmp(argv[1], "active") == 0) {
        sh->snapshot = NULL;
    } else if (!(sh->snapshot = strdup(argv[1]))) {
        sh->snapshot = old;
        return 1;
    } else if (snap_begin(sh, &saved)) {
        /* refused: the view stays as it was */
        snap_end(sh, &saved, 1);
        free(sh->snapshot);
        sh->snapshot = old;
        return 1;
    } else {
        snap_end(sh, &saved, 0);
    }
    free(old);
    qc_view_set_snapshot(sh->snapshot);
    return 0;
}

static int cmd_map(struct shell *sh, const struct cmd *c, int argc, char **argv,
                   const char *line)
{
    static const char *const names[] = { "--json", NULL };
    bool json = false;
    int n;

    (void)line;
    if ((n = flags(sh, c, argc, argv, names, &json)) < 0)
        return 64;
    if (n)
        return usage(sh, c, "unexpected argument '%s'", argv[1]);
    return qc_view_map_cmd(sh->out, sh->err, PROG, sh->path, json);
}

/* OFF LEN of hexdump and read */
static int off_len(struct shell *sh, const struct cmd *c, int n, char **argv, uint64_t *off,
                   uint64_t *len)
{
    int rc = 0;

    if (n != 2)
        return usage(sh, c, n < 2 ? "needs OFF and LEN" : "unexpected argument '%s'",
                     n > 2 ? argv[3] : "");
    if (!parse_num(sh, c, "offset", argv[1], off, &rc) ||
        !parse_num(sh, c, "length", argv[2], len, &rc))
        return rc;
    return 0;
}

static int cmd_hexdump(struct shell *sh, const struct cmd *c, int argc, char **argv,
                       const char *line)
{
    static const char *const none[] = { NULL };
    uint64_t off, len;
    int n, rc;

    (void)line;
    if ((n = flags(sh, c, argc, argv, none, NULL)) < 0)
        return 64;
    if ((rc = off_len(sh, c, n, argv, &off, &len)) != 0)
        return rc;
    return qc_view_hexdump_cmd(sh->out, sh->err, PROG, &sh->img, sh->path, off, len);
}

static int cmd_read(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line)
{
    static const char *const names[] = { "--backing", NULL };
    bool backing = false;
    uint64_t off, len;
    int n, rc;

    (void)line;
    if ((n = flags(sh, c, argc, argv, names, &backing)) < 0)
        return 64;
    if ((rc = off_len(sh, c, n, argv, &off, &len)) != 0)
        return rc;
    return qc_view_read_cmd(sh->out, sh->err, PROG, sh->path, off, len, backing, true);
}

/* --- check, cluster, guest ---------------------------------------------- */

static int cmd_check(struct shell *sh, const struct cmd *c, int argc, char **argv,
                     const char *line)
{
    struct qc_view_check_opts vo = { false, false, false };

    (void)line;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "--output=json") == 0)
            vo.json = true;
        else if (strcmp(argv[i], "--output=human") == 0)
            vo.json = false;
        else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0)
            vo.quiet = true;
        else if (strncmp(argv[i], "--output=", 9) == 0)
            return usage(sh, c, "--output must be human or json, not '%s'", argv[i] + 9);
        else
            return usage(sh, c, "%s '%s'", is_opt(argv[i]) ? "unknown option"
                         : "unexpected argument", argv[i]);
    }
    return qc_view_check(sh->out, sh->err, sh->path, &vo);
}

static int one_offset(struct shell *sh, const struct cmd *c, int argc, char **argv,
                      uint64_t *off)
{
    static const char *const none[] = { NULL };
    int n, rc = 0;

    if ((n = flags(sh, c, argc, argv, none, NULL)) < 0)
        return 64;
    if (n != 1)
        return usage(sh, c, n ? "unexpected argument '%s'" : "missing OFF%s", n ? argv[2] : "");
    if (!parse_num(sh, c, "offset", argv[1], off, &rc))
        return rc;
    return 0;
}

static int cmd_cluster(struct shell *sh, const struct cmd *c, int argc, char **argv,
                       const char *line)
{
    uint64_t off;
    int rc;

    (void)line;
    if ((rc = one_offset(sh, c, argc, argv, &off)) != 0)
        return rc;
    return qc_view_cluster(sh->out, sh->err, PROG, &sh->img, sh->path, off);
}

static int cmd_guest(struct shell *sh, const struct cmd *c, int argc, char **argv,
                     const char *line)
{
    uint64_t off;
    int rc;

    (void)line;
    if ((rc = one_offset(sh, c, argc, argv, &off)) != 0)
        return rc;
    return qc_view_guest_where(sh->out, sh->err, PROG, sh->path, off);
}

/* --- qc-setfeature's edits ----------------------------------------------- */

static int read_only(struct shell *sh, const struct cmd *c, const char *alt)
{
    fflush(sh->out);
    fprintf(sh->err, "%s: %s: the image is open read-only (start qc-shell with -w%s)\n",
            PROG, c->name, alt);
    return 1;
}

static int cmd_list(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line)
{
    (void)line;
    if (no_args(sh, c, argc, argv))
        return 64;
    qc_view_feature_list(sh->out, &sh->img);
    return 0;
}

/* An extension name ("feature_table") in place of MAGIC becomes the magic. */
static char *ext_arg(const char *arg, bool with_rest)
{
    const char *eq = with_rest ? strchr(arg, '=') : NULL;
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    char *name = strndup(arg, n), *s = NULL;
    uint32_t magic;

    if (!name)
        return NULL;
    if (qc_ext_lookup_name(name, &magic)) {
        if (asprintf(&s, "%#" PRIx32 "%s", magic, eq ? eq : "") < 0)
            s = NULL;
    } else {
        s = strdup(arg);
    }
    free(name);
    return s;
}

static int cmd_edit(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line)
{
    static const char *const names[] = { "--force", "--dry-run", "-v", "--verbose", NULL };
    bool set[4] = { false };
    struct qc_edit_run_opts ro = { 0 };
    enum qc_edit_req_kind kind;
    struct qc_edit_request *reqs;
    char **args;
    char msg[512];
    int n, rc = 0, r;
    size_t nreqs = 0;

    (void)line;
    if ((n = flags(sh, c, argc, argv, names, set)) < 0)
        return 64;
    switch (c->args) {
    case A_FIELD: kind = QC_REQ_SET_HEADER; break;
    case A_EXT_DATA: kind = QC_REQ_ADD_EXT; break;
    case A_EXT_FILE: kind = QC_REQ_ADD_EXT_FILE; break;
    case A_EXT: kind = QC_REQ_DEL_EXT; break;
    default: kind = QC_REQ_FEATURE; break;
    }
    if (!n)
        return usage(sh, c, "nothing to do");
    ro.clear = strcmp(c->name, "clear") == 0;
    ro.force = set[0];
    ro.dry_run = set[1];
    ro.verbose = set[2] || set[3];
    reqs = calloc((size_t)n, sizeof *reqs);
    args = calloc((size_t)n, sizeof *args);
    if (!reqs || !args) {
        free(reqs);
        free(args);
        fprintf(sh->err, "%s: %s\n", PROG, qc_strerror(QC_E_NOMEM));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        args[i] = kind == QC_REQ_FEATURE || kind == QC_REQ_SET_HEADER
                  ? strdup(argv[1 + i]) : ext_arg(argv[1 + i], kind != QC_REQ_DEL_EXT);
        if (!args[i]) {
            fprintf(sh->err, "%s: %s\n", PROG, qc_strerror(QC_E_NOMEM));
            rc = 1;
            goto out;
        }
        r = qc_edit_request_parse(&reqs[nreqs++], kind, args[i], msg, sizeof msg);
        if (r) {
            if (r == 64) {
                rc = usage(sh, c, "%s", msg);
            } else {
                fprintf(sh->err, "%s: %s\n", PROG, msg);
                rc = r;
            }
            goto out;
        }
    }
    if (!sh->writable && !ro.dry_run)
        rc = read_only(sh, c, ", or use --dry-run");
    else
        rc = qc_edit_run(sh->out, sh->err, PROG, &sh->img, sh->path, reqs, nreqs, &ro);
out:
    for (size_t i = 0; i < nreqs; i++)
        qc_edit_request_free(&reqs[i]);
    for (int i = 0; i < n; i++)
        free(args[i]);
    free(args);
    free(reqs);
    return rc;
}

/* --- qc-write's commands ------------------------------------------------- */

static int finish_writer(struct shell *sh)
{
    int r;

    if (!sh->have_writer)
        return 0;
    sh->have_writer = false;
    r = qc_iocmd_close(&sh->io);
    if (r < 0) {
        fflush(sh->out);
        fprintf(sh->err, "%s: %s: closing failed: %s\n", PROG, sh->path, qc_strerror(r));
        return 1;
    }
    return 0;
}

/* The lines of the repair of a dirty image at the writer's open, as
 * qc-write prints them. */
static void print_repair_line(void *err_file, const struct qc_check_event *ev)
{
    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    fprintf(err_file, "%s%s%s", (ev->flags & QC_EVL_PROGNAME) ? PROG ": " : "", qc_esc_qemu(ev->line),
            (ev->flags & QC_EVL_NO_NL) ? "" : "\n");
}

static int cmd_io(struct shell *sh, const struct cmd *c, int argc, char **argv,
                  const char *line)
{
    (void)argc;
    (void)argv;
    if (!sh->writable)
        return read_only(sh, c, "");
    if (!sh->have_writer) {
        /* the session's image holds the locks; the writer shares them */
        struct qc_writer_options wo = { .cache_mode = QC_CACHE_WRITEBACK, .no_lock = true,
                                        .repair_dirty = true,
                                        .repair_sink = print_repair_line,
                                        .repair_opaque = sh->err };
        int r;
        fflush(sh->out);
        r = qc_writer_open(&sh->w, sh->path, &wo, NULL);
        if (r < 0) {
            fflush(sh->out);
            if (r == QC_E_FORMAT) {
                fprintf(sh->err, "%s: %s: not a qcow2 image (bad magic)\n", PROG, sh->path);
                return 63;
            }
            fprintf(sh->err, "%s: can't open device %s: %s\n", PROG, sh->path, sh->w.errmsg);
            return 1;
        }
        memset(&sh->io, 0, sizeof sh->io);
        sh->io.w = &sh->w;
        sh->io.out = sh->out;
        sh->io.err = sh->err;
        sh->io.prog = PROG;
        sh->have_writer = true;
    }
    sh->io.failed = false;
    qc_iocmd_run_line(&sh->io, line);
    return sh->io.failed ? 1 : 0;
}

/* --- help, quit ---------------------------------------------------------- */

static int cmd_help(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line);
static int cmd_quit(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line)
{
    (void)line;
    if (no_args(sh, c, argc, argv))
        return 64;
    sh->quit = true;
    return 0;
}

static const struct cmd cmds[] = {
    { "header", "header [--legacy|--exts|--hex|--features|--json]",
      "the header and extensions as qc-dump shows them (qcow2.py dump-header)",
      cmd_header, C_IMAGE, "--legacy --exts --hex --features --json", A_NONE },
    { "exts", "exts", "header extensions only (qc-dump --exts)",
      cmd_header_alias, C_IMAGE, "", A_NONE },
    { "hex", "hex", "annotated hexdump of the header area (qc-dump --hex)",
      cmd_header_alias, C_IMAGE, "", A_NONE },
    { "features", "features", "feature bits joined with the feature table (qc-dump --features)",
      cmd_header_alias, C_IMAGE, "", A_NONE },
    { "l1", "l1 [--nonzero] [--unfold] [--json]", "the L1 table (qc-dump --l1)",
      cmd_table, C_IMAGE, "--nonzero --unfold --json", A_NONE },
    { "l2", "l2 INDEX|all [--nonzero] [--unfold] [--json]",
      "the L2 table of L1 entry INDEX, or all (qc-dump --l2)",
      cmd_l2, C_IMAGE, "--nonzero --unfold --json all", A_NONE },
    { "refcounts", "refcounts [--nonzero] [--unfold] [--json]",
      "refcount table and blocks (qc-dump --refcounts)",
      cmd_table, C_IMAGE, "--nonzero --unfold --json", A_NONE },
    { "snapshots", "snapshots [--json]", "the snapshot table (qc-dump --snapshots)",
      cmd_table, C_IMAGE, "--json", A_NONE },
    { "bitmaps", "bitmaps [--nonzero] [--unfold] [--json]", "persistent bitmaps (qc-dump --bitmaps)",
      cmd_table, C_IMAGE, "--nonzero --unfold --json", A_NONE },
    { "map", "map [--json]", "guest-to-host map (qc-dump --map; --json as qemu-img map)",
      cmd_map, C_IMAGE, "--json", A_NONE },
    { "hexdump", "hexdump OFF LEN", "host bytes as hexdump -C (qc-dump --hexdump)",
      cmd_hexdump, C_IMAGE, "", A_NONE },
    { "read", "read [--backing] OFF LEN", "guest bytes as hexdump -C (qc-dump --read)",
      cmd_read, C_IMAGE, "--backing", A_NONE },
    { "check", "check [--output=human|json] [-q]", "qemu-img check's verdict (qc-check)",
      cmd_check, C_IMAGE, "--output=human --output=json -q", A_NONE },
    { "cluster", "cluster OFF", "what the host cluster holding OFF is used for",
      cmd_cluster, C_IMAGE, "", A_NONE },
    { "guest", "guest OFF", "where guest offset OFF lives: L1, L2, host cluster",
      cmd_guest, C_IMAGE, "", A_NONE },
    { "list", "list", "feature bits and their names (qc-setfeature --list)",
      cmd_list, C_IMAGE, "", A_NONE },
    { "set", "set [--force] [--dry-run] [-v] FEATURE...",
      "set feature bits: names or GROUP:BIT (qc-setfeature)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_FEATURE },
    { "clear", "clear [--force] [--dry-run] [-v] FEATURE...",
      "clear feature bits (qc-setfeature --clear)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_FEATURE },
    { "set-header", "set-header [--force] [--dry-run] [-v] FIELD=VALUE...",
      "set header fields (qc-setfeature --set-header)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_FIELD },
    { "add-ext", "add-ext [--force] [--dry-run] [-v] MAGIC=DATA",
      "add a header extension; MAGIC may be a name (qc-setfeature --add-ext)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_EXT_DATA },
    { "add-ext-file", "add-ext-file [--force] [--dry-run] [-v] MAGIC=FILE",
      "add a header extension with the bytes of FILE (qc-setfeature --add-ext-file)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_EXT_FILE },
    { "del-ext", "del-ext [--force] [--dry-run] [-v] MAGIC...",
      "delete header extensions; MAGIC may be a name (qc-setfeature --del-ext)",
      cmd_edit, C_IMAGE | C_WRITES, "--force --dry-run -v", A_EXT },
    { "write", "write [-P PATTERN] [-z [-u]] [-c] OFF LEN",
      "write guest data, as qemu-io (qc-write)",
      cmd_io, C_IOCMD | C_WRITES, "-P -z -u -c -q", A_NONE },
    { "discard", "discard OFF LEN", "discard guest data, as qemu-io (qc-write)",
      cmd_io, C_IOCMD | C_WRITES, "-q", A_NONE },
    { "flush", "flush", "flush the writer, as qemu-io (qc-write)",
      cmd_io, C_IOCMD | C_WRITES, "", A_NONE },
    { "snapshot", "snapshot [ID|NAME|active]",
      "l1, l2, map, read, guest show that snapshot's disk (qc-dump --snapshot)",
      cmd_snapshot, C_IMAGE, "", A_NONE },
    { "help", "help [COMMAND]", "this list, or one command's usage",
      cmd_help, 0, "", A_COMMAND },
    { "quit", "quit", "leave",
      cmd_quit, C_QUIT, "", A_NONE },
    { "exit", "exit", "the same as quit",
      cmd_quit, C_QUIT, "", A_NONE },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static int cmd_help(struct shell *sh, const struct cmd *c, int argc, char **argv,
                    const char *line)
{
    (void)line;
    if (argc > 2)
        return usage(sh, c, "unexpected argument '%s'", argv[2]);
    if (argc == 2) {
        const struct cmd *h = find_cmd(argv[1]);
        if (!h)
            return usage(sh, c, "no command '%s'", argv[1]);
        fprintf(sh->out, "usage: %s\n  %s%s\n", h->synopsis, h->help,
                (h->flags & C_WRITES) ? " [-w]" : "");
        return 0;
    }
    fprintf(sh->out, "Commands (OFF, LEN, INDEX: numbers, 0x hex, suffixes k M G T, b/s "
            "sectors):\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(sh->out, "  %s\n      %s%s\n", cmds[i].synopsis, cmds[i].help,
                (cmds[i].flags & C_WRITES) ? " [-w]" : "");
    fprintf(sh->out, "[-w]: only when qc-shell was started with -w (set, clear and the "
            "extension\ncommands also take --dry-run without it).\n");
    return 0;
}

/* --- the line ------------------------------------------------------------ */

/* Splits LINE into words: blanks separate, '...' and "..." quote, a
 * backslash escapes the next character, '#' at a word's start begins a
 * comment.  Returns the word count, or -1 for an unterminated quote. */
static int split(const char *line, char ***out)
{
    size_t len = strlen(line);
    char *buf = malloc(len + 1), **v = NULL;
    int n = 0;
    const char *p = line;

    *out = NULL;
    if (!buf)
        return -2;
    for (;;) {
        char *w = buf, *start;
        char **nv;
        char q = 0;

        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p || *p == '#')
            break;
        start = w;
        for (; *p; p++) {
            if (q) {
                if (*p == q)
                    q = 0;
                else if (*p == '\\' && q == '"' && (p[1] == '"' || p[1] == '\\'))
                    *w++ = *++p;
                else
                    *w++ = *p;
                continue;
            }
            if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                break;
            if (*p == '\'' || *p == '"') {
                q = *p;
            } else if (*p == '\\' && p[1]) {
                *w++ = *++p;
            } else {
                *w++ = *p;
            }
        }
        if (q) {
            for (int i = 0; i < n; i++)
                free(v[i]);
            free(v);
            free(buf);
            return -1;
        }
        *w = '\0';
        nv = realloc(v, (size_t)(n + 2) * sizeof *v);
        if (!nv)
            goto nomem;
        v = nv;
        v[n + 1] = NULL;
        if (!(v[n] = strdup(start)))
            goto nomem;
        n++;
    }
    free(buf);
    *out = v;
    return n;
nomem:
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
    free(buf);
    return -2;
}

/* The image as the file holds it now (a write or another process may
 * have changed it). */
static int refresh(struct shell *sh)
{
    int r = qc_file_refresh_size(&sh->img.file);

    if (r == 0)
        r = qc_image_reload(&sh->img, QC_VALIDATE_OPEN);
    if (r == QC_E_FORMAT) {
        fprintf(sh->err, "%s: %s: not a qcow2 image (bad magic)\n", PROG, sh->path);
        return 63;
    }
    if (r < 0) {
        fprintf(sh->err, "%s: %s: %s\n", PROG, sh->path, qc_strerror(r));
        return 1;
    }
    return 0;
}

int shell_run_line(struct shell *sh, const char *line)
{
    const struct cmd *c;
    char **argv;
    int argc, rc = 0, closed = 0;

    argc = split(line, &argv);
    if (argc == 0) {
        free(argv);
        return 0;
    }
    if (argc < 0) {
        fprintf(sh->err, "%s: %s\n", PROG, argc == -1 ? "unterminated quote" :
                qc_strerror(QC_E_NOMEM));
        shell_note_status(sh, 64);
        return 64;
    }
    c = find_cmd(argv[0]);
    if (!c) {
        fprintf(sh->err, "%s: unknown command '%s' (try 'help')\n", PROG, argv[0]);
        rc = 64;
        goto out;
    }
    /* views and edits see the image as a clean close of the writer leaves it */
    if (!(c->flags & C_IOCMD))
        closed = finish_writer(sh);
    if ((c->flags & C_IMAGE) && (rc = refresh(sh)) != 0)
        goto out;
    /* commands may reorder the word pointers: give them a copy */
    {
        char **words = malloc((size_t)(argc + 1) * sizeof *words);
        if (!words) {
            fprintf(sh->err, "%s: %s\n", PROG, qc_strerror(QC_E_NOMEM));
            rc = 1;
            goto out;
        }
        memcpy(words, argv, (size_t)(argc + 1) * sizeof *words);
        rc = c->run(sh, c, argc, words, line);
        free(words);
    }
    if (closed && !rc)
        rc = closed;
out:
    fflush(sh->out);
    fflush(sh->err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    shell_note_status(sh, rc);
    return rc;
}

/* Worst first: usage error, failure, not qcow2, corruptions, leaks, success. */
static int rank(int rc)
{
    switch (rc) {
    case 0: return 0;
    case 3: return 1;
    case 2: return 2;
    case 63: return 3;
    case 1: return 4;
    case 64: return 6;
    default: return 5;
    }
}

void shell_note_status(struct shell *sh, int rc)
{
    if (rank(rc) > rank(sh->status))
        sh->status = rc;
}

/* --- open and close ------------------------------------------------------ */

int shell_open(struct shell *sh, const char *path, bool writable, bool force)
{
    const char *why = NULL;
    unsigned fl = writable ? QC_OPEN_WRITE | (force ? QC_OPEN_FORCE : 0) : 0;
    int r;

    memset(sh, 0, sizeof *sh);
    sh->path = path;
    sh->writable = writable;
    sh->out = stdout;
    sh->err = stderr;
    r = qc_image_open(&sh->img, path, fl, QC_VALIDATE_OPEN, &why);
    if (r == QC_E_LOCKED) {
        fprintf(stderr, "%s: %s: Failed to get %s lock\n"
                "Is another process using the image [%s]? (--force overrides)\n",
                PROG, path, why ? why : "\"write\"", path);
        return 1;
    }
    if (r == QC_E_FORMAT) {
        fprintf(stderr, "%s: %s: not a qcow2 image (bad magic)\n", PROG, path);
        qc_image_close(&sh->img);
        return 63;
    }
    if (r < 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, path, qc_strerror(r));
        return 1;
    }
    /* a writer holds its backing chain as QEMU does (the writer that a
     * write command opens takes no locks of its own: the session has them) */
    if (writable) {
        char msg[600];
        if (qc_backing_locks_take(path, force, &sh->backing_locks, msg, sizeof msg) < 0) {
            fprintf(stderr, "%s: %s: %s (--force overrides)\n", PROG, path, msg);
            qc_image_close(&sh->img);
            return 1;
        }
    }
    return 0;
}

int shell_close(struct shell *sh)
{
    int rc = finish_writer(sh);

    fflush(sh->out);
    qc_backing_locks_release(&sh->backing_locks);
    qc_image_close(&sh->img);
    free(sh->snapshot);
    sh->snapshot = NULL;
    qc_view_set_snapshot(NULL);
    return rc;
}

/* --- completion ---------------------------------------------------------- */

static void add_words(const char *list, shell_word_fn add, void *ctx)
{
    char w[64];

    while (*list) {
        size_t n = strcspn(list, " ");
        if (n && n < sizeof w) {
            memcpy(w, list, n);
            w[n] = '\0';
            add(ctx, w);
        }
        list += n;
        while (*list == ' ')
            list++;
    }
}

/* "Feature table" -> "feature_table" */
static void ext_word(uint32_t magic, const char *suffix, shell_word_fn add, void *ctx)
{
    const char *name = qc_ext_name(magic);
    char w[64];
    size_t i;

    for (i = 0; name[i] && i + 2 < sizeof w; i++)
        w[i] = name[i] == ' ' ? '_' : (char)(name[i] >= 'A' && name[i] <= 'Z'
                                              ? name[i] - 'A' + 'a' : name[i]);
    w[i] = '\0';
    strncat(w, suffix, sizeof w - strlen(w) - 1);
    add(ctx, w);
}

bool shell_complete(struct shell *sh, const char *cmd, int argno, shell_word_fn add, void *ctx,
                    bool *files)
{
    const struct cmd *c;
    size_t nm;
    const uint32_t *magics;
    char w[64];

    *files = false;
    if (argno == 0) {
        for (size_t i = 0; i < NCMDS; i++)
            add(ctx, cmds[i].name);
        return false;
    }
    if (!(c = find_cmd(cmd)))
        return false;
    add_words(c->opts, add, ctx);
    switch (c->args) {
    case A_COMMAND:
        for (size_t i = 0; i < NCMDS; i++)
            add(ctx, cmds[i].name);
        return false;
    case A_FEATURE:
        /* our names, and GROUP:BIT for bits only the image's table names */
        for (int g = 0; g < QC_FG_COUNT; g++)
            for (unsigned b = 0; b < 64; b++) {
                const char *s = qc_feature_short_name((enum qc_feature_group)g, b);
                if (s)
                    add(ctx, s);
                else if (qc_feature_table_name(&sh->img.features, (enum qc_feature_group)g, b)) {
                    snprintf(w, sizeof w, "%s:%u",
                             qc_feature_group_name((enum qc_feature_group)g), b);
                    add(ctx, w);
                }
            }
        return false;
    case A_FIELD:
        for (int f = 0; f < QC_HF_COUNT; f++) {
            snprintf(w, sizeof w, "%s=", qc_header_field_info((enum qc_header_field)f)->name);
            add(ctx, w);
        }
        return true;
    case A_EXT:
    case A_EXT_DATA:
    case A_EXT_FILE:
        magics = qc_ext_known_magics(&nm);
        for (size_t i = 0; i < nm; i++)
            ext_word(magics[i], c->args == A_EXT ? "" : "=", add, ctx);
        if (c->args == A_EXT)
            for (size_t i = 0; i < sh->img.exts.n; i++) {
                snprintf(w, sizeof w, "%#" PRIx32, sh->img.exts.v[i].magic);
                add(ctx, w);
            }
        *files = c->args == A_EXT_FILE;
        return c->args != A_EXT;
    default:
        return false;
    }
}
