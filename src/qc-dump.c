/* qc-dump: look at a qcow2 image, never touch it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qc_follow.h"
#include "qc_chain.h"
#include "qc_guest.h"
#include "qc_hash.h"
#include "qc_image.h"
#include "qc_jsonw.h"
#include "qc_util.h"
#include "qc_sidefile.h"
#include "qc_view.h"
#include "qc_version.h"

static const char usage_text[] =
    "Usage: qc-dump [OPTIONS] IMAGE\n"
    "\n"
    "Shows a qcow2 image without changing it.  With no option: the header and\n"
    "header extensions, as qemu-iotests' qcow2.py dump-header prints them.\n"
    "\n"
    "Header views (one at a time):\n"
    "  --legacy          header in the 2012 qcow2.py format\n"
    "  --exts            header extensions only (qcow2.py dump-header-exts)\n"
    "  --hex             annotated hexdump of header, extensions, feature table\n"
    "  --features        feature bits: group, bit, name, set, known\n"
    "\n"
    "Tables and data (any together):\n"
    "  --l1              active L1 table, one entry per line\n"
    "  --l2 INDEX|all    L2 table of L1 entry INDEX, or every L2 table\n"
    "  --refcounts       refcount table and refcount blocks\n"
    "  --nonzero         hide empty entries in the tables above\n"
    "  --unfold          one line per empty entry (default: one line per run)\n"
    "  --snapshots       internal snapshot table\n"
    "  --snapshot ID|NAME\n"
    "                    --read, --raw, --map, --l1, --l2: that internal snapshot's disk\n"
    "  --bitmaps         persistent bitmaps: directory and tables\n"
    "  --map             guest-to-host mapping (with --json: as qemu-img map\n"
    "                    --output=json)\n"
    "  --hexdump OFF LEN raw host bytes, as hexdump -C -s OFF -n LEN IMAGE\n"
    "  --read OFF LEN    guest bytes, as hexdump -C\n"
    "  --backing         let --read follow the backing file\n"
    "  --allow FILE      open FILE when the header names it as a backing or data\n"
    "                    file (by default only files inside the image's\n"
    "                    directory, named relatively, are opened)\n"
    "  --follow-header   open every file the header names, as QEMU does\n"
    "\n"
    "  --raw OUT         write the guest disk to OUT as a raw image\n"
    "                    (as qemu-img convert -O raw)\n"
    "  --force           with --raw: replace an existing OUT (never the image or\n"
    "                    a file it reads)\n"
    "  --hash [sha256|sha1|md5]\n"
    "                    the digest of the guest disk (as of qemu-img convert\n"
    "                    -O raw output), printed as sha256sum prints: HEX  IMAGE\n"
    "  --hash-map        JSON Lines: every cluster-sized guest block with its\n"
    "                    offset, length, host offset (or null) and sha256\n"
    "  --json            one JSON document (with any of the views above)\n"
    "  -U, --force-share no warning when another process holds the image for\n"
    "                    writing (without it: a warning on stderr that the\n"
    "                    metadata may be stale; the output is the same)\n"
    "  -h, --help        this text\n"
    "      --version     version\n"
    "\n"
    "Sizes and offsets: plain numbers, 0x hex, suffixes k M G T (1024) and\n"
    "b or s (512-byte sectors).\n";

#define PROG "qc-dump"

struct options {
    enum qc_header_view header;
    int nheader;
    bool json, nonzero, unfold, backing, force_share, force;
    bool l1, refcounts, snapshots, bitmaps, map;
    const char *snapshot;      /* --snapshot ID|NAME */
    bool l2, l2_all;
    uint64_t l2_index;
    bool hexdump, read;
    uint64_t hx_off, hx_len, rd_off, rd_len;
    const char *raw_out;
    const char *hash_alg;      /* --hash: the digest's name */
    bool hash_map;
    const char *image;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-dump: ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry 'qc-dump --help' for more information.\n");
    return 64;
}

