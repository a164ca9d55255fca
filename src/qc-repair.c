/* qc-repair: qemu-img check -r for qcow2 images, planned, undoable, crash-safe. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qc_sidefile.h"
#include "qc_image.h"
#include "qc_follow.h"
#include "qc_backup.h"
#include "qc_bitmap.h"
#include "qc_check_int.h"
#include "qc_endian.h"
#include "qc_plan.h"
#include "qc_repair.h"
#include "qc_snapshot.h"
#include "qc_util.h"
#include "qc_version.h"
#include "qc_view.h"

#define PROG "qc-repair"

static const char usage_text[] =
    "Usage: qc-repair [-r leaks|all] [--dry-run] [--backup FILE] [--force]\n"
    "                 [--output=human|json] IMAGE\n"
    "       qc-repair --undo FILE [--force] IMAGE\n"
    "\n"
    "Repairs a qcow2 image as qemu-img check -r does, keeping every snapshot,\n"
    "bitmap and guest byte, with writes ordered so that an interrupted repair\n"
    "can simply be run again.\n"
    "\n"
    "  -r leaks               fix leaked clusters only\n"
    "  -r all                 fix everything qemu-img check -r all fixes (default)\n"
    "      --dry-run          print the planned writes; change nothing\n"
    "      --backup FILE      save every range the repair overwrites, the old file\n"
    "                         length and the state the repair leaves, to FILE\n"
    "      --undo FILE        put a backup back: the image as before the repair;\n"
    "                         refused unless the image is as the repair left it\n"
    "      --force            ignore locks held on the image by other processes,\n"
    "                         replace an existing write log or record, free\n"
    "                         leaks that look like lost metadata (see below);\n"
    "                         with --undo, also restore despite differences\n"
    "      --output=human     qemu-img check -r's report (default)\n"
    "      --output=json      qemu-img check's JSON of the result, with leaks-fixed\n"
    "                         and corruptions-fixed\n"
    QC_FOLLOW_OPTIONS_HELP
    QC_IO_OPTIONS_HELP
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Leaked clusters that look like lost metadata (L2 tables mapping other leaked\n"
    "clusters: a zeroed or garbled L1 table) are not freed: nothing is written,\n"
    "exit status 1; qc-salvage IMAGE OUT recovers the disk into a new file.\n"
    "\n"
    "Exit status (for the image after the repair): 0 clean, 1 failed,\n"
    "2 corruptions left, 3 leaks left, 63 not qcow2, 64 usage error,\n"
    "99 simulated power failure.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, qc_esc(arg));  /* argv may hold escapes too */
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    return 64;
}

/* One line of QEMU's report on stderr (millions on a badly damaged image:
 * no formatting here; stderr is fully buffered and flushed before stdout
 * output). */
static void print_event(void *opaque, const struct qc_check_event *ev)
{
    (void)opaque;
    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    if (ev->flags & QC_EVL_PROGNAME)
        fputs_unlocked("qemu-img: ", stderr);
    qc_fput_qemu_text(stderr, ev->line);
    if (!(ev->flags & QC_EVL_NO_NL))
        putc_unlocked('\n', stderr);
}

struct qc_lostmeta;
static struct json_object *lost_metadata_json(const struct qc_lostmeta *lm, bool repaired);

/* LM: a lost-metadata verdict the repair went past (--force), or NULL. */
static void print_result(const char *path, const struct qc_check_result *r, bool json,
                         const struct qc_lostmeta *lm)
{
    if (json) {
        struct json_object *o = qc_json_check_result(path, r);
        if (lm)
            json_object_object_add(o, "lost-metadata", lost_metadata_json(lm, true));
        qc_json_print(stdout, o);
        json_object_put(o);
    } else {
        qc_view_check_human(stdout, r);
    }
}

/* --- what must survive: the snapshot list and the bitmap directory ------------ */

struct keep {
    struct qc_snapshot_table snaps;
    bool snaps_ok;
    uint8_t *bmdir;
    uint64_t bmdir_off, bmdir_len;
};

/* REPAIRING: read the table as the repair did (what it cannot hold is
 * discarded rather than refused). */
