/* Header extensions: parse/serialize round trip on every fixture, editing
 * the list, and QEMU's extension refusals (docs/qemu-behaviour.md §1.3)
 * with their exact messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "qc_ext.h"
#include "qc_header.h"
#include "qc_image.h"
#include "unit_fixtures.h"

#define MAX_FIXTURES 64

static void test_round_trip_every_fixture(void **state)
{
    char *names[MAX_FIXTURES];
    size_t n = fixture_names(names, MAX_FIXTURES), with_exts = 0;

    (void)state;
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = fixture_bytes(names[i], 1 << 21, &len), *out;
        struct qc_header h;
        struct qc_ext_list l;
        uint64_t start, end, size;

        assert_non_null(buf);
        assert_int_equal(qc_header_parse(&h, buf, len), 0);
        start = qc_header_len(&h);
        end = h.backing_file_offset ? h.backing_file_offset : qc_header_cluster_size(&h);
        assert_int_equal(qc_ext_parse(&l, buf, len, start, end), 0);
        if (l.status != QC_EXT_OK)
            fail_msg("%s: extension area does not parse", names[i]);
        if (h.version >= 3 || l.n)
            assert_int_not_equal(l.end_marker, UINT64_MAX);
        size = qc_ext_list_size(&l);
        assert_int_equal(start + size, l.end_marker + 8);
        out = malloc(size);
        assert_non_null(out);
        qc_ext_serialize(&l, out);
        if (memcmp(out, buf + start, size) != 0)
            fail_msg("%s: serialized extensions differ", names[i]);
        with_exts += l.n > 0;
        free(out);
        qc_ext_list_free(&l);
        qc_header_free(&h);
        free(buf);
        free(names[i]);
    }
    assert_true(with_exts >= 5);
}

static void test_known_payloads(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("bitmaps", 1 << 16, &len);
    struct qc_image img;
    struct qc_ext_bitmaps b;
    char *path;

    (void)state;
    assert_non_null(buf);
    path = scratch_file(buf, len);
    assert_int_equal(qc_image_open(&img, path, 0, QC_VALIDATE_OPEN, NULL), 0);
    assert_true(qc_ext_bitmaps_decode(qc_ext_find(&img.exts, QC_EXT_BITMAPS), &b));
    assert_int_equal(b.nb_bitmaps, 2);
    assert_int_equal(b.reserved32, 0);
    assert_int_equal(b.directory_offset % 65536, 0);
    assert_non_null(qc_ext_find(&img.exts, QC_EXT_FEATURE_TABLE));
    assert_string_equal(qc_ext_name(QC_EXT_BITMAPS), "Bitmaps");
    assert_string_equal(qc_ext_name(QC_EXT_CRYPTO), "Crypto header");
    assert_null(qc_ext_name(0x12345678));
    qc_image_close(&img);
    unlink(path);
    free(path);
    free(buf);
}

static void test_edit_list(void **state)
{
    struct qc_ext_list l = { 0 }, copy;
    const uint8_t a[] = "abc";
    uint8_t out[128];

    (void)state;
    assert_int_equal(qc_ext_append(&l, 0x1234, a, 3), 0);
    assert_int_equal(qc_ext_append(&l, 0x1234, a, 1), 0);
    assert_int_equal(qc_ext_append(&l, 0x99, NULL, 0), 0);
    assert_int_equal(qc_ext_append(&l, 0x1234, a, 2), 0);
    assert_int_equal(qc_ext_list_size(&l), 16 + 16 + 8 + 16 + 8);
    qc_ext_serialize(&l, out);
    assert_memory_equal(out, "\x00\x00\x12\x34\x00\x00\x00\x03" "abc\0\0\0\0\0", 16);
    assert_memory_equal(out + 32, "\x00\x00\x00\x99\x00\x00\x00\x00", 8);
    assert_int_equal(qc_ext_list_copy(&copy, &l), 0);
    /* every extension with the magic goes, adjacent ones included */
    assert_int_equal(qc_ext_remove(&l, 0x1234), 3);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].magic, 0x99);
    assert_int_equal(qc_ext_remove(&l, 0x1234), 0);
    /* the copy is deep */
    assert_int_equal(copy.n, 4);
    assert_memory_equal(copy.v[0].data, "abc", 3);
    qc_ext_list_free(&l);
    qc_ext_list_free(&copy);
}

/* --- QEMU's refusals ------------------------------------------------------ */

/* The c4k fixture: 4 KiB clusters, no feature table, extension area from
 * 112 to 4096 with the end marker at 112. */
static uint8_t base[1 << 15];
static size_t base_len;