static bool is_flag(const char *name)
{
    static const char *const flags[] = {
        "--version", "--legacy", "--exts", "--hex", "--features", "--json", "--l1",
        "--refcounts", "--nonzero", "--unfold", "--snapshots", "--bitmaps", "--map", "--backing",
        "--follow-header", "--force-share", "--force", "--hash-map",
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(name, flags[i]) == 0)
            return true;
    return false;
}

/* Parses argv.  Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
    bool only_images = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq;

        if (only_images || a[0] != '-' || a[1] == '\0') {
            if (o->image)
                return usage_error("more than one IMAGE ('%s')", a);
            o->image = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_images = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(a, "-U") == 0) {
            o->force_share = true;
            continue;
        }
        if (a[1] != '-')
            return usage_error("unknown option '%s'", a);
        eq = strchr(a, '=');
        if (eq) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof name)
                return usage_error("unknown option '%s'", a);
            memcpy(name, a, n);
            name[n] = '\0';
            val = eq + 1;
        } else {
            if (strlen(a) >= sizeof name)
                return usage_error("unknown option '%s'", a);
            strcpy(name, a);
        }
#define FLAG(opt) (strcmp(name, opt) == 0 && !val)
#define NEXT(dst) do { \
            if (val) { dst = val; val = NULL; } \
            else if (i + 1 < argc) dst = argv[++i]; \
            else return usage_error("option '%s' needs an argument", name); \
        } while (0)
        if (FLAG("--version")) {
            printf("qc-dump %s\n", QC_VERSION);
            return 0;
        } else if (FLAG("--legacy")) {
            o->header = QC_HV_LEGACY; o->nheader++;
        } else if (FLAG("--exts")) {
            o->header = QC_HV_EXTS; o->nheader++;
        } else if (FLAG("--hex")) {
            o->header = QC_HV_HEX; o->nheader++;
        } else if (FLAG("--features")) {
            o->header = QC_HV_FEATURES; o->nheader++;
        } else if (FLAG("--json")) {
            o->json = true;
        } else if (FLAG("--l1")) {
            o->l1 = true;
        } else if (FLAG("--refcounts")) {
            o->refcounts = true;
        } else if (FLAG("--nonzero")) {
            o->nonzero = true;
        } else if (FLAG("--unfold")) {
            o->unfold = true;
        } else if (FLAG("--snapshots")) {
            o->snapshots = true;
        } else if (FLAG("--bitmaps")) {
            o->bitmaps = true;
        } else if (FLAG("--map")) {
            o->map = true;
        } else if (FLAG("--backing")) {
            o->backing = true;
        } else if (FLAG("--force-share")) {
            o->force_share = true;
        } else if (FLAG("--force")) {
            o->force = true;
        } else if (strcmp(name, "--l2") == 0) {
            const char *v;
            NEXT(v);
            o->l2 = true;
            if (strcmp(v, "all") == 0)
                o->l2_all = true;
            else if (!qc_parse_size(v, &o->l2_index))
                return usage_error("invalid L1 index '%s' for --l2 (a number or 'all')", v);
        } else if (strcmp(name, "--hexdump") == 0 || strcmp(name, "--read") == 0) {
            bool hx = name[2] == 'h';
            const char *off, *len;
            uint64_t *po = hx ? &o->hx_off : &o->rd_off, *pl = hx ? &o->hx_len : &o->rd_len;
            NEXT(off);
            if (i + 1 >= argc)
                return usage_error("option '%s' needs OFF and LEN", name);
            len = argv[++i];
            if (!qc_parse_size(off, po))
                return usage_error(hx ? "invalid offset '%s' for --hexdump"
                                      : "invalid offset '%s' for --read", off);
            if (!qc_parse_size(len, pl))
                return usage_error(hx ? "invalid length '%s' for --hexdump"
                                      : "invalid length '%s' for --read", len);
            if (hx)
                o->hexdump = true;
            else
                o->read = true;
        } else if (FLAG("--follow-header")) {
            qc_follow_header(true);
        } else if (strcmp(name, "--allow") == 0) {
            const char *v;
            char err[600];
            NEXT(v);
            if (qc_follow_allow(v, err, sizeof err) < 0)
                return usage_error("%s", err);
        } else if (strcmp(name, "--snapshot") == 0) {
            NEXT(o->snapshot);
        } else if (FLAG("--hash-map")) {
            o->hash_map = true;
        } else if (strcmp(name, "--hash") == 0) {
            /* the digest's name is optional: --hash=NAME, or a known name next */
            if (!val && i + 1 < argc && qc_hash_algorithm(argv[i + 1]))
                val = argv[++i];
            o->hash_alg = val ? val : "sha256";
            val = NULL;
            if (!qc_hash_algorithm(o->hash_alg))
                return usage_error("unknown digest '%s' for --hash (sha256, sha1 or md5)",
                                   o->hash_alg);
        } else if (strcmp(name, "--raw") == 0) {
            NEXT(o->raw_out);
            if (!o->raw_out[0])
                return usage_error("%s", "empty file name for --raw");
        } else if (val && is_flag(name)) {
            return usage_error("option '%s' takes no argument", name);
        } else {
            return usage_error("unknown option '%s'", a);
        }
