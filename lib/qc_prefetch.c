/* Read-ahead of table sequences through a ring of buffers. */
#include "qc_prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS 3

struct slot {
    uint8_t *buf;
    const uint8_t **ptrs;
    uint64_t first, count;
    int err;
    bool full;
};

struct qc_prefetch {
    struct qc_file *f;
    uint64_t n, size, per_slot;
    qc_prefetch_item_fn fn;
    void *opaque;
    struct slot slots[NSLOTS];
    uint64_t next_item;      /* first item of the next batch to fill */
    unsigned fill, take;     /* slot indexes */
    bool threaded, started, stop, inited;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Fills S with the batch starting at item I: adjacent items are read with
 * one request.  Returns the first item of the following batch. */
static uint64_t fill_slot(struct qc_prefetch *p, struct slot *s, uint64_t i)
{
    uint64_t end = i + p->per_slot;
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
    return s->err < 0 ? p->n : i;
}

static void *reader(void *arg)
{
    struct qc_prefetch *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->next_item < p->n) {
        struct slot *s = &p->slots[p->fill];
        if (s->full) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        uint64_t start = p->next_item, next;
        pthread_mutex_unlock(&p->mu);
        next = fill_slot(p, s, start);
        pthread_mutex_lock(&p->mu);
        p->next_item = next;
        s->full = true;
        p->fill = (p->fill + 1) % NSLOTS;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int qc_prefetch_start(struct qc_prefetch **out, struct qc_file *f, uint64_t n, uint64_t size,
                      uint64_t batch_bytes, qc_prefetch_item_fn fn, void *opaque, bool threaded)
{
    struct qc_prefetch *p = calloc(1, sizeof *p);
    unsigned nslots = threaded ? NSLOTS : 1;

    *out = NULL;
    if (!p)
        return QC_E_NOMEM;
    p->f = f;
    p->n = n;
    p->size = size;
    p->per_slot = batch_bytes / size ? batch_bytes / size : 1;
    p->fn = fn;
    p->opaque = opaque;
    p->threaded = threaded;
    for (unsigned i = 0; i < nslots; i++) {
        p->slots[i].buf = malloc((size_t)(p->per_slot * size));
        p->slots[i].ptrs = malloc((size_t)p->per_slot * sizeof *p->slots[i].ptrs);
        if (!p->slots[i].buf || !p->slots[i].ptrs) {
            qc_prefetch_stop(p);
            return QC_E_NOMEM;
        }
    }
    if (threaded) {
        if (pthread_mutex_init(&p->mu, NULL)) {
            qc_prefetch_stop(p);
            return QC_E_NOMEM;
        }
        if (pthread_cond_init(&p->cv, NULL)) {
            pthread_mutex_destroy(&p->mu);
            qc_prefetch_stop(p);
            return QC_E_NOMEM;
        }
        p->inited = true;
        if (pthread_create(&p->thread, NULL, reader, p) == 0)
            p->started = true;
        else
            p->threaded = false;   /* read in line instead */
    }
    *out = p;
    return 0;
}

int qc_prefetch_next(struct qc_prefetch *p, uint64_t *first, uint64_t *count,
                     const uint8_t *const **ptrs)
{
    struct slot *s;

    if (!p->threaded) {
        s = &p->slots[0];
        if (p->next_item >= p->n)
            return 1;
        p->next_item = fill_slot(p, s, p->next_item);
    } else {
        pthread_mutex_lock(&p->mu);
        /* hand the previous slot back */
        if (p->slots[p->take].full && p->slots[p->take].count == UINT64_MAX) {
            p->slots[p->take].full = false;
            p->take = (p->take + 1) % NSLOTS;
            pthread_cond_broadcast(&p->cv);
        }
        s = &p->slots[p->take];
        while (!s->full && p->next_item < p->n)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!s->full) {
            pthread_mutex_unlock(&p->mu);
            return 1;
        }
        pthread_mutex_unlock(&p->mu);
    }
    *first = s->first;
    *count = s->count;
    *ptrs = s->ptrs;
    if (p->threaded) {
        int err = s->err;
        /* mark as taken: released on the next call */
        s->count = UINT64_MAX;
        return err;
    }
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
