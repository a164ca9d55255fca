/* Write logs (our record and dm-log-writes) and qemu-io command parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qc_iocmd.h"
#include "qc_util.h"
#include "qc_wlog.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A dm-log-writes log: superblock counting NR entries, then ENTRIES as
 * (sector, nr_sectors, flags, fill byte). */
static uint8_t *dm_log(uint64_t magic, uint64_t nr, const uint64_t (*entries)[4], size_t n,
                       size_t *len)
{
    size_t size = 512, pos = 512;
    uint8_t *b;
    for (size_t i = 0; i < n; i++)
        size += 512 + ((entries[i][2] & 4) ? 0 : entries[i][1] * 512);
    b = calloc(1, size + 512);   /* and a zero tail */
    put_le(b, magic, 8);
    put_le(b + 8, 1, 8);
    put_le(b + 16, nr, 8);
    put_le(b + 24, 512, 4);
    for (size_t i = 0; i < n; i++) {
        put_le(b + pos, entries[i][0], 8);
        put_le(b + pos + 8, entries[i][1], 8);
        put_le(b + pos + 16, entries[i][2], 8);
        pos += 512;
        if (!(entries[i][2] & 4)) {
            memset(b + pos, (int)entries[i][3], entries[i][1] * 512);
            pos += entries[i][1] * 512;
        }
    }
    *len = size + 512;
    return b;
}

static void dm_log_with_lagging_superblock(void **state)
{
    static const uint64_t e[][4] = {
        { 0x100, 2, 0, 0xaa },      /* write */
        { 0, 0, 1, 0 },             /* flush */
        { 0x80, 1, 4, 0 },          /* discard */
        { 0x200, 1, 0, 0xbb },      /* after the last flush: not counted */
    };
    struct qc_wlog l;
    char err[128];
    size_t len;
    uint8_t *b = dm_log(QC_WLOG_DM_MAGIC, 3, e, 4, &len);
    uint8_t *img = NULL;
    uint64_t ilen = 0, cap = 0;
    (void)state;

    assert_int_equal(qc_wlog_parse(&l, b, len, err, sizeof err), 0);
    assert_int_equal(l.format, QC_WLOG_DM_LOG_WRITES);
    assert_int_equal(l.nr_entries, 3);
    assert_int_equal(l.parsed_entries, 4);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.v[0].op, QC_WLOG_WRITE);
    assert_int_equal(l.v[0].offset, 0x100 * 512);
    assert_int_equal(l.v[0].length, 1024);
    assert_int_equal(l.v[1].op, QC_WLOG_FLUSH);
    assert_int_equal(l.v[2].op, QC_WLOG_DISCARD);
    assert_int_equal(l.v[3].op, QC_WLOG_WRITE);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(qc_wlog_apply(&l.v[i], &img, &ilen, &cap, UINT64_MAX, 1 << 30), 0);
    assert_int_equal(ilen, 0x201 * 512);
    assert_int_equal(img[0x100 * 512], 0xaa);
    assert_int_equal(img[0x200 * 512 + 511], 0xbb);
    free(img);
    qc_wlog_free(&l);
}

static void dm_log_never_flushed(void **state)
{
    static const uint64_t e[][4] = { { 8, 1, 0, 0x11 } };
    struct qc_wlog l;
    char err[128];
    size_t len;
    uint8_t *b = dm_log(0, 0, e, 1, &len);
    (void)state;

    /* a log that saw no flush has an all-zero superblock */
    memset(b, 0, 512);
    assert_int_equal(qc_wlog_parse(&l, b, len, err, sizeof err), 0);
    assert_false(l.superblock_valid);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].offset, 8 * 512);
    qc_wlog_free(&l);
}