static void keep_read(struct keep *k, struct qc_file *f, uint64_t bm_off, uint64_t bm_len,
                      bool repairing)
{
    uint8_t h[72];
    char *err = NULL, *hint = NULL;

    memset(k, 0, sizeof *k);
    if (qc_file_read_padded(f, 0, h, sizeof h) >= 0 && repairing) {
        uint32_t nb = qc_be32(h + 60);
        k->snaps_ok = qc_snapshot_table_read_qemu_repair(f, qc_be64(h + 64),
                                                         nb > QC_SNAPSHOT_MAX ? QC_SNAPSHOT_MAX : nb,
                                                         &k->snaps, &err, &hint) == 0;
    } else if (qc_file_read_padded(f, 0, h, sizeof h) >= 0 && qc_be32(h + 60) <= QC_SNAPSHOT_MAX) {
        k->snaps_ok = qc_snapshot_table_read_qemu(f, qc_be64(h + 64), qc_be32(h + 60), &k->snaps,
                                                  &err, &hint) == 0;
    }
    free(err);
    free(hint);
    if (bm_len && bm_len <= (64u << 20) && (k->bmdir = malloc((size_t)bm_len)) &&
        qc_file_read_padded(f, bm_off, k->bmdir, (size_t)bm_len) < 0) {
        free(k->bmdir);
        k->bmdir = NULL;
    }
    k->bmdir_off = bm_off;
    k->bmdir_len = bm_len;
}

static void keep_free(struct keep *k)
{
    qc_snapshot_table_free(&k->snaps);
    free(k->bmdir);
}

/* Says which snapshot or bitmap changed that the repair did not mean to
 * change (RP names the damaged entries it rewrote or dropped); returns the
 * number of such changes. */
static int keep_compare(const struct keep *a, const struct keep *b, const struct qc_repair *rp)
{
    bool table_rewritten = rp->snapshot_table_rewritten;
    size_t expect = rp->snapshot_header_changed ? rp->snapshots_after : a->snaps.n;
    int n = 0;

    if (a->snaps_ok && b->snaps_ok) {
        if (expect != b->snaps.n) {
            fprintf(stderr, PROG ": the snapshot table lists %zu snapshots instead of %zu\n",
                    b->snaps.n, a->snaps.n);
            n++;
        }
        for (size_t i = 0; i < a->snaps.n && i < b->snaps.n; i++) {
            const struct qc_snapshot *x = &a->snaps.v[i], *y = &b->snaps.v[i];
            if (i < rp->nsnapshot_damaged && rp->snapshot_damaged[i])
                continue;    /* said so in a note */
            if (strcmp(x->id_str, y->id_str) || strcmp(x->name, y->name) ||
                x->l1_table_offset != y->l1_table_offset || x->l1_size != y->l1_size ||
                x->date_sec != y->date_sec || x->date_nsec != y->date_nsec ||
                x->vm_clock_nsec != y->vm_clock_nsec || x->vm_state_size != y->vm_state_size ||
                (!table_rewritten && x->extra_data_size != y->extra_data_size)) {
                fprintf(stderr, PROG ": snapshot %zu (ID %s, '%s') changed\n", i, qc_esc(x->id_str),
                        qc_esc(x->name));
                n++;
            }
        }
    }
    if (a->bmdir && b->bmdir && a->bmdir_len == b->bmdir_len &&
        memcmp(a->bmdir, b->bmdir, (size_t)a->bmdir_len)) {
        fprintf(stderr, PROG ": the bitmap directory changed\n");
        n++;
    }
    return n;
}

/* What a failed engine call says: out of memory as strerror says it (as
 * qemu-img does), an I/O error with its errno. */
static const char *failure_text(int r)
{
    return r == QC_E_NOMEM ? strerror(ENOMEM) : qc_strerror(r);
}

/* --- undo -------------------------------------------------------------------- */

static int open_for_writing(struct qc_file *f, const char *image, bool force)
{
    const char *why = NULL;
    int r = qc_file_open(f, image, QC_OPEN_WRITE | (force ? QC_OPEN_FORCE : 0), &why);

    if (r == QC_E_LOCKED) {
        fprintf(stderr, PROG ": Could not open '%s': Failed to get %s lock\n"
                "Is another process using the image [%s]?\n", qc_esc_qemu(image), why ? why : "\"write\"", qc_esc_qemu(image));
        return 1;
    }
    if (r < 0) {
        fprintf(stderr, PROG ": Could not open '%s': %s\n", qc_esc_qemu(image), qc_strerror(r));
        return 1;
    }
    return 0;
}

