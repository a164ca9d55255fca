/*
 * Which files named by an image's header may be opened.
 *
 * A header is data from whoever made the image; the backing file and
 * external data file names in it are requests, and a tool run as root on
 * an untrusted image must not read /etc/shadow because a header asks.
 * By default a named file is followed only when the name is relative, has
 * no ".." component, and the file it resolves to (symbolic links followed)
 * is a regular file inside the image's own directory: an overlay next to
 * its base, what images made for sharing look like.  Anything else is
 * opened only when the user allows it: --allow FILE (that file, compared
 * by device and inode) or --follow-header (every name, as QEMU does).
 * A name that resolves to nothing is left to the open, which fails with
 * QEMU's message.  docs/design.md, "Files named by the header".
 */
#ifndef QC_FOLLOW_H
#define QC_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

enum qc_follow_kind { QC_FOLLOW_BACKING, QC_FOLLOW_DATA_FILE };

/* The user's choices, set once by a tool's option parsing. */
void qc_follow_header(bool on);
/* Allows PATH (links followed).  0, or -1 with the reason in ERR. */
int qc_follow_allow(const char *path, char *err, size_t errlen);

/* NULL when FULL, the file QEMU would open for NAME from the header of
 * IMAGE, may be opened; otherwise a malloc'd sentence saying which file the
 * header names, why it is not followed, and how to allow it. */
char *qc_follow_refusal(const char *image, const char *name, const char *full,
                        enum qc_follow_kind kind);

/* For getopt_long tables and usage texts of the tools that open chains. */
enum { QC_FOLLOW_OPT_ALLOW = 0x4100, QC_FOLLOW_OPT_HEADER };
#define QC_FOLLOW_LONG_OPTIONS \
    { "allow", 1, NULL, QC_FOLLOW_OPT_ALLOW }, \
    { "follow-header", 0, NULL, QC_FOLLOW_OPT_HEADER }
#define QC_FOLLOW_OPTIONS_HELP \
    "      --allow FILE       open FILE when the header names it as a backing or\n" \
    "                         data file (by default only files inside the image's\n" \
    "                         directory, named relatively, are opened)\n" \
    "      --follow-header    open every file the header names, as QEMU does\n"
/* Handles one of the options above: 1 when OPT was one, 0 when not ours,
 * -1 with a message in ERR. */
int qc_follow_opt_parse(int opt, const char *arg, char *err, size_t errlen);

#endif
