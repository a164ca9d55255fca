/* qc-salvage: get the guest disk back from a damaged qcow2 image. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc_util.h"
#include "qc_follow.h"
#include "qc_io.h"
#include "qc_salvage.h"
#include "qc_salvage_output.h"
#include "qc_version.h"

#define PROG "qc-salvage"

static const char usage_text[] =
    "Usage: qc-salvage [-O qcow2|raw] [--map MAPFILE] [--report REPORT.json]\n"
    "                  [--lost-found DIR] [--snapshot ID|NAME] [--dry-run] [--force]\n"
    "                  [--progress=auto|none] IMAGE OUT\n"
    "\n"
    "Recovers the guest disk of a damaged qcow2 image into OUT, a new file,\n"
    "without writing IMAGE.  Each guest range is known (read through intact\n"
    "metadata), reconstructed (through tables rebuilt from evidence in the\n"
    "file), unallocated (zeros) or lost (zeros in OUT, '-' in the map).\n"
    "\n"
    "  -O qcow2|raw           format of OUT (default qcow2; raw is sparse)\n"
    "      --map MAPFILE      a GNU ddrescue mapfile of the guest disk\n"
    "                         ('+' recovered, '-' lost)\n"
    "      --report FILE      JSON: every range with its status and evidence,\n"
    "                         damaged structures, orphan clusters, totals\n"
    "      --lost-found DIR   write each orphan data cluster nothing could place\n"
    "                         as DIR/<host offset in hex>.bin\n"
    "      --snapshot ID|NAME salvage that internal snapshot's disk\n"
    "      --dry-run          analyse and report on stdout; write nothing\n"
    "      --force            replace existing output files\n"
    "      --progress=auto|none  a progress bar on stderr when it is a terminal\n"
    "                         (auto, the default) or never\n"
    QC_FOLLOW_OPTIONS_HELP
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Exit status: 0 every allocated cluster read through intact metadata,\n"
    "2 some ranges reconstructed and none lost, 3 some ranges lost, 1 salvage\n"
    "failed, 63 not recognisable as qcow2 even by scanning, 64 usage error.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    return 64;
}

enum { OPT_MAP = 0x100, OPT_REPORT, OPT_LOST_FOUND, OPT_SNAPSHOT, OPT_DRY_RUN, OPT_FORCE,
       OPT_PROGRESS, OPT_VERSION };

static int parse_args(int argc, char **argv, struct qc_salvage_output *o, bool *done)
{
    static const struct option longopts[] = {
        { "map", 1, NULL, OPT_MAP },
        { "report", 1, NULL, OPT_REPORT },
        { "lost-found", 1, NULL, OPT_LOST_FOUND },
        { "snapshot", 1, NULL, OPT_SNAPSHOT },
        { "dry-run", 0, NULL, OPT_DRY_RUN },
        { "force", 0, NULL, OPT_FORCE },
        { "progress", 1, NULL, OPT_PROGRESS },
        { "help", 0, NULL, 'h' },
        { "version", 0, NULL, OPT_VERSION },
        QC_FOLLOW_LONG_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "O:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'O':
            if (strcmp(optarg, "raw") && strcmp(optarg, "qcow2"))
                return usage_error("unknown output format '%s' (qcow2 or raw)", optarg);
            o->raw = strcmp(optarg, "raw") == 0;
            break;
        case OPT_MAP: o->map = optarg; break;
        case OPT_REPORT: o->report = optarg; break;
        case OPT_LOST_FOUND: o->lost_found = optarg; break;
        case OPT_SNAPSHOT: o->snapshot = optarg; break;
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_FORCE: o->force = true; break;
        case OPT_PROGRESS:
            if (strcmp(optarg, "auto") && strcmp(optarg, "none"))
                return usage_error("--progress takes auto or none, not '%s'", optarg);
            o->progress = strcmp(optarg, "auto") == 0 && isatty(STDERR_FILENO);
            break;
        case 'h': fputs(usage_text, stdout); *done = true; return 0;
        case OPT_VERSION: printf(PROG " %s\n", QC_VERSION); *done = true; return 0;
        default: {
            char err[512];
            int f = qc_follow_opt_parse(c, optarg, err, sizeof(err));
            if (f < 0)
                return usage_error("%s", err);
            if (f == 0)
                return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
        }
    }
    if (argc - optind != 2)
        return usage_error("%s", argc - optind < 2 ? "IMAGE and OUT are required"
                                                   : "too many arguments");
    o->image = argv[optind];
    o->out = argv[optind + 1];
    return 0;
}

int main(int argc, char **argv)
{
    struct qc_salvage_output o = { .progress = isatty(STDERR_FILENO) != 0 };
    bool done = false;
    int rc = parse_args(argc, argv, &o, &done);
    if (rc || done)
        return rc;
    return qc_salvage_run(&o, PROG);
}