static void say_difference(void *ctx, const char *line)
{
    fprintf(stderr, PROG ": %s: %s\n", (const char *)ctx, line);
}

/* Checks the image against backup B; 0 when the undo may go on. */
static int undo_check(const struct qc_backup *b, struct qc_file *f, const char *image,
                      const char *backup, bool force)
{
    struct qc_backup_state st;
    int r;

    if (!b->finished)
        fprintf(stderr, PROG ": %s: the repair this backup was made for did not finish; "
                "undoing what it wrote\n", qc_esc(backup));
    if ((r = qc_backup_verify(b, f, say_difference, (void *)backup, &st)) < 0) {
        fprintf(stderr, PROG ": %s: cannot read the image: %s\n", qc_esc(image), qc_strerror(r));
        return 1;
    }
    if (st.differences && !force) {
        fprintf(stderr, PROG ": %s: refusing to undo: %s; nothing was written to %s "
                "(--force restores anyway)\n", qc_esc(backup),
                st.wrong_image ? "the image is not the one this backup was made for"
                               : "the image changed since the repair", qc_esc(image));
        return 1;
    }
    if (st.differences)
        fprintf(stderr, PROG ": %s: --force: restoring despite %zu difference%s\n", qc_esc(backup),
                st.differences, st.differences == 1 ? "" : "s");
    if (!b->n && !st.differences) {
        printf("%s holds no changes: the repair wrote nothing to %s; nothing to restore.\n",
               qc_esc(backup), qc_esc(image));
        return -1;
    }
    if (st.already_restored) {
        printf("Every range of %s that the repair changed holds its old bytes again, and the "
               "file its old length: nothing to restore from %s.\n", qc_esc(image), qc_esc(backup));
        return -1;
    }
    return 0;
}

static int undo(const char *image, const char *backup, bool force, const struct qc_io_opts *io)
{
    struct qc_backup b;
    struct qc_file f;
    const char *err = "", *what = NULL;
    size_t n = 0;
    int r;

    if ((r = qc_backup_load(&b, backup, &err)) < 0) {
        fprintf(stderr, PROG ": %s: %s%s%s\n", qc_esc(backup), err, r == QC_E_FORMAT ? "" : ": ",
                r == QC_E_FORMAT ? "" : qc_strerror(r));
        qc_backup_free(&b);
        return 1;
    }
    if (open_for_writing(&f, image, force)) {
        qc_backup_free(&b);
        return 1;
    }
    if ((r = qc_io_opts_apply(io, &f, &what)) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", what ? what : qc_esc(image), qc_strerror(r));
        r = 1;
    } else if ((r = undo_check(&b, &f, image, backup, force)) == 0) {
        if ((r = qc_backup_apply(&b, &f, &n)) < 0)
            fprintf(stderr, PROG ": %s: cannot write the image: %s\n", qc_esc(image), qc_strerror(r));
        else
            printf("Restored %zu range%s and the file length of %s from %s.\n", n,
                   n == 1 ? "" : "s", qc_esc(image), qc_esc(backup));
        r = r < 0;
    } else {
        r = r > 0;
    }
    qc_file_close(&f);
    qc_backup_free(&b);
    return r;
}


/* --- lost metadata ----------------------------------------------------------- */

enum lm_outcome { LM_REFUSED, LM_FORCED, LM_DRY_RUN };

struct lm_print {
    const char *image;
    enum lm_outcome outcome;
};

/* TEXT as lines of at most 78 columns, each "qc-repair: " first, so that
 * the paragraph stands apart from QEMU's lines. */
