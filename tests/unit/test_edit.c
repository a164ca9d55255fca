/* Editing the header cluster: the planned bytes, the guards, the write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "qc_edit.h"
#include "qc_endian.h"
#include "unit_fixtures.h"

struct fx {
    char *path;
    uint8_t *orig;
    size_t len;
    struct qc_image img;
    struct qc_edit e;
};

/* Opens a scratch copy of fixture NAME (with POKE applied when given) and
 * starts an edit. */
static void open_fx(struct fx *f, const char *name, void (*poke)(uint8_t *))
{
    memset(f, 0, sizeof *f);
    f->orig = fixture_bytes(name, 1 << 20, &f->len);
    assert_non_null(f->orig);
    if (poke)
        poke(f->orig);
    f->path = scratch_file(f->orig, f->len);
    assert_non_null(f->path);
    assert_int_equal(qc_image_open(&f->img, f->path, QC_OPEN_WRITE, QC_VALIDATE_OPEN, NULL), 0);
    assert_int_equal(qc_edit_init(&f->e, &f->img), 0);
}

static void close_fx(struct fx *f)
{
    qc_edit_free(&f->e);
    qc_image_close(&f->img);
    unlink(f->path);
    free(f->path);
    free(f->orig);
}

static bool has_guard(const struct qc_edit *e, enum qc_edit_guard kind, const char *text)
{
    for (size_t i = 0; i < e->nguards; i++)
        if (e->guards[i].kind == kind && (!text || strstr(e->guards[i].message, text)))
            return true;
    return false;
}

/* Writes the plan, then checks that the file holds exactly the planned
 * bytes and is otherwise unchanged. */
static void write_and_verify(struct fx *f)
{
    uint8_t *now = malloc(f->len + f->e.len);
    FILE *fp;
    size_t n;

    assert_int_equal(qc_edit_write(&f->e, &f->img.file), 0);
    fp = fopen(f->path, "rb");
    n = fread(now, 1, f->len + f->e.len, fp);
    fclose(fp);
    assert_int_equal(n, f->len > f->e.len ? f->len : f->e.len);
    assert_memory_equal(now, f->e.after, f->e.len);
    if (f->len > f->e.len)
        assert_memory_equal(now + f->e.len, f->orig + f->e.len, f->len - f->e.len);
    free(now);
}

static void test_feature_bit_is_one_byte(void **state)
{
    struct fx f;

    (void)state;
    open_fx(&f, "v3", NULL);
    assert_int_equal(qc_edit_feature(&f.e, QC_FG_AUTOCLEAR, 63, true), 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.nguards, 0);
    assert_false(f.e.rewrite);
    assert_int_equal(f.e.first, 0x58);
    assert_int_equal(f.e.end, 0x59);
    assert_int_equal(f.e.after[0x58], 0x80);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_int_equal(f.img.hdr.autoclear_features, 1ull << 63);
    close_fx(&f);

    /* clearing what is clear changes nothing */
    open_fx(&f, "v3", NULL);
    assert_int_equal(qc_edit_feature(&f.e, QC_FG_COMPATIBLE, 0, false), 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.first, f.e.end);
    close_fx(&f);
}

static void test_incompatible_guard(void **state)
{
    struct fx f;

    (void)state;
    open_fx(&f, "v3", NULL);
    qc_edit_feature(&f.e, QC_FG_INCOMPATIBLE, 63, true);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_INCOMPAT_SET,
                          "QEMU will refuse to open the image: Unsupported qcow2 feature(s): "
                          "Unknown incompatible feature: 8000000000000000"));
    assert_string_equal(f.e.qemu_refusal,
                        "Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000000000");
    close_fx(&f);

    open_fx(&f, "v3", NULL);
    qc_edit_feature(&f.e, QC_FG_INCOMPATIBLE, 0, true);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_INCOMPAT_SET, "incompatible bit 0 (dirty)"));
    assert_null(f.e.qemu_refusal);
    close_fx(&f);

    /* extended L2 with 4 KiB clusters: QEMU's own refusal is quoted */
    open_fx(&f, "c4k", NULL);
    assert_int_equal(qc_edit_set_field(&f.e, QC_HF_INCOMPATIBLE_FEATURES, QC_INCOMPAT_EXTL2), 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_INCOMPAT_SET, "Unsupported subcluster size: 128"));
    close_fx(&f);

    /* a bit that is already set is no news */
    open_fx(&f, "zstd", NULL);
    qc_edit_feature(&f.e, QC_FG_INCOMPATIBLE, 3, true);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.nguards, 0);
    close_fx(&f);
}

