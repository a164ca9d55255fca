/* The writer's pieces: refcount entries at every width, compressed
 * descriptors, first-fit allocation, refcount updates and refblock
 * allocation, byte allocation for compressed data, the metadata cache's
 * eviction and dependency rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qc_cache.h"
#include "qc_refcount.h"
#include "qc_util.h"
#include "qc_wlog.h"
#include "qc_writer_int.h"

/* --- refcount entries --- */

static void refblock_every_width(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 6; order++) {
        uint8_t block[512];
        uint64_t n = sizeof block * 8 >> order, max = qc_refcount_max(order);
        memset(block, 0, sizeof block);
        for (uint64_t i = 0; i < n; i++)
            qc_refblock_set(block, order, i, (i * 7 + 3) & max);
        for (uint64_t i = 0; i < n; i++)
            assert_int_equal(qc_refblock_get(block, order, i), (i * 7 + 3) & max);
        /* neighbours are untouched when one entry changes */
        qc_refblock_set(block, order, 5, max);
        assert_int_equal(qc_refblock_get(block, order, 4), (4 * 7 + 3) & max);
        assert_int_equal(qc_refblock_get(block, order, 6), (6 * 7 + 3) & max);
        assert_int_equal(qc_refblock_get(block, order, 5), max);
    }
    assert_int_equal(qc_refcount_max(0), 1);
    assert_int_equal(qc_refcount_max(4), 65535);
    assert_true(qc_refcount_max(6) == UINT64_MAX);
}

static void refblock_layouts(void **state)
{
    uint8_t b[16] = { 0 };
    (void)state;
    /* docs/format.md §6.2: clusters 0-5 with refcount 1 */
    for (int i = 0; i < 6; i++)
        qc_refblock_set(b, 0, (uint64_t)i, 1);
    assert_int_equal(b[0], 0x3f);
    memset(b, 0, sizeof b);
    for (int i = 0; i < 6; i++)
        qc_refblock_set(b, 1, (uint64_t)i, 1);
    assert_int_equal(b[0], 0x55);
    assert_int_equal(b[1], 0x05);
    memset(b, 0, sizeof b);
    qc_refblock_set(b, 4, 1, 0x1234);
    assert_int_equal(b[2], 0x12);
    assert_int_equal(b[3], 0x34);
}

/* --- compressed descriptors --- */

static void compressed_descriptors(void **state)
{
    static const unsigned bits[] = { 9, 12, 16, 21 };
    (void)state;
    for (size_t k = 0; k < sizeof bits / sizeof bits[0]; k++) {
        struct qc_compressed_geom g = qc_compressed_geom(bits[k]);
        uint64_t cs = 1ull << bits[k], raw;
        uint64_t offsets[] = { 0x50000, 0x5004f, 0x501ff, 0x50200 };
        for (size_t i = 0; i < 4; i++) {
            for (uint64_t len = 1; len < cs; len = len * 3 + 1) {
                uint64_t off = offsets[i];
                uint64_t nsec = ((off + len - 1) >> 9) - (off >> 9);
                struct qc_compressed_desc d;
                if (nsec > g.csize_mask) {
                    assert_false(qc_compressed_encode(&g, off, len, &raw));
                    continue;
                }
                assert_true(qc_compressed_encode(&g, off, len, &raw));
                d = qc_compressed_decode(&g, raw | QC_OFLAG_COMPRESSED);
                assert_int_equal(d.offset, off);
                /* the decoded size covers the data, to the end of its last sector */
                assert_true(d.size >= len);
                assert_int_equal((d.offset + d.size) % 512, 0);
                assert_true(d.size - len < 512);
            }
        }
        /* an offset beyond the field does not fit */
        assert_false(qc_compressed_encode(&g, g.offset_mask + 1, 1, &raw));
    }
    {
        /* docs/format.md §4.2: 79 bytes at 0x5004f with 64 KiB clusters */
        struct qc_compressed_geom g = qc_compressed_geom(16);
        uint64_t raw;
        assert_true(qc_compressed_encode(&g, 0x5004f, 79, &raw));
        assert_true((raw | QC_OFLAG_COMPRESSED) == 0x400000000005004Full);
        assert_true(qc_compressed_encode(&g, 0x501f0, 32, &raw));
        assert_int_equal(raw >> g.csize_shift, 1);   /* spans into a second sector */
    }
}

