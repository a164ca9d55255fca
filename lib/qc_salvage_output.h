/* qc-salvage's outputs: the recovered disk (raw or qcow2), the ddrescue
 * map, the JSON report and the lost+found directory, all created under
 * qc_sidefile's rules (never the image, exclusive, no symlink, 0600). */
#ifndef QC_SALVAGE_OUTPUT_H
#define QC_SALVAGE_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

struct qc_salvage;

struct qc_salvage_output {
    const char *image, *out;
    const char *map, *report, *lost_found, *snapshot;
    bool raw, dry_run, force, progress;
};

/* The whole run of the tool; returns its exit status. */
int qc_salvage_run(const struct qc_salvage_output *o, const char *prog);

/* The ddrescue mapfile and the JSON report of an analysed salvage. */
int qc_salvage_write_map(const struct qc_salvage *s, FILE *out);
struct json_object;
struct json_object *qc_salvage_report_json(const struct qc_salvage *s, const char *image);

#endif