static void test_dirty_guard(void **state)
{
    struct fx f;

    (void)state;
    open_fx(&f, "dirty", NULL);
    qc_edit_feature(&f.e, QC_FG_INCOMPATIBLE, 0, false);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_DIRTY_CLEAR, "clearing the dirty bit now"));
    close_fx(&f);

    open_fx(&f, "dirty", NULL);
    qc_edit_feature(&f.e, QC_FG_COMPATIBLE, 0, false);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_DIRTY_CLEAR, "clearing lazy_refcounts now"));
    close_fx(&f);

    open_fx(&f, "dirty", NULL);
    qc_edit_feature(&f.e, QC_FG_AUTOCLEAR, 63, true);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.nguards, 0);
    close_fx(&f);

    /* not dirty: clearing lazy_refcounts is fine */
    open_fx(&f, "lazy", NULL);
    qc_edit_feature(&f.e, QC_FG_COMPATIBLE, 0, false);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.nguards, 0);
    assert_int_equal(f.e.after[0x57], 0);
    close_fx(&f);
}

static void test_version2(void **state)
{
    struct fx f;
    struct qc_header h;
    struct qc_problems p = { 0 };

    (void)state;
    open_fx(&f, "v2", NULL);
    qc_edit_feature(&f.e, QC_FG_COMPATIBLE, 0, true);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_V2_FEATURES, NULL));
    assert_int_equal(f.e.first, f.e.end);   /* as qcow2.py: nothing written */
    close_fx(&f);

    /* version 3 and a 112-byte header together make a valid v3 image */
    open_fx(&f, "v2", NULL);
    qc_edit_set_field(&f.e, QC_HF_VERSION, 3);
    qc_edit_set_field(&f.e, QC_HF_HEADER_LENGTH, 112);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(f.e.rewrite);
    assert_int_equal(f.e.nguards, 0);
    assert_int_equal(qc_be32(f.e.after + 96), 4);
    assert_int_equal(qc_be32(f.e.after + 100), 112);
    assert_int_equal(qc_be64(f.e.after + 112), 0);   /* end marker */
    assert_int_equal(qc_header_parse(&h, f.e.after, f.e.len), 0);
    qc_header_validate(&h, NULL, false, &p);
    assert_int_equal(p.n, 0);
    qc_header_free(&h);
    write_and_verify(&f);
    close_fx(&f);
}

static void test_add_extension(void **state)
{
    static const uint8_t want[] = "\x12\x34\x56\x78\x00\x00\x00\x05" "hello\0\0\0" "\0\0\0\0\0\0\0\0";
    uint8_t big[4000];
    struct fx f;

    (void)state;
    open_fx(&f, "c4k", NULL);
    assert_int_equal(qc_edit_add_ext(&f.e, 0x12345678, (const uint8_t *)"hello", 5), 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(f.e.rewrite);
    assert_int_equal(f.e.nguards, 0);
    assert_memory_equal(f.e.after + 112, want, 24);
    assert_int_equal(f.e.first, 112);
    assert_int_equal(f.e.end, 112 + 13);   /* the padding and marker were zero */
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_null(f.img.open_error);
    assert_int_equal(f.img.exts.n, 1);
    close_fx(&f);

    /* 4000 bytes do not fit in a 4 KiB header cluster */
    memset(big, 'x', sizeof big);
    open_fx(&f, "c4k", NULL);
    qc_edit_add_ext(&f.e, 0x1234, big, sizeof big);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_EXT_FIT, "would end at byte 4128"));
    close_fx(&f);

    /* 3968 bytes end exactly at the end of the cluster */
    open_fx(&f, "c4k", NULL);
    qc_edit_add_ext(&f.e, 0x1234, big, 4096 - 112 - 16);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.new_end, 4096);
    assert_int_equal(f.e.nguards, 0);
    close_fx(&f);

    open_fx(&f, "c4k", NULL);
    qc_edit_add_ext(&f.e, 0, NULL, 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(has_guard(&f.e, QC_GUARD_END_MAGIC, NULL));
    close_fx(&f);
}