static int load_base(void **state)
{
    size_t len;
    uint8_t *buf = fixture_bytes("c4k", sizeof base, &len);
    (void)state;
    if (!buf)
        return -1;
    memcpy(base, buf, len);
    base_len = len;
    free(buf);
    return 0;
}

/* Opens IMG as qemu-img info would and returns QEMU's refusal, "" if none. */
static const char *refusal_of(uint8_t *img, char *msg, size_t mlen)
{
    struct qc_image im;
    char *path = scratch_file(img, base_len);

    msg[0] = '\0';
    assert_non_null(path);
    assert_int_equal(qc_image_open(&im, path, 0, QC_VALIDATE_OPEN, NULL), 0);
    if (im.open_error)
        snprintf(msg, mlen, "%s", im.open_error->message);
    qc_image_close(&im);
    unlink(path);
    free(path);
    return msg;
}

static uint8_t *with_ext(uint32_t magic, uint32_t len, const void *data, size_t dlen)
{
    static uint8_t img[sizeof base];
    memcpy(img, base, sizeof img);
    put_be(img + 112, 4, magic);
    put_be(img + 116, 4, len);
    memcpy(img + 120, data, dlen);
    memset(img + 120 + ((len + 7) & ~7u), 0, 8);
    return img;
}

static void test_extension_refusals(void **state)
{
    char m[512];
    uint8_t bm[24] = { 0 };
    uint8_t crypto[16] = { 0 };
    uint8_t *img;

    (void)state;
    assert_string_equal(refusal_of(with_ext(0x12345678, 5, "hello", 5), m, sizeof m), "");
    assert_string_equal(refusal_of(with_ext(0x12345678, 4096, "", 0), m, sizeof m),
                        "Header extension too large");
    /* the payload may end exactly at the end of the area, not one byte past */
    assert_string_equal(refusal_of(with_ext(0x12345678, 4096 - 120, "", 0), m, sizeof m), "");
    assert_string_equal(refusal_of(with_ext(0x12345678, 4096 - 119, "", 0), m, sizeof m),
                        "Header extension too large");
    assert_string_equal(refusal_of(with_ext(QC_EXT_BACKING_FORMAT, 15, "qcow2qcow2qcow2", 15), m, sizeof m), "");
    assert_string_equal(refusal_of(with_ext(QC_EXT_BACKING_FORMAT, 16, "qcow2qcow2qcow2!", 16), m, sizeof m),
                        "ERROR: ext_backing_format: len=16 too large (>=16)");

    assert_string_equal(refusal_of(with_ext(QC_EXT_CRYPTO, 16, crypto, 16), m, sizeof m),
                        "CRYPTO header extension only expected with LUKS encryption method");
    img = with_ext(QC_EXT_CRYPTO, 8, crypto, 8);
    put_be(img + 32, 4, QC_CRYPT_LUKS);
    assert_string_equal(refusal_of(img, m, sizeof m), "CRYPTO header extension size 8, but expected size 16");
    put_be(crypto, 8, 512);
    img = with_ext(QC_EXT_CRYPTO, 16, crypto, 16);
    put_be(img + 32, 4, QC_CRYPT_LUKS);
    assert_string_equal(refusal_of(img, m, sizeof m),
                        "Encryption header offset '512' is not a multiple of cluster size '4096'");
    img = with_ext(0x12345678, 0, "", 0);
    put_be(img + 32, 4, QC_CRYPT_LUKS);
    assert_string_equal(refusal_of(img, m, sizeof m), "Missing CRYPTO header for crypt method 2");

    /* bitmaps: nb 1, reserved 0, directory size 64, directory offset 0x3000 */
    put_be(bm, 4, 1);
    put_be(bm + 8, 8, 64);
    put_be(bm + 16, 8, 0x3000);
#define BITMAPS(len, ac) (img = with_ext(QC_EXT_BITMAPS, len, bm, 24), put_be(img + 88, 8, ac), img)
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m), "");
    assert_string_equal(refusal_of(BITMAPS(16, 1), m, sizeof m), "bitmaps_ext: Invalid extension length");
    /* without autoclear bit 0 the extension is ignored (with a warning) */
    assert_string_equal(refusal_of(BITMAPS(16, 0), m, sizeof m), "bitmaps_ext: Invalid extension length");
    put_be(bm + 4, 4, 1);
    assert_string_equal(refusal_of(BITMAPS(24, 0), m, sizeof m), "");
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m), "bitmaps_ext: Reserved field is not zero");
    put_be(bm + 4, 4, 0);
    put_be(bm, 4, 65536);
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m),
                        "bitmaps_ext: Image has 65536 bitmaps, exceeding the QEMU supported maximum of 65535");
    put_be(bm, 4, 0);
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m), "found bitmaps extension with zero bitmaps");
    put_be(bm, 4, 1);
    put_be(bm + 16, 8, 0x3200);
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m), "bitmaps_ext: invalid bitmap directory offset");
    put_be(bm + 16, 8, 0x3000);
    put_be(bm + 8, 8, 67107841);
    assert_string_equal(refusal_of(BITMAPS(24, 1), m, sizeof m),
                        "bitmaps_ext: bitmap directory size (67107841) exceeds the maximum supported size (67107840)");

    /* backing file name: at most 1023 bytes, inside cluster 0 */
    img = with_ext(0, 0, "", 0);
    put_be(img + 8, 8, 0x200);
    put_be(img + 16, 4, 1023);
    assert_string_equal(refusal_of(img, m, sizeof m), "");
    put_be(img + 16, 4, 1024);
    assert_string_equal(refusal_of(img, m, sizeof m), "Backing file name too long");
    put_be(img + 8, 8, 4000);
    put_be(img + 16, 4, 97);
    assert_string_equal(refusal_of(img, m, sizeof m), "Backing file name too long");
    put_be(img + 16, 4, 96);
    assert_string_equal(refusal_of(img, m, sizeof m), "");
    /* the extension area ends at the backing file name */
    img = with_ext(0x12345678, 16, "0123456789abcdef", 16);
    put_be(img + 8, 8, 128);
    put_be(img + 16, 4, 4);
    assert_string_equal(refusal_of(img, m, sizeof m), "Header extension too large");
}

