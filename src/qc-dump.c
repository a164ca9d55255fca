/* qc-dump: look at a qcow2 image, never touch it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_image.h"
#include "qc_util.h"
#include "qc_view.h"
#include "qc_version.h"

static const char usage_text[] =
    "Usage: qc-dump [OPTIONS] IMAGE\n"
    "\n"
    "Shows a qcow2 image without changing it.  With no option: the header and\n"
    "header extensions, as qemu-iotests' qcow2.py dump-header prints them.\n"
    "\n"
    "  --legacy          header in the 2012 qcow2.py format\n"
    "  --exts            header extensions only (qcow2.py dump-header-exts)\n"
    "  --hex             annotated hexdump of header, extensions, feature table\n"
    "  --features        feature bits: group, bit, name, set, known\n"
    "  --json            one JSON document (with any of the views above)\n"
    "  -h, --help        this text\n"
    "      --version     version\n";

enum view { V_HEADER, V_LEGACY, V_EXTS, V_HEX, V_FEATURES };

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-dump: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'qc-dump --help' for more information.\n");
    return 64;
}

int main(int argc, char **argv)
{
    enum { O_LEGACY = 256, O_EXTS, O_HEX, O_FEATURES, O_JSON, O_VERSION };
    static const struct option opts[] = {
        { "legacy", no_argument, NULL, O_LEGACY },
        { "exts", no_argument, NULL, O_EXTS },
        { "hex", no_argument, NULL, O_HEX },
        { "features", no_argument, NULL, O_FEATURES },
        { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 }
    };
    enum view view = V_HEADER;
    int nviews = 0;
    bool json = false;
    struct qc_image img;
    const char *path;
    int c, r, rc = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_LEGACY: view = V_LEGACY; nviews++; break;
        case O_EXTS: view = V_EXTS; nviews++; break;
        case O_HEX: view = V_HEX; nviews++; break;
        case O_FEATURES: view = V_FEATURES; nviews++; break;
        case O_JSON: json = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("qc-dump %s\n", QC_VERSION); return 0;
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (nviews > 1)
        return usage_error("%s", "choose one view");
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "missing IMAGE" : "more than one IMAGE");
    path = argv[optind];

    r = qc_image_open(&img, path, 0, QC_VALIDATE_OPEN, NULL);
    if (r < 0 && r != QC_E_FORMAT) {
        fprintf(stderr, "qc-dump: %s: %s\n", path, qc_strerror(r));
        return 1;
    }
    if (r == QC_E_FORMAT) {
        /* qcow2.py dumps any file; so do the qcow2.py views, then say so */
        if (!json && (view == V_HEADER || view == V_LEGACY || view == V_EXTS)) {
            if (view == V_EXTS)
                qc_view_exts(stdout, &img, QC_ERA_CURRENT);
            else
                qc_view_header(stdout, &img, view == V_LEGACY ? QC_ERA_LEGACY : QC_ERA_CURRENT);
            fflush(stdout);
        }
        fprintf(stderr, "qc-dump: %s: not a qcow2 image (bad magic)\n", path);
        qc_image_close(&img);
        return 63;
    }

    if (json) {
        struct json_object *doc = json_object_new_object();
        json_object_object_add(doc, "filename", json_object_new_string(path));
        json_object_object_add(doc, "header", qc_json_header(&img));
        json_object_object_add(doc, "extensions", qc_json_extensions(&img));
        json_object_object_add(doc, "feature_table", qc_json_feature_table(&img));
        json_object_object_add(doc, "features", qc_json_features(&img));
        json_object_object_add(doc, "problems", qc_json_problems(&img.problems));
        qc_json_print(stdout, doc);
        json_object_put(doc);
        rc = img.exts.status != QC_EXT_OK || img.hdr.avail < QC_HEADER_V2_LEN ? 1 : 0;
    } else {
        switch (view) {
        case V_HEADER: rc = qc_view_header(stdout, &img, QC_ERA_CURRENT); break;
        case V_LEGACY: rc = qc_view_header(stdout, &img, QC_ERA_LEGACY); break;
        case V_EXTS: rc = qc_view_exts(stdout, &img, QC_ERA_CURRENT); break;
        case V_HEX: rc = qc_view_hex(stdout, &img); break;
        case V_FEATURES: rc = qc_view_features(stdout, &img); break;
        }
    }
    fflush(stdout);
    if (rc)
        fprintf(stderr, "qc-dump: %s: the header or extension area cannot be read whole "
                "(file of %llu bytes)\n", path, (unsigned long long)img.file.size);
    for (size_t i = 0; i < img.problems.n; i++)
        fprintf(stderr, "qc-dump: warning: %s\n", img.problems.v[i].message);
    qc_image_close(&img);
    return rc;
}