static void print_wrapped(FILE *out, const char *text)
{
    const size_t width = 78 - sizeof PROG - 1;

    while (*text) {
        size_t n = strlen(text), cut = n;
        if (n > width) {
            for (cut = width; cut > 0 && text[cut] != ' '; cut--)
                ;
            if (cut == 0)
                cut = width;
        }
        fprintf(out, PROG ": %.*s\n", (int)cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

/* "clusters 5, 6 and 7" (the first few, then how many more). */
static void append_clusters(char *buf, size_t cap, const struct qc_lostmeta *lm)
{
    size_t len = strlen(buf), shown = lm->n_l2_like < 8 ? lm->n_l2_like : 8;

    len += (size_t)snprintf(buf + len, cap - len, "%s", lm->n_l2_like == 1 ? "cluster" : "clusters");
    for (size_t i = 0; i < shown && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s %" PRIu64,
                                i == 0 ? "" : i + 1 == lm->n_l2_like ? " and" : ",",
                                lm->l2_like[i]);
    if (shown < lm->n_l2_like && len < cap)
        snprintf(buf + len, cap - len, " and %zu more", lm->n_l2_like - shown);
}

/* One paragraph on stderr: what was found, what freeing it would lose,
 * what to do instead. */
static void print_lost_metadata(const char *image, const struct qc_lostmeta *lm,
                                enum lm_outcome outcome)
{
    char buf[2048];
    size_t len;

    snprintf(buf, sizeof buf, "%s: of %" PRIu64 " allocated clusters, %" PRIu64 " are leaked "
             "and look like lost metadata, not crash debris:", qc_esc(image), lm->allocated,
             lm->leaked);
    len = strlen(buf);
    if (lm->n_l2_like) {
        snprintf(buf + len, sizeof buf - len, " %zu leaked %s shaped like L2 tables (", lm->n_l2_like,
                 lm->n_l2_like == 1 ? "cluster is" : "clusters are");
        append_clusters(buf, sizeof buf, lm);
        len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, ") with %" PRIu64 " entries mapping %" PRIu64
                 " other leaked data clusters;", lm->mapped_entries, lm->mapped);
        len = strlen(buf);
    }
    if ((lm->signs & QC_LM_L1_BAD) && lm->l1_garbage)
        snprintf(buf + len, sizeof buf - len, " the active L1 table holds %" PRIu64
                 " entries no L2 table can be at;", lm->l1_garbage);
    else if (lm->signs & QC_LM_L1_BAD)
        snprintf(buf + len, sizeof buf - len, " the active L1 table is all zeros;");
    len = strlen(buf);
    if (lm->signs & QC_LM_L1_INTO_L2)
        snprintf(buf + len, sizeof buf - len, " %" PRIu64 " active L1 %s into the middle of "
                 "a cluster shaped like an L2 table (the table is there, its pointer is "
                 "damaged; a repair would write into it);", lm->l1_into_l2,
                 lm->l1_into_l2 == 1 ? "entry points" : "entries point");
    len = strlen(buf);
    if (lm->signs & QC_LM_MOST_LEAKED)
        snprintf(buf + len, sizeof buf - len, " most of the image's data is leaked at once;");
    len = strlen(buf);
    snprintf(buf + len, sizeof buf - len, " freeing them, as qemu-img check -r does, would lose "
             "the guest data they hold. %s Recover the disk into a new file with "
             "'qc-salvage %s OUT'%s.",
             outcome == LM_REFUSED ? "Nothing was changed." :
             outcome == LM_DRY_RUN ? "Without --force qc-repair changes nothing." :
                                     "--force: repairing as qemu-img check -r does.",
             qc_esc(image), outcome == LM_FORCED ? " next time" :
             "; --force frees them as qemu-img check -r does");
    print_wrapped(stderr, buf);
    fflush(stderr);
}

static void print_lost_metadata_cb(void *opaque, const struct qc_lostmeta *lm)
{
    const struct lm_print *p = opaque;
    print_lost_metadata(p->image, lm, p->outcome);
}

/* The verdict as JSON (the catalogue's kind, the signs, the clusters). */
static struct json_object *lost_metadata_json(const struct qc_lostmeta *lm, bool repaired)
{
    struct json_object *o = json_object_new_object(), *signs = json_object_new_array();
    struct json_object *l2 = json_object_new_array();

    json_object_object_add(o, "kind", json_object_new_string(qc_problem_info(QC_P_LOST_METADATA)->id));
    json_object_object_add(o, "lost", json_object_new_boolean(lm->lost));
    if (lm->signs & QC_LM_L2_MAPS_LEAKED)
        json_object_array_add(signs, json_object_new_string("l2-maps-leaked"));
    if (lm->signs & QC_LM_L1_BAD)
        json_object_array_add(signs, json_object_new_string("l1-bad"));
    if (lm->signs & QC_LM_MOST_LEAKED)
        json_object_array_add(signs, json_object_new_string("most-leaked"));
    if (lm->signs & QC_LM_L1_INTO_L2)
        json_object_array_add(signs, json_object_new_string("l1-into-l2"));
    json_object_object_add(o, "signs", signs);
    json_object_object_add(o, "allocated-clusters", qc_json_u64(lm->allocated));
    json_object_object_add(o, "leaked-clusters", qc_json_u64(lm->leaked));
    for (size_t i = 0; i < lm->n_l2_like; i++)
        json_object_array_add(l2, qc_json_u64(lm->l2_like[i]));
    json_object_object_add(o, "l2-like-clusters", l2);
    json_object_object_add(o, "mapped-clusters", qc_json_u64(lm->mapped));
    json_object_object_add(o, "mapped-entries", qc_json_u64(lm->mapped_entries));
    json_object_object_add(o, "l1-entries", qc_json_u64(lm->l1_entries));
    json_object_object_add(o, "l1-nonzero", qc_json_u64(lm->l1_nonzero));
    json_object_object_add(o, "l1-garbage", qc_json_u64(lm->l1_garbage));
    json_object_object_add(o, "dirty", json_object_new_boolean(lm->dirty));
    json_object_object_add(o, "repaired", json_object_new_boolean(repaired));
    json_object_object_add(o, "salvage", json_object_new_string("qc-salvage"));
    return o;
}

/* --- repair ------------------------------------------------------------------ */

static int check_failed(const struct qc_check_result *r)
{
    switch (r->status) {
    case QC_CHECK_OPEN_FAILED:
    case QC_CHECK_UNSUPPORTED:
        fprintf(stderr, "qemu-img: %s\n", qc_esc_qemu(r->message));
        break;
    default:
        fprintf(stderr, "qemu-img: Check failed: %s\n", qc_esc_qemu(r->message));
        break;
    }
    return qc_check_exit_code(r);
}

/* What the repair changed beyond QEMU's lines, and why. */
static void print_notes(const struct qc_repair *rp)
{
    for (size_t i = 0; i < rp->nnotes; i++)
        fprintf(stderr, PROG ": %s\n", qc_esc_qemu(rp->notes[i]));
    fflush(stderr);
}

static void dry_run_output(const char *image, const struct qc_repair *rp, bool json)
{
    if (json) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "filename", qc_json_text(image));
        json_object_object_add(o, "dry-run", json_object_new_boolean(1));
        json_object_object_add(o, "leaks-fixed", json_object_new_int64(rp->leaks_fixed));
        json_object_object_add(o, "corruptions-fixed",
                               json_object_new_int64(rp->corruptions_fixed));
        json_object_object_add(o, "remaining", json_object_new_int64(rp->remaining));
        json_object_object_add(o, "rebuild", json_object_new_boolean(rp->rebuild));
        json_object_object_add(o, "plan", qc_plan_json(&rp->plan));
        if (rp->lostmeta_assessed && rp->lostmeta.lost)
            json_object_object_add(o, "lost-metadata", lost_metadata_json(&rp->lostmeta, false));
        json_object_object_add(o, "check", qc_json_check_result(image, &rp->check));
        qc_json_print(stdout, o);
        json_object_put(o);
        return;
    }
    printf("Dry run: nothing was written to %s.\n", qc_esc(image));
    printf("The repair would fix %" PRId64 " leaked clusters and %" PRId64 " corruptions"
           "%s with %zu write%s:\n", rp->leaks_fixed, rp->corruptions_fixed,
           rp->rebuild ? ", rebuilding the refcount structure," : "",
           qc_plan_nwrites(&rp->plan), qc_plan_nwrites(&rp->plan) == 1 ? "" : "s");
    qc_plan_print(stdout, &rp->plan);
}

