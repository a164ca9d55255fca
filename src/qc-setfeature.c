/* qc-setfeature: flip feature bits, set header fields, add and delete
 * header extensions, like tune2fs does for ext4. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_edit.h"
#include "qc_image.h"
#include "qc_util.h"
#include "qc_version.h"

#define EXIT_USAGE 64
#define EXIT_NOT_QCOW2 63
/* An extension payload can never be larger than the largest header cluster. */
#define MAX_EXT_DATA (2u << 20)

static const char usage_text[] =
    "Usage: qc-setfeature [--clear] [--force] [--dry-run] IMAGE FEATURE...\n"
    "       qc-setfeature [--force] [--dry-run] IMAGE --set-header FIELD=VALUE\n"
    "       qc-setfeature [--force] [--dry-run] IMAGE --add-ext MAGIC=DATA\n"
    "       qc-setfeature [--force] [--dry-run] IMAGE --add-ext-file MAGIC=FILE\n"
    "       qc-setfeature [--force] [--dry-run] IMAGE --del-ext MAGIC\n"
    "       qc-setfeature --list IMAGE\n"
    "\n"
    "Sets (or with --clear clears) feature bits in a qcow2 header, sets header\n"
    "fields and adds or deletes header extensions, writing the bytes qemu-iotests'\n"
    "qcow2.py writes for the same request.\n"
    "\n"
    "FEATURE is GROUP:BIT (incompatible, compatible or autoclear; BIT 0-63) or a\n"
    "name: dirty, corrupt, external_data_file, compression_type, extended_l2,\n"
    "lazy_refcounts, bitmaps, raw_external_data.\n"
    "\n"
    "  --clear                 clear the FEATUREs instead of setting them\n"
    "  --set-header FIELD=VALUE  set a header field (qcow2.py names, e.g. size,\n"
    "                          header_length, snapshot_offset, compression_type)\n"
    "  --add-ext MAGIC=DATA    append a header extension with DATA as payload\n"
    "  --add-ext-file MAGIC=FILE  the same with the bytes of FILE ('-': stdin)\n"
    "  --del-ext MAGIC         delete every header extension with MAGIC\n"
    "  --list                  show the feature bits of IMAGE and their names\n"
    "  --dry-run               show the bytes that would change; change nothing\n"
    "  --force                 do it despite a guard, and despite image locks\n"
    "  -v, --verbose           say what changed\n"
    "  -h, --help              this text\n"
    "      --version           version\n";

enum req_kind { R_SET_HEADER, R_ADD_EXT, R_ADD_EXT_FILE, R_DEL_EXT, R_FEATURE };

struct request {
    enum req_kind kind;
    const char *arg;
    enum qc_header_field field;
    uint64_t value;
    uint32_t magic;
    enum qc_feature_group group;
    unsigned bit;
    uint8_t *data;
    size_t len;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-setfeature: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'qc-setfeature --help' for more information.\n");
    return EXIT_USAGE;
}

/* python's int(x, 0), or a size with a qemu suffix */
static bool parse_number(const char *s, uint64_t *v)
{
    bool neg;
    if (qc_parse_pyint(s, v, &neg))
        return !neg || *v == 0;
    return qc_parse_size(s, v);
}

static bool parse_magic(const char *s, uint32_t *magic)
{
    uint64_t v;
    bool neg;
    if (!qc_parse_pyint(s, &v, &neg) || (neg && v) || v > UINT32_MAX)
        return false;
    *magic = (uint32_t)v;
    return true;
}

/* "MAGIC=REST": the magic, and REST in *rest */
static bool split_magic(char *arg, uint32_t *magic, const char **rest)
{
    char *eq = strchr(arg, '=');
    bool ok;
    if (!eq)
        return false;
    *eq = '\0';
    ok = parse_magic(arg, magic);
    *eq = '=';
    *rest = eq + 1;
    return ok;
}

static bool parse_feature(const char *s, enum qc_feature_group *g, unsigned *bit)
{
    const char *colon = strchr(s, ':');
    char group[16];
    uint64_t v;
    bool neg;
    int gi;

    if (!colon)
        return qc_feature_lookup(s, g, bit);
    if ((size_t)(colon - s) >= sizeof group)
        return false;
    memcpy(group, s, (size_t)(colon - s));
    group[colon - s] = '\0';
    if ((gi = qc_feature_group_parse(group)) < 0)
        return false;
    if (!qc_parse_pyint(colon + 1, &v, &neg) || (neg && v) || v > 63)
        return false;
    *g = (enum qc_feature_group)gi;
    *bit = (unsigned)v;
    return true;
}

/* Reads all of PATH ('-': stdin), at most MAX_EXT_DATA bytes. */
static int read_data_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    uint8_t *buf;
    size_t n = 0;

    if (!f)
        return -errno;
    buf = malloc(MAX_EXT_DATA + 1);
    if (!buf) {
        if (f != stdin)
            fclose(f);
        return QC_E_NOMEM;
    }
    while (n <= MAX_EXT_DATA) {
        size_t k = fread(buf + n, 1, MAX_EXT_DATA + 1 - n, f);
        if (k == 0)
            break;
        n += k;
    }
    if (ferror(f) || n > MAX_EXT_DATA) {
        int e = ferror(f) ? -EIO : -EFBIG;
        if (f != stdin)
            fclose(f);
        free(buf);
        return e;
    }
    if (f != stdin)
        fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

