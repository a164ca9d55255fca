/* The header: parse/serialize round trip on every fixture, and every open
 * rule of docs/qemu-behaviour.md §1.1 with QEMU's exact message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "qc_header.h"
#include "qc_image.h"
#include "unit_fixtures.h"

#define MAX_FIXTURES 64

static void test_round_trip_every_fixture(void **state)
{
    char *names[MAX_FIXTURES];
    size_t n = fixture_names(names, MAX_FIXTURES);

    (void)state;
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = fixture_bytes(names[i], 1 << 21, &len);
        struct qc_header h;
        uint8_t *out;
        uint32_t hl;

        assert_non_null(buf);
        assert_int_equal(qc_header_parse(&h, buf, len), 0);
        assert_int_equal(h.magic, QC_MAGIC);
        hl = qc_header_len(&h);
        assert_true(hl == 72 || hl >= 104);
        out = malloc(hl);
        assert_non_null(out);
        qc_header_serialize(&h, out, hl);
        if (memcmp(out, buf, hl) != 0)
            fail_msg("%s: serialized header differs", names[i]);
        free(out);
        qc_header_free(&h);
        free(buf);
        free(names[i]);
    }
}

static void test_v2_implied_fields(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("v2", 4096, &len);
    struct qc_header h;

    (void)state;
    assert_non_null(buf);
    /* whatever lies at 72..103 of a v2 file is not header */
    memset(buf + 72, 0xff, 32);
    assert_int_equal(qc_header_parse(&h, buf, len), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.incompatible_features, 0);
    assert_int_equal(h.compatible_features, 0);
    assert_int_equal(h.autoclear_features, 0);
    assert_int_equal(h.refcount_order, 4);
    assert_int_equal(h.header_length, 72);
    assert_int_equal(qc_header_len(&h), 72);
    qc_header_free(&h);
    free(buf);
}

static void test_compression_type_byte(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("zstd", 4096, &len), *hl104 = fixture_bytes("hl104", 4096, &len);
    struct qc_header h;

    (void)state;
    assert_non_null(buf);
    assert_non_null(hl104);
    assert_int_equal(qc_header_parse(&h, buf, len), 0);
    assert_true(h.has_compression_type);
    assert_int_equal(h.compression_type, QC_COMPRESSION_ZSTD);
    assert_true(h.incompatible_features & QC_INCOMPAT_COMPRESSION);
    qc_header_free(&h);
    /* a 104-byte header has no compression type: byte 104 is extension area */
    hl104[104] = 0x77;
    assert_int_equal(qc_header_parse(&h, hl104, len), 0);
    assert_false(h.has_compression_type);
    assert_int_equal(h.compression_type, 0);
    qc_header_free(&h);
    free(buf);
    free(hl104);
}

static void test_field_lookup(void **state)
{
    (void)state;
    assert_int_equal(qc_header_field_lookup("snapshot_offset"), QC_HF_SNAPSHOT_OFFSET);
    assert_int_equal(qc_header_field_lookup("snapshots_offset"), QC_HF_SNAPSHOT_OFFSET);
    assert_int_equal(qc_header_field_lookup("header_length"), QC_HF_HEADER_LENGTH);
    assert_int_equal(qc_header_field_lookup("compression_type"), QC_HF_COMPRESSION_TYPE);
    assert_int_equal(qc_header_field_lookup("Header_length"), QC_HF_COUNT);
    assert_int_equal(qc_header_field_lookup("nonsense"), QC_HF_COUNT);
    for (int f = 0; f < QC_HF_COUNT; f++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)f);
        assert_non_null(fi);
        assert_int_equal(qc_header_field_lookup(fi->name), f);
    }
}

static void test_set_field_keeps_raw(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("v3", 4096, &len);
    struct qc_header h;
    uint8_t out[112];

    (void)state;
    assert_int_equal(qc_header_parse(&h, buf, len), 0);
    assert_int_equal(qc_header_set_field(&h, QC_HF_AUTOCLEAR_FEATURES, 1ull << 63), 0);
    assert_int_equal(qc_header_set_field(&h, QC_HF_L1_SIZE, 1ull << 32), QC_E_RANGE);
    qc_header_serialize(&h, out, sizeof out);
    assert_int_equal(out[88], 0x80);
    buf[88] = 0x80;
    assert_memory_equal(out, buf, sizeof out);
    qc_header_free(&h);
    free(buf);
}

/* --- QEMU's open rules ---------------------------------------------------- */

static uint8_t base_hdr[4096];
static size_t base_len;

static int load_base(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("v3", sizeof base_hdr, &len);
    (void)state;
    if (!buf)
        return -1;
    memcpy(base_hdr, buf, len);
    base_len = len;
    free(buf);
    return 0;
}

struct poke {
    unsigned off, width;
    uint64_t value;
};

/* Applies the pokes to a copy of the v3 header and returns QEMU's first
 * refusal ("" when it opens). */
static const char *refusal(const struct poke *p, size_t n, bool check_mode, char *buf, size_t blen)
{
    uint8_t img[4096];
    struct qc_header h;
    struct qc_problems probs = { 0 };

    memcpy(img, base_hdr, sizeof img);
    for (size_t i = 0; i < n; i++)
        put_be(img + p[i].off, p[i].width, p[i].value);
    qc_header_parse(&h, img, base_len);
    qc_header_validate(&h, NULL, check_mode, &probs);
    buf[0] = '\0';
    for (size_t i = 0; i < probs.n; i++) {
        if (probs.v[i].severity == QC_SEV_ERROR) {
            snprintf(buf, blen, "%s", probs.v[i].message);
            break;
        }
    }
    qc_problems_free(&probs);
    qc_header_free(&h);
    return buf;
}

