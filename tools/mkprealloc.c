/*
 * mkprealloc: writes a qcow2 image with preallocation=metadata the way
 * qemu-img lays it out (each L2 table followed by the data clusters it maps,
 * refcount blocks placed where the allocation reaches a new block's range),
 * in seconds rather than qemu-img create's tens of minutes for small
 * clusters.  Data clusters are holes.  Used by tools/bench.sh.
 *
 *   mkprealloc OUT SIZE CLUSTER_BITS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static int fd;
static uint64_t cs, rbe, next;      /* next free cluster */
static uint64_t *refblock_at;       /* cluster of refcount block i, 0 = none */
static uint64_t nrefblocks;

static void pwrite_all(const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("mkprealloc: write");
            exit(1);
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
}

/* N clusters in a row; refcount blocks for the ranges the run enters come
 * first, as QEMU allocates them before the clusters they describe. */
static uint64_t alloc_run(uint64_t n)
{
    for (;;) {
        bool placed = false;
        for (uint64_t idx = next / rbe; idx <= (next + n - 1) / rbe; idx++) {
            if (idx >= nrefblocks) {
                fprintf(stderr, "mkprealloc: refcount table too small\n");
                exit(1);
            }
            if (!refblock_at[idx]) {
                refblock_at[idx] = next++;
                placed = true;
                break;
            }
        }
        if (!placed)
            break;
    }
    next += n;
    return next - n;
}

int main(int argc, char **argv)
{
    uint64_t size, cb, l2e, data, l2n, l1c, rtc, total, l1_off, rt_off;
    uint8_t *buf, *l1;

    if (argc != 4) {
        fprintf(stderr, "usage: mkprealloc OUT SIZE CLUSTER_BITS\n");
        return 64;
    }
    size = strtoull(argv[2], NULL, 0);
    cb = strtoull(argv[3], NULL, 0);
    if (cb < 9 || cb > 21 || !size || size % 512) {
        fprintf(stderr, "mkprealloc: bad size or cluster bits\n");
        return 64;
    }
    cs = 1ull << cb;
    l2e = cs / 8;
    rbe = cs * 8 / 16;               /* 16-bit refcounts */
    data = (size + cs - 1) / cs;
    l2n = (data + l2e - 1) / l2e;
    l1c = (l2n * 8 + cs - 1) / cs;
    /* reftable large enough for everything, refcount blocks included */
    rtc = 1;
    for (;;) {
        total = 1 + rtc + l1c + l2n + data;
        nrefblocks = (total + total / rbe + 2 + rbe - 1) / rbe + 1;
        if (nrefblocks * 8 <= rtc * cs)
            break;
        rtc = (nrefblocks * 8 + cs - 1) / cs;
    }
    nrefblocks = rtc * cs / 8;
    refblock_at = calloc(nrefblocks, sizeof *refblock_at);
    buf = calloc(1, cs);
    l1 = calloc(l1c, cs);
    if (!refblock_at || !buf || !l1)
        return 1;
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    /* header, refcount table, L1 table, in this order from cluster 0 */
    next = 1;
    rt_off = next * cs;
    next += rtc;
    l1_off = next * cs;
    next += l1c;
    for (uint64_t i = 0; i < l2n; i++) {
        uint64_t l2 = alloc_run(1);
        uint64_t n = data - i * l2e < l2e ? data - i * l2e : l2e;
        uint64_t d = alloc_run(n);
        memset(buf, 0, cs);
        for (uint64_t j = 0; j < n; j++)
            put64(buf + 8 * j, (1ull << 63) | ((d + j) * cs));
        pwrite_all(buf, cs, l2 * cs);
        put64(l1 + 8 * i, (1ull << 63) | (l2 * cs));
    }
    pwrite_all(l1, l1c * cs, l1_off);
    /* refcount blocks for the ranges nothing was allocated in yet (the
     * header, tables, and the blocks themselves), after the data */
    for (bool more = true; more;) {
        more = false;
        for (uint64_t i = 0; i * rbe < next; i++) {
            if (!refblock_at[i]) {
                if (i >= nrefblocks) {
                    fprintf(stderr, "mkprealloc: refcount table too small\n");
                    return 1;
                }
                refblock_at[i] = next++;
                more = true;
            }
        }
    }
    /* every cluster below NEXT is in use once */
    {
        uint8_t *rt = calloc(rtc, cs);
        if (!rt)
            return 1;
        for (uint64_t i = 0; i * rbe < next; i++) {
            uint64_t lo = i * rbe;
            memset(buf, 0, cs);
            for (uint64_t k = lo; k < next && k < lo + rbe; k++)
                buf[2 * (k - lo) + 1] = 1;
            pwrite_all(buf, cs, refblock_at[i] * cs);
            put64(rt + 8 * i, refblock_at[i] * cs);
        }
        pwrite_all(rt, rtc * cs, rt_off);
        free(rt);
    }
    /* the header (version 3, no extensions) */
    memset(buf, 0, cs);
    put32(buf, 0x514649FB);
    put32(buf + 4, 3);
    put32(buf + 20, (uint32_t)cb);
    put64(buf + 24, size);
    put32(buf + 36, (uint32_t)l2n);
    put64(buf + 40, l1_off);
    put64(buf + 48, rt_off);
    put32(buf + 56, (uint32_t)rtc);
    put32(buf + 96, 4);
    put32(buf + 100, 112);
    pwrite_all(buf, cs, 0);
    if (ftruncate(fd, (off_t)(next * cs)) < 0 || close(fd) < 0) {
        perror("mkprealloc");
        return 1;
    }
    free(buf);
    free(l1);
    free(refblock_at);
    return 0;
}
