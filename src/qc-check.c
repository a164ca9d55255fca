/* qc-check: qemu-img check's verdict on qcow2 images, never a change. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "qc_follow.h"
#include "qc_io.h"
#include "qc_version.h"
#include "qc_util.h"
#include "qc_view.h"

static const char usage_text[] =
    "Usage: qc-check [--output=human|json] [-q] [-U] IMAGE...\n"
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
    "  --allow FILE     open FILE when the header names it as a backing or data\n"
    "                   file (by default only files inside the image's\n"
    "                   directory, named relatively, are opened)\n"
    "  --follow-header  open every file the header names, as QEMU does\n"
    "  -U, --force-share\n"
    "                   no warning when another process holds an image for\n"
    "                   writing (without -U: a warning on stderr that its\n"
    "                   metadata may be stale; the check runs either way)\n"
    "  -h, --help       this text\n"
    "      --version    version\n"
    "\n"
    "Exit status: 0 clean, 1 check failed, 2 corruptions, 3 leaks only,\n"
    "63 not a qcow2 image, 64 usage error; the worst over all images.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "qc-check: ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry 'qc-check --help' for more information.\n");
    return 64;
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

int main(int argc, char **argv)
{
    enum { O_OUTPUT = 256, O_VERSION };
    static const struct option opts[] = {
        { "output", required_argument, NULL, O_OUTPUT },
        { "quiet", no_argument, NULL, 'q' },
        { "force-share", no_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        QC_FOLLOW_LONG_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    bool json = false, quiet = false, force_share = false;
    int c, worst = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qhU", opts, NULL)) != -1) {
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
        case 'U': force_share = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("qc-check %s\n", QC_VERSION); return 0;
        case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: {
            char err[600];
            int r = qc_follow_opt_parse(c, optarg, err, sizeof err);
            if (r == 1)
                break;
            if (r < 0)
                return usage_error("%s", err);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind >= argc)
        return usage_error("%s", "missing IMAGE");
    /* hostile images can produce millions of problem lines */
    setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    for (int i = optind; i < argc; i++) {
        struct qc_view_check_opts vo = { json, argc - optind > 1, quiet };
        int rc;
        /* Several reports in human form: each under a line naming its image
         * (one image: qemu-img's output, unchanged). */
        if (!json && !quiet && argc - optind > 1) {
            fflush(stderr);
            printf("%s==> %s <==\n", i > optind ? "\n" : "", qc_esc(argv[i]));
            fflush(stdout);
        }
        if (!force_share)
            qc_warn_live_writer(stderr, "qc-check", argv[i]);
        rc = qc_view_check(stdout, stderr, argv[i], &vo);
        fflush(stdout);
        fflush(stderr);
        if (rank(rc) > rank(worst))
            worst = rc;
    }
    return worst;
}
