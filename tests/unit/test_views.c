/* The pieces that bound the table views: the streaming JSON writer lays a
 * document out exactly as qc_json_print does, and qc_shown tells a table
 * shown before (same offset, or overlapping clusters) from a new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qc_jsonw.h"
#include "qc_shown.h"
#include "qc_view.h"

/* The same document built with json-c and printed whole. */
static char *whole_doc(void)
{
    struct json_object *doc = json_object_new_object(), *a = json_object_new_array();
    struct json_object *row = json_object_new_object(), *inner = json_object_new_object();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    json_object_object_add(doc, "n", qc_json_u64(UINT64_MAX));
    json_object_object_add(doc, "s", json_object_new_string("a\"b\\c/\x01\xc3\xa9"));
    json_object_object_add(doc, "empty", json_object_new_array());
    json_object_object_add(doc, "none", json_object_new_object());
    json_object_object_add(row, "t", json_object_new_boolean(true));
    json_object_object_add(inner, "x", qc_json_u64(0));
    json_object_object_add(row, "inner", inner);
    json_object_array_add(a, row);
    json_object_array_add(a, qc_json_u64(7));
    json_object_object_add(doc, "rows", a);
    qc_json_print(f, doc);
    fclose(f);
    json_object_put(doc);
    return text;
}

static void writer_matches_whole_document(void **state)
{
    char *text = NULL, *want = whole_doc();
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct json_object *inner = json_object_new_object();
    struct qc_jw w;

    (void)state;
    qc_jw_init(&w, f);
    qc_jw_begin_object(&w, NULL);
    qc_jw_u64(&w, "n", UINT64_MAX);
    qc_jw_text(&w, "s", "a\"b\\c/\x01\xc3\xa9");
    qc_jw_begin_array(&w, "empty");
    qc_jw_end_array(&w);
    qc_jw_begin_object(&w, "none");
    qc_jw_end_object(&w);
    qc_jw_begin_array(&w, "rows");
    qc_jw_begin_object(&w, NULL);
    qc_jw_bool(&w, "t", true);
    json_object_object_add(inner, "x", qc_json_u64(0));
    qc_jw_value(&w, "inner", inner);
    qc_jw_end_object(&w);
    qc_jw_u64(&w, NULL, 7);
    qc_jw_finish(&w);   /* closes the array and the document */
    fclose(f);
    json_object_put(inner);
    assert_string_equal(text, want);
    assert_false(w.overflow);
    free(text);
    free(want);
}

static void writer_replaces_invalid_utf8(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct qc_jw w;

    (void)state;
    qc_jw_init(&w, f);
    qc_jw_text(&w, NULL, "x\xff");
    qc_jw_finish(&w);
    fclose(f);
    assert_string_equal(text, "\"x\xef\xbf\xbd\"\n");
    free(text);
}

static void shown_same_overlap_new(void **state)
{
    struct qc_shown s;
    uint64_t prev = 99;

    (void)state;
    /* a file of 16 clusters of 64 KiB */
    assert_int_equal(qc_shown_init(&s, 16 << 16, 16), 0);
    assert_int_equal(qc_shown_claim(&s, 0x30000, 0x10000, 0, &prev), QC_SHOWN_NEW);
    assert_int_equal(qc_shown_claim(&s, 0x30000, 0x10000, 5, &prev), QC_SHOWN_SAME);
    assert_int_equal(prev, 0);
    /* unaligned: starts in a cluster shown */
    assert_int_equal(qc_shown_claim(&s, 0x30008, 0x10000, 6, &prev), QC_SHOWN_OVERLAP);
    assert_int_equal(prev, 0x30000);
    /* ends in it */
    assert_int_equal(qc_shown_claim(&s, 0x2fff8, 0x10000, 7, &prev), QC_SHOWN_OVERLAP);
    assert_int_equal(prev, 0x30000);
    /* a long table over it, from a cluster far before */
    assert_int_equal(qc_shown_claim(&s, 0, 0x80000, 8, &prev), QC_SHOWN_OVERLAP);
    assert_int_equal(prev, 0x30000);
    assert_int_equal(qc_shown_claim(&s, 0x40000, 0x10000, 9, &prev), QC_SHOWN_NEW);
    qc_shown_free(&s);
}

static void shown_past_eof_and_many(void **state)
{
    struct qc_shown s;
    uint64_t prev = 0;

    (void)state;
    assert_int_equal(qc_shown_init(&s, 1 << 20, 9), 0);
    /* past the end: nothing to mark, but a second reference points back */
    assert_int_equal(qc_shown_claim(&s, 1ull << 40, 512, 3, &prev), QC_SHOWN_NEW);
    assert_int_equal(qc_shown_claim(&s, 1ull << 40, 512, 4, &prev), QC_SHOWN_SAME);
    assert_int_equal(prev, 3);
    /* a table that runs past the end: only its part inside is marked */
    assert_int_equal(qc_shown_claim(&s, (1 << 20) - 512, 4096, 5, &prev), QC_SHOWN_NEW);
    /* every cluster once (the hash grows), then every one again */
    for (uint64_t c = 0; c < 2047; c++)
        assert_int_equal(qc_shown_claim(&s, c << 9, 512, c, &prev), QC_SHOWN_NEW);
    for (uint64_t c = 0; c < 2047; c++) {
        assert_int_equal(qc_shown_claim(&s, c << 9, 512, c + 10000, &prev), QC_SHOWN_SAME);
        assert_int_equal(prev, c);
    }
    qc_shown_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writer_matches_whole_document),
        cmocka_unit_test(writer_replaces_invalid_utf8),
        cmocka_unit_test(shown_same_overlap_new),
        cmocka_unit_test(shown_past_eof_and_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
