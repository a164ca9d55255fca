/* libFuzzer target: the salvage analysis on arbitrary bytes (the cluster
 * scan, header inference, L2 placement), its spans and totals, and the
 * guest bytes of the first recovered ranges. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc_salvage.h"

/* recovered ranges whose bytes are read per input */
#define READ_LIMIT 64

static int count_span(void *opaque, const struct qc_salvage_range *span)
{
    (*(size_t *)opaque)++;
    (void)span;
    return 0;
}

static void read_some(struct qc_salvage *s)
{
    uint8_t *buf = malloc((size_t)s->cluster_size);
    size_t done = 0;

    if (!buf)
        return;
    for (size_t i = 0; i < s->nr && done < READ_LIMIT; i++) {
        const struct qc_salvage_range *r = &s->r[i];
        if (r->status == QC_SV_KNOWN || r->status == QC_SV_RECONSTRUCTED) {
            (void)qc_salvage_read_cluster(s, r, buf);
            done++;
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qc_salvage_options opt = { 0 };
    struct qc_salvage_totals t;
    struct qc_salvage s;
    struct qc_file f;
    char path[64];
    size_t spans = 0;
    int fd = memfd_create("fuzz_salvage", 0);

    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (qc_file_open(&f, path, 0, NULL) == 0) {
        qc_salvage_init(&s);
        if (qc_salvage_analyse(&s, &f, &opt) == 0) {
            qc_salvage_totals(&s, &t);
            (void)qc_salvage_spans(&s, true, count_span, &spans);
            (void)qc_salvage_exit_status(&s);
            read_some(&s);
        }
        qc_salvage_free(&s);
        qc_file_close(&f);
    }
    close(fd);
    return 0;
}
