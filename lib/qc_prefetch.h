/*
 * Reading a sequence of equal-sized tables (L2 tables in L1 order, refcount
 * blocks in table order) ahead of their use: a reader thread fills a small
 * ring of buffers while the caller decodes, adjacent tables are read with
 * one request.  The caller sees the tables in order, so results do not
 * depend on timing.  Without a thread the same batches are read in line.
 */
#ifndef QC_PREFETCH_H
#define QC_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_io.h"

#define QC_PREFETCH_NONE UINT64_MAX

/* File offset of item I, or QC_PREFETCH_NONE for an item with no bytes to
 * read (an empty entry, or a table wholly past the end of the file).
 * Called from the reader thread: it may only read shared data. */
typedef uint64_t (*qc_prefetch_item_fn)(void *opaque, uint64_t i);

struct qc_prefetch;

/* Items [0, N) of SIZE bytes each, batches of up to BATCH_BYTES. */
int qc_prefetch_start(struct qc_prefetch **p, struct qc_file *f, uint64_t n, uint64_t size,
                      uint64_t batch_bytes, qc_prefetch_item_fn fn, void *opaque, bool threaded);

/* The next batch: items [*FIRST, *FIRST + *COUNT), (*PTRS)[j] the bytes of
 * item FIRST + j or NULL.  Valid until the next call.  Returns 0, 1 when
 * all items were delivered, or the read error (<0) at the item where it
 * happened (*FIRST + *COUNT is that item). */
int qc_prefetch_next(struct qc_prefetch *p, uint64_t *first, uint64_t *count,
                     const uint8_t *const **ptrs);

void qc_prefetch_stop(struct qc_prefetch *p);

#endif
