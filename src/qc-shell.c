/* qc-shell: explore a qcow2 image at a prompt, like debugfs does for ext4. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "qc_util.h"
#include "qc_follow.h"
#include "qc_version.h"
#include "shell_cmd.h"

#define PROG SHELL_PROG
#define HISTORY_LINES 1000

static const char usage_text[] =
    "Usage: qc-shell [-w [--force] | -U] [-c CMD]... IMAGE\n"
    "\n"
    "Explores a qcow2 image: the views of qc-dump, the verdict of qc-check, where\n"
    "a guest offset lives and what a host cluster is used for; with -w also the\n"
    "edits of qc-setfeature and the writes of qc-write.  Each command prints what\n"
    "the corresponding tool prints.  Type 'help' at the prompt for the commands.\n"
    "\n"
    "  -c, --cmd CMD   run CMD and no prompt (may be repeated: run in order)\n"
    "  -w, --write     open the image for writing, with the image locks QEMU\n"
    "                  takes (refused while another process uses the image)\n"
    "      --force     with -w: ignore locks held by other processes\n"
    "      --allow FILE  open FILE when the header names it as a backing or\n"
    "                  data file (by default only files inside the image's\n"
    "                  directory, named relatively, are opened)\n"
    "      --follow-header  open every file the header names, as QEMU does\n"
    "  -U, --force-share\n"
    "                  without -w: no warning when another process holds the\n"
    "                  image for writing (without -U: a warning on stderr that\n"
    "                  its metadata may be stale)\n"
    "  -h, --help      this text\n"
    "      --version   version\n"
    "\n"
    "Without -c, commands come from the prompt (history in ~/.qc_history, TAB\n"
    "completes commands, options, feature, header field and extension names),\n"
    "or one per line from standard input when it is not a terminal.\n"
    "\n"
    "Exit status: the worst of the commands run, in this order: 64 usage error,\n"
    "1 failure, 63 not qcow2, 2 corruptions and 3 leaks (check), 0 success.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    return 64;
}

/* --- completion ------------------------------------------------------------ */

static struct shell sh;

struct words {
    char **v;
    size_t n, cap;
    const char *prefix;        /* only words starting with it */
    const char *lead;          /* prepended to each (file names after MAGIC=) */
};
static struct words cand;

static void add_word(void *ctx, const char *w)
{
    struct words *ws = ctx;
    size_t lead = ws->lead ? strlen(ws->lead) : 0;
    char *s;

    if (strncmp(w, ws->prefix + lead, strlen(ws->prefix + lead)) != 0)
        return;
    for (size_t i = 0; i < ws->n; i++)
        if (strcmp(ws->v[i] + lead, w) == 0)
            return;
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? 2 * ws->cap : 64;
        char **v = realloc(ws->v, cap * sizeof *v);
        if (!v)
            return;
        ws->v = v;
        ws->cap = cap;
    }
    if (!(s = malloc(lead + strlen(w) + 1)))
        return;
    memcpy(s, ws->lead ? ws->lead : "", lead);
    strcpy(s + lead, w);
    ws->v[ws->n++] = s;
}