#undef FLAG
#undef NEXT
        if (val)
            return usage_error("option '%s' takes no argument", name);
    }
    if (!o->image)
        return usage_error("%s", "missing IMAGE");
    return -1;
}

static bool any_table(const struct options *o)
{
    return o->l1 || o->l2 || o->refcounts || o->snapshots || o->bitmaps || o->map ||
           o->hexdump || o->read;
}

/* --- guest views through the chain ---------------------------------------- */

/* The files the chain reads (image, data files, backing files): a raw
 * export must never be one of them. */
static void chain_protect(const struct qc_chain *c, struct qc_protect *prot)
{
    qc_protect_init(prot);
    for (const struct qc_node *n = c->top; n; n = n->backing) {
        qc_protect_add_fd(prot, n->file->fd, "a file the image reads");
        if (n->has_data_file)
            qc_protect_add_fd(prot, n->data_file.fd, "a file the image reads");
    }
}

static int do_raw(const struct options *o, struct json_object *doc)
{
    struct qc_protect prot;
    char msg[512];
    struct qc_chain c;
    enum qc_export_stage stage;
    uint64_t at = 0;
    int fd, r;

    /* guest bytes: an encrypted image is refused as QEMU refuses it keyless */
    if ((r = qc_view_open_chain(&c, o->image, QC_CHAIN_KEYLESS, stderr, PROG)) != 0)
        return r;
    chain_protect(&c, &prot);
    if (qc_protect_match(&prot, o->raw_out)) {
        fprintf(stderr, "qc-dump: %s: refusing to overwrite a file the image reads\n", qc_esc(o->raw_out));
        qc_chain_close(&c);
        return 1;
    }
    /* Locked as qemu-img convert locks its target: a disk a running QEMU
     * holds is refused, never replaced; no symlink at the name is followed. */
    fd = qc_sidefile_open(o->raw_out, &prot,
                          (o->force ? QC_SIDE_FORCE : 0) | QC_SIDE_LOCK | QC_SIDE_DEVICE,
                          msg, sizeof msg);
    if (fd < 0) {
        fprintf(stderr, "qc-dump: %s: %s\n", qc_esc(o->raw_out), msg);
        qc_chain_close(&c);
        return 1;
    }
    r = qc_guest_export_raw(&c, fd, &stage, &at);
    if (close(fd) < 0 && r == 0) {
        r = -errno;
        stage = QC_EXPORT_WRITE;
    }
    if (r < 0) {
        switch (stage) {
        case QC_EXPORT_STATUS:
            fprintf(stderr, "qc-dump: error while reading block status at offset %llu: %s\n",
                    (unsigned long long)at, strerror(EIO));
            break;
        case QC_EXPORT_READ:
            fprintf(stderr, "qc-dump: error while reading at byte %llu: %s\n",
                    (unsigned long long)at, r == -ENOTSUP ? "encrypted data" : strerror(EIO));
            break;
        default:
            fprintf(stderr, "qc-dump: %s: %s\n", qc_esc(o->raw_out), qc_strerror(r));
            break;
        }
    } else if (doc) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "output", json_object_new_string(o->raw_out));
        json_object_object_add(j, "size", qc_json_u64(c.top->length));
        json_object_object_add(doc, "raw", j);
    }
    qc_chain_close(&c);
    return r < 0 ? 1 : 0;
}

