/* L1/L2 entry decoding, compressed descriptors, refcount entry widths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qc_l2.h"
#include "qc_refcount.h"

static void l2_standard_kinds(void **state)
{
    struct qc_l2_entry e;
    (void)state;

    e = qc_l2_entry_decode(0, 0, false, false);
    assert_int_equal(e.type, QC_CT_UNALLOCATED);
    e = qc_l2_entry_decode(0x8000000000050000ull, 0, false, false);
    assert_int_equal(e.type, QC_CT_NORMAL);
    assert_true(e.copied);
    assert_int_equal(e.offset, 0x50000);
    assert_int_equal(e.reserved, 0);
    e = qc_l2_entry_decode(1, 0, false, false);
    assert_int_equal(e.type, QC_CT_ZERO_PLAIN);
    e = qc_l2_entry_decode(0x50001, 0, false, false);
    assert_int_equal(e.type, QC_CT_ZERO_ALLOC);
    assert_int_equal(e.offset, 0x50000);
    e = qc_l2_entry_decode(0x4000000000050000ull, 0, false, false);
    assert_int_equal(e.type, QC_CT_COMPRESSED);
    /* compressed wins over the zero flag and the copied flag */
    e = qc_l2_entry_decode(0xC000000000000001ull, 0, false, false);
    assert_int_equal(e.type, QC_CT_COMPRESSED);
    assert_true(e.copied);
    /* reserved bits: 1-8 and 56-61 */
    e = qc_l2_entry_decode(0x0100000000050002ull, 0, false, false);
    assert_int_equal(e.reserved, 0x0100000000000002ull);
    /* COPIED alone: unallocated, except with a data file (host offset 0) */
    e = qc_l2_entry_decode(0x8000000000000000ull, 0, false, false);
    assert_int_equal(e.type, QC_CT_UNALLOCATED);
    e = qc_l2_entry_decode(0x8000000000000000ull, 0, false, true);
    assert_int_equal(e.type, QC_CT_NORMAL);
    assert_int_equal(e.offset, 0);
}

static void l2_extended_kinds(void **state)
{
    struct qc_l2_entry e;
    (void)state;

    /* bit 0 is no zero flag with subclusters */
    e = qc_l2_entry_decode(0x50001, 0x3, true, false);
    assert_int_equal(e.type, QC_CT_NORMAL);
    e = qc_l2_entry_decode(1, 0, true, false);
    assert_int_equal(e.type, QC_CT_UNALLOCATED);
    e = qc_l2_entry_decode(0x8000000000050000ull, 0x0000003000000003ull, true, false);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 0), QC_SCT_NORMAL);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 2), QC_SCT_UNALLOCATED_ALLOC);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 4), QC_SCT_ZERO_ALLOC);
    /* a subcluster both allocated and zero */
    e = qc_l2_entry_decode(0x50000, 0x0000000100000001ull, true, false);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 0), QC_SCT_INVALID);
    e = qc_l2_entry_decode(0, 0xFFFFFFFF00000000ull, true, false);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 7), QC_SCT_ZERO_PLAIN);
    e = qc_l2_entry_decode(0, 1, true, false);
    assert_int_equal(qc_l2_subcluster_type(&e, true, 7), QC_SCT_INVALID);
}

static void l1_entry(void **state)
{
    struct qc_l1_entry e;
    (void)state;

    e = qc_l1_entry_decode(0x8000000000040000ull);
    assert_int_equal(e.l2_offset, 0x40000);
    assert_true(e.copied);
    assert_int_equal(e.reserved, 0);
    e = qc_l1_entry_decode(0x514649fb00000003ull);
    assert_int_equal(e.reserved, 0x5100000000000003ull);
    assert_int_equal(e.l2_offset, 0x4649fb00000000ull);
}