/* Rows 25-26: qemu-img info opens these, qemu-io does not; they are
 * reported, not refusals of the read-only open. */
static void test_data_file_rules(void **state)
{
    uint8_t *img;
    struct qc_image im;
    char *path;

    (void)state;
    img = with_ext(0x12345678, 0, "", 0);
    put_be(img + 72, 8, QC_INCOMPAT_DATA_FILE);
    put_be(img + 88, 8, QC_AUTOCLEAR_DATA_RAW);
    path = scratch_file(img, base_len);
    assert_int_equal(qc_image_open(&im, path, 0, QC_VALIDATE_OPEN, NULL), 0);
    assert_null(im.open_error);
    assert_true(qc_problems_has(&im.problems, QC_P_DATA_FILE_REQUIRED));
    for (size_t i = 0; i < im.problems.n; i++)
        if (im.problems.v[i].kind == QC_P_DATA_FILE_REQUIRED)
            assert_string_equal(im.problems.v[i].message, "'data-file' is required for this image");
    qc_image_close(&im);
    unlink(path);
    free(path);

    img = with_ext(0x12345678, 0, "", 0);
    put_be(img + 88, 8, QC_AUTOCLEAR_DATA_RAW);
    path = scratch_file(img, base_len);
    assert_int_equal(qc_image_open(&im, path, 0, QC_VALIDATE_OPEN, NULL), 0);
    assert_true(qc_problems_has(&im.problems, QC_P_RAW_WITHOUT_DATA_FILE));
    for (size_t i = 0; i < im.problems.n; i++)
        if (im.problems.v[i].kind == QC_P_RAW_WITHOUT_DATA_FILE)
            assert_string_equal(im.problems.v[i].message, "data-file-raw requires a data file");
    qc_image_close(&im);
    unlink(path);
    free(path);
}

static void test_names(void **state)
{
    const uint32_t *m;
    size_t n;
    uint32_t magic = 0;

    (void)state;
    m = qc_ext_known_magics(&n);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_non_null(qc_ext_name(m[i]));
    assert_true(qc_ext_lookup_name("feature_table", &magic));
    assert_int_equal(magic, QC_EXT_FEATURE_TABLE);
    assert_true(qc_ext_lookup_name("Backing format", &magic));
    assert_int_equal(magic, QC_EXT_BACKING_FORMAT);
    assert_true(qc_ext_lookup_name("CRYPTO_HEADER", &magic));
    assert_int_equal(magic, QC_EXT_CRYPTO);
    assert_false(qc_ext_lookup_name("feature_tabl", &magic));
    assert_false(qc_ext_lookup_name("feature_tables", &magic));
    assert_false(qc_ext_lookup_name("", &magic));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_fixture),
        cmocka_unit_test(test_known_payloads),
        cmocka_unit_test(test_edit_list),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup(test_extension_refusals, load_base),
        cmocka_unit_test_setup(test_data_file_rules, load_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