/* --- images made for the tests --- */

struct img {
    char path[64];
    struct qc_writer w;
};

static void make_image(struct img *t, const char *opts, const char *size)
{
    struct qc_create_options o;
    struct qc_writer_options wo = { .cache_mode = QC_CACHE_WRITEBACK, .no_lock = true };
    char err[256];
    int fd;

    snprintf(t->path, sizeof t->path, "/tmp/qc-unit-XXXXXX");
    fd = mkstemp(t->path);
    assert_true(fd >= 0);
    close(fd);
    qc_create_options_init(&o);
    if (opts)
        assert_int_equal(qc_create_parse_options(&o, opts, err, sizeof err), 0);
    assert_true(qc_parse_size(size, &o.size));
    o.size_set = true;
    assert_int_equal(qc_create(t->path, &o, NULL, false, NULL, err, sizeof err), 0);
    assert_int_equal(qc_writer_open(&t->w, t->path, &wo, NULL), 0);
}

static void close_image(struct img *t, bool clean)
{
    if (clean)
        assert_int_equal(qc_writer_close(&t->w), 0);
    else
        qc_writer_abandon(&t->w);
    unlink(t->path);
}

static uint64_t refcount(struct qc_writer *w, uint64_t offset)
{
    uint64_t rc = 99;
    assert_int_equal(qc_get_refcount(w, offset >> w->cluster_bits, &rc), 0);
    return rc;
}

static void first_fit_allocation(void **state)
{
    struct img t;
    int64_t a, b, c;
    (void)state;

    make_image(&t, NULL, "64M");
    /* header, reftable, refblock, L1: the first free cluster is 4 */
    a = qc_alloc_clusters(&t.w, 65536);
    assert_int_equal(a, 4 * 65536);
    b = qc_alloc_clusters(&t.w, 3 * 65536);
    assert_int_equal(b, 5 * 65536);
    assert_int_equal(refcount(&t.w, (uint64_t)b), 1);
    assert_int_equal(refcount(&t.w, (uint64_t)b + 2 * 65536), 1);
    assert_int_equal(refcount(&t.w, 8 * 65536), 0);
    /* a freed cluster is found again by the next allocation */
    qc_free_clusters(&t.w, (uint64_t)b + 65536, 65536, QC_DISCARD_NEVER);
    assert_int_equal(refcount(&t.w, (uint64_t)b + 65536), 0);
    c = qc_alloc_clusters(&t.w, 65536);
    assert_int_equal(c, b + 65536);
    /* two clusters do not fit in a one-cluster hole */
    qc_free_clusters(&t.w, (uint64_t)a, 65536, QC_DISCARD_NEVER);
    c = qc_alloc_clusters(&t.w, 2 * 65536);
    assert_int_equal(c, 8 * 65536);
    assert_int_equal(refcount(&t.w, (uint64_t)a), 0);
    /* allocating at a given offset stops at the first used cluster */
    assert_int_equal(qc_alloc_clusters_at(&t.w, 4 * 65536, 3), 1);
    close_image(&t, false);
}

