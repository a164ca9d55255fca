/* Feature bits: names both ways, groups, the image's feature name table,
 * and QEMU's message for unknown incompatible bits
 * (docs/qemu-behaviour.md §1.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "qc_feature.h"
#include "qc_header.h"
#include "unit_fixtures.h"

static void test_names(void **state)
{
    static const struct { const char *name; enum qc_feature_group g; unsigned bit; const char *qemu; } k[] = {
        { "dirty", QC_FG_INCOMPATIBLE, 0, "dirty bit" },
        { "corrupt", QC_FG_INCOMPATIBLE, 1, "corrupt bit" },
        { "external_data_file", QC_FG_INCOMPATIBLE, 2, "external data file" },
        { "compression_type", QC_FG_INCOMPATIBLE, 3, "compression type" },
        { "extended_l2", QC_FG_INCOMPATIBLE, 4, "extended L2 entries" },
        { "lazy_refcounts", QC_FG_COMPATIBLE, 0, "lazy refcounts" },
        { "bitmaps", QC_FG_AUTOCLEAR, 0, "bitmaps" },
        { "raw_external_data", QC_FG_AUTOCLEAR, 1, "raw external data" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        enum qc_feature_group g;
        unsigned bit;
        assert_true(qc_feature_lookup(k[i].name, &g, &bit));
        assert_int_equal(g, k[i].g);
        assert_int_equal(bit, k[i].bit);
        assert_string_equal(qc_feature_short_name(g, bit), k[i].name);
        assert_string_equal(qc_feature_qemu_name(g, bit), k[i].qemu);
    }
    {
        enum qc_feature_group g = QC_FG_COUNT;
        unsigned bit = 99;
        assert_false(qc_feature_lookup("Dirty", &g, &bit));
        assert_false(qc_feature_lookup("dirty bit", &g, &bit));
        assert_false(qc_feature_lookup("", &g, &bit));
        assert_int_equal(g, QC_FG_COUNT);
        assert_int_equal(bit, 99);
    }
    assert_null(qc_feature_short_name(QC_FG_INCOMPATIBLE, 5));
    assert_null(qc_feature_qemu_name(QC_FG_AUTOCLEAR, 63));
    assert_null(qc_feature_qemu_name(QC_FG_COMPATIBLE, 1));
}

static void test_groups_and_masks(void **state)
{
    (void)state;
    assert_int_equal(qc_feature_group_parse("incompatible"), QC_FG_INCOMPATIBLE);
    assert_int_equal(qc_feature_group_parse("compatible"), QC_FG_COMPATIBLE);
    assert_int_equal(qc_feature_group_parse("autoclear"), QC_FG_AUTOCLEAR);
    assert_int_equal(qc_feature_group_parse("incompat"), -1);
    assert_int_equal(qc_feature_group_parse("Autoclear"), -1);
    assert_string_equal(qc_feature_group_name(QC_FG_AUTOCLEAR), "autoclear");
    /* the masks QEMU knows */
    assert_int_equal(qc_feature_known_mask(QC_FG_INCOMPATIBLE), QC_INCOMPAT_KNOWN);
    assert_int_equal(qc_feature_known_mask(QC_FG_COMPATIBLE), QC_COMPAT_KNOWN);
    assert_int_equal(qc_feature_known_mask(QC_FG_AUTOCLEAR), QC_AUTOCLEAR_KNOWN);
}

static void entry(uint8_t *p, uint8_t type, uint8_t bit, const char *name)
{
    memset(p, 0, QC_FEATURE_ENTRY_SIZE);
    p[0] = type;
    p[1] = bit;
    memcpy(p + 2, name, strlen(name) < QC_FEATURE_NAME_MAX ? strlen(name) : QC_FEATURE_NAME_MAX);
}

static const char *unsupported(const struct qc_feature_table *t, uint64_t mask)
{
    static char buf[1024];
    qc_feature_unsupported_list(t, mask, buf, sizeof buf);
    return buf;
}