static void test_delete_clears_old_bytes(void **state)
{
    struct fx f;

    (void)state;
    /* unknown-ext: feature table, 0x12345678 (31 bytes), 0x0badcafe (6) */
    open_fx(&f, "unknown-ext", NULL);
    assert_int_equal(qc_edit_del_ext(&f.e, 0x12345678), 1);
    assert_int_equal(qc_edit_del_ext(&f.e, 0x99), 0);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(qc_be32(f.e.after + 0x1f8), 0x0badcafe);
    assert_int_equal(f.e.new_end, 0x210);
    assert_int_equal(f.e.old_end, 0x238);
    for (unsigned i = 0x208; i < 0x238; i++)
        assert_int_equal(f.e.after[i], 0);
    write_and_verify(&f);
    close_fx(&f);
}

static void dup_exts(uint8_t *b)
{
    /* c4k: [A, A, B, A] from 112, then the end marker */
    static const uint8_t area[] =
        "\x00\x00\x00\x0a\x00\x00\x00\x01" "1\0\0\0\0\0\0\0"
        "\x00\x00\x00\x0a\x00\x00\x00\x01" "2\0\0\0\0\0\0\0"
        "\x00\x00\x00\x0b\x00\x00\x00\x01" "3\0\0\0\0\0\0\0"
        "\x00\x00\x00\x0a\x00\x00\x00\x01" "4\0\0\0\0\0\0\0"
        "\0\0\0\0\0\0\0\0";
    memcpy(b + 112, area, sizeof area - 1);
}

static void test_delete_every_duplicate(void **state)
{
    struct fx f;

    (void)state;
    open_fx(&f, "c4k", dup_exts);
    assert_int_equal(f.img.exts.n, 4);
    assert_int_equal(qc_edit_del_ext(&f.e, 0x0a), 3);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_int_equal(f.img.exts.n, 1);
    assert_int_equal(f.img.exts.v[0].magic, 0x0b);
    close_fx(&f);
}

static void test_backing_name_moves(void **state)
{
    struct fx f;
    uint64_t bfo;
    uint32_t bfs;
    char name[64];

    (void)state;
    open_fx(&f, "backing", NULL);
    bfo = f.img.hdr.backing_file_offset;
    bfs = f.img.hdr.backing_file_size;
    assert_true(bfs < sizeof name);
    memcpy(name, f.orig + bfo, bfs);
    qc_edit_add_ext(&f.e, 0x1234, (const uint8_t *)"abcdefghi", 9);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(qc_be64(f.e.after + 8), bfo + 24);
    assert_memory_equal(f.e.after + bfo + 24, name, bfs);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_null(f.img.open_error);
    assert_string_equal(f.img.backing_name, "backing.base.qcow2");
    assert_string_equal(f.img.backing_format, "qcow2");
    close_fx(&f);
}

static void test_bitmaps_extension_kept(void **state)
{
    struct fx f;
    const struct qc_ext *b;
    uint8_t before[32];

    (void)state;
    open_fx(&f, "bitmaps", NULL);
    b = qc_ext_find(&f.img.exts, QC_EXT_BITMAPS);
    assert_non_null(b);
    memcpy(before, f.orig + b->offset, 32);
    qc_edit_del_ext(&f.e, QC_EXT_FEATURE_TABLE);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    /* the bitmaps extension moves up to 112, byte for byte */
    assert_memory_equal(f.e.after + 112, before, 32);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_null(f.img.open_error);
    close_fx(&f);
}

