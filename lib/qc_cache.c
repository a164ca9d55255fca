/* The L2 and refcount-block caches, with QEMU's write-out rules. */
#include "qc_cache.h"

#include <stdlib.h>
#include <string.h>

int qc_cache_init(struct qc_cache *c, struct qc_file *f, size_t nslots, size_t table_size,
                  enum qc_event write_event, enum qc_event load_event)
{
    memset(c, 0, sizeof *c);
    if (nslots == 0 || table_size == 0 || nslots > SIZE_MAX / table_size)
        return QC_E_RANGE;
    c->tables = calloc(nslots, table_size);
    c->e = calloc(nslots, sizeof *c->e);
    if (!c->tables || !c->e) {
        qc_cache_destroy(c);
        return QC_E_NOMEM;
    }
    c->file = f;
    c->size = nslots;
    c->table_size = table_size;
    c->write_event = write_event;
    c->load_event = load_event;
    return 0;
}

void qc_cache_destroy(struct qc_cache *c)
{
    free(c->tables);
    free(c->e);
    c->tables = NULL;
    c->e = NULL;
    c->size = 0;
}

static uint8_t *table_addr(struct qc_cache *c, size_t i)
{
    return c->tables + i * c->table_size;
}

static size_t table_index(const struct qc_cache *c, const uint8_t *t)
{
    return (size_t)(t - c->tables) / c->table_size;
}

static int entry_flush(struct qc_cache *c, size_t i);

static int flush_dependency(struct qc_cache *c)
{
    int r = qc_cache_flush(c->depends);
    if (r < 0)
        return r;
    c->depends = NULL;
    c->depends_on_flush = false;
    return 0;
}

static int entry_flush(struct qc_cache *c, size_t i)
{
    int r = 0;

    if (!c->e[i].dirty || !c->e[i].offset)
        return 0;
    if (c->depends) {
        r = flush_dependency(c);
    } else if (c->depends_on_flush) {
        r = qc_file_flush(c->file);
        if (r >= 0)
            c->depends_on_flush = false;
    }
    if (r < 0)
        return r;
    if (c->pre_write) {
        r = c->pre_write(c->pre_write_opaque, c, c->e[i].offset, c->table_size);
        if (r < 0)
            return r;
    }
    r = qc_file_write(c->file, c->e[i].offset, table_addr(c, i), c->table_size,
                      c->write_event);
    if (r < 0)
        return r;
    c->e[i].dirty = false;
    return 0;
}

int qc_cache_write(struct qc_cache *c)
{
    int result = 0;
    for (size_t i = 0; i < c->size; i++) {
        int r = entry_flush(c, i);
        if (r < 0 && result == 0)
            result = r;
    }
    return result;
}

int qc_cache_flush(struct qc_cache *c)
{
    int r = qc_cache_write(c);
    if (r < 0)
        return r;
    return qc_file_flush(c->file);
}

int qc_cache_set_dependency(struct qc_cache *c, struct qc_cache *dep)
{
    int r;

    if (dep->depends) {
        r = flush_dependency(dep);
        if (r < 0)
            return r;
    }
    if (c->depends && c->depends != dep) {
        r = flush_dependency(c);
        if (r < 0)
            return r;
    }
    c->depends = dep;
    return 0;
}

void qc_cache_depends_on_flush(struct qc_cache *c)
{
    c->depends_on_flush = true;
}

/* QEMU's lookup: start at a slot derived from the offset, scan all slots;
 * on a miss take the unreferenced slot released longest ago. */
static int do_get(struct qc_cache *c, uint64_t offset, uint8_t **table, bool read)
{
    size_t start = (size_t)((offset / c->table_size * 4) % c->size);
    size_t i = start, victim = SIZE_MAX;
    uint64_t min_lru = UINT64_MAX;
    int r;

    do {
        const struct qc_cache_entry *e = &c->e[i];
        if (e->offset == offset)
            goto found;
        if (e->ref == 0 && e->lru < min_lru) {
            min_lru = e->lru;
            victim = i;
        }
        if (++i == c->size)
            i = 0;
    } while (i != start);

    if (victim == SIZE_MAX)
        return QC_E_NOMEM;   /* every slot in use: cannot happen single-threaded */
    i = victim;
    r = entry_flush(c, i);
    if (r < 0)
        return r;
    c->e[i].offset = 0;
    if (read) {
        int64_t n;
        if (c->load_event != QC_EV_NONE)
            qc_file_event(c->file, c->load_event);
        n = qc_file_read_padded(c->file, offset, table_addr(c, i), c->table_size);
        if (n < 0)
            return (int)n;
    }
    c->e[i].offset = offset;
found:
    c->e[i].ref++;
    *table = table_addr(c, i);
    return 0;
}

int qc_cache_get(struct qc_cache *c, uint64_t offset, uint8_t **table)
{
    return do_get(c, offset, table, true);
}

int qc_cache_get_empty(struct qc_cache *c, uint64_t offset, uint8_t **table)
{
    return do_get(c, offset, table, false);
}

void qc_cache_put(struct qc_cache *c, uint8_t **table)
{
    size_t i;

    if (!*table)
        return;
    i = table_index(c, *table);
    if (c->e[i].ref > 0 && --c->e[i].ref == 0)
        c->e[i].lru = ++c->lru_clock;
    *table = NULL;
}

void qc_cache_mark_dirty(struct qc_cache *c, const uint8_t *table)
{
    c->e[table_index(c, table)].dirty = true;
}

uint8_t *qc_cache_lookup(struct qc_cache *c, uint64_t offset)
{
    for (size_t i = 0; i < c->size; i++)
        if (c->e[i].offset == offset)
            return table_addr(c, i);
    return NULL;
}

void qc_cache_discard(struct qc_cache *c, const uint8_t *table)
{
    size_t i = table_index(c, table);
    c->e[i].offset = 0;
    c->e[i].lru = 0;
    c->e[i].dirty = false;
}

bool qc_cache_any_dirty(const struct qc_cache *c)
{
    for (size_t i = 0; i < c->size; i++)
        if (c->e[i].dirty && c->e[i].offset)
            return true;
    return false;
}
