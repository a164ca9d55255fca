/*
 * Inflating compressed clusters to find those that are damaged, on worker
 * threads: the walk hands descriptors over in order and goes on; the
 * failures come back sorted by that order, so the report does not depend on
 * timing.
 */
#ifndef QC_CHECK_INFLATE_H
#define QC_CHECK_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"

struct qc_inflate_failure {
    uint64_t seq;          /* the order the walk handed it over */
    uint64_t offset, size; /* the compressed bytes */
    uint64_t entry;        /* the L2 entry */
};

struct qc_inflate_pool;

/* THREADS 0: inflate in line, in qc_inflate_push. */
int qc_inflate_start(struct qc_inflate_pool **p, struct qc_file *f, unsigned compression_type,
                     uint64_t cluster_size, unsigned threads);
int qc_inflate_push(struct qc_inflate_pool *p, uint64_t offset, uint64_t size, uint64_t entry);
/* Waits for the work, stops the threads, hands over the failures (sorted,
 * malloc'ed) and frees the pool. */
size_t qc_inflate_finish(struct qc_inflate_pool *p, struct qc_inflate_failure **failures);

#endif
