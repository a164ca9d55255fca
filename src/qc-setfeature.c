/* qc-setfeature: flip feature bits, set header fields, add and delete
 * header extensions, like tune2fs does for ext4. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_edit.h"
#include "qc_image.h"
#include "qc_util.h"
#include "qc_version.h"

#define EXIT_USAGE 64
#define EXIT_NOT_QCOW2 63

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

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-setfeature: ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry 'qc-setfeature --help' for more information.\n");
    return EXIT_USAGE;
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
    struct qc_edit_run_opts ro = { 0 };
    bool list = false;
    struct qc_edit_request *reqs;
    size_t nreqs = 0;
    struct qc_image img;
    struct qc_backing_locks bl = { .n = 0 };
    char lock_msg[600];
    const char *path, *lock_why = NULL;
    char msg[512];
    int c, r, rc = 0;

    reqs = calloc((size_t)argc, sizeof *reqs);   /* one request per argument at most */
    if (!reqs)
        return 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        enum qc_edit_req_kind kind;

        switch (c) {
        case O_CLEAR: ro.clear = true; continue;
        case O_FORCE: ro.force = true; continue;
        case O_DRY_RUN: ro.dry_run = true; continue;
        case O_LIST: list = true; continue;
        case 'v': ro.verbose = true; continue;
        case 'h': fputs(usage_text, stdout); free(reqs); return 0;
        case O_VERSION: printf("qc-setfeature %s\n", QC_VERSION); free(reqs); return 0;
        case O_SET_HEADER: kind = QC_REQ_SET_HEADER; break;
        case O_ADD_EXT: kind = QC_REQ_ADD_EXT; break;
        case O_ADD_EXT_FILE: kind = QC_REQ_ADD_EXT_FILE; break;
        case O_DEL_EXT: kind = QC_REQ_DEL_EXT; break;
        default:
            rc = usage_error("unknown option '%s'", argv[optind - 1]);
            goto out;
        }
        r = qc_edit_request_parse(&reqs[nreqs], kind, optarg, msg, sizeof msg);
        nreqs++;
        if (r) {
            rc = r == EXIT_USAGE ? usage_error("%s", msg)
                                 : (fprintf(stderr, "qc-setfeature: %s\n", msg), r);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = usage_error("%s", "missing IMAGE");
        goto out;
    }
    path = argv[optind++];
    for (; optind < argc; optind++) {
        r = qc_edit_request_parse(&reqs[nreqs], QC_REQ_FEATURE, argv[optind], msg, sizeof msg);
        nreqs++;
        if (r) {
            rc = usage_error("%s", msg);
            goto out;
        }
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

    r = qc_image_open(&img, path,
                      list || ro.dry_run ? 0 : QC_OPEN_WRITE | (ro.force ? QC_OPEN_FORCE : 0),
                      QC_VALIDATE_OPEN, &lock_why);
    if (r == QC_E_LOCKED) {
        fprintf(stderr, "qc-setfeature: %s: Failed to get %s lock\n"
                "Is another process using the image [%s]? (--force overrides)\n",
                qc_esc_qemu(path), lock_why ? lock_why : "\"write\"", qc_esc_qemu(path));
        rc = 1;
        goto out;
    }
    if (r == QC_E_FORMAT) {
        fprintf(stderr, "qc-setfeature: %s: not a qcow2 image (bad magic)\n", qc_esc(path));
        qc_image_close(&img);
        rc = EXIT_NOT_QCOW2;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "qc-setfeature: %s: %s\n", qc_esc(path), qc_strerror(r));
        rc = 1;
        goto out;
    }
    /* a writer holds its backing chain, as qemu-img amend does */
    if (!list && !ro.dry_run &&
        qc_backing_locks_take(path, ro.force, &bl, lock_msg, sizeof lock_msg) < 0) {
        fprintf(stderr, "qc-setfeature: %s: %s (--force overrides)\n", qc_esc(path), lock_msg);
        qc_image_close(&img);
        rc = 1;
        goto out;
    }
    if (list)
        qc_view_feature_list(stdout, &img);
    else
        rc = qc_edit_run(stdout, stderr, "qc-setfeature", &img, path, reqs, nreqs, &ro);
    qc_backing_locks_release(&bl);
    qc_image_close(&img);
out:
    for (size_t i = 0; i < nreqs; i++)
        qc_edit_request_free(&reqs[i]);
    free(reqs);
    return rc;
}
