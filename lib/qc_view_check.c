/* qemu-img check's summary, human and JSON, shared by qc-check and qc-repair. */
#include <inttypes.h>
#include <stdio.h>

#include <json-c/json.h>

#include "qc_check.h"
#include "qc_view.h"

void qc_check_print_human(FILE *out, const struct qc_check_result *r)
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

struct json_object *qc_check_result_json(const char *path, const struct qc_check_result *r)
{
    struct json_object *o = json_object_new_object();

    if (r->status == QC_CHECK_DONE) {
        /* qemu-img's keys in its (hash) order, present as it has them */
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