static void test_header_length(void **state)
{
    struct fx f;

    (void)state;
    /* 112 -> 104: the compression type byte goes, the extensions move up */
    open_fx(&f, "v3", NULL);
    qc_edit_set_field(&f.e, QC_HF_HEADER_LENGTH, 104);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_true(f.e.rewrite);
    assert_int_equal(qc_be32(f.e.after + 100), 104);
    assert_int_equal(qc_be32(f.e.after + 104), QC_EXT_FEATURE_TABLE);
    assert_int_equal(f.e.old_end - f.e.new_end, 8);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_null(f.img.open_error);
    close_fx(&f);

    /* 104 -> 120: the new header bytes are zero, not old extension bytes */
    open_fx(&f, "hl104", NULL);
    qc_edit_add_ext(&f.e, 0x77, (const uint8_t *)"x", 1);
    qc_edit_set_field(&f.e, QC_HF_HEADER_LENGTH, 120);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    for (unsigned i = 104; i < 120; i++)
        assert_int_equal(f.e.after[i], 0);
    assert_int_equal(qc_be32(f.e.after + 120), 0x77);
    close_fx(&f);
}

static void hl108(uint8_t *b)
{
    b[103] = 108;
}

static void test_damaged_area(void **state)
{
    struct fx f;

    (void)state;
    /* header_length 108: the extensions do not parse from there */
    open_fx(&f, "v3", hl108);
    qc_edit_add_ext(&f.e, 0x77, (const uint8_t *)"x", 1);
    assert_int_equal(qc_edit_plan(&f.e), QC_E_FORMAT);
    assert_non_null(strstr(f.e.error, "cannot be rewritten"));
    close_fx(&f);

    /* but a header field can be set, and header_length repaired */
    open_fx(&f, "v3", hl108);
    qc_edit_set_field(&f.e, QC_HF_HEADER_LENGTH, 112);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_false(f.e.rewrite);
    assert_non_null(f.e.note);
    assert_int_equal(f.e.first, 103);
    assert_int_equal(f.e.end, 104);
    write_and_verify(&f);
    assert_int_equal(qc_image_reload(&f.img, QC_VALIDATE_OPEN), 0);
    assert_null(f.img.open_error);
    close_fx(&f);
}

static void test_compression_type(void **state)
{
    struct fx f;

    (void)state;
    open_fx(&f, "hl104", NULL);
    qc_edit_set_field(&f.e, QC_HF_COMPRESSION_TYPE, 1);
    assert_int_equal(qc_edit_plan(&f.e), QC_E_RANGE);
    close_fx(&f);

    open_fx(&f, "v3", NULL);
    qc_edit_set_field(&f.e, QC_HF_COMPRESSION_TYPE, 1);
    assert_int_equal(qc_edit_plan(&f.e), 0);
    assert_int_equal(f.e.first, 104);
    assert_int_equal(f.e.end, 105);
    assert_string_equal(f.e.qemu_refusal, "qcow2: Compression type incompatible feature bit must be set");
    close_fx(&f);

    open_fx(&f, "v3", NULL);
    assert_int_equal(qc_edit_set_field(&f.e, QC_HF_COMPRESSION_TYPE, 256), QC_E_RANGE);
    assert_int_equal(qc_edit_set_field(&f.e, QC_HF_VERSION, 1ull << 32), QC_E_RANGE);
    close_fx(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feature_bit_is_one_byte),
        cmocka_unit_test(test_incompatible_guard),
        cmocka_unit_test(test_dirty_guard),
        cmocka_unit_test(test_version2),
        cmocka_unit_test(test_add_extension),
        cmocka_unit_test(test_delete_clears_old_bytes),
        cmocka_unit_test(test_delete_every_duplicate),
        cmocka_unit_test(test_backing_name_moves),
        cmocka_unit_test(test_bitmaps_extension_kept),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_damaged_area),
        cmocka_unit_test(test_compression_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