/* Nothing was written: the first check's result, with the verdict. */
static int refuse_lost_metadata(const char *image, const struct qc_repair *rp, bool json)
{
    if (json) {
        struct json_object *o = qc_json_check_result(image, &rp->check);
        json_object_object_add(o, "lost-metadata", lost_metadata_json(&rp->lostmeta, false));
        qc_json_print(stdout, o);
        json_object_put(o);
        fflush(stdout);
    }
    return 1;
}

static int repair(const char *image, enum qc_repair_mode mode, bool dry_run, const char *backup,
                  bool force, bool json, const struct qc_io_opts *io)
{
    /* the human report shows no problem list: the first check keeps one */
    struct lm_print lmp = { image, dry_run ? LM_DRY_RUN : force ? LM_FORCED : LM_REFUSED };
    struct qc_repair_opts ro = { mode, print_event, &lmp, json ? 0 : 1, true, force || dry_run,
                                 print_lost_metadata_cb };
    struct qc_repair rp;
    struct qc_file f;
    struct keep before, after;
    struct qc_backup_writer bw = { -1, 0, { 0 } };
    const char *what = NULL, *berr = "";
    struct qc_backing_locks bl = { .n = 0 };
    char lock_msg[600];
    const struct qc_lostmeta *forced_past = NULL;
    bool opened = false;
    int r, rc;

    if (!dry_run) {
        if (open_for_writing(&f, image, force))
            return 1;
        opened = true;
        /* as qemu-img check -r, which opens the backing chain under the writer */
        if (qc_backing_locks_take(image, force, &bl, lock_msg, sizeof lock_msg) < 0) {
            fprintf(stderr, PROG ": Could not open '%s': %s\n", qc_esc_qemu(image), lock_msg);
            qc_file_close(&f);
            return 1;
        }
        if ((r = qc_io_opts_apply(io, &f, &what)) < 0) {
            fprintf(stderr, PROG ": %s: %s\n", what ? what : qc_esc(image), qc_strerror(r));
            qc_backing_locks_release(&bl);
            qc_file_close(&f);
            return 1;
        }
    }
    if ((r = qc_repair_plan(image, &ro, &rp)) < 0) {
        fprintf(stderr, "qemu-img: Check failed: %s\n", failure_text(r));
        rc = 1;
        goto out;
    }
    switch (rp.status) {
    case QC_REPAIR_CHECK_FAILED:
        fflush(stderr);
        rc = check_failed(&rp.check);
        goto out;
    case QC_REPAIR_NEED_REBUILD:
    case QC_REPAIR_FAILED:
        fprintf(stderr, "qemu-img: Check failed: %s\n", rp.error ? qc_strerror(rp.error) : strerror(EIO));
        rc = 1;
        goto out;
    case QC_REPAIR_LOST_METADATA:
        rc = refuse_lost_metadata(image, &rp, json);
        goto out;
    case QC_REPAIR_PLANNED:
        break;
    }
    if (rp.check.encrypted)
        qc_view_note_keyless(stderr, PROG, image, "repaired");
    fflush(stderr);
    if (dry_run) {
        print_notes(&rp);
        dry_run_output(image, &rp, json);
        rc = qc_check_exit_code(&rp.check);
        goto out;
    }
    if (backup) {
        const char *err = "";
        if ((r = qc_backup_save(&rp.plan, &f, backup, &bw, &err)) < 0) {
            fprintf(stderr, PROG ": %s: %s: %s; nothing was written to %s\n", qc_esc(backup), err,
                    qc_strerror(r), qc_esc(image));
            rc = 1;
            goto out;
        }
    }
    keep_read(&before, rp.ctx->f, rp.ctx->bm_dir_offset,
              rp.ctx->nb_bitmaps ? rp.ctx->bm_dir_size : 0, rp.snapshot_header_changed);
    if ((r = qc_plan_execute(&rp.plan, &f)) < 0) {
        fprintf(stderr, PROG ": %s: writing failed: %s\n", qc_esc(image), qc_strerror(r));
        keep_free(&before);
        rc = 1;
        goto out;
    }
    if (backup && (r = qc_backup_finish(&bw, &f, &berr)) < 0)
        fprintf(stderr, PROG ": %s: %s: %s; it still undoes the repair, as one that did "
                "not finish\n", qc_esc(backup), berr, qc_strerror(r));
    qc_repair_release(&rp);
    if (rp.lostmeta_assessed && rp.lostmeta.lost)
        forced_past = &rp.lostmeta;
    keep_read(&after, &f, before.bmdir_off, before.bmdir_len, false);
    print_notes(&rp);
    keep_compare(&before, &after, &rp);
    keep_free(&before);
    keep_free(&after);

    if (rp.corruptions_fixed || rp.leaks_fixed) {
        struct qc_check_opts co = { 0 };
        struct qc_check_result r2;
        if (!json) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %" PRId64 " leaked clusters\n"
                   "    %" PRId64 " corruptions\n\n"
                   "Double checking the fixed image now...\n", rp.leaks_fixed,
                   rp.corruptions_fixed);
            fflush(stdout);
        }
        co.sink = print_event;
        co.verify_compressed = json;
        co.problem_limit = json ? 0 : 1;
        if ((r = qc_check_image(image, &co, &r2, NULL)) < 0) {
            fprintf(stderr, "qemu-img: Check failed: %s\n", failure_text(r));
            rc = 1;
            goto out;
        }
        fflush(stderr);
        if (r2.status != QC_CHECK_DONE) {
            rc = check_failed(&r2);
        } else {
            r2.corruptions_fixed = rp.corruptions_fixed;
            r2.leaks_fixed = rp.leaks_fixed;
            print_result(image, &r2, json, forced_past);
            fflush(stdout);
            if (r2.check_errors)
                fprintf(stderr, "qemu-img: Check failed\n");
            rc = qc_check_exit_code(&r2);
        }
        qc_check_result_free(&r2);
    } else {
        /* nothing fixed: qemu-img reports the repair run itself */
        struct qc_check_result res = rp.check;
        res.corruptions = rp.corruptions;
        res.leaks = rp.leaks;
        res.check_errors = rp.check_errors;
        print_result(image, &res, json, forced_past);
        fflush(stdout);
        if (res.check_errors)
            fprintf(stderr, "qemu-img: Check failed\n");
        rc = qc_check_exit_code(&res);
    }
