/* qc-salvage's outputs (qc_salvage_output.h). */
#include "qc_salvage_output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qc_io.h"
#include "qc_l2.h"
#include "qc_salvage.h"
#include "qc_sidefile.h"
#include "qc_util.h"
#include "qc_view.h"
#include "qc_writer.h"

static int map_line(void *opaque, const struct qc_salvage_range *r)
{
    FILE *out = opaque;
    fprintf(out, "0x%08" PRIx64 "  0x%08" PRIx64 "  %c\n", r->guest, r->len,
            r->status == QC_SV_LOST ? '-' : '+');
    return 0;
}

/* Recovered (+) and lost (-) only, so neighbouring statuses merge. */
struct map_merge {
    FILE *out;
    struct qc_salvage_range cur;
    bool have;
};

static int map_merge_line(void *opaque, const struct qc_salvage_range *r)
{
    struct map_merge *m = opaque;
    bool lost = r->status == QC_SV_LOST;
    if (m->have && (m->cur.status == QC_SV_LOST) == lost && m->cur.guest + m->cur.len == r->guest) {
        m->cur.len += r->len;
        return 0;
    }
    if (m->have)
        map_line(m->out, &m->cur);
    m->cur = *r;
    m->have = true;
    return 0;
}

int qc_salvage_write_map(const struct qc_salvage *s, FILE *out)
{
    fprintf(out, "# Mapfile. Created by qc-salvage\n");
    fprintf(out, "# '+' recovered (known, reconstructed or unallocated), '-' lost\n");
    fprintf(out, "# current_pos  current_status  current_pass\n");
    fprintf(out, "0x00000000     +               1\n");
    fprintf(out, "#      pos        size  status\n");
    struct map_merge m = { .out = out };
    int rc = qc_salvage_spans(s, true, map_merge_line, &m);
    if (rc == 0 && m.have)
        map_line(out, &m.cur);
    return rc;
}

static int report_range(void *opaque, const struct qc_salvage_range *r)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "guest_offset", qc_json_u64(r->guest));
    json_object_object_add(o, "length", qc_json_u64(r->len));
    json_object_object_add(o, "status", json_object_new_string(qc_salvage_status_name(r->status)));
    if (r->host)
        json_object_object_add(o, "host_offset", qc_json_u64(r->host));
    if (r->entry & QC_OFLAG_COMPRESSED)
        json_object_object_add(o, "compressed", json_object_new_boolean(1));
    json_object_object_add(o, "evidence", json_object_new_string(r->evidence));
    json_object_array_add(opaque, o);
    return 0;
}

static struct json_object *report_damage(const struct qc_salvage *s)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < s->nd; i++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "structure", json_object_new_string(s->d[i].structure));
        json_object_object_add(o, strcmp(s->d[i].structure, "L1 entry") ? "offset" : "index",
                               qc_json_u64(s->d[i].offset));
        json_object_object_add(o, "problem", json_object_new_string(s->d[i].problem));
        json_object_object_add(o, "used_instead", json_object_new_string(s->d[i].instead));
        json_object_array_add(a, o);
    }
    return a;
}

static struct json_object *report_orphans(const struct qc_salvage *s)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < s->no; i++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "host_offset", qc_json_u64(s->o[i].host));
        json_object_object_add(o, "looks_like", json_object_new_string(s->o[i].looks_like));
        json_object_array_add(a, o);
    }
    return a;
}

struct json_object *qc_salvage_report_json(const struct qc_salvage *s, const char *image)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "image", qc_json_text(image));
    json_object_object_add(o, "cluster_size", qc_json_u64(s->cluster_size));
    json_object_object_add(o, "virtual_size", qc_json_u64(s->virtual_size));
    json_object_object_add(o, "header_intact", json_object_new_boolean(s->header_ok));
    struct json_object *ranges = json_object_new_array();
    qc_salvage_spans(s, true, report_range, ranges);
    json_object_object_add(o, "ranges", ranges);
    json_object_object_add(o, "damage", report_damage(s));
    json_object_object_add(o, "orphans", report_orphans(s));
    struct qc_salvage_totals t;
    qc_salvage_totals(s, &t);
    struct json_object *tot = json_object_new_object();
    for (int st = QC_SV_UNALLOCATED; st <= QC_SV_LOST; st++)
        json_object_object_add(tot, qc_salvage_status_name(st), qc_json_u64(t.bytes[st]));
    json_object_object_add(tot, "orphan_clusters", qc_json_u64(s->no));
    json_object_object_add(o, "totals", tot);
    json_object_object_add(o, "exit_status", json_object_new_int(qc_salvage_exit_status(s)));
    return o;
}