/* How a walk of the whole guest disk failed, as qemu-img convert says it. */
static void report_stream_error(int r, enum qc_export_stage stage, uint64_t at)
{
    if (stage == QC_EXPORT_STATUS)
        fprintf(stderr, "qc-dump: error while reading block status at offset %llu: %s\n",
                (unsigned long long)at, strerror(EIO));
    else if (stage == QC_EXPORT_READ)
        fprintf(stderr, "qc-dump: error while reading at byte %llu: %s\n",
                (unsigned long long)at, r == -ENOTSUP ? "encrypted data" : strerror(EIO));
    else
        fprintf(stderr, "qc-dump: %s\n", qc_strerror(r));
}

/* NAME as sha256sum prints it: a backslash first, and \\ \n \r escaped,
 * when it holds any of them. */
static void print_hash_name(const char *name)
{
    if (!strpbrk(name, "\\\n\r")) {
        fputs(name, stdout);
        return;
    }
    putchar('\\');
    for (const char *p = name; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", stdout);
        else if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else
            putchar(*p);
    }
}

/* The digest of the guest disk: "HEX  IMAGE", or DOC's "hash" section. */
static int do_hash(const struct options *o, struct json_object *doc)
{
    unsigned char digest[QC_HASH_MAX];
    char hex[2 * QC_HASH_MAX + 1];
    enum qc_export_stage stage;
    struct qc_chain c;
    unsigned n = 0;
    uint64_t at = 0;
    int r;

    /* guest bytes: the same refusals as --raw */
    if ((r = qc_view_open_chain(&c, o->image, QC_CHAIN_KEYLESS, stderr, PROG)) != 0)
        return r;
    r = qc_guest_hash(&c, qc_hash_algorithm(o->hash_alg), digest, &n, &stage, &at);
    qc_chain_close(&c);
    if (r < 0) {
        report_stream_error(r, stage, at);
        return 1;
    }
    qc_hash_hex(digest, n, hex);
    if (doc) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "algorithm", json_object_new_string(o->hash_alg));
        json_object_object_add(j, "value", json_object_new_string(hex));
        json_object_object_add(doc, "hash", j);
        return 0;
    }
    printf("%s  ", hex);
    print_hash_name(o->image);
    putchar('\n');
    return 0;
}

static int print_hash_block(void *ctx, const struct qc_hash_block *b)
{
    char hex[65];

    (void)ctx;
    qc_hash_hex(b->sha256, 32, hex);
    printf("{\"offset\": %llu, \"length\": %llu, \"host\": ",
           (unsigned long long)b->offset, (unsigned long long)b->length);
    if (b->has_host)
        printf("%llu", (unsigned long long)b->host);
    else
        fputs("null", stdout);
    printf(", \"sha256\": \"%s\"}\n", hex);
    return ferror(stdout) ? -EIO : 0;
}

