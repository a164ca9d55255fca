/* The salvage classifier (qc_scan) and engine (qc_salvage) on clusters and
 * images built in memory from the v3 fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qc_endian.h"
#include "qc_io.h"
#include "qc_salvage.h"
#include "qc_scan.h"
#include "unit_fixtures.h"

#define CS 65536u
#define FILE_SIZE 0x70000u

static void entry_validity(void **state)
{
    (void)state;
    assert_false(qc_scan_l2_entry_valid(0, 16, FILE_SIZE));
    assert_true(qc_scan_l2_entry_valid(0x8000000000050000ull, 16, FILE_SIZE));
    assert_true(qc_scan_l2_entry_valid(0x50000, 16, FILE_SIZE));
    assert_true(qc_scan_l2_entry_valid(1, 16, FILE_SIZE));             /* plain zero */
    assert_false(qc_scan_l2_entry_valid(0x50200, 16, FILE_SIZE));      /* unaligned */
    assert_false(qc_scan_l2_entry_valid(0x70000, 16, FILE_SIZE));      /* past EOF */
    assert_false(qc_scan_l2_entry_valid(0x0100000000050000ull, 16, FILE_SIZE));
    assert_false(qc_scan_l2_entry_valid(0x8000000000050002ull, 16, FILE_SIZE));
    /* compressed: start inside the file, never COPIED */
    assert_true(qc_scan_l2_entry_valid(0x4000000000050123ull, 16, FILE_SIZE));
    assert_false(qc_scan_l2_entry_valid(0xC000000000050123ull, 16, FILE_SIZE));
    assert_false(qc_scan_l2_entry_valid(0x4000000000090000ull, 16, FILE_SIZE));
    /* L1 entries: COPIED only */
    assert_true(qc_scan_l1_entry_valid(0x8000000000040000ull, 16, FILE_SIZE));
    assert_false(qc_scan_l1_entry_valid(0x4000000000040000ull, 16, FILE_SIZE));
    assert_false(qc_scan_l1_entry_valid(0x8000000000040200ull, 16, FILE_SIZE));
}

static void classes(void **state)
{
    static uint8_t c[CS];
    (void)state;
    memset(c, 0, CS);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_ZERO);
    qc_put_be32(c, 0x514649fb);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_HEADER);
    memset(c, 0, CS);
    qc_put_be64(c, 0x8000000000050000ull);
    qc_put_be64(c + 64, 0x8000000000060000ull);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_TABLE);
    /* one garbled sector among several clean ones: a damaged table */
    for (int i = 1; i < 4; i++)
        qc_put_be64(c + 512 * i, 0x8000000000050000ull);
    memset(c + 8 * 512, 0xa5, 512);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_TABLE_DAMAGED);
    memset(c, 0, CS);
    for (size_t i = 0; i < 16; i += 2)
        qc_put_be16(c + i, 1);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_REFBLOCK);
    for (size_t i = 0; i < CS; i++)
        c[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(qc_scan_classify(c, CS, 16, FILE_SIZE), QC_SC_DATA);
}

/* The v3 fixture (64 KiB clusters, L1 at 0x30000, L2 at 0x40000, data
 * 0x22 at 0x50000 for guest 0 and 0x23 at 0x60000 for guest 512 KiB),
 * changed by EDIT, salvaged; returns the exit status, fills S. */
static int salvage_edited(void (*edit)(uint8_t *), struct qc_salvage *s, struct qc_file *f,
                          char **path)
{
    size_t len;
    uint8_t *img = fixture_bytes("v3", 1 << 22, &len);
    assert_non_null(img);
    assert_int_equal(len, FILE_SIZE);
    if (edit)
        edit(img);
    *path = scratch_file(img, len);
    free(img);
    assert_non_null(*path);
    assert_int_equal(qc_file_open(f, *path, 0, NULL), 0);
    qc_salvage_init(s);
    int rc = qc_salvage_analyse(s, f, NULL);
    return rc ? -1 : qc_salvage_exit_status(s);
}

static void done(struct qc_salvage *s, struct qc_file *f, char *path)
{
    qc_salvage_free(s);
    qc_file_close(f);
    unlink(path);
    free(path);
}

static const struct qc_salvage_range *range_at(const struct qc_salvage *s, uint64_t guest)
{
    for (size_t i = 0; i < s->nr; i++)
        if (s->r[i].guest <= guest && guest - s->r[i].guest < s->r[i].len)
            return &s->r[i];
    return NULL;
}

