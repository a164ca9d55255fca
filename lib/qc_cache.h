/*
 * The metadata caches of a writer: L2 slices and refcount blocks, with
 * QEMU's rules for when a cached table reaches the file
 * (docs/qemu-behaviour.md §4.2-§4.3): LRU eviction over a fixed number of
 * slots, a dependency on the other cache ("write that one first, and
 * flush"), and a pending flush before the next write.  Modelling these
 * rules is what gives a writer QEMU's write order and therefore QEMU's
 * crash windows.
 */
#ifndef QC_CACHE_H
#define QC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"

struct qc_cache_entry {
    uint64_t offset;      /* file offset of the table; 0 = slot empty */
    uint64_t lru;         /* value of the LRU clock when last released */
    int ref;              /* users holding the table */
    bool dirty;
};

struct qc_cache {
    struct qc_file *file;
    size_t size;                  /* number of slots */
    size_t table_size;            /* bytes per table (an L2 slice or a refblock) */
    uint8_t *tables;              /* size * table_size bytes */
    struct qc_cache_entry *e;
    struct qc_cache *depends;     /* must be flushed before our entries are written */
    bool depends_on_flush;        /* a file flush is due before our next write */
    uint64_t lru_clock;
    enum qc_event write_event;    /* fired by each table write */
    enum qc_event load_event;     /* fired by each table read, or QC_EV_NONE */
    /* asked before each table write (QEMU's overlap check in its cache
     * flush); a negative return stops the write and is returned */
    int (*pre_write)(void *opaque, const struct qc_cache *c, uint64_t offset, size_t len);
    void *pre_write_opaque;
};

int qc_cache_init(struct qc_cache *c, struct qc_file *f, size_t nslots, size_t table_size,
                  enum qc_event write_event, enum qc_event load_event);
void qc_cache_destroy(struct qc_cache *c);

/* The table at OFFSET, read from the file on a miss (bytes past the end of
 * the file read as zeros).  Each get is paired with a put. */
int qc_cache_get(struct qc_cache *c, uint64_t offset, uint8_t **table);
/* The same without reading: the caller fills the table. */
int qc_cache_get_empty(struct qc_cache *c, uint64_t offset, uint8_t **table);
void qc_cache_put(struct qc_cache *c, uint8_t **table);
void qc_cache_mark_dirty(struct qc_cache *c, const uint8_t *table);

/* Writes every dirty table (in slot order), honouring the dependencies. */
int qc_cache_write(struct qc_cache *c);
/* qc_cache_write, then a file flush. */
int qc_cache_flush(struct qc_cache *c);
/* C's tables may reach the file only after DEP's (flushed). */
int qc_cache_set_dependency(struct qc_cache *c, struct qc_cache *dep);
/* A file flush must come before C's next table write. */
void qc_cache_depends_on_flush(struct qc_cache *c);

/* The cached table at exactly OFFSET, or NULL. */
uint8_t *qc_cache_lookup(struct qc_cache *c, uint64_t offset);
/* Drops a table whose cluster was freed (unwritten changes are lost). */
void qc_cache_discard(struct qc_cache *c, const uint8_t *table);
bool qc_cache_any_dirty(const struct qc_cache *c);

#endif
