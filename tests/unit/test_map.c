/* Unit tests: subcluster ranges, contiguous runs, map entry merging,
 * hexdump -C rendering, refcount lookups. */
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_io.h"
#include "qc_l2.h"
#include "qc_map.h"
#include "qc_refcount.h"
#include "qc_util.h"
#include "qc_view.h"

#define CS 65536ull
#define CB 16u

static struct qc_l2_entry ext(uint64_t raw, uint64_t bitmap)
{
    return qc_l2_entry_decode(raw, bitmap, true, false);
}

/* bits FROM..TO-1 */
static uint64_t bits(unsigned from, unsigned to)
{
    uint64_t v = 0;
    for (unsigned i = from; i < to; i++)
        v |= 1ull << i;
    return v;
}

static void test_subcluster_range_extended(void **state)
{
    enum qc_subcluster_type t;
    struct qc_l2_entry e;
    (void)state;

    /* allocated 0-1, zero 4-5, the rest unallocated, in an allocated cluster */
    e = ext(0x8000000000050000ull, 0x0000003000000003ull);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 0, &t), 2);
    assert_int_equal(t, QC_SCT_NORMAL);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 1, &t), 1);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 2, &t), 2);
    assert_int_equal(t, QC_SCT_UNALLOCATED_ALLOC);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 4, &t), 2);
    assert_int_equal(t, QC_SCT_ZERO_ALLOC);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 6, &t), 26);
    assert_int_equal(t, QC_SCT_UNALLOCATED_ALLOC);

    /* every subcluster allocated */
    e = ext(0x50000, 0xffffffffull);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 0, &t), 32);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 31, &t), 1);

    /* unallocated cluster reading as zero */
    e = ext(0, 0xffffffff00000000ull);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 3, &t), 29);
    assert_int_equal(t, QC_SCT_ZERO_PLAIN);

    /* invalid: a bit in both halves, or allocation without a cluster */
    e = ext(0x50000, 0x0000000100000001ull);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 7, &t), -1);
    assert_int_equal(t, QC_SCT_INVALID);
    e = ext(0, 0x10);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 0, &t), -1);

    /* compressed: the rest of the cluster, whatever the bitmap */
    e = ext(0x4000000000060000ull, 0x1234);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 5, &t), 27);
    assert_int_equal(t, QC_SCT_COMPRESSED);

    /* bit 0 is no zero flag with extended L2 */
    e = ext(0x50001, 0x1);
    assert_int_equal(qc_l2_subcluster_range(&e, true, 0, &t), 1);
    assert_int_equal(t, QC_SCT_NORMAL);
}

static void test_subcluster_range_standard(void **state)
{
    enum qc_subcluster_type t;
    struct qc_l2_entry e;
    (void)state;

    e = qc_l2_entry_decode(1, 0, false, false);
    assert_int_equal(qc_l2_subcluster_range(&e, false, 0, &t), 1);
    assert_int_equal(t, QC_SCT_ZERO_PLAIN);
    e = qc_l2_entry_decode(0x50001, 0, false, false);
    qc_l2_subcluster_range(&e, false, 0, &t);
    assert_int_equal(t, QC_SCT_ZERO_ALLOC);
    e = qc_l2_entry_decode(0, 0, false, false);
    qc_l2_subcluster_range(&e, false, 0, &t);
    assert_int_equal(t, QC_SCT_UNALLOCATED_PLAIN);
    /* with an external data file, offset 0 plus COPIED is data at 0 */
    e = qc_l2_entry_decode(QC_OFLAG_COPIED, 0, false, true);
    qc_l2_subcluster_range(&e, false, 0, &t);
    assert_int_equal(t, QC_SCT_NORMAL);
}

static void put_std(uint8_t *t, unsigned i, uint64_t raw)
{
    qc_put_be64(t + 8 * i, raw);
}

static void put_ext(uint8_t *t, unsigned i, uint64_t raw, uint64_t bm)
{
    qc_put_be64(t + 16 * i, raw);
    qc_put_be64(t + 16 * i + 8, bm);
}