#define RULE(expect, check, ...) do { \
        const struct poke pk[] = { __VA_ARGS__ }; \
        char got[512]; \
        assert_string_equal(refusal(pk, sizeof pk / sizeof pk[0], check, got, sizeof got), expect); \
    } while (0)

static void test_open_rules(void **state)
{
    (void)state;
    RULE("", false, { 0, 4, QC_MAGIC });
    RULE("Image is not in qcow2 format", false, { 0, 4, 0x514649fa });
    RULE("Unsupported qcow2 version 4", false, { 4, 4, 4 });
    RULE("Unsupported qcow2 version 1", false, { 4, 4, 1 });
    RULE("Unsupported cluster size: 2^8", false, { 20, 4, 8 });
    RULE("Unsupported cluster size: 2^22", false, { 20, 4, 22 });
    RULE("qcow2 header too short", false, { 100, 4, 100 });
    RULE("qcow2 header exceeds cluster size", false, { 20, 4, 9 }, { 100, 4, 520 });
    RULE("Invalid backing file offset", false, { 8, 8, 0x10001 });
    RULE("qcow2: unknown compression type: 2", false, { 104, 1, 2 });
    RULE("qcow2: Compression type incompatible feature bit must not be set", false, { 72, 8, 0x8 });
    RULE("qcow2: Compression type incompatible feature bit must be set", false, { 104, 1, 1 });
    RULE("Unsupported qcow2 feature(s): Unknown incompatible feature: 20", false, { 72, 8, 0x20 });
    RULE("Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000000000", false,
         { 72, 8, 1ull << 63 });
    RULE("Unsupported subcluster size: 128", false, { 20, 4, 12 }, { 72, 8, 0x10 }, { 36, 4, 32 });
    RULE("", false, { 72, 8, 0x10 });   /* 64k clusters: 2k subclusters are fine */
    RULE("Reference count entry width too large; may not exceed 64 bits", false, { 96, 4, 7 });
    RULE("Image does not contain a reference count table", false, { 56, 4, 0 });
    RULE("", true, { 56, 4, 0 });       /* check mode skips it */
    RULE("Reference count table too large", false, { 56, 4, (8u << 20) / 65536 + 1 });
    RULE("Reference count table offset invalid", false, { 48, 8, 0x10200 });
    RULE("Reference count table offset invalid", false, { 48, 8, 0x7fffffffffff0000ull });
    RULE("Snapshot table too large", false, { 60, 4, 65537 });
    RULE("", true, { 60, 4, 65537 });
    RULE("Snapshot table offset invalid", false, { 64, 8, 0x200 });
    RULE("", true, { 64, 8, 0x200 });
    RULE("Active L1 table too large", false, { 36, 4, 4194305 });
    RULE("Active L1 table offset invalid", false, { 40, 8, 0x30008 });
    RULE("Image is too big", false, { 20, 4, 9 }, { 100, 4, 112 }, { 24, 8, 1ull << 63 },
         { 48, 8, 0x10000 }, { 40, 8, 0x30000 });
    RULE("L1 table is too small", false, { 36, 4, 0 });
    RULE("L1 table is too small", false, { 24, 8, 1ull << 40 });
    RULE("Unsupported encryption method 3", false, { 32, 4, 3 });
    /* order: the first failing rule wins */
    RULE("Unsupported qcow2 version 4", false, { 4, 4, 4 }, { 20, 4, 8 });
    RULE("Unsupported cluster size: 2^30", false, { 20, 4, 30 }, { 32, 4, 3 });
    RULE("Reference count entry width too large; may not exceed 64 bits", false,
         { 96, 4, 7 }, { 56, 4, 0 }, { 36, 4, 0 });
}

/* Rule 11 needs the open mode: a corrupt image opens read-only only. */
static void test_corrupt_bit_read_write(void **state)
{
    uint8_t img[4096];
    struct qc_image im;
    char *path;

    (void)state;
    memcpy(img, base_hdr, sizeof img);
    put_be(img + 72, 8, QC_INCOMPAT_CORRUPT);
    path = scratch_file(img, base_len);
    assert_non_null(path);
    assert_int_equal(qc_image_open(&im, path, 0, QC_VALIDATE_WRITE, NULL), 0);
    assert_non_null(im.open_error);
    assert_string_equal(im.open_error->message, "qcow2: Image is corrupt; cannot be opened read/write");
    qc_image_close(&im);
    assert_int_equal(qc_image_open(&im, path, 0, QC_VALIDATE_OPEN, NULL), 0);
    assert_null(im.open_error);
    qc_image_close(&im);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_fixture),
        cmocka_unit_test(test_v2_implied_fields),
        cmocka_unit_test(test_compression_type_byte),
        cmocka_unit_test(test_field_lookup),
        cmocka_unit_test(test_set_field_keeps_raw),
        cmocka_unit_test_setup(test_open_rules, load_base),
        cmocka_unit_test_setup(test_corrupt_bit_read_write, load_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
