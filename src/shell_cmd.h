/* qc-shell's commands: the table, the dispatch and what completion offers.
 * Every command prints what the corresponding tool prints, through the
 * same library functions. */
#ifndef QC_SHELL_CMD_H
#define QC_SHELL_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "qc_image.h"
#include "qc_iocmd.h"
#include "qc_writer.h"

#define SHELL_PROG "qc-shell"

struct shell {
    const char *path;
    bool writable;
    struct qc_image img;       /* held for the session: with -w it holds the locks */
    struct qc_backing_locks backing_locks;  /* with -w: its backing chain's */
    bool have_writer;          /* a write command opened the writer */
    struct qc_writer w;
    struct qc_iocmd_session io;
    FILE *out, *err;
    char *snapshot;            /* `snapshot ID|NAME`: the views show it; NULL: active */
    int status;                /* the worst status of the commands so far */
    bool quit;
};

/* Opens PATH, for writing (with the writers' locks) when WRITABLE.
 * Returns 0, or the exit status after printing why not. */
int shell_open(struct shell *sh, const char *path, bool writable, bool force);
/* Closes the image (a writer is flushed and closed first).  Returns 0, or
 * 1 when the writer could not be closed cleanly. */
int shell_close(struct shell *sh);

/* Runs one command line.  Returns its exit status (0 ok, 1 failed, 2/3
 * check verdicts, 63 not qcow2, 64 usage), and keeps the worst in
 * sh->status; quit sets sh->quit. */
int shell_run_line(struct shell *sh, const char *line);
/* Keeps RC in sh->status if it is worse (64, 1, 63, 2, 3, 0: as qc-check
 * ranks its verdicts, with usage errors first). */
void shell_note_status(struct shell *sh, int rc);

/* Completion: calls ADD for each word that may stand at position ARGNO of
 * a line starting with command CMD (ARGNO 0: the command itself, CMD
 * unused).  Returns true when the words are prefixes that take no space
 * after them ("size=").  *FILES is set when a file name may stand there. */
typedef void (*shell_word_fn)(void *ctx, const char *word);
bool shell_complete(struct shell *sh, const char *cmd, int argno, shell_word_fn add, void *ctx,
                    bool *files);

#endif
