/* qc-check: qemu-img check's verdict on qcow2 images, never a change. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qc_check.h"
#include "qc_version.h"
#include "qc_view.h"

static const char usage_text[] =
    "Usage: qc-check [--output=human|json] [-q] IMAGE...\n"
    "\n"
    "Checks qcow2 images for consistency without changing them, with the\n"
    "verdict, numbers, messages and exit status of qemu-img check.\n"
    "\n"
    "  --output=human   qemu-img check's report (default): problems on stderr,\n"
    "                   the summary on stdout\n"
    "  --output=json    qemu-img check's JSON plus \"problems\", every finding\n"
    "                   including those qemu-img check is silent about; one\n"
    "                   compact object per line for several images\n"
    "  -q, --quiet      no summary on stdout\n"
    "  -h, --help       this text\n"
    "      --version    version\n"
    "\n"
    "Exit status: 0 clean, 1 check failed, 2 corruptions, 3 leaks only,\n"
    "63 not a qcow2 image, 64 usage error; the worst over all images.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-check: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'qc-check --help' for more information.\n");
    return 64;
}

/* QEMU's stderr lines, as they happen. */
static void print_event(void *opaque, const struct qc_check_event *ev)
{
    (void)opaque;
    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    fprintf(stderr, "%s%s%s", (ev->flags & QC_EVL_PROGNAME) ? "qemu-img: " : "", ev->line,
            (ev->flags & QC_EVL_NO_NL) ? "" : "\n");
}

static void print_human(const struct qc_check_result *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            printf("\n%" PRId64 " errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image may corrupt it.\n",
                   r->corruptions);
        if (r->leaks)
            printf("\n%" PRId64 " leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n", r->leaks);
        if (r->check_errors)
            printf("\n%" PRId64 " internal errors have occurred during the check.\n",
                   r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters)
        printf("%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% fragmented, "
               "%0.2f%% compressed clusters\n",
               (int64_t)r->allocated_clusters, (int64_t)r->total_clusters,
               (int64_t)r->allocated_clusters * 100.0 / (int64_t)r->total_clusters,
               (int64_t)r->fragmented_clusters * 100.0 / (int64_t)r->allocated_clusters,
               (int64_t)r->compressed_clusters * 100.0 / (int64_t)r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %" PRId64 "\n", (int64_t)r->image_end_offset);
}

static void add_if(struct json_object *o, const char *key, int64_t v)
{
    if (v)
        json_object_object_add(o, key, json_object_new_int64(v));
}

/* qemu-img's keys in its (hash) order, present as it has them, then ours. */
static struct json_object *result_json(const char *path, const struct qc_check_result *r)
{
    struct json_object *o = json_object_new_object();

    if (r->status == QC_CHECK_DONE) {
        add_if(o, "image-end-offset", (int64_t)r->image_end_offset);
        add_if(o, "compressed-clusters", (int64_t)r->compressed_clusters);
        add_if(o, "total-clusters", (int64_t)r->total_clusters);
        add_if(o, "corruptions", r->corruptions);
        add_if(o, "corruptions-fixed", r->corruptions_fixed);
        json_object_object_add(o, "check-errors", json_object_new_int64(r->check_errors));
        add_if(o, "leaks", r->leaks);
        add_if(o, "leaks-fixed", r->leaks_fixed);
        add_if(o, "allocated-clusters", (int64_t)r->allocated_clusters);
        json_object_object_add(o, "filename", qc_json_text(path));
        json_object_object_add(o, "format", json_object_new_string("qcow2"));
        add_if(o, "fragmented-clusters", (int64_t)r->fragmented_clusters);
    } else {
        /* qemu-img prints nothing here; scripts still get one object per image */
        json_object_object_add(o, "filename", qc_json_text(path));
        json_object_object_add(o, "format", r->format ? json_object_new_string(r->format) : NULL);
        json_object_object_add(o, "error", qc_json_text(r->message));
    }
    json_object_object_add(o, "problems", qc_json_problems(&r->problems));
    if (r->problems.dropped)
        json_object_object_add(o, "problems-omitted",
                               json_object_new_int64((int64_t)r->problems.dropped));
    return o;
}

/* Worst exit status first: failed, not qcow2, corruptions, leaks, clean. */
static int rank(int rc)
{
    switch (rc) {
    case 1: return 4;
    case 63: return 3;
    case 2: return 2;
    case 3: return 1;
    default: return 0;
    }
}

static int check_one(const char *path, bool json, bool lines, bool quiet)
{
    struct qc_check_opts opts = { 0 };
    struct qc_check_result r;
    int rc;

    opts.sink = print_event;
    opts.verify_compressed = json;
    if (qc_check_image(path, &opts, &r, NULL) < 0) {
        fprintf(stderr, "qemu-img: Check failed: Cannot allocate memory\n");
        return 1;
    }
    rc = qc_check_exit_code(&r);
    switch (r.status) {
    case QC_CHECK_OPEN_FAILED:
    case QC_CHECK_UNSUPPORTED:
        fprintf(stderr, "qemu-img: %s\n", r.message ? r.message : "");
        break;
    case QC_CHECK_FAILED:
        fprintf(stderr, "qemu-img: Check failed: %s\n", r.message ? r.message : "");
        break;
    case QC_CHECK_DONE:
        break;
    }
    /* problem lines first, as qemu-img (whose stderr is unbuffered) */
    fflush(stderr);
    if (!quiet && (json || r.status == QC_CHECK_DONE)) {
        if (json) {
            struct json_object *o = result_json(path, &r);
            if (lines)
                printf("%s\n", json_object_to_json_string_ext(
                                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
            else
                qc_json_print(stdout, o);
            json_object_put(o);
        } else {
            print_human(&r);
        }
    }
    fflush(stdout);
    if (r.status == QC_CHECK_DONE && r.check_errors)
        fprintf(stderr, "qemu-img: Check failed\n");
    fflush(stderr);
    qc_check_result_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    enum { O_OUTPUT = 256, O_VERSION };
    static const struct option opts[] = {
        { "output", required_argument, NULL, O_OUTPUT },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 }
    };
    bool json = false, quiet = false;
    int c, worst = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (c) {
        case O_OUTPUT:
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "human") == 0)
                json = false;
            else
                return usage_error("--output must be human or json, not '%s'", optarg);
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("qc-check %s\n", QC_VERSION); return 0;
        case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("%s", "missing IMAGE");
    /* hostile images can produce millions of problem lines */
    setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    for (int i = optind; i < argc; i++) {
        int rc = check_one(argv[i], json, argc - optind > 1, quiet);
        if (rank(rc) > rank(worst))
            worst = rc;
    }
    return worst;
}