out:
    qc_backup_abandon(&bw);
    qc_repair_free(&rp);
    qc_backing_locks_release(&bl);
    if (opened)
        qc_file_close(&f);
    return rc;
}

int main(int argc, char **argv)
{
    enum { O_OUTPUT = 256, O_VERSION, O_DRY_RUN, O_BACKUP, O_UNDO, O_FORCE };
    static const struct option opts[] = {
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, O_OUTPUT },
        { "dry-run", no_argument, NULL, O_DRY_RUN },
        { "backup", required_argument, NULL, O_BACKUP },
        { "undo", required_argument, NULL, O_UNDO },
        { "force", no_argument, NULL, O_FORCE },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, O_VERSION },
        QC_IO_LONG_OPTIONS,
        QC_FOLLOW_LONG_OPTIONS,
        { NULL, 0, NULL, 0 }
    };
    enum qc_repair_mode mode = QC_REPAIR_ALL;
    const char *backup = NULL, *undo_file = NULL, *image;
    bool json = false, dry_run = false, force = false;
    struct qc_io_opts io;
    char err[256];
    int c, r;

    qc_io_opts_init(&io);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (!strcmp(optarg, "leaks"))
                mode = QC_REPAIR_LEAKS;
            else if (!strcmp(optarg, "all"))
                mode = QC_REPAIR_ALL;
            else
                return usage_error("-r must be leaks or all, not '%s'", optarg);
            break;
        case O_OUTPUT:
            if (!strcmp(optarg, "json"))
                json = true;
            else if (!strcmp(optarg, "human"))
                json = false;
            else
                return usage_error("--output must be human or json, not '%s'", optarg);
            break;
        case O_DRY_RUN: dry_run = true; break;
        case O_BACKUP: backup = optarg; break;
        case O_UNDO: undo_file = optarg; break;
        case O_FORCE: force = io.overwrite = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf(PROG " %s\n", QC_VERSION); return 0;
        case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            r = qc_io_opts_parse(&io, c, optarg, err, sizeof err);
            if (r == 0)
                r = qc_follow_opt_parse(c, optarg, err, sizeof err);
            if (r == 1)
                break;
            if (r < 0)
                return usage_error("%s", err);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("%s", "missing IMAGE");
    if (optind < argc - 1)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    image = argv[optind];
    /* the log, the record and the backup are never a file the image reads */
    static struct qc_protect chain_files;
    qc_protect_init(&chain_files);
    qc_image_protect_chain(image, &chain_files);
    io.protect = &chain_files;
    if (undo_file && (dry_run || backup))
        return usage_error("%s", "--undo excludes --dry-run and --backup");
    if (dry_run && backup)
        return usage_error("%s", "--dry-run writes nothing: --backup makes no sense with it");
    if (undo_file)
        return undo(image, undo_file, force, &io);
    /* hostile images can produce millions of problem lines */
    setvbuf(stderr, NULL, _IOFBF, 1 << 20);
    return repair(image, mode, dry_run, backup, force, json, &io);
}