static void expect_pattern(struct qc_salvage *s, uint64_t guest, uint8_t pattern,
                           enum qc_salvage_status st)
{
    static uint8_t buf[CS];
    const struct qc_salvage_range *r = range_at(s, guest);
    assert_non_null(r);
    assert_int_equal(r->status, st);
    assert_int_equal(qc_salvage_read_cluster(s, r, buf), 0);
    for (size_t i = 0; i < CS; i++)
        if (buf[i] != (i < (pattern == 0x23 ? 4096u : CS) ? pattern : 0))
            fail_msg("guest 0x%llx byte %zu", (unsigned long long)guest, i);
}

static void intact(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(NULL, &s, &f, &path), 0);
    expect_pattern(&s, 0, 0x22, QC_SV_KNOWN);
    expect_pattern(&s, 512 * 1024, 0x23, QC_SV_KNOWN);
    assert_null(range_at(&s, CS));     /* a gap: unallocated */
    done(&s, &f, path);
}

static void zero_l1(uint8_t *img) { memset(img + 0x30000, 0, 8); }

static void zeroed_l1_reconstructed(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(zero_l1, &s, &f, &path), 2);
    expect_pattern(&s, 0, 0x22, QC_SV_RECONSTRUCTED);
    expect_pattern(&s, 512 * 1024, 0x23, QC_SV_RECONSTRUCTED);
    done(&s, &f, path);
}

static void zero_l2(uint8_t *img) { memset(img + 0x40000, 0, CS); }

static void zeroed_l2_lost(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(zero_l2, &s, &f, &path), 3);
    const struct qc_salvage_range *r = range_at(&s, 0);
    assert_non_null(r);
    assert_int_equal(r->status, QC_SV_LOST);
    assert_true(s.no >= 2);            /* the two data clusters are orphans */
    done(&s, &f, path);
}

/* The guest's first cluster holds what looks like an L2 table naming the
 * second data cluster; then the L1 is lost.  The fake table must not be
 * placed: nothing may come back as guest 0 but the guest's own bytes. */
static void fake_table(uint8_t *img)
{
    memset(img + 0x50000, 0, CS);
    qc_put_be64(img + 0x50000, 0x8000000000060000ull);
    memset(img + 0x30000, 0, 8);
}

static void guest_table_not_placed(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    int rc = salvage_edited(fake_table, &s, &f, &path);
    assert_int_equal(rc, 3);
    for (size_t i = 0; i < s.nr; i++)
        assert_true(s.r[i].status == QC_SV_LOST || s.r[i].status == QC_SV_UNALLOCATED);
    done(&s, &f, path);
}

static void unaligned_l1(uint8_t *img) { qc_put_be64(img + 0x30000, 0x8000000000040200ull); }

static void unaligned_l1_entry_placed(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(unaligned_l1, &s, &f, &path), 2);
    expect_pattern(&s, 0, 0x22, QC_SV_RECONSTRUCTED);
    done(&s, &f, path);
}

static void entry_past_eof(uint8_t *img) { qc_put_be64(img + 0x40000, 0x8000000000990000ull); }

static void past_eof_lost_neighbour_kept(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(entry_past_eof, &s, &f, &path), 3);
    assert_int_equal(range_at(&s, 0)->status, QC_SV_LOST);
    expect_pattern(&s, 512 * 1024, 0x23, QC_SV_KNOWN);
    done(&s, &f, path);
}

static void zero_header(uint8_t *img) { memset(img, 0, 512); }

static void header_lost(void **state)
{
    struct qc_salvage s;
    struct qc_file f;
    char *path;
    (void)state;
    assert_int_equal(salvage_edited(zero_header, &s, &f, &path), 2);
    assert_int_equal(s.cluster_size, CS);
    assert_false(s.header_ok);
    expect_pattern(&s, 0, 0x22, QC_SV_RECONSTRUCTED);
    done(&s, &f, path);
}

static void not_qcow2(void **state)
{
    static uint8_t junk[8192];
    struct qc_salvage s;
    struct qc_file f;
    (void)state;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 2654435761u >> 11);
    char *path = scratch_file(junk, sizeof(junk));
    assert_non_null(path);
    assert_int_equal(qc_file_open(&f, path, 0, NULL), 0);
    qc_salvage_init(&s);
    assert_int_equal(qc_salvage_analyse(&s, &f, NULL), QC_SALVAGE_UNRECOGNISABLE);
    done(&s, &f, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entry_validity),
        cmocka_unit_test(classes),
        cmocka_unit_test(intact),
        cmocka_unit_test(zeroed_l1_reconstructed),
        cmocka_unit_test(zeroed_l2_lost),
        cmocka_unit_test(guest_table_not_placed),
        cmocka_unit_test(unaligned_l1_entry_placed),
        cmocka_unit_test(past_eof_lost_neighbour_kept),
        cmocka_unit_test(header_lost),
        cmocka_unit_test(not_qcow2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