static void test_image_table(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("v3", 4096, &len);
    struct qc_feature_table t;

    (void)state;
    assert_non_null(buf);
    /* QEMU 7.2 writes 8 entries at 0x78 (after the 8-byte extension header) */
    assert_int_equal(qc_feature_table_parse(&t, buf + 0x78, 384), 0);
    assert_int_equal(t.n, 8);
    assert_string_equal(qc_feature_table_name(&t, QC_FG_INCOMPATIBLE, 4), "extended L2 entries");
    assert_string_equal(qc_feature_table_name(&t, QC_FG_AUTOCLEAR, 1), "raw external data");
    assert_null(qc_feature_table_name(&t, QC_FG_INCOMPATIBLE, 5));
    qc_feature_table_free(&t);
    /* a partial entry counts, the missing bytes read as zeros (036 adds a
     * 14-byte table and QEMU names its bit) */
    assert_int_equal(qc_feature_table_parse(&t, (const uint8_t *)"\x00\x3ftest feature", 14), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(qc_feature_table_name(&t, QC_FG_INCOMPATIBLE, 63), "test feature");
    assert_string_equal(unsupported(&t, 3ull << 62), "test feature, Unknown incompatible feature: 4000000000000000");
    qc_feature_table_free(&t);
    free(buf);
}

static void test_unknown_incompatible_message(void **state)
{
    uint8_t raw[5 * QC_FEATURE_ENTRY_SIZE];
    struct qc_feature_table t;
    char longname[80];

    (void)state;
    /* no table: the hex mask alone */
    assert_string_equal(unsupported(NULL, 0x20), "Unknown incompatible feature: 20");
    assert_string_equal(unsupported(NULL, 0x8000000000000020ull),
                        "Unknown incompatible feature: 8000000000000020");
    /* named bits first, in table order, then what is left */
    entry(raw, 0, 10, "future feature");
    entry(raw + 48, 2, 5, "an autoclear bit");
    entry(raw + 96, 0, 5, "another one");
    memset(longname, 'n', sizeof longname);
    longname[60] = '\0';
    entry(raw + 144, 0, 40, longname);
    entry(raw + 192, 0, 41, "");
    assert_int_equal(qc_feature_table_parse(&t, raw, sizeof raw), 0);
    assert_string_equal(unsupported(&t, (1ull << 10) | (1ull << 11)),
                        "future feature, Unknown incompatible feature: 800");
    assert_string_equal(unsupported(&t, (1ull << 5) | (1ull << 10)), "future feature, another one");
    /* names are cut at 46 characters */
    assert_string_equal(unsupported(&t, 1ull << 40), "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    qc_feature_table_free(&t);
    /* the walk stops at the first entry with an empty name */
    entry(raw, 0, 10, "");
    entry(raw + 48, 0, 11, "after the gap");
    assert_int_equal(qc_feature_table_parse(&t, raw, 2 * QC_FEATURE_ENTRY_SIZE), 0);
    assert_string_equal(unsupported(&t, 1ull << 11), "Unknown incompatible feature: 800");
    qc_feature_table_free(&t);
}

static void test_parse_spec(void **state)
{
    enum qc_feature_group g;
    unsigned bit;

    (void)state;
    assert_true(qc_feature_parse_spec("lazy_refcounts", &g, &bit));
    assert_int_equal(g, QC_FG_COMPATIBLE);
    assert_int_equal(bit, 0);
    assert_true(qc_feature_parse_spec("autoclear:63", &g, &bit));
    assert_int_equal(g, QC_FG_AUTOCLEAR);
    assert_int_equal(bit, 63);
    assert_true(qc_feature_parse_spec("incompatible:0x4", &g, &bit));
    assert_int_equal(g, QC_FG_INCOMPATIBLE);
    assert_int_equal(bit, 4);
    assert_false(qc_feature_parse_spec("autoclear:64", &g, &bit));
    assert_false(qc_feature_parse_spec("autoclear:-1", &g, &bit));
    assert_false(qc_feature_parse_spec("autoclearxxxxxxxxxxxxxxxx:1", &g, &bit));
    assert_false(qc_feature_parse_spec("other:1", &g, &bit));
    assert_false(qc_feature_parse_spec("dirty bit", &g, &bit));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_groups_and_masks),
        cmocka_unit_test(test_image_table),
        cmocka_unit_test(test_unknown_incompatible_message),
        cmocka_unit_test(test_parse_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