static void refcounts_every_width(void **state)
{
    (void)state;
    for (unsigned bits = 1; bits <= 64; bits *= 2) {
        char opts[64];
        struct img t;
        uint64_t max = qc_refcount_max((unsigned)__builtin_ctz(bits));
        int64_t a, b;

        snprintf(opts, sizeof opts, "refcount_bits=%u", bits);
        make_image(&t, opts, "64M");
        assert_int_equal(t.w.refcount_order, (unsigned)__builtin_ctz(bits));
        /* creation left clusters 0-3 at refcount 1 */
        for (uint64_t c = 0; c < 4; c++)
            assert_int_equal(refcount(&t.w, c * 65536), 1);
        a = qc_alloc_clusters(&t.w, 65536);
        assert_int_equal(a, 4 * 65536);
        assert_int_equal(refcount(&t.w, (uint64_t)a), 1);
        /* compressed data: a second reference to the same host cluster
         * unless the width cannot hold 2 */
        a = qc_alloc_bytes(&t.w, 100);
        b = qc_alloc_bytes(&t.w, 100);
        if (max >= 2) {
            assert_int_equal(b, a + 100);
            assert_int_equal(refcount(&t.w, (uint64_t)a), 2);
        } else {
            assert_int_equal(b % 65536, 0);
            assert_true(b != a - (a % 65536));
            assert_int_equal(refcount(&t.w, (uint64_t)a), 1);
            assert_int_equal(refcount(&t.w, (uint64_t)b), 1);
        }
        /* freeing below zero is refused and changes nothing */
        qc_free_clusters(&t.w, 6 * 65536 + 65536 * 8, 65536, QC_DISCARD_NEVER);
        assert_int_equal(refcount(&t.w, 14 * 65536), 0);
        close_image(&t, true);
    }
}

static void compressed_bytes_span_clusters(void **state)
{
    struct img t;
    int64_t a, b;
    (void)state;

    make_image(&t, "cluster_size=4k", "16M");
    a = qc_alloc_bytes(&t.w, 3000);
    assert_int_equal(a % 4096, 0);
    /* 2000 more bytes do not fit in the 1096 left: they span into the next
     * cluster, which gets a reference too */
    b = qc_alloc_bytes(&t.w, 2000);
    assert_int_equal(b, a + 3000);
    assert_int_equal(refcount(&t.w, (uint64_t)a), 2);
    assert_int_equal(refcount(&t.w, (uint64_t)a + 4096), 1);
    close_image(&t, true);
}

static void new_refblock_self_describing(void **state)
{
    struct img t;
    int64_t a = 0;
    (void)state;

    /* 512-byte clusters, 16-bit refcounts: one refblock covers 256
     * clusters; the L1 takes clusters 3..34 of a 64 MiB image */
    make_image(&t, "cluster_size=512", "64M");
    assert_int_equal(t.w.reftable[1], 0);
    for (int i = 0; i < 230; i++)
        a = qc_alloc_clusters(&t.w, 512);
    assert_true(a >= 255 * 512);
    assert_true(t.w.reftable[1] != 0);
    /* the new block lies in the range it describes and counts itself */
    assert_int_equal(t.w.reftable[1] / 512 / 256, 1);
    assert_int_equal(refcount(&t.w, t.w.reftable[1]), 1);
    close_image(&t, true);
}

static void reftable_growth(void **state)
{
    struct img t;
    uint64_t old_table;
    (void)state;

    /* 512-byte clusters: a one-cluster reftable covers 64 refblocks,
     * 8 MiB of file; allocating past that grows the table */
    make_image(&t, "cluster_size=512", "64M");
    old_table = t.w.reftable_offset;
    assert_true(qc_alloc_clusters(&t.w, 9ull << 20) > 0);
    assert_true(t.w.reftable_offset != old_table);
    assert_true(t.w.reftable_size > 64);
    assert_int_equal(refcount(&t.w, t.w.reftable_offset), 1);
    assert_int_equal(refcount(&t.w, old_table), 0);
    close_image(&t, true);
}

/* --- the cache model --- */