static void test_contiguous_standard(void **state)
{
    uint8_t t[8 * 16];
    uint64_t bad = 0;
    (void)state;

    memset(t, 0, sizeof t);
    for (unsigned i = 0; i < 5; i++)
        put_std(t, i, QC_OFLAG_COPIED | (0x50000 + i * CS));
    put_std(t, 5, QC_OFLAG_COPIED | 0x200000);       /* offset jump */
    put_std(t, 6, 1);                                /* zero */
    put_std(t, 7, 1);
    put_std(t, 8, 0x210001);                         /* zero, allocated */
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 0, 16, 0, &bad), 5);
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 2, 3, 0, &bad), 3);
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 5, 11, 0, &bad), 1);
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 6, 10, 0, &bad), 2);
    /* unallocated to the end */
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 9, 7, 0, &bad), 7);
    /* compressed entries are answered one at a time */
    put_std(t, 10, QC_OFLAG_COMPRESSED | 0x300000);
    put_std(t, 11, QC_OFLAG_COMPRESSED | 0x300100);
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 10, 6, 0, &bad), 1);
    /* with a data file, COPIED at offset 0 ends an unallocated run */
    memset(t, 0, sizeof t);
    put_std(t, 3, QC_OFLAG_COPIED);
    assert_int_equal(qc_l2_count_contiguous(t, false, true, CS, 0, 16, 0, &bad), 3);
    assert_int_equal(qc_l2_count_contiguous(t, false, false, CS, 0, 16, 0, &bad), 16);
}

static void test_contiguous_extended(void **state)
{
    uint8_t t[16 * 8];
    uint64_t bad = 0;
    (void)state;

    memset(t, 0, sizeof t);
    /* cluster 0 fully allocated, cluster 1 allocated 0-7 right after it:
     * one answer of 40 subclusters */
    put_ext(t, 0, 0x50000, 0xffffffffull);
    put_ext(t, 1, 0x60000, bits(0, 8));
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 0, &bad), 40);
    /* starting inside cluster 0 */
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 10, &bad), 30);
    /* an invalid entry after a full uniform run fails the whole query */
    put_ext(t, 1, 0x60000, 0xffffffffull);
    put_ext(t, 2, 0, 0x1);
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 0, &bad), -1);
    assert_int_equal(bad, 2);
    /* but not when the run stops before it */
    put_ext(t, 1, 0x60000, bits(0, 31));
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 0, &bad), 63);
    /* unallocated-alloc subclusters run into the next cluster only when it
     * continues the host offsets */
    memset(t, 0, sizeof t);
    put_ext(t, 0, 0x50000, 0);
    put_ext(t, 1, 0x70000, 0);
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 0, &bad), 32);
    put_ext(t, 1, 0x60000, 0);
    assert_int_equal(qc_l2_count_contiguous(t, true, false, CS, 0, 8, 0, &bad), 64);
}

/* The generic per-entry rule, for comparison with the library's fast path. */
static int64_t reference_count(const uint8_t *t, bool data_file, uint64_t idx, uint64_t nb)
{
    enum qc_subcluster_type expect = QC_SCT_NORMAL, ty;
    uint64_t expect_off = 0;
    bool check = false;
    int64_t count = 0;

    for (uint64_t i = 0; i < nb; i++) {
        struct qc_l2_entry e = qc_l2_table_entry(t, false, data_file, idx + i);
        int r = qc_l2_subcluster_range(&e, false, 0, &ty);
        if (i == 0) {
            if (ty == QC_SCT_COMPRESSED)
                return r;
            expect = ty;
            expect_off = e.raw & QC_L2E_OFFSET_MASK;
            check = ty == QC_SCT_NORMAL || ty == QC_SCT_ZERO_ALLOC;
        } else if (ty != expect) {
            break;
        } else if (check) {
            expect_off += CS;
            if ((e.raw & QC_L2E_OFFSET_MASK) != expect_off)
                break;
        }
        count += r;
    }
    return count;
}

static void test_contiguous_random(void **state)
{
    uint8_t t[8 * 64];
    uint64_t bad;
    (void)state;

    srand(7);
    for (int round = 0; round < 20000; round++) {
        uint64_t base = 0x100000;
        for (unsigned i = 0; i < 64; i++) {
            uint64_t raw;
            switch (rand() % 8) {
            case 0: raw = 0; break;
            case 1: raw = 1; break;
            case 2: raw = QC_OFLAG_COPIED; break;
            case 3: raw = QC_OFLAG_COMPRESSED | (uint64_t)rand(); break;
            case 4: raw = (base + CS * i) | 1; break;
            case 5: raw = ((uint64_t)rand() << 9) | (rand() & 0x1ff); break;
            default: raw = QC_OFLAG_COPIED | (base + CS * i) | (rand() % 4 == 0 ? 0x100 : 0); break;
            }
            put_std(t, i, raw);
        }
        for (int k = 0; k < 8; k++) {
            uint64_t idx = (uint64_t)(rand() % 64), nb = 1 + (uint64_t)rand() % (64 - idx);
            bool df = rand() % 2;
            assert_int_equal(qc_l2_count_contiguous(t, false, df, CS, idx, nb, 0, &bad),
                             reference_count(t, df, idx, nb));
        }
    }
}