static void dm_log_damage(void **state)
{
    static const uint64_t e[][4] = { { 8, 1, 0, 0x11 }, { 9, 1, 0, 0x22 } };
    struct qc_wlog l;
    char err[128];
    size_t len;
    uint8_t *b;
    (void)state;

    /* a counted entry that runs past the end of the log is an error */
    b = dm_log(QC_WLOG_DM_MAGIC, 2, e, 2, &len);
    assert_int_equal(qc_wlog_parse(&l, b, len - 1024, err, sizeof err), -1);
    qc_wlog_free(&l);
    /* unknown flags in a counted entry */
    b = dm_log(QC_WLOG_DM_MAGIC, 1, e, 1, &len);
    put_le(b + 512 + 16, 0x40, 8);
    assert_int_equal(qc_wlog_parse(&l, b, len, err, sizeof err), -1);
    qc_wlog_free(&l);
    /* the same in the uncounted tail ends the log there */
    b = dm_log(QC_WLOG_DM_MAGIC, 1, e, 2, &len);
    put_le(b + 1536 + 16, 0x40, 8);
    assert_int_equal(qc_wlog_parse(&l, b, len, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    qc_wlog_free(&l);
    /* a bad magic */
    b = dm_log(0x1234, 1, e, 1, &len);
    assert_int_equal(qc_wlog_parse(&l, b, len, err, sizeof err), -1);
    qc_wlog_free(&l);
}

static void record_roundtrip(void **state)
{
    char *buf = NULL, err[128];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct qc_wlog l;
    uint8_t data[5] = { 1, 2, 3, 4, 5 };
    (void)state;

    assert_int_equal(qc_wlog_put_magic(f), 0);
    assert_int_equal(qc_wlog_put(f, QC_WLOG_WRITE, 9, 100, 5, data), 0);
    assert_int_equal(qc_wlog_put(f, QC_WLOG_FLUSH, 0, 0, 0, NULL), 0);
    assert_int_equal(qc_wlog_put(f, QC_WLOG_MARK, 0, 3, 7, NULL), 0);
    assert_int_equal(qc_wlog_put(f, QC_WLOG_ZERO, 0, 4096, 512, NULL), 0);
    fclose(f);
    assert_int_equal(qc_wlog_parse(&l, (uint8_t *)buf, len, err, sizeof err), 0);
    assert_int_equal(l.format, QC_WLOG_RECORD);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.v[0].event, 9);
    assert_memory_equal(l.v[0].data, data, 5);
    assert_int_equal(l.v[2].offset, 3);
    assert_int_equal(l.v[2].length, 7);
    assert_int_equal(l.v[3].op, QC_WLOG_ZERO);
    /* cut short inside an entry */
    {
        uint8_t *cut = malloc(len - 3);
        memcpy(cut, l.buf, len - 3);
        qc_wlog_free(&l);
        assert_int_equal(qc_wlog_parse(&l, cut, len - 3, err, sizeof err), -1);
        qc_wlog_free(&l);
    }
}

static void torn_apply(void **state)
{
    uint8_t data[1024], *img = NULL;
    uint64_t len = 0, cap = 0;
    struct qc_wlog_entry e = { .op = QC_WLOG_WRITE, .offset = 100, .length = 1024, .data = data };
    (void)state;

    memset(data, 7, sizeof data);
    assert_int_equal(qc_wlog_apply(&e, &img, &len, &cap, 412, 1 << 20), 0);
    assert_int_equal(len, 512);
    assert_int_equal(img[511], 7);
    assert_int_equal(img[99], 0);
    /* beyond the limit */
    e.offset = 1 << 20;
    assert_int_equal(qc_wlog_apply(&e, &img, &len, &cap, UINT64_MAX, 1 << 20), -1);
    free(img);
}

static void qemu_sizes(void **state)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        { "512", 512 }, { "010", 10 }, { "0x10", 16 }, { "4k", 4096 }, { "1.5k", 1536 },
        { "1M", 1 << 20 }, { "2b", 2 }, { "1G", 1ull << 30 }, { "1.k", 1024 },
    };
    static const char *bad[] = { "1e3", "0.5", "1kB", "1KiB", "2s", "", "-1", "x", "0x" };
    uint64_t v;
    bool hex;
    (void)state;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(qc_parse_qemu_size(ok[i].s, &v, &hex), 0);
        assert_int_equal(v, ok[i].v);
        assert_false(hex);
    }
    assert_int_equal(qc_parse_qemu_size("0x1k", &v, &hex), 0);
    assert_int_equal(v, 1024);
    assert_true(hex);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(qc_parse_qemu_size(bad[i], &v, NULL), -EINVAL);
    assert_int_equal(qc_parse_qemu_size("99999999999999999999", &v, NULL), -ERANGE);
    assert_int_equal(qc_parse_qemu_size("16E", &v, NULL), -ERANGE);
}

static void iocmd_parsing(void **state)
{
    FILE *out = fopen("/dev/null", "w");
    struct qc_iocmd c;
    (void)state;

    assert_int_equal(qc_iocmd_parse("write -P 0x41 1.5k 512", &c, out, out, "t"), 0);
    assert_int_equal(c.kind, QC_IOCMD_WRITE);
    assert_int_equal(c.pattern, 0x41);
    assert_int_equal(c.offset, 1536);
    assert_int_equal(c.length, 512);
    assert_int_equal(qc_iocmd_parse("w 0 1", &c, out, out, "t"), 0);
    assert_int_equal(c.pattern, 0xcd);
    assert_int_equal(qc_iocmd_parse("write -z -u 64k 64k", &c, out, out, "t"), 0);
    assert_true(c.zero && c.unmap);
    assert_int_equal(qc_iocmd_parse("write -c 0 64k", &c, out, out, "t"), 0);
    assert_true(c.compressed);
    assert_int_equal(qc_iocmd_parse("read -P 1 -s 2 -l 10 0 16", &c, out, out, "t"), 0);
    assert_int_equal(c.pattern_offset, 2);
    assert_int_equal(c.pattern_length, 10);
    assert_int_equal(qc_iocmd_parse("  # a comment", &c, out, out, "t"), 0);
    assert_int_equal(c.kind, QC_IOCMD_NONE);
    assert_int_equal(qc_iocmd_parse("flush", &c, out, out, "t"), 0);
    assert_int_equal(c.kind, QC_IOCMD_FLUSH);
    /* qemu-io's refusals */
    assert_int_equal(qc_iocmd_parse("write -c 1 512", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write -c 0 100", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write -u 0 1", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write -z -P 1 0 1", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write -P 300 0 1", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write 0 3G", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("write 0", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("read -l 5 0 1", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("flush 1", &c, out, out, "t"), -1);
    assert_int_equal(qc_iocmd_parse("frobnicate", &c, out, out, "t"), -1);
    fclose(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dm_log_with_lagging_superblock),
        cmocka_unit_test(dm_log_never_flushed),
        cmocka_unit_test(dm_log_damage),
        cmocka_unit_test(record_roundtrip),
        cmocka_unit_test(torn_apply),
        cmocka_unit_test(qemu_sizes),
        cmocka_unit_test(iocmd_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
