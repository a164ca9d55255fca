/* libFuzzer target: the whole check (open rules, walk, comparison,
 * OFLAG_COPIED pass, compressed-cluster inflation) on arbitrary bytes. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc_check.h"

static void sink(void *opaque, const struct qc_check_event *ev)
{
    size_t *n = opaque;
    /* touch what a printer would */
    for (const char *p = ev->line; *p; p++)
        (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qc_check_opts o = { 0 };
    struct qc_check_result r;
    struct qc_check *c = NULL;
    char path[64];
    size_t chars = 0;
    uint64_t v;
    int fd = memfd_create("fuzz_check", 0);

    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    o.sink = sink;
    o.opaque = &chars;
    o.verify_compressed = true;
    o.collect_fixes = true;
    if (qc_check_image(path, &o, &r, &c) == 0) {
        (void)qc_check_exit_code(&r);
        if (c && r.status == QC_CHECK_DONE) {
            size_t n;
            for (uint64_t k = 0; k < qc_check_cluster_count(c) && k < 64; k++) {
                (void)qc_check_computed_refcount(c, k);
                (void)qc_check_disk_refcount(c, k, &v);
            }
            (void)qc_check_oflag_fixes(c, &n);
        }
        qc_check_result_free(&r);
    }
    qc_check_free(c);
    close(fd);
    return 0;
}
