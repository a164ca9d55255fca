/* libFuzzer target: planning a repair (-r all and -r leaks) on arbitrary
 * bytes, the plan's listing and read-through, and carrying out plans of
 * bounded size on the in-memory file. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc_repair.h"

/* plans that would write or grow more than this are only listed */
#define EXECUTE_LIMIT (64ull << 20)

static void sink(void *opaque, const struct qc_check_event *ev)
{
    size_t *n = opaque;
    for (const char *p = ev->line; *p; p++)
        (*n)++;
}

static uint64_t plan_extent(const struct qc_plan *p)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < p->n; i++) {
        const struct qc_plan_step *s = &p->v[i];
        if (s->op == QC_PLAN_WRITE)
            bytes += s->len;
        else if (s->op == QC_PLAN_GROW && s->off > bytes)
            bytes = s->off;
    }
    return bytes;
}

static void one(int fd, const char *path, enum qc_repair_mode mode, FILE *devnull)
{
    struct qc_repair_opts o = { 0 };
    struct qc_repair rp;
    size_t chars = 0;

    o.mode = mode;
    o.sink = sink;
    o.opaque = &chars;
    /* the result is freed whatever qc_repair_plan returns */
    if (qc_repair_plan(path, &o, &rp) == 0 && rp.status == QC_REPAIR_PLANNED) {
        uint8_t buf[4096];
        qc_plan_print(devnull, &rp.plan);
        /* what every write puts in its first bytes, read through the plan */
        for (size_t i = 0; i < rp.plan.n; i++) {
            const struct qc_plan_step *s = &rp.plan.v[i];
            if (s->op == QC_PLAN_WRITE)
                (void)qc_plan_overlay(&rp.plan, s->off, buf,
                                      s->len < sizeof buf ? (size_t)s->len : sizeof buf);
        }
        if (mode == QC_REPAIR_ALL && plan_extent(&rp.plan) <= EXECUTE_LIMIT) {
            struct qc_file f;
            if (qc_file_open(&f, path, QC_OPEN_WRITE, NULL) == 0) {
                (void)qc_plan_execute(&rp.plan, &f);
                qc_file_close(&f);
            }
        }
    }
    qc_repair_free(&rp);
    (void)fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char path[64];
    int fd = memfd_create("fuzz_repair", 0);

    if (fd < 0)
        return 0;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    if (!devnull || (size && write(fd, data, size) != (ssize_t)size)) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    one(fd, path, QC_REPAIR_LEAKS, devnull);
    one(fd, path, QC_REPAIR_ALL, devnull);
    close(fd);
    return 0;
}