/* One JSON line per cluster-sized guest block. */
static int do_hash_map(const struct options *o)
{
    enum qc_export_stage stage;
    struct qc_chain c;
    uint64_t at = 0;
    int r;

    if ((r = qc_view_open_chain(&c, o->image, QC_CHAIN_KEYLESS, stderr, PROG)) != 0)
        return r;
    r = qc_guest_hash_map(&c, print_hash_block, NULL, &stage, &at);
    qc_chain_close(&c);
    if (fflush(stdout) != 0 && r == 0)
        r = -EIO;
    if (r < 0) {
        report_stream_error(r, stage, at);
        return 1;
    }
    return 0;
}

/* Guest bytes of the top image, as hexdump -C of a raw export would show. */
static int do_read(const struct options *o, struct json_object *doc)
{
    char *hex = NULL;
    size_t hexlen = 0;
    FILE *out = stdout;
    int r;

    if (doc && !(out = open_memstream(&hex, &hexlen)))
        return 1;
    r = qc_view_read_cmd(out, stderr, PROG, o->image, o->rd_off, o->rd_len, o->backing, !doc);
    if (doc) {
        fclose(out);
        if (r == 0) {
            struct json_object *j = json_object_new_object();
            json_object_object_add(j, "offset", qc_json_u64(o->rd_off));
            json_object_object_add(j, "length", qc_json_u64(o->rd_len));
            json_object_object_add(j, "backing", json_object_new_boolean(o->backing));
            json_object_object_add(j, "hexdump", json_object_new_string(hex ? hex : ""));
            json_object_object_add(doc, "read", j);
        }
        free(hex);
    }
    return r;
}

static int do_map(const struct options *o, struct json_object *doc, bool qemu_json)
{
    struct json_object *arr = NULL;
    struct qc_chain c;
    uint64_t at = 0;
    int r;

    if (!doc)
        return qc_view_map_cmd(stdout, stderr, PROG, o->image, qemu_json);
    if ((r = qc_view_open_chain(&c, o->image, 0, stderr, PROG)) != 0)
        return r;
    if (qc_chain_encrypted(&c))
        qc_view_note_keyless(stderr, PROG, o->image, "mapped");
    r = qc_json_map(&c, &arr, &at);
    if (r >= 0)
        json_object_object_add(doc, "map", arr);
    else
        json_object_put(arr);
    qc_chain_close(&c);
    return r < 0 ? qc_view_map_failed(stdout, stderr, PROG) : 0;
}

/* --- host bytes ------------------------------------------------------------ */

static int do_hexdump(const struct options *o, struct qc_image *img, struct json_object *doc)
{
    char *hex = NULL;
    size_t hexlen = 0;
    FILE *out = stdout;
    int r;

    if (doc && !(out = open_memstream(&hex, &hexlen)))
        return 1;
    r = qc_view_hexdump_cmd(out, stderr, PROG, img, o->image, o->hx_off, o->hx_len);
    if (doc) {
        fclose(out);
        if (r == 0) {
            struct json_object *j = json_object_new_object();
            json_object_object_add(j, "offset", qc_json_u64(o->hx_off));
            json_object_object_add(j, "length", qc_json_u64(o->hx_len));
            json_object_object_add(j, "hexdump", json_object_new_string(hex ? hex : ""));
            json_object_object_add(doc, "hexdump", j);
        }
        free(hex);
    }
    return r;
}

/* --- main ------------------------------------------------------------------ */

static unsigned table_flags(const struct options *o)
{
    return (o->nonzero ? QC_TV_NONZERO : 0) | (o->unfold ? QC_TV_UNFOLD : 0);
}

/* Writes the members of the small document PART (a view built whole). */
static void write_members(struct qc_jw *w, struct json_object *part)
{
    json_object_object_foreach(part, key, val)
        qc_jw_value(w, key, val);
}

/* A blank line between views. */
static void separate(bool *first)
{
    if (!*first)
        putchar('\n');
    *first = false;
}

/* The table views as text, one after another. */
/* --snapshot with --l1/--l2: IMG's L1 table becomes the snapshot's (after
 * the header has been shown); 0, or 1 after qemu-img's message. */