static void test_mergeable(void **state)
{
    struct qc_file f1, f2;
    struct qc_map_entry a = { .start = 0, .length = 65536, .depth = 0, .present = true,
                              .data = true, .has_offset = true, .offset = 0x50000 };
    struct qc_map_entry b = a;
    (void)state;

    a.file = &f1;
    b.file = &f1;
    b.start = 65536;
    b.offset = 0x60000;
    assert_true(qc_map_mergeable(&a, &b));
    b.offset = 0x70000;                       /* host offsets not contiguous */
    assert_false(qc_map_mergeable(&a, &b));
    b.offset = 0x60000;
    b.file = &f2;                             /* another file */
    assert_false(qc_map_mergeable(&a, &b));
    b.file = &f1;
    b.depth = 1;
    assert_false(qc_map_mergeable(&a, &b));
    b.depth = 0;
    b.zero = true;
    assert_false(qc_map_mergeable(&a, &b));
    /* runs without offsets merge wherever they came from */
    a.has_offset = b.has_offset = false;
    a.zero = b.zero = true;
    a.data = b.data = false;
    a.file = b.file = NULL;
    b.offset = 12345;
    assert_true(qc_map_mergeable(&a, &b));
    /* an empty entry never merges */
    a.length = 0;
    assert_false(qc_map_mergeable(&a, &b));
}

static char *hexdump_of(const uint8_t *p, size_t n, uint64_t addr, size_t chunk)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    struct qc_hexdump h;

    qc_hexdump_start(&h, f, addr);
    for (size_t i = 0; i < n; i += chunk)
        qc_hexdump_feed(&h, p + i, n - i < chunk ? n - i : chunk);
    qc_hexdump_finish(&h);
    fclose(f);
    return s;
}

static void test_hexdump(void **state)
{
    uint8_t buf[72];
    char *s;
    (void)state;

    memset(buf, 0, 64);
    memcpy(buf + 64, "hello\0\x7f\x80", 8);
    s = hexdump_of(buf, 72, 0, 5);
    assert_string_equal(s,
        "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
        "*\n"
        "00000040  68 65 6c 6c 6f 00 7f 80                           |hello...|\n"
        "00000048\n");
    free(s);
    /* a partial last line is shown even when it repeats */
    s = hexdump_of(buf, 40, 8, 40);
    assert_string_equal(s,
        "00000008  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
        "*\n"
        "00000028  00 00 00 00 00 00 00 00                           |........|\n"
        "00000030\n");
    free(s);
    /* nothing read at offset 0: nothing printed; past 4 GiB: wider offsets */
    s = hexdump_of(buf, 0, 0, 1);
    assert_string_equal(s, "");
    free(s);
    s = hexdump_of((const uint8_t *)"x", 1, 0x100000010ull, 1);
    assert_string_equal(s,
        "100000010  78                                                |x|\n"
        "100000011\n");
    free(s);
}

struct unaligned_event {
    uint64_t offset, index;
    unsigned count;
};

static void record_unaligned(void *opaque, uint64_t block_offset, uint64_t table_index)
{
    struct unaligned_event *e = opaque;
    e->offset = block_offset;
    e->index = table_index;
    e->count++;
}