static void print_list(const struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    const uint64_t masks[QC_FG_COUNT] = {
        h->incompatible_features, h->compatible_features, h->autoclear_features
    };

    if (h->version < 3)
        printf("version %u image: no feature bits (they came with version 3)\n", h->version);
    printf("%-20s %-16s %-5s %s\n", "feature", "bit", "state", "QEMU's name");
    for (int g = 0; g < QC_FG_COUNT; g++) {
        for (unsigned b = 0; b < 64; b++) {
            const char *shortname = qc_feature_short_name((enum qc_feature_group)g, b);
            const char *name = qc_image_feature_name(img, (enum qc_feature_group)g, b);
            char where[24];
            bool set = masks[g] & (1ull << b);
            if (!shortname && !set && !qc_feature_table_name(&img->features, (enum qc_feature_group)g, b))
                continue;
            snprintf(where, sizeof where, "%s:%u", qc_feature_group_name((enum qc_feature_group)g), b);
            printf("%-20s %-16s %-5s %s\n", shortname ? shortname : "-", where,
                   set ? "set" : "clear", name ? name : "(unknown)");
        }
    }
}

static int apply(struct qc_edit *e, const char *path, struct request *r, bool clear)
{
    switch (r->kind) {
    case R_SET_HEADER:
        return qc_edit_set_field(e, r->field, r->value);
    case R_ADD_EXT:
    case R_ADD_EXT_FILE:
        return qc_edit_add_ext(e, r->magic, r->data, r->len);
    case R_DEL_EXT:
        if (qc_edit_del_ext(e, r->magic) == 0)
            fprintf(stderr, "qc-setfeature: %s: no header extension %#" PRIx32 " to delete\n",
                    path, r->magic);
        return 0;
    case R_FEATURE:
        return qc_edit_feature(e, r->group, r->bit, !clear);
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_CLEAR = 256, O_FORCE, O_DRY_RUN, O_LIST, O_SET_HEADER, O_ADD_EXT,
           O_ADD_EXT_FILE, O_DEL_EXT, O_VERSION };
    static const struct option opts[] = {
        { "clear", no_argument, NULL, O_CLEAR },
        { "force", no_argument, NULL, O_FORCE },
        { "dry-run", no_argument, NULL, O_DRY_RUN },
        { "list", no_argument, NULL, O_LIST },
        { "set-header", required_argument, NULL, O_SET_HEADER },
        { "add-ext", required_argument, NULL, O_ADD_EXT },
        { "add-ext-file", required_argument, NULL, O_ADD_EXT_FILE },
        { "del-ext", required_argument, NULL, O_DEL_EXT },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 }
    };
    bool clear = false, force = false, dry_run = false, list = false, verbose = false;
    struct request *reqs;
    size_t nreqs = 0;
    struct qc_image img;
    struct qc_edit edit;
    const char *path, *lock_why = NULL;
    int c, r, rc = 0;

    reqs = calloc((size_t)argc, sizeof *reqs);   /* one request per argument at most */
    if (!reqs)
        return 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        struct request *q = &reqs[nreqs];
        const char *rest;
        char *eq;

        switch (c) {
        case O_CLEAR: clear = true; break;
        case O_FORCE: force = true; break;
        case O_DRY_RUN: dry_run = true; break;
        case O_LIST: list = true; break;
        case 'v': verbose = true; break;
        case 'h': fputs(usage_text, stdout); free(reqs); return 0;
        case O_VERSION: printf("qc-setfeature %s\n", QC_VERSION); free(reqs); return 0;
        case O_SET_HEADER:
            q->kind = R_SET_HEADER;
            q->arg = optarg;
            if (!(eq = strchr(optarg, '='))) {
                rc = usage_error("--set-header takes FIELD=VALUE, not '%s'", optarg);
                goto out;
            }
            *eq = '\0';
            q->field = qc_header_field_lookup(optarg);
            *eq = '=';
            if (q->field == QC_HF_COUNT) {
                rc = usage_error("'%s' is not a known header field", optarg);
                goto out;
            }
            if (!parse_number(eq + 1, &q->value)) {
                rc = usage_error("'%s' is not a valid number", eq + 1);
                goto out;
            }
            if (qc_header_field_info(q->field)->size < 8 &&
                q->value >> (8 * qc_header_field_info(q->field)->size)) {
                rc = usage_error("'%s': the value does not fit the field", optarg);
                goto out;
            }
            nreqs++;
            break;
        case O_ADD_EXT:
        case O_ADD_EXT_FILE:
            q->kind = c == O_ADD_EXT ? R_ADD_EXT : R_ADD_EXT_FILE;
            q->arg = optarg;
            if (!split_magic(optarg, &q->magic, &rest)) {
                rc = usage_error(c == O_ADD_EXT ? "--add-ext takes MAGIC=DATA with a 32-bit "
                                 "MAGIC, not '%s'" : "--add-ext-file takes MAGIC=FILE with a "
                                 "32-bit MAGIC, not '%s'", optarg);
                goto out;
            }
            if (c == O_ADD_EXT) {
                q->data = (uint8_t *)strdup(rest);
                q->len = strlen(rest);
                if (!q->data) {
                    rc = 1;
                    goto out;
                }
            } else if ((r = read_data_file(rest, &q->data, &q->len)) < 0) {
                fprintf(stderr, "qc-setfeature: %s: %s\n", rest,
                        r == -EFBIG ? "larger than the largest header cluster (2 MiB)" : qc_strerror(r));
                rc = 1;
                goto out;
            }
            nreqs++;
            break;
        case O_DEL_EXT:
            q->kind = R_DEL_EXT;
            q->arg = optarg;
            if (!parse_magic(optarg, &q->magic)) {
                rc = usage_error("'%s' is not a valid magic number", optarg);
                goto out;
            }
            nreqs++;
            break;
        default:
            rc = usage_error("unknown option '%s'", argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = usage_error("%s", "missing IMAGE");
        goto out;
    }
    path = argv[optind++];
    for (; optind < argc; optind++) {
        struct request *q = &reqs[nreqs];
        q->kind = R_FEATURE;
        q->arg = argv[optind];
        if (!parse_feature(argv[optind], &q->group, &q->bit)) {
            rc = usage_error("'%s' is not a feature: use GROUP:BIT (incompatible, compatible, "
                             "autoclear; BIT 0-63) or a name from --list", argv[optind]);
            goto out;
        }
        nreqs++;
    }
    if (list && nreqs) {
        rc = usage_error("%s", "--list takes only IMAGE");
        goto out;
    }
    if (!list && !nreqs) {
        rc = usage_error("%s", "nothing to do: give a FEATURE, --set-header, --add-ext, "
                         "--add-ext-file or --del-ext");
        goto out;
    }

    r = qc_image_open(&img, path, list || dry_run ? 0 : QC_OPEN_WRITE | (force ? QC_OPEN_FORCE : 0),
                      QC_VALIDATE_OPEN, &lock_why);
    if (r == QC_E_LOCKED) {
        fprintf(stderr, "qc-setfeature: %s: Failed to get \"%s\" lock\n"
                "Is another process using the image [%s]? (--force overrides)\n",
                path, lock_why ? lock_why : "write", path);
        rc = 1;
        goto out;
    }
    if (r == QC_E_FORMAT) {
        fprintf(stderr, "qc-setfeature: %s: not a qcow2 image (bad magic)\n", path);
        qc_image_close(&img);
        rc = EXIT_NOT_QCOW2;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "qc-setfeature: %s: %s\n", path, qc_strerror(r));
        rc = 1;
        goto out;
    }
    if (list) {
        print_list(&img);
        qc_image_close(&img);
        goto out;
    }

    if (qc_edit_init(&edit, &img) < 0) {
        fprintf(stderr, "qc-setfeature: %s: %s\n", path, edit.error);
        rc = 1;
        goto close;
    }
    for (size_t i = 0; i < nreqs; i++) {
        if (apply(&edit, path, &reqs[i], clear) < 0) {
            fprintf(stderr, "qc-setfeature: %s: %s: %s\n", path, reqs[i].arg, edit.error);
            rc = 1;
            goto close;
        }
    }
    if (qc_edit_plan(&edit) < 0) {
        fprintf(stderr, "qc-setfeature: %s: %s\n", path, edit.error);
        rc = 1;
        goto close;
    }
    for (size_t i = 0; i < edit.nguards; i++)
        fprintf(stderr, "qc-setfeature: %s%s: %s\n", force ? "warning: " : "", path,
                edit.guards[i].message);
    if (edit.nguards && !force) {
        fprintf(stderr, "qc-setfeature: %s: nothing changed (--force overrides)\n", path);
        rc = 1;
        goto close;
    }
    if (edit.note)
        fprintf(stderr, "qc-setfeature: %s: %s\n", path, edit.note);
    if (edit.qemu_refusal) {
        bool told = false;
        for (size_t i = 0; i < edit.nguards; i++)
            told |= edit.guards[i].kind == QC_GUARD_INCOMPAT_SET;
        if (!told)
            fprintf(stderr, "qc-setfeature: warning: %s: QEMU will refuse to open the image: %s\n",
                    path, edit.qemu_refusal);
    }
    if (dry_run) {
        qc_edit_print_summary(stdout, &edit);
        qc_edit_print_diff(stdout, &edit);
        printf("dry run: nothing written\n");
        goto close;
    }
    if ((r = qc_edit_write(&edit, &img.file)) < 0) {
        fprintf(stderr, "qc-setfeature: %s: write failed: %s\n", path, qc_strerror(r));
        rc = 1;
        goto close;
    }
    if (verbose)
        qc_edit_print_summary(stdout, &edit);

close:
    qc_edit_free(&edit);
    qc_image_close(&img);
out:
    for (size_t i = 0; i < nreqs; i++)
        free(reqs[i].data);
    free(reqs);
    return rc;
}