static void cache_lru_and_dependencies(void **state)
{
    struct qc_file f;
    struct qc_cache a, b;
    struct qc_wlog log;
    char path[] = "/tmp/qc-cache-XXXXXX", *rec = NULL, err[128];
    size_t rec_len = 0;
    uint8_t *t1, *t2, *t3;
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(qc_file_open(&f, path, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL), 0);
    f.record = open_memstream(&rec, &rec_len);
    assert_non_null(f.record);
    assert_int_equal(qc_wlog_put_magic(f.record), 0);
    assert_int_equal(qc_cache_init(&a, &f, 2, 512, QC_EV_L2_UPDATE, QC_EV_L2_LOAD), 0);
    assert_int_equal(qc_cache_init(&b, &f, 2, 512, QC_EV_REFBLOCK_UPDATE_PART, QC_EV_NONE), 0);

    /* two slots: the third table evicts the one released longest ago,
     * writing it because it is dirty */
    assert_int_equal(qc_cache_get_empty(&a, 1024, &t1), 0);
    memset(t1, 1, 512);
    qc_cache_mark_dirty(&a, t1);
    qc_cache_put(&a, &t1);
    assert_int_equal(qc_cache_get_empty(&a, 2048, &t2), 0);
    memset(t2, 2, 512);
    qc_cache_mark_dirty(&a, t2);
    qc_cache_put(&a, &t2);
    assert_int_equal(qc_cache_get(&a, 2048, &t2), 0);   /* 2048 used again */
    qc_cache_put(&a, &t2);
    assert_int_equal(qc_cache_get(&a, 4096, &t3), 0);   /* evicts 1024 */
    qc_cache_put(&a, &t3);
    assert_null(qc_cache_lookup(&a, 1024));
    assert_non_null(qc_cache_lookup(&a, 2048));
    assert_int_equal(f.nwrites, 1);

    /* a depends on b: writing a flushes b first (write, then fdatasync) */
    assert_int_equal(qc_cache_get_empty(&b, 8192, &t1), 0);
    qc_cache_mark_dirty(&b, t1);
    qc_cache_put(&b, &t1);
    assert_int_equal(qc_cache_set_dependency(&a, &b), 0);
    assert_int_equal(qc_cache_flush(&a), 0);
    assert_false(qc_cache_any_dirty(&a));
    assert_false(qc_cache_any_dirty(&b));
    fclose(f.record);
    f.record = NULL;
    assert_int_equal(qc_wlog_parse(&log, (uint8_t *)rec, rec_len, err, sizeof err), 0);
    rec = NULL;   /* the log owns the buffer now */
    {
        /* 1024 (eviction), 8192 (dependency), flush, 2048, flush */
        static const struct { enum qc_wlog_op op; uint64_t off; } want[] = {
            { QC_WLOG_WRITE, 1024 }, { QC_WLOG_WRITE, 8192 }, { QC_WLOG_FLUSH, 0 },
            { QC_WLOG_WRITE, 2048 }, { QC_WLOG_FLUSH, 0 },
        };
        assert_int_equal(log.n, sizeof want / sizeof want[0]);
        for (size_t i = 0; i < log.n; i++) {
            assert_int_equal(log.v[i].op, want[i].op);
            if (want[i].op == QC_WLOG_WRITE)
                assert_int_equal(log.v[i].offset, want[i].off);
        }
        assert_int_equal(log.v[1].event, QC_EV_REFBLOCK_UPDATE_PART);
        assert_int_equal(log.v[3].event, QC_EV_L2_UPDATE);
    }
    /* a flush with nothing written since the last one is skipped */
    assert_int_equal(qc_file_flush(&f), 0);
    assert_int_equal(f.nflushes, 2);
    qc_wlog_free(&log);
    qc_cache_destroy(&a);
    qc_cache_destroy(&b);
    qc_file_close(&f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refblock_every_width),
        cmocka_unit_test(refblock_layouts),
        cmocka_unit_test(compressed_descriptors),
        cmocka_unit_test(first_fit_allocation),
        cmocka_unit_test(refcounts_every_width),
        cmocka_unit_test(compressed_bytes_span_clusters),
        cmocka_unit_test(new_refblock_self_describing),
        cmocka_unit_test(reftable_growth),
        cmocka_unit_test(cache_lru_and_dependencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
