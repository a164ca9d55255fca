/* Read-ahead of table sequences through a ring of buffers.
 *
 * Items are cut into fixed batches; batch b lives in slot b % NSLOTS.
 * Whoever is free (the reader thread, or the caller when the batch it
 * needs is not there yet) claims the next batch in order and fills it, so
 * both cores read when reading is the bottleneck.  The caller consumes
 * batches strictly in order. */
#include "qc_prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS 4

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_FULL, SLOT_TAKEN };

struct slot {
    uint8_t *buf;
    const uint8_t **ptrs;
    uint64_t batch;
    uint64_t first, count;
    int err;
    enum slot_state state;
};

struct qc_prefetch {
    struct qc_file *f;
    uint64_t n, size, per_slot, nbatches;
    qc_prefetch_item_fn fn;
    void *opaque;
    unsigned nslots;
    struct slot slots[NSLOTS];
    uint64_t claim;          /* next batch to fill */
    uint64_t take;           /* next batch to hand to the caller */
    bool threaded, started, stop, inited;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Fills S with batch B: adjacent items are read with one request. */
static void fill_slot(struct qc_prefetch *p, struct slot *s, uint64_t b)
{
    uint64_t i = b * p->per_slot, end = i + p->per_slot;
    uint64_t run_off = 0, run_len = 0, prev_off = QC_PREFETCH_NONE;
    size_t pos = 0, run_pos = 0;

    if (end > p->n)
        end = p->n;
    s->first = i;
    s->err = 0;
    for (; i < end; i++) {
        uint64_t off = p->fn(p->opaque, i);
        if (off == QC_PREFETCH_NONE) {
            s->ptrs[i - s->first] = NULL;
            continue;
        }
        /* the same table as the one before: its bytes once */
        if (i > s->first && off == prev_off && s->ptrs[i - 1 - s->first]) {
            s->ptrs[i - s->first] = s->ptrs[i - 1 - s->first];
            continue;
        }
        prev_off = off;
        if (run_len && off != run_off + run_len) {
            s->err = qc_file_read_qemu(p->f, run_off, s->buf + run_pos, (size_t)run_len);
            if (s->err < 0)
                break;
            run_len = 0;
        }
        if (!run_len) {
            run_off = off;
            run_pos = pos;
        }
        run_len += p->size;
        s->ptrs[i - s->first] = s->buf + pos;
        pos += (size_t)p->size;
    }
    if (!s->err && run_len)
        s->err = qc_file_read_qemu(p->f, run_off, s->buf + run_pos, (size_t)run_len);
    /* on an error, the batch ends before the run that failed */
    if (s->err < 0) {
        uint64_t j = s->first;
        while (j < i && !(s->ptrs[j - s->first] && s->ptrs[j - s->first] >= s->buf + run_pos))
            j++;
        i = j;
    }
    s->count = i - s->first;
}

/* With the lock held: claims the next batch if its slot is free.  Returns
 * the slot, or NULL. */
static struct slot *claim(struct qc_prefetch *p)
{
    struct slot *s;

    if (p->claim >= p->nbatches)
        return NULL;
    s = &p->slots[p->claim % p->nslots];
    if (s->state != SLOT_FREE)
        return NULL;
    s->state = SLOT_FILLING;
    s->batch = p->claim++;
    return s;
}

static void *reader(void *arg)
{
    struct qc_prefetch *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->claim < p->nbatches) {
        struct slot *s = claim(p);
        if (!s) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        fill_slot(p, s, s->batch);
        pthread_mutex_lock(&p->mu);
        s->state = SLOT_FULL;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int qc_prefetch_start(struct qc_prefetch **out, struct qc_file *f, uint64_t n, uint64_t size,
                      uint64_t batch_bytes, qc_prefetch_item_fn fn, void *opaque, bool threaded)
{
    struct qc_prefetch *p = calloc(1, sizeof *p);

    *out = NULL;
    if (!p)
        return QC_E_NOMEM;
    p->f = f;
    p->n = n;
    p->size = size;
    p->per_slot = batch_bytes / size ? batch_bytes / size : 1;
    p->nbatches = (n + p->per_slot - 1) / p->per_slot;
    p->fn = fn;
    p->opaque = opaque;
    p->threaded = threaded;
    p->nslots = threaded ? NSLOTS : 1;
    for (unsigned i = 0; i < p->nslots; i++) {
        p->slots[i].buf = malloc((size_t)(p->per_slot * size));
        p->slots[i].ptrs = malloc((size_t)p->per_slot * sizeof *p->slots[i].ptrs);
        if (!p->slots[i].buf || !p->slots[i].ptrs) {
            qc_prefetch_stop(p);
            return QC_E_NOMEM;
        }
    }
    if (threaded) {
        if (pthread_mutex_init(&p->mu, NULL)) {
            p->threaded = false;
        } else if (pthread_cond_init(&p->cv, NULL)) {
            pthread_mutex_destroy(&p->mu);
            p->threaded = false;
        } else {
            p->inited = true;
            if (pthread_create(&p->thread, NULL, reader, p) == 0)
                p->started = true;
        }
    }
    *out = p;
    return 0;
}

int qc_prefetch_next(struct qc_prefetch *p, uint64_t *first, uint64_t *count,
                     const uint8_t *const **ptrs)
{
    struct slot *s;

    if (!p->inited) {
        /* one slot, filled in line */
        if (p->take >= p->nbatches)
            return 1;
        s = &p->slots[0];
        fill_slot(p, s, p->take++);
        *first = s->first;
        *count = s->count;
        *ptrs = s->ptrs;
        return s->err;
    }
    pthread_mutex_lock(&p->mu);
    /* hand the previous batch back */
    if (p->take) {
        struct slot *prev = &p->slots[(p->take - 1) % p->nslots];
        if (prev->state == SLOT_TAKEN) {
            prev->state = SLOT_FREE;
            pthread_cond_broadcast(&p->cv);
        }
    }
    if (p->take >= p->nbatches) {
        pthread_mutex_unlock(&p->mu);
        return 1;
    }
    s = &p->slots[p->take % p->nslots];
    while (!(s->state == SLOT_FULL && s->batch == p->take)) {
        /* rather than wait, read a batch that will be needed */
        struct slot *mine = claim(p);
        if (mine) {
            pthread_mutex_unlock(&p->mu);
            fill_slot(p, mine, mine->batch);
            pthread_mutex_lock(&p->mu);
            mine->state = SLOT_FULL;
            pthread_cond_broadcast(&p->cv);
            continue;
        }
        pthread_cond_wait(&p->cv, &p->mu);
    }
    s->state = SLOT_TAKEN;
    p->take++;
    pthread_mutex_unlock(&p->mu);
    *first = s->first;
    *count = s->count;
    *ptrs = s->ptrs;
    return s->err;
}

void qc_prefetch_stop(struct qc_prefetch *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    if (p->inited) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    for (unsigned i = 0; i < NSLOTS; i++) {
        free(p->slots[i].buf);
        free(p->slots[i].ptrs);
    }
    free(p);
}
