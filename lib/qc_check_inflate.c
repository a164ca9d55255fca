/* Worker threads that inflate compressed clusters for the check. */
#include "qc_check_inflate.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qc_compress.h"

#define QUEUE 1024u
#define MAX_THREADS 4u

struct job {
    uint64_t seq, offset, size, entry;
};

struct qc_inflate_pool {
    struct qc_file *f;
    unsigned type;
    uint64_t cs;
    unsigned nthreads;
    pthread_t threads[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job q[QUEUE];
    size_t head, count;
    bool closing;
    uint64_t seq;
    struct qc_inflate_failure *fail;
    size_t nfail, capfail;
    bool nomem;
    /* in-line mode */
    uint8_t *src, *dst;
    size_t src_cap;
};

/* Does the job's data inflate to a whole cluster?  SRC/DST are scratch. */
static bool inflates(struct qc_inflate_pool *p, const struct job *j, uint8_t **src, size_t *cap,
                     uint8_t *dst)
{
    if (*cap < j->size) {
        uint8_t *n = realloc(*src, (size_t)j->size);
        if (!n)
            return true;   /* no verdict without memory */
        *src = n;
        *cap = (size_t)j->size;
    }
    if (qc_file_read_qemu(p->f, j->offset, *src, (size_t)j->size) < 0)
        return false;
    return qc_decompress(p->type, *src, (size_t)j->size, dst, (size_t)p->cs) == 0;
}

static void record(struct qc_inflate_pool *p, const struct job *j)
{
    if (p->nfail == p->capfail) {
        size_t n = p->capfail ? p->capfail * 2 : 16;
        struct qc_inflate_failure *v = realloc(p->fail, n * sizeof *v);
        if (!v) {
            p->nomem = true;
            return;
        }
        p->fail = v;
        p->capfail = n;
    }
    p->fail[p->nfail++] = (struct qc_inflate_failure){ j->seq, j->offset, j->size, j->entry };
}

static void *worker(void *arg)
{
    struct qc_inflate_pool *p = arg;
    uint8_t *src = NULL, *dst = malloc((size_t)p->cs);
    size_t cap = 0;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct job j;
        bool ok;
        while (!p->count && !p->closing)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->count)
            break;
        j = p->q[p->head];
        p->head = (p->head + 1) % QUEUE;
        p->count--;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        ok = !dst || inflates(p, &j, &src, &cap, dst);
        pthread_mutex_lock(&p->mu);
        if (!ok)
            record(p, &j);
    }
    pthread_mutex_unlock(&p->mu);
    free(src);
    free(dst);
    return NULL;
}

int qc_inflate_start(struct qc_inflate_pool **out, struct qc_file *f, unsigned type,
                     uint64_t cs, unsigned threads)
{
    struct qc_inflate_pool *p = calloc(1, sizeof *p);

    *out = NULL;
    if (!p)
        return -ENOMEM;
    p->f = f;
    p->type = type;
    p->cs = cs;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads && (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->cv, NULL)))
        threads = 0;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    if (threads && !p->nthreads) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    if (!p->nthreads && !(p->dst = malloc((size_t)cs))) {
        free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

int qc_inflate_push(struct qc_inflate_pool *p, uint64_t offset, uint64_t size, uint64_t entry)
{
    struct job j = { p->seq++, offset, size, entry };

    if (!p->nthreads) {
        if (!inflates(p, &j, &p->src, &p->src_cap, p->dst))
            record(p, &j);
        return p->nomem ? -ENOMEM : 0;
    }
    pthread_mutex_lock(&p->mu);
    while (p->count == QUEUE)
        pthread_cond_wait(&p->cv, &p->mu);
    p->q[(p->head + p->count) % QUEUE] = j;
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static int by_seq(const void *a, const void *b)
{
    const struct qc_inflate_failure *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t qc_inflate_finish(struct qc_inflate_pool *p, struct qc_inflate_failure **failures)
{
    size_t n;

    if (!p) {
        *failures = NULL;
        return 0;
    }
    if (p->nthreads) {
        pthread_mutex_lock(&p->mu);
        p->closing = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (unsigned i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    if (p->nfail)
        qsort(p->fail, p->nfail, sizeof *p->fail, by_seq);
    *failures = p->fail;
    n = p->nfail;
    free(p->src);
    free(p->dst);
    free(p);
    return n;
}
