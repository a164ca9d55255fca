/* The L2-shape classifier of qc_lostmeta, entry by entry and on whole
 * clusters, and the verdict on small images built here: a lost L1 entry
 * (lost metadata) against an unlinked empty L2 table and an unlinked copy of
 * a live one (crash debris). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qc_endian.h"
#include "qc_l2.h"
#include "qc_lostmeta.h"
#include "qc_repair.h"

#include "check_image.h"

#define BITS 16                        /* CS = 64 KiB */
#define FILE_LEN (16ull * CS)

static bool plausible(uint64_t raw, uint64_t *target)
{
    return qc_l2_entry_plausible(raw, 0, false, BITS, FILE_LEN, target);
}

static void entries(void **state)
{
    uint64_t t;
    (void)state;

    assert_true(plausible(0, &t));
    assert_int_equal(t, UINT64_MAX);
    assert_true(plausible(QC_OFLAG_ZERO, &t));                  /* plain zero cluster */
    assert_int_equal(t, UINT64_MAX);
    assert_true(plausible(QC_OFLAG_COPIED | 5 * CS, &t));
    assert_int_equal(t, 5);
    assert_true(plausible(5 * CS | QC_OFLAG_ZERO, &t));         /* allocated zero cluster */
    assert_int_equal(t, 5);
    assert_false(plausible(QC_OFLAG_COPIED, &t));               /* COPIED without an offset */
    assert_false(plausible(5 * CS + 0x200, &t));                /* not cluster aligned */
    assert_false(plausible(FILE_LEN, &t));                      /* past the end of the file */
    assert_false(plausible(5 * CS | 0x2, &t));                  /* reserved bit 1 */
    assert_false(plausible(5 * CS | (1ull << 56), &t));         /* reserved bit 56 */
    assert_false(plausible(0x1111111111111111ull, &t));         /* guest data */
}

static void compressed_entries(void **state)
{
    struct qc_compressed_geom g = qc_compressed_geom(BITS);
    uint64_t raw, t;
    (void)state;

    assert_true(qc_compressed_encode(&g, 7 * CS + 0x1234, 3000, &raw));
    assert_true(plausible(QC_OFLAG_COMPRESSED | raw, &t));
    assert_int_equal(t, 7);
    assert_false(plausible(QC_OFLAG_COMPRESSED | QC_OFLAG_COPIED | raw, &t));
    assert_true(qc_compressed_encode(&g, FILE_LEN + 16, 3000, &raw));
    assert_false(plausible(QC_OFLAG_COMPRESSED | raw, &t));
}

static void extended_entries(void **state)
{
    uint64_t t;
    (void)state;

    assert_true(qc_l2_entry_plausible(5 * CS, 0x0000000000000003ull, true, BITS, FILE_LEN, &t));
    assert_int_equal(t, 5);
    /* subcluster 0 both allocated and zero */
    assert_false(qc_l2_entry_plausible(5 * CS, 0x0000000100000001ull, true, BITS, FILE_LEN, &t));
    /* extended L2 has no zero flag */
    assert_false(qc_l2_entry_plausible(5 * CS | QC_OFLAG_ZERO, 0, true, BITS, FILE_LEN, &t));
}

static void count_target(void *opaque, uint64_t target)
{
    uint64_t *sum = opaque;
    *sum += target;
}

static void clusters(void **state)
{
    uint8_t *buf = calloc(1, CS);
    struct qc_l2_shape s;
    uint64_t sum = 0;
    (void)state;

    qc_l2_shape_classify(buf, BITS, false, FILE_LEN, &s, NULL, NULL);
    assert_false(s.l2_like);                 /* empty: nothing to lose */
    assert_int_equal(s.entries, CS / 8);
    qc_put_be64(buf + 8, QC_OFLAG_COPIED | 5 * CS);
    qc_put_be64(buf + 80, QC_OFLAG_COPIED | 9 * CS);
    qc_put_be64(buf + 88, QC_OFLAG_ZERO);
    qc_l2_shape_classify(buf, BITS, false, FILE_LEN, &s, count_target, &sum);
    assert_true(s.l2_like);
    assert_int_equal(s.nonzero, 3);
    assert_int_equal(s.mapping, 2);
    assert_int_equal(sum, 5 + 9);
    qc_put_be64(buf + CS - 8, 3 * CS + 0x200);    /* one bad entry spoils it */
    qc_l2_shape_classify(buf, BITS, false, FILE_LEN, &s, NULL, NULL);
    assert_false(s.l2_like);
    assert_int_equal(s.bad_index, CS / 8 - 1);
    memset(buf, 0x5a, CS);                        /* guest data */
    qc_l2_shape_classify(buf, BITS, false, FILE_LEN, &s, NULL, NULL);
    assert_false(s.l2_like);
    assert_int_equal(s.bad_index, 0);
    free(buf);
}

/* --- verdicts on images --------------------------------------------------------------- */

static void write_image(const struct img *m, char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, m->b, m->len), (ssize_t)m->len);
    close(fd);
}

/* M plus one cluster (cluster 6) holding FILL (or an L2 table mapping
 * cluster 5 when FILL is 0x100) with refcount 1. */
