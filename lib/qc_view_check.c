/* qemu-img check's report of a check: its stderr lines as they happen, the
 * human summary and the JSON object (shared by qc-check and qc-shell). */
#include "qc_check_int.h"
#include "qc_lostmeta.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "qc_check.h"
#include "qc_util.h"
#include "qc_view.h"

void qc_view_check_event(void *err_file, const struct qc_check_event *ev)
{
    FILE *err = err_file;

    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    /* QEMU's words, with any name from the image in them made safe */
    fputs((ev->flags & QC_EVL_PROGNAME) ? "qemu-img: " : "", err);
    qc_fput_qemu_text(err, ev->line);
    fputs((ev->flags & QC_EVL_NO_NL) ? "" : "\n", err);
}

void qc_view_check_human(FILE *out, const struct qc_check_result *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        fprintf(out, "No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            fprintf(out, "\n%" PRId64 " errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image may corrupt it.\n",
                    r->corruptions);
        if (r->leaks)
            fprintf(out, "\n%" PRId64 " leaked clusters were found on the image.\n"
                    "This means waste of disk space, but no harm to data.\n", r->leaks);
        if (r->check_errors)
            fprintf(out, "\n%" PRId64 " internal errors have occurred during the check.\n",
                    r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters)
        fprintf(out, "%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% fragmented, "
                "%0.2f%% compressed clusters\n",
                (int64_t)r->allocated_clusters, (int64_t)r->total_clusters,
                (int64_t)r->allocated_clusters * 100.0 / (int64_t)r->total_clusters,
                (int64_t)r->fragmented_clusters * 100.0 / (int64_t)r->allocated_clusters,
                (int64_t)r->compressed_clusters * 100.0 / (int64_t)r->allocated_clusters);
    if (r->image_end_offset)
        fprintf(out, "Image end offset: %" PRId64 "\n", (int64_t)r->image_end_offset);
}

static void add_if(struct json_object *o, const char *key, int64_t v)
{
    if (v)
        json_object_object_add(o, key, json_object_new_int64(v));
}

/* qemu-img's keys in its (hash) order, present as it has them, then ours. */
struct json_object *qc_json_check_result(const char *path, const struct qc_check_result *r)
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
    if (r->encrypted)
        json_object_object_add(o, "encrypted", json_object_new_boolean(true));
    json_object_object_add(o, "problems", qc_json_problems(&r->problems));
    if (r->problems.dropped)
        json_object_object_add(o, "problems-omitted",
                               json_object_new_int64((int64_t)r->problems.dropped));
    return o;
}

/* Leaks that look like lost metadata are a finding of their own in the
 * JSON (qemu-img's numbers and exit status stay as they are): qc-repair
 * refuses them and qc-salvage recovers what they map. */
static void add_lost_metadata(struct qc_check *c, struct qc_check_result *r)
{
    struct qc_lostmeta lm;
    struct qc_problem *p;

    if (r->status != QC_CHECK_DONE || (r->leaks == 0 && r->corruptions == 0))
        return;
    if (qc_lostmeta_assess(c, &lm) == 0 && lm.lost) {
        p = qc_problem_add_sev(&r->problems, QC_P_LOST_METADATA, QC_SEV_INFO,
                               lm.n_l2_like ? lm.l2_like[0] << c->cb : QC_NO_OFFSET,
                               "%" PRIu64 " of %" PRIu64 " allocated clusters are leaked and look "
                               "like lost metadata (%zu shaped like L2 tables, mapping %" PRIu64
                               " leaked clusters; %" PRIu64 " L1 entries into L2 tables): "
                               "qc-repair refuses them, qc-salvage recovers the disk",
                               lm.leaked, lm.allocated, lm.n_l2_like, lm.mapped, lm.l1_into_l2);
        if (p) {
            p->cluster = lm.n_l2_like ? lm.l2_like[0] : QC_NO_OFFSET;
            p->value = lm.leaked;
        }
    }
    qc_lostmeta_free(&lm);
}

int qc_view_check(FILE *out, FILE *err, const char *path, const struct qc_view_check_opts *vo)
{
    struct qc_check *ctx = NULL;
    struct qc_check_opts opts = { 0 };
    struct qc_check_result r;
    int rc;

    opts.sink = qc_view_check_event;
    opts.opaque = err;
    opts.verify_compressed = vo->json;
    if (qc_check_image(path, &opts, &r, vo->json ? &ctx : NULL) < 0) {
        fprintf(err, "qemu-img: Check failed: Cannot allocate memory\n");
        return 1;
    }
    if (ctx) {
        add_lost_metadata(ctx, &r);
        qc_check_free(ctx);
    }
    rc = qc_check_exit_code(&r);
    if (r.encrypted && r.status == QC_CHECK_DONE)
        qc_view_note_keyless(err, "qc-check", path, "checked");
    switch (r.status) {
    case QC_CHECK_OPEN_FAILED:
    case QC_CHECK_UNSUPPORTED:
        fprintf(err, "qemu-img: %s\n", qc_esc_qemu(r.message));
        break;
    case QC_CHECK_FAILED:
        fprintf(err, "qemu-img: Check failed: %s\n", qc_esc_qemu(r.message));
        break;
    case QC_CHECK_DONE:
        break;
    }
    /* problem lines first, as qemu-img (whose stderr is unbuffered) */
    fflush(err);
    if (!vo->quiet && (vo->json || r.status == QC_CHECK_DONE)) {
        if (vo->json) {
            struct json_object *o = qc_json_check_result(path, &r);
            if (vo->lines)
                qc_json_print_line(out, o);
            else
                qc_json_print(out, o);
            json_object_put(o);
        } else {
            qc_view_check_human(out, &r);
        }
    }
    fflush(out);
    if (r.status == QC_CHECK_DONE && r.check_errors)
        fprintf(err, "qemu-img: Check failed\n");
    fflush(err);
    qc_check_result_free(&r);
    return rc;
}