static int select_snapshot(const struct options *o, struct qc_image *img)
{
    char *msg = NULL;

    if (!o->snapshot || !(o->l1 || o->l2) || qc_image_select_snapshot(img, o->snapshot, &msg) == 0)
        return 0;
    fprintf(stderr, "qc-dump: Failed to load snapshot: %s\n", qc_esc_qemu(msg ? msg : "error"));
    free(msg);
    return 1;
}

static int table_views_text(const struct options *o, struct qc_image *img)
{
    unsigned fl = table_flags(o);
    int rc = 0, r;
    bool first = true;

    if (select_snapshot(o, img))
        return 1;

    if (o->l1) {
        separate(&first);
        rc |= qc_view_l1(stdout, img, fl);
    }
    if (o->l2) {
        separate(&first);
        rc |= qc_view_l2(stdout, img, o->l2_all, o->l2_index, fl);
    }
    if (o->refcounts) {
        separate(&first);
        rc |= qc_view_refcounts(stdout, img, fl);
    }
    if (o->snapshots) {
        separate(&first);
        rc |= qc_view_snapshots(stdout, img);
    }
    if (o->bitmaps) {
        separate(&first);
        rc |= qc_view_bitmaps(stdout, img, fl);
    }
    if (o->map) {
        separate(&first);
        fflush(stdout);
        if ((r = do_map(o, NULL, false)) != 0)
            return r;
    }
    if (o->hexdump) {
        separate(&first);
        if ((r = do_hexdump(o, img, NULL)) != 0)
            return r;
    }
    if (o->read) {
        separate(&first);
        fflush(stdout);
        if ((r = do_read(o, NULL)) != 0)
            return r;
    }
    return rc;
}

/* Map, hexdump and read as JSON members: each is built whole (their size
 * is the request's, not a table's), then written. */
static int guest_views_json(const struct options *o, struct qc_image *img, struct qc_jw *w)
{
    int r = 0;

    for (int v = 0; v < 3 && r == 0; v++) {
        struct json_object *part;
        if (!(v == 0 ? o->map : v == 1 ? o->hexdump : o->read))
            continue;
        part = json_object_new_object();
        fflush(stdout);
        r = v == 0 ? do_map(o, part, false) : v == 1 ? do_hexdump(o, img, part) : do_read(o, part);
        write_members(w, part);
        json_object_put(part);
    }
    return r;
}

/* The JSON document, streamed: the header sections, then each view
 * requested.  A section that could not be shown makes the exit status 1,
 * as its text view does. */
static int json_doc(const struct options *o, struct qc_image *img)
{
    unsigned fl = table_flags(o);
    struct json_object *head;
    struct qc_jw w;
    int rc = 0, r;

    head = qc_json_image_doc(img, o->image, &rc);
    if (select_snapshot(o, img)) {
        json_object_put(head);
        return 1;
    }
    qc_jw_init(&w, stdout);
    qc_jw_begin_object(&w, NULL);
    write_members(&w, head);
    json_object_put(head);
    if (o->l1 && qc_json_l1(&w, "l1", img, fl))
        rc = 1;
    if (o->l2 && qc_json_l2(&w, "l2", img, o->l2_all, o->l2_index, fl))
        rc = 1;
    if (o->refcounts && qc_json_refcounts(&w, "refcounts", img, fl))
        rc = 1;
    if (o->snapshots && qc_json_snapshots(&w, "snapshots", img))
        rc = 1;
    if (o->bitmaps && qc_json_bitmaps(&w, "bitmaps", img, fl))
        rc = 1;
    r = guest_views_json(o, img, &w);
    qc_jw_finish(&w);
    if (rc && !any_table(o))
        qc_view_header_incomplete(stderr, PROG, o->image, img);
    return r ? r : rc;
}

