/* The computed-refcount table: saturation per width, large counts, flags,
 * growth, sparse chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "qc_imrt.h"
#include "qc_refcount.h"

static void saturates_at_width_max(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 4; order++) {
        struct qc_imrt t;
        uint64_t max = qc_refcount_max(order);

        assert_int_equal(qc_imrt_init(&t, order, 100), 0);
        for (uint64_t i = 0; i < max; i++)
            assert_int_equal(qc_imrt_inc(&t, 37), 1);
        assert_int_equal(qc_imrt_get(&t, 37), max);
        /* at the maximum the count stays put (QEMU's overflow error) */
        assert_int_equal(qc_imrt_inc(&t, 37), 0);
        assert_int_equal(qc_imrt_get(&t, 37), max);
        /* neighbours in the same byte are untouched */
        assert_int_equal(qc_imrt_get(&t, 36), 0);
        assert_int_equal(qc_imrt_get(&t, 38), 0);
        qc_imrt_free(&t);
    }
}

static void large_counts(void **state)
{
    struct qc_imrt t;
    (void)state;

    for (unsigned order = 4; order <= 6; order++) {
        assert_int_equal(qc_imrt_init(&t, order, 1u << 20), 0);
        for (unsigned i = 0; i < 70000; i++)
            qc_imrt_inc(&t, 12345);
        for (unsigned i = 0; i < 300; i++)
            qc_imrt_inc(&t, 999999);
        assert_int_equal(qc_imrt_get(&t, 12345), order == 4 ? 65535 : 70000);
        assert_int_equal(qc_imrt_get(&t, 999999), 300);
        /* set below 255 leaves the side table */
        assert_int_equal(qc_imrt_set(&t, 999999, 7), 0);
        assert_int_equal(qc_imrt_get(&t, 999999), 7);
        assert_int_equal(qc_imrt_set(&t, 999999, 255), 0);
        assert_int_equal(qc_imrt_get(&t, 999999), 255);
        assert_int_equal(qc_imrt_get(&t, 12345), order == 4 ? 65535 : 70000);
        /* many large counts force the side table to grow and rehash */
        for (uint64_t k = 0; k < 2000; k++)
            assert_int_equal(qc_imrt_set(&t, k * 97, 1000 + k), 0);
        for (uint64_t k = 0; k < 2000; k++)
            assert_int_equal(qc_imrt_get(&t, k * 97), 1000 + k);
        for (uint64_t k = 0; k < 2000; k += 2)
            assert_int_equal(qc_imrt_set(&t, k * 97, 0), 0);
        for (uint64_t k = 1; k < 2000; k += 2)
            assert_int_equal(qc_imrt_get(&t, k * 97), 1000 + k);
        qc_imrt_free(&t);
    }
}

static void flags_and_chunks(void **state)
{
    struct qc_imrt t;
    (void)state;

    assert_int_equal(qc_imrt_init(&t, 4, 10 * QC_IMRT_CHUNK), 0);
    assert_true(qc_imrt_chunk_empty(&t, 3));
    assert_int_equal(qc_imrt_flags_or(&t, 3 * QC_IMRT_CHUNK + 5, QC_IMRT_F_COPIED), 0);
    assert_false(qc_imrt_chunk_empty(&t, 3));
    assert_int_equal(qc_imrt_flags(&t, 3 * QC_IMRT_CHUNK + 5), QC_IMRT_F_COPIED);
    assert_int_equal(qc_imrt_flags(&t, 3 * QC_IMRT_CHUNK + 4), 0);
    qc_imrt_flags_or(&t, 3 * QC_IMRT_CHUNK + 4, QC_IMRT_F_L2 | QC_IMRT_F_DATA);
    qc_imrt_flags_and(&t, 3 * QC_IMRT_CHUNK + 4, QC_IMRT_F_L2);
    assert_int_equal(qc_imrt_flags(&t, 3 * QC_IMRT_CHUNK + 4), QC_IMRT_F_L2);
    assert_int_equal(qc_imrt_flags(&t, 3 * QC_IMRT_CHUNK + 5), QC_IMRT_F_COPIED);
    /* only touched chunks hold memory */
    assert_true(qc_imrt_chunk_empty(&t, 4));
    assert_int_equal(t.nchunks, 0);
    qc_imrt_inc(&t, 9 * QC_IMRT_CHUNK);
    assert_int_equal(t.nchunks, 1);
    /* writes past the size are refused; growth makes room */
    assert_int_not_equal(qc_imrt_set(&t, 10 * QC_IMRT_CHUNK, 1), 0);
    assert_int_equal(qc_imrt_grow(&t, 10 * QC_IMRT_CHUNK + 1), 0);
    assert_int_equal(qc_imrt_set(&t, 10 * QC_IMRT_CHUNK, 1), 0);
    assert_int_equal(qc_imrt_get(&t, 10 * QC_IMRT_CHUNK), 1);
    qc_imrt_clear(&t);
    assert_int_equal(qc_imrt_get(&t, 9 * QC_IMRT_CHUNK), 0);
    assert_int_equal(qc_imrt_flags(&t, 3 * QC_IMRT_CHUNK + 5), 0);
    qc_imrt_free(&t);
}

/* A table large enough for slabs behaves the same. */
static void slab_backed(void **state)
{
    struct qc_imrt t;
    (void)state;

    assert_int_equal(qc_imrt_init(&t, 4, 8ull << 20), 0);
    for (uint64_t k = 0; k < (8ull << 20); k += 4099)
        qc_imrt_inc(&t, k);
    for (uint64_t k = 0; k < (8ull << 20); k += 4099)
        assert_int_equal(qc_imrt_get(&t, k), 1);
    assert_int_equal(qc_imrt_get(&t, 1), 0);
    qc_imrt_clear(&t);
    assert_int_equal(qc_imrt_get(&t, 4099), 0);
    qc_imrt_inc(&t, 4099);
    assert_int_equal(qc_imrt_get(&t, 4099), 1);
    qc_imrt_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(saturates_at_width_max),
        cmocka_unit_test(large_counts),
        cmocka_unit_test(flags_and_chunks),
        cmocka_unit_test(slab_backed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