static void test_refcount_lookup(void **state)
{
    char path[] = "/tmp/qc-test-refcount.XXXXXX";
    int fd = mkstemp(path);
    uint8_t *img = calloc(1, 4 * 4096);
    struct qc_file f;
    struct qc_refcount_disk r;
    struct unaligned_event ev = { 0, 0, 0 };
    uint64_t rc = 0;
    (void)state;

    assert_true(fd >= 0);
    /* 4 KiB clusters, 16-bit refcounts (2048 a block): reftable at 4096
     * naming block 0 at 8192 and block 1 at an unaligned offset */
    qc_put_be64(img + 4096, 8192);
    qc_put_be64(img + 4104, 12288 + 512);
    qc_put_be16(img + 8192 + 2 * 3, 7);
    assert_int_equal(write(fd, img, 4 * 4096), 4 * 4096);
    close(fd);
    assert_int_equal(qc_file_open(&f, path, 0, NULL), 0);
    assert_int_equal(qc_refcount_disk_open(&r, &f, 12, 4, 4096, 1), 0);
    r.signal = record_unaligned;
    r.opaque = &ev;
    assert_int_equal(qc_refcount_disk_get(&r, 3, &rc), 0);
    assert_int_equal(rc, 7);
    assert_int_equal(qc_refcount_disk_get(&r, 4, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(qc_refcount_disk_get(&r, 2048, &rc), -EIO);
    assert_int_equal(ev.offset, 12288 + 512);
    assert_int_equal(ev.index, 1);
    /* under empty entries and beyond the table: 0 */
    assert_int_equal(qc_refcount_disk_get(&r, 5000, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(qc_refcount_disk_get(&r, 100000000, &rc), 0);
    assert_int_equal(rc, 0);
    qc_refcount_disk_close(&r);
    qc_file_close(&f);
    unlink(path);
    free(img);
}

static void test_bitmap_constraints(void **state)
{
    struct qc_bitmap b = { .table_offset = 0x30000, .table_size = 1, .flags = QC_BME_FLAG_AUTO,
                           .type = 1, .granularity_bits = 16, .name_size = 2 };
    (void)state;

    /* one 64 KiB cluster of bits at 64 KiB granularity covers 32 GiB */
    assert_true(qc_bitmap_entry_valid(&b, CS, 32ull << 30));
    assert_false(qc_bitmap_entry_valid(&b, CS, (32ull << 30) + 1));
    b.flags |= QC_BME_FLAG_IN_USE;           /* in use: need not cover */
    assert_true(qc_bitmap_entry_valid(&b, CS, (32ull << 30) + 1));
    b.flags = 0x4;                           /* extra_data_compatible: reserved for QEMU */
    assert_false(qc_bitmap_entry_valid(&b, CS, 1 << 20));
    b.flags = 0;
    b.granularity_bits = 8;
    assert_false(qc_bitmap_entry_valid(&b, CS, 1 << 20));
    b.granularity_bits = 16;
    b.table_offset = 0x30200;
    assert_false(qc_bitmap_entry_valid(&b, CS, 1 << 20));
    b.table_offset = 0x30000;
    b.type = 2;
    assert_false(qc_bitmap_entry_valid(&b, CS, 1 << 20));

    assert_true(qc_bitmap_table_entry_valid(0, CB));
    assert_true(qc_bitmap_table_entry_valid(1, CB));          /* all ones */
    assert_true(qc_bitmap_table_entry_valid(0x50000, CB));
    assert_false(qc_bitmap_table_entry_valid(0x50001, CB));   /* bit 0 with an offset */
    assert_false(qc_bitmap_table_entry_valid(0x50200, CB));   /* unaligned */
    assert_false(qc_bitmap_table_entry_valid(0x2, CB));       /* reserved */

    /* 4 MiB at 64 KiB: 64 bits, one word, one cluster; 1 TiB at 512 bytes:
     * 2^31 bits = 256 MiB of words = 4096 clusters */
    assert_int_equal(qc_bitmap_table_size_needed(4 << 20, 16, CB), 1);
    assert_int_equal(qc_bitmap_table_size_needed(1ull << 40, 9, CB), 4096);
    assert_int_equal(qc_bitmap_table_size_needed(65 * 512, 9, 9), 1);
}

static void test_parse_size(void **state)
{
    uint64_t v;
    (void)state;

    assert_true(qc_parse_size("4096", &v));
    assert_int_equal(v, 4096);
    assert_true(qc_parse_size("0x10", &v));
    assert_int_equal(v, 16);
    assert_true(qc_parse_size("64k", &v));
    assert_int_equal(v, 65536);
    assert_true(qc_parse_size("2s", &v));
    assert_int_equal(v, 1024);
    assert_true(qc_parse_size("3b", &v));
    assert_int_equal(v, 1536);
    assert_true(qc_parse_size("1T", &v));
    assert_int_equal(v, 1ull << 40);
    assert_false(qc_parse_size("12q", &v));
    assert_false(qc_parse_size("", &v));
    assert_false(qc_parse_size("99999999999999999999", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subcluster_range_extended),
        cmocka_unit_test(test_subcluster_range_standard),
        cmocka_unit_test(test_contiguous_standard),
        cmocka_unit_test(test_contiguous_extended),
        cmocka_unit_test(test_contiguous_random),
        cmocka_unit_test(test_mergeable),
        cmocka_unit_test(test_hexdump),
        cmocka_unit_test(test_refcount_lookup),
        cmocka_unit_test(test_bitmap_constraints),
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