/* Descriptor math for every cluster size QEMU accepts. */
static void compressed_every_cluster_size(void **state)
{
    (void)state;
    for (unsigned cb = 9; cb <= 21; cb++) {
        struct qc_compressed_geom g = qc_compressed_geom(cb);
        uint64_t cs = 1ull << cb, raw;
        struct qc_compressed_desc d;

        assert_int_equal(g.csize_shift, 62 - (cb - 8));
        assert_int_equal(g.csize_mask, (1ull << (cb - 8)) - 1);
        assert_int_equal(g.offset_mask, (1ull << g.csize_shift) - 1);
        /* the largest descriptor covers two clusters of 512-byte sectors */
        assert_int_equal((g.csize_mask + 1) * 512, 2 * cs);

        /* one byte at a sector boundary: one sector, 512 bytes counted */
        assert_true(qc_compressed_encode(&g, 0x50000, 1, &raw));
        d = qc_compressed_decode(&g, raw);
        assert_int_equal(d.offset, 0x50000);
        assert_int_equal(d.nb_sectors, 1);
        assert_int_equal(d.size, 512);

        /* starting mid-sector: the count ends at the last sector's end */
        assert_true(qc_compressed_encode(&g, 0x5004F, 700, &raw));
        d = qc_compressed_decode(&g, raw);
        assert_int_equal(d.offset, 0x5004F);
        assert_int_equal(d.nb_sectors, ((0x5004F + 700 - 1) >> 9) - (0x5004F >> 9) + 1);
        assert_int_equal(d.size, d.nb_sectors * 512 - (0x5004F & 511));
        assert_true(d.size >= 700);

        /* a full cluster of compressed data fits; more than the field does not */
        assert_true(qc_compressed_encode(&g, 0x200, cs, &raw));
        assert_false(qc_compressed_encode(&g, 0x201, 2 * cs, &raw));
        /* offsets beyond the field are refused */
        assert_false(qc_compressed_encode(&g, g.offset_mask + 1, 1, &raw));

        /* the largest count field decodes to 2 clusters minus the start */
        d = qc_compressed_decode(&g, (g.csize_mask << g.csize_shift) | 0x123);
        assert_int_equal(d.nb_sectors, g.csize_mask + 1);
        assert_int_equal(d.size, 2 * cs - 0x123);
        /* flag bits 62/63 are not part of the descriptor */
        d = qc_compressed_decode(&g, 0xC000000000000000ull | 0x1000);
        assert_int_equal(d.offset, 0x1000);
        assert_int_equal(d.nb_sectors, 1);
    }
}

/* Known encodings (docs/format.md §4.2, §5.6). */
static void compressed_known(void **state)
{
    struct qc_compressed_geom g = qc_compressed_geom(16);
    struct qc_compressed_desc d = qc_compressed_decode(&g, 0x400000000005004Full & ~(1ull << 62));
    (void)state;

    assert_int_equal(d.offset, 0x5004F);
    assert_int_equal(d.nb_sectors, 1);
    assert_int_equal(d.size, 512 - 0x4F);
    assert_int_equal(g.csize_shift, 54);
}

/* Every width: set then get, neighbours untouched, maximum values. */
static void refcount_widths(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 6; order++) {
        unsigned bits = 1u << order;
        uint64_t max = qc_refcount_max(order);
        uint8_t blk[512];
        uint64_t n = sizeof blk * 8 / bits;

        assert_int_equal(max, bits == 64 ? UINT64_MAX : (1ull << bits) - 1);
        memset(blk, 0, sizeof blk);
        for (uint64_t i = 0; i < n; i++)
            qc_refblock_set(blk, order, i, (i * 7 + 3) & max);
        for (uint64_t i = 0; i < n; i++)
            assert_int_equal(qc_refblock_get(blk, order, i), (i * 7 + 3) & max);
        qc_refblock_set(blk, order, 5, max);
        assert_int_equal(qc_refblock_get(blk, order, 5), max);
        assert_int_equal(qc_refblock_get(blk, order, 4), (4 * 7 + 3) & max);
        assert_int_equal(qc_refblock_get(blk, order, 6), (6 * 7 + 3) & max);
        qc_refblock_set(blk, order, 5, 0);
        assert_int_equal(qc_refblock_get(blk, order, 5), 0);
    }
}

/* Bit packing as QEMU stores it (docs/format.md §6.2): clusters 0-5 at 1. */
static void refcount_packing(void **state)
{
    static const uint8_t want[7][6] = {
        { 0x3f }, { 0x55, 0x05 }, { 0x11, 0x11, 0x11 }, { 1, 1, 1, 1, 1, 1 },
        { 0, 1, 0, 1, 0, 1 }, { 0, 0, 0, 1, 0, 0 }, { 0, 0, 0, 0, 0, 0 },
    };
    (void)state;
    for (unsigned order = 0; order <= 6; order++) {
        uint8_t blk[64] = { 0 };
        for (unsigned i = 0; i < 6; i++)
            qc_refblock_set(blk, order, i, 1);
        if (order <= 4)
            assert_memory_equal(blk, want[order], order == 0 ? 1 : order == 1 ? 2 : order == 2 ? 3 : 6);
        else if (order == 5)
            assert_int_equal(blk[3], 1);
        else
            assert_int_equal(blk[7], 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(l2_standard_kinds),
        cmocka_unit_test(l2_extended_kinds),
        cmocka_unit_test(l1_entry),
        cmocka_unit_test(compressed_every_cluster_size),
        cmocka_unit_test(compressed_known),
        cmocka_unit_test(refcount_widths),
        cmocka_unit_test(refcount_packing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