int main(int argc, char **argv)
{
    struct options o;
    struct qc_image img;
    struct json_object *doc = NULL;
    int r, rc = 0;

    memset(&o, 0, sizeof o);
    if ((r = parse_args(argc, argv, &o)) >= 0)
        return r;
    if (o.nheader > 1)
        return usage_error("%s", "choose one of --legacy, --exts, --hex, --features");
    if (o.nheader && (any_table(&o) || o.raw_out))
        return usage_error("%s", "header views do not combine with other views");
    if (o.raw_out && any_table(&o))
        return usage_error("%s", "--raw does not combine with other views");
    if (o.snapshot && !o.read && !o.raw_out && !o.map && !o.l1 && !o.l2 && !o.hash_alg &&
        !o.hash_map)
        return usage_error("%s", "--snapshot needs --read, --raw, --map, --l1, --l2, --hash or --hash-map");
    if (o.hash_alg && (o.nheader || any_table(&o) || o.raw_out || o.hash_map))
        return usage_error("%s", "--hash does not combine with other views");
    if (o.hash_map && (o.nheader || any_table(&o) || o.raw_out || o.json))
        return usage_error("%s", "--hash-map (JSON Lines) does not combine with other views or --json");

    qc_view_set_snapshot(o.snapshot);
    if (!o.force_share)
        qc_warn_live_writer(stderr, PROG, o.image);
    /* the qemu-img map text, streamed */
    if (o.map && o.json && !o.l1 && !o.l2 && !o.refcounts && !o.snapshots && !o.bitmaps &&
        !o.hexdump && !o.read)
        return do_map(&o, NULL, true);
    if (o.raw_out && !o.json)
        return do_raw(&o, NULL);
    if (o.hash_alg && !o.json)
        return do_hash(&o, NULL);
    if (o.hash_map)
        return do_hash_map(&o);

    r = qc_image_open(&img, o.image, 0, QC_VALIDATE_OPEN, NULL);
    if (r < 0 && r != QC_E_FORMAT) {
        fprintf(stderr, "qc-dump: %s: %s\n", qc_esc(o.image), qc_strerror(r));
        return 1;
    }
    if (r == QC_E_FORMAT) {
        /* qcow2.py dumps any file; so do the qcow2.py views, then say so */
        if (!o.json && !any_table(&o) && !o.raw_out &&
            (o.header == QC_HV_HEADER || o.header == QC_HV_LEGACY || o.header == QC_HV_EXTS)) {
            if (o.header == QC_HV_EXTS)
                qc_view_exts(stdout, &img, QC_ERA_CURRENT);
            else
                qc_view_header(stdout, &img, o.header == QC_HV_LEGACY ? QC_ERA_LEGACY : QC_ERA_CURRENT);
            fflush(stdout);
        } else if (!o.json && o.hexdump && !o.map && !o.read && !o.l1 && !o.l2 &&
                   !o.refcounts && !o.snapshots && !o.bitmaps) {
            /* host bytes can be shown for any file */
            do_hexdump(&o, &img, NULL);
            fflush(stdout);
        }
        fprintf(stderr, "qc-dump: %s: not a qcow2 image (bad magic)\n", qc_esc(o.image));
        qc_image_close(&img);
        return 63;
    }

    if (o.json && (o.raw_out || o.hash_alg)) {
        doc = qc_json_image_doc(&img, o.image, &rc);
        r = o.raw_out ? do_raw(&o, doc) : do_hash(&o, doc);
        if (r == 0)
            qc_json_print(stdout, doc);
        rc = r ? r : rc;
        json_object_put(doc);
    } else if (o.json) {
        rc = json_doc(&o, &img);
    } else if (any_table(&o)) {
        rc = table_views_text(&o, &img);
    } else {
        rc = qc_view_header_as(stdout, &img, o.header);
        fflush(stdout);
        if (rc)
            qc_view_header_incomplete(stderr, PROG, o.image, &img);
    }
    fflush(stdout);
    if (!any_table(&o) && !o.raw_out && !o.hash_alg)
        qc_view_open_warnings(stderr, PROG, &img);
    qc_image_close(&img);
    return rc;
}