static char *next_candidate(const char *text, int state)
{
    static size_t i;

    (void)text;
    if (!state)
        i = 0;
    return i < cand.n ? strdup(cand.v[i++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
    char **matches = NULL, *cmd = NULL;
    const char *p = rl_line_buffer;
    int argno = 0;
    bool no_space, files;

    (void)end;
    rl_attempted_completion_over = 1;
    /* the words before the one being completed */
    while (p < rl_line_buffer + start) {
        size_t n;
        while (p < rl_line_buffer + start && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= rl_line_buffer + start)
            break;
        n = strcspn(p, " \t");
        if (p + n > rl_line_buffer + start)
            break;
        if (argno++ == 0)
            cmd = strndup(p, n);
        p += n;
    }
    memset(&cand, 0, sizeof cand);
    cand.prefix = text;
    no_space = shell_complete(&sh, cmd ? cmd : "", argno, add_word, &cand, &files);
    if (files && strchr(text, '=')) {
        /* MAGIC=FILE: file names after the '=' */
        const char *name = strchr(text, '=') + 1;
        char *lead = strndup(text, (size_t)(name - text)), *f;
        for (size_t i = 0; i < cand.n; i++)
            free(cand.v[i]);
        cand.n = 0;
        cand.lead = lead;
        for (int st = 0; lead && (f = rl_filename_completion_function(name, st)); st++) {
            add_word(&cand, f);
            free(f);
        }
        free(lead);
        cand.lead = NULL;
        no_space = true;
    }
    if (cand.n)
        matches = rl_completion_matches(text, next_candidate);
    if (no_space)
        rl_completion_append_character = '\0';
    for (size_t i = 0; i < cand.n; i++)
        free(cand.v[i]);
    free(cand.v);
    memset(&cand, 0, sizeof cand);
    free(cmd);
    return matches;
}

/* --- the prompt -------------------------------------------------------------- */

static void prompt_loop(void)
{
    const char *home = getenv("HOME");
    char *histfile = NULL, *line;

    if (home && *home && asprintf(&histfile, "%s/.qc_history", home) < 0)
        histfile = NULL;
    rl_readline_name = "qc-shell";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t\n";
    using_history();
    stifle_history(HISTORY_LINES);
    if (histfile)
        read_history(histfile);
    while (!sh.quit && (line = readline("qc-shell> ")) != NULL) {
        if (line[strspn(line, " \t")])
            add_history(line);
        shell_run_line(&sh, line);
        free(line);
    }
    if (!sh.quit)
        putchar('\n');
    if (histfile && write_history(histfile) != 0)
        fprintf(stderr, "%s: cannot save the history in %s\n", PROG, histfile);
    clear_history();
    free(histfile);
}

static void stdin_loop(void)
{
    char *line = NULL;
    size_t cap = 0;

    while (!sh.quit && getline(&line, &cap, stdin) > 0)
        shell_run_line(&sh, line);
    free(line);
}

int main(int argc, char **argv)
{
    enum { O_FORCE = 256, O_VERSION };
    static const struct option opts[] = {
        { "cmd", required_argument, NULL, 'c' },
        { "write", no_argument, NULL, 'w' },
        { "force", no_argument, NULL, O_FORCE },
        { "force-share", no_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        QC_FOLLOW_LONG_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    const char **cmds;
    size_t ncmds = 0;
    bool writable = false, force = false, force_share = false;
    int c, rc;

    cmds = calloc((size_t)argc + 1, sizeof *cmds);
    if (!cmds)
        return 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:whU", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cmds[ncmds++] = optarg; break;
        case 'w': writable = true; break;
        case O_FORCE: force = true; break;
        case 'U': force_share = true; break;
        case 'h': fputs(usage_text, stdout); free(cmds); return 0;
        case O_VERSION: printf(PROG " %s\n", QC_VERSION); free(cmds); return 0;
        case ':':
            free(cmds);
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: {
            char err[600];
            int r = qc_follow_opt_parse(c, optarg, err, sizeof err);
            if (r == 1)
                break;
            free(cmds);
            if (r < 0)
                return usage_error("%s", err);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind >= argc) {
        free(cmds);
        return usage_error("%s", "missing IMAGE");
    }
    if (optind < argc - 1) {
        free(cmds);
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    }
    if (force && !writable) {
        free(cmds);
        return usage_error("%s", "--force goes with -w");
    }
    if (force_share && writable) {
        free(cmds);
        return usage_error("%s", "-U goes without -w");
    }
    if (!writable && !force_share)
        qc_warn_live_writer(stderr, PROG, argv[optind]);
    if ((rc = shell_open(&sh, argv[optind], writable, force)) != 0) {
        free(cmds);
        return rc;
    }
    if (ncmds)
        for (size_t i = 0; i < ncmds && !sh.quit; i++)
            shell_run_line(&sh, cmds[i]);
    else if (isatty(STDIN_FILENO))
        prompt_loop();
    else
        stdin_loop();
    free(cmds);
    shell_note_status(&sh, shell_close(&sh));
    return sh.status;
}