static struct img with_leaked_cluster(struct img m, int fill)
{
    m.b = realloc(m.b, 7 * CS);
    m.len = 7 * CS;
    memset(m.b + 6 * CS, fill & 0xff, CS);
    if (fill == 0x100)
        qc_put_be64(m.b + 6 * CS, QC_OFLAG_COPIED | 5 * CS);
    set_refcount(&m, 6, 1);
    return m;
}

static enum qc_repair_status verdict(struct img *m, struct qc_lostmeta *out)
{
    char path[] = "/tmp/test_lostmeta.XXXXXX";
    struct qc_repair_opts o = { .mode = QC_REPAIR_ALL, .assess_lost_metadata = true };
    struct qc_repair rp;
    enum qc_repair_status st;

    write_image(m, path);
    free(m->b);
    assert_int_equal(qc_repair_plan(path, &o, &rp), 0);
    st = rp.status;
    *out = rp.lostmeta;
    out->l2_like = NULL;           /* freed with RP */
    qc_repair_free(&rp);
    unlink(path);
    return st;
}

/* make_image with N data clusters (5..4+N) mapped by the L2 table. */
static struct img image_with_data(unsigned n)
{
    struct img m = make_image(4);

    m.b = realloc(m.b, (5 + n) * CS);
    m.len = (5 + n) * CS;
    for (unsigned i = 0; i < n; i++) {
        qc_put_be64(m.b + 4 * CS + 8 * i, QC_OFLAG_COPIED | (uint64_t)(5 + i) * CS);
        memset(m.b + (5 + i) * CS, 0x40 + i, CS);
        set_refcount(&m, 5 + i, 1);
    }
    return m;
}

static void lost_l1_entry(void **state)
{
    struct img m = image_with_data(QC_LM_MAPPED_MIN);
    struct qc_lostmeta lm;
    (void)state;

    qc_put_be64(m.b + 3 * CS, 0);          /* the L2 table (4) and its data leak */
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_LOST_METADATA);
    assert_true(lm.lost);
    assert_true(lm.signs & QC_LM_L2_MAPS_LEAKED);
    assert_true(lm.signs & QC_LM_L1_BAD);   /* the only L1 entry is gone */
    assert_int_equal(lm.n_l2_like, 1);
    assert_int_equal(lm.leaked, 1 + QC_LM_MAPPED_MIN);
    assert_int_equal(lm.mapped, QC_LM_MAPPED_MIN);
    assert_int_equal(lm.mapped_entries, QC_LM_MAPPED_MIN);

    /* a garbled entry: the same */
    m = image_with_data(QC_LM_MAPPED_MIN);
    qc_put_be64(m.b + 3 * CS, 0x200);      /* unaligned, in the header cluster */
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_LOST_METADATA);
    assert_true(lm.signs & QC_LM_L1_BAD);
    assert_int_equal(lm.l1_garbage, 1);
}

/* Below QC_LM_MAPPED_MIN entries the repair stays QEMU's. */
static void few_clusters(void **state)
{
    struct img m = image_with_data(QC_LM_MAPPED_MIN - 1);
    struct qc_lostmeta lm;
    (void)state;

    qc_put_be64(m.b + 3 * CS, 0);
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_PLANNED);
    assert_false(lm.lost);
    assert_int_equal(lm.n_l2_like, 1);
    assert_int_equal(lm.mapped_entries, QC_LM_MAPPED_MIN - 1);
}

/* An L1 entry pointing into the middle of its own L2 table: the table and
 * what it maps are there, whatever their number; the pointer is damaged. */
static void l1_into_l2(void **state)
{
    struct img m = image_with_data(2);
    struct qc_lostmeta lm;
    (void)state;

    qc_put_be64(m.b + 3 * CS, QC_OFLAG_COPIED | (4 * CS + 0x200));
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_LOST_METADATA);
    assert_true(lm.signs & QC_LM_L1_INTO_L2);
    assert_int_equal(lm.l1_into_l2, 1);

    /* the same entry aligned is a healthy image */
    m = image_with_data(2);
    assert_int_not_equal(verdict(&m, &lm), QC_REPAIR_LOST_METADATA);
    assert_false(lm.signs & QC_LM_L1_INTO_L2);
}

static void crash_debris(void **state)
{
    struct qc_lostmeta lm;
    struct img m;
    (void)state;

    m = with_leaked_cluster(make_image(4), 0);        /* an empty L2 table, never linked */
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_PLANNED);
    assert_false(lm.lost);
    assert_int_equal(lm.leaked, 1);
    m = with_leaked_cluster(make_image(4), 0x100);    /* a copy mapping live data */
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_PLANNED);
    assert_false(lm.lost);
    m = with_leaked_cluster(make_image(4), 0x5a);     /* data never linked */
    assert_int_equal(verdict(&m, &lm), QC_REPAIR_PLANNED);
    assert_false(lm.lost);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries),
        cmocka_unit_test(compressed_entries),
        cmocka_unit_test(extended_entries),
        cmocka_unit_test(clusters),
        cmocka_unit_test(lost_l1_entry),
        cmocka_unit_test(few_clusters),
        cmocka_unit_test(l1_into_l2),
        cmocka_unit_test(crash_debris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
