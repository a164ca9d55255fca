/* Helpers shared by the check and repair unit tests: a small image built in
 * memory, and a check event sink collecting QEMU's printed lines. */
#ifndef CHECK_IMAGE_H
#define CHECK_IMAGE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_check.h"
#include "qc_endian.h"
#include "qc_refcount.h"

#define CS 0x10000u

struct img {
    uint8_t *b;
    size_t len;
    unsigned order;
};

/* Refcount of cluster K in the image's one refcount block (cluster 2). */
static __attribute__((unused)) void set_refcount(struct img *m, uint64_t k, uint64_t v)
{
    qc_refblock_set(m->b + 2 * CS, m->order, k, v);
}

/* 64 KiB clusters, 64 MiB: header, reftable (1), refblock (2), L1 (3),
 * L2 (4), data at guest 0 (5); refcounts 1. */
static __attribute__((unused)) struct img make_image(unsigned order)
{
    struct img m = { calloc(1, 6 * CS), 6 * CS, order };
    uint8_t *h = m.b;

    qc_put_be32(h, 0x514649FB);
    qc_put_be32(h + 4, 3);
    qc_put_be32(h + 20, 16);
    qc_put_be64(h + 24, 64u << 20);
    qc_put_be32(h + 36, 1);
    qc_put_be64(h + 40, 3 * CS);
    qc_put_be64(h + 48, CS);
    qc_put_be32(h + 56, 1);
    qc_put_be32(h + 96, order);
    qc_put_be32(h + 100, 112);
    qc_put_be64(m.b + CS, 2 * CS);
    for (unsigned k = 0; k < 6; k++)
        set_refcount(&m, k, 1);
    qc_put_be64(m.b + 3 * CS, 0x8000000000000000ull | 4 * CS);
    qc_put_be64(m.b + 4 * CS, 0x8000000000000000ull | 5 * CS);
    memset(m.b + 5 * CS, 0xAB, CS);
    return m;
}

struct lines {
    char buf[8192];
    size_t len;
};

/* A check sink: the lines QEMU prints, as it prints them. */
static __attribute__((unused)) void collect(void *opaque, const struct qc_check_event *ev)
{
    struct lines *l = opaque;
    if (!(ev->flags & QC_EVL_PRINTED))
        return;
    l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s%s",
                               (ev->flags & QC_EVL_PROGNAME) ? "qemu-img: " : "", ev->line,
                               (ev->flags & QC_EVL_NO_NL) ? "" : "\n");
}

#endif
