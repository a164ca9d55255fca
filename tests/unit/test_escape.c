/* Strings from the image in text (qc_util.h): the escaping rule, its two
 * forms, the stream and printf helpers; and JSON strings (qc_view.h) that
 * stay JSON whatever the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qc_util.h"
#include "qc_view.h"

static void expect_escape(const char *in, size_t len, const char *want)
{
    char *got = qc_escape(in, len);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_printable_unchanged(void **state)
{
    (void)state;
    expect_escape("", 0, "");
    expect_escape("snap-1 (before upgrade) ~!@#$%^&*()_+{}|:\"<>?`-=[];',./",
                  55, "snap-1 (before upgrade) ~!@#$%^&*()_+{}|:\"<>?`-=[];',./");
}

static void test_controls_and_high_bytes(void **state)
{
    (void)state;
    /* ESC ] 0 ; X BEL ESC [ 2 J */
    expect_escape("\x1b]0;X\x07\x1b[2J", 10, "\\x1b]0;X\\x07\\x1b[2J");
    expect_escape("a\nb\tc\rd", 7, "a\\x0ab\\x09c\\x0dd");
    expect_escape("\x7f\x80\x9b\xff", 4, "\\x7f\\x80\\x9b\\xff");
    /* UTF-8 too: a valid sequence can be a C1 control or a direction override */
    expect_escape("\xc2\x9b", 2, "\\xc2\\x9b");
    expect_escape("\xe2\x80\xae", 3, "\\xe2\\x80\\xae");
    expect_escape("caf\xc3\xa9", 5, "caf\\xc3\\xa9");
    /* LEN counts, NULs included */
    expect_escape("a\0b", 3, "a\\x00b");
}

static void test_backslash(void **state)
{
    char *got;
    (void)state;
    /* the unambiguous form: "\x1b" as four characters is not ESC */
    expect_escape("\\x1b", 4, "\\\\x1b");
    expect_escape("\\", 1, "\\\\");
    /* QEMU's lines keep a backslash single */
    got = qc_escape_flags("no\\where\x1b", 9, QC_ESC_QEMU_TEXT);
    assert_string_equal(got, "no\\where\\x1b");
    free(got);
    /* which makes escaping them again a no-op */
    assert_string_equal(qc_esc_qemu(qc_esc_qemu("a\\b\x07")), "a\\b\\x07");
}

static void test_printf_helpers(void **state)
{
    char buf[256];
    (void)state;
    assert_string_equal(qc_esc(NULL), "");
    assert_string_equal(qc_esc("\x1b"), "\\x1b");
    /* QC_ESC_SLOTS results stay valid together, for one printf */
    snprintf(buf, sizeof buf, "%s|%s|%s|%s|%s|%s|%s|%s", qc_esc("1"), qc_esc("\x01"),
             qc_esc("3"), qc_esc("\\"), qc_esc("5"), qc_esc("6"), qc_esc("7"), qc_esc("\x7f"));
    assert_string_equal(buf, "1|\\x01|3|\\\\|5|6|7|\\x7f");
    /* no length limit: a long name is printed whole */
    {
        char *big = malloc(70000), *e;
        assert_non_null(big);
        memset(big, 'n', 69999);
        big[69999] = 0;
        big[100] = '\x1b';
        e = (char *)qc_esc(big);
        assert_int_equal(strlen(e), 69999 + 3);
        free(big);
    }
}

static void test_stream(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    (void)state;
    assert_non_null(f);
    qc_fput_escaped(f, "ab\x1b[2Jc\\d", 9);
    fputc('|', f);
    qc_fput_qemu_text(f, "Could not open 'x\\y\x07'");
    qc_fput_qemu_text(f, NULL);
    fclose(f);
    assert_string_equal(text, "ab\\x1b[2Jc\\\\d|Could not open 'x\\y\\x07'");
    free(text);
}

/* What a JSON document holds for STR as a name. */
static char *json_of(const char *str, size_t len)
{
    struct json_object *o = json_object_new_object();
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    json_object_object_add(o, "name", qc_json_text_len(str, len));
    qc_json_print_line(f, o);
    fclose(f);
    json_object_put(o);
    return text;
}

static void test_json(void **state)
{
    char *j;
    (void)state;
    /* json-c writes C0 controls as \u00XX */
    j = json_of("\x1b]0;X\x07", 6);
    assert_string_equal(j, "{\"name\":\"\\u001b]0;X\\u0007\"}\n");
    free(j);
    /* bytes that are not UTF-8 become U+FFFD; valid UTF-8 stays */
    j = json_of("\x9b\xff" "caf\xc3\xa9", 7);
    assert_string_equal(j, "{\"name\":\"\xef\xbf\xbd\xef\xbf\xbd" "caf\xc3\xa9\"}\n");
    free(j);
    /* DEL and C1 controls, which json-c leaves raw, as \u escapes */
    j = json_of("\x7f\xc2\x9b/", 4);
    assert_string_equal(j, "{\"name\":\"\\u007f\\u009b/\"}\n");
    free(j);
    /* NULs inside a length */
    j = json_of("a\0b", 3);
    assert_string_equal(j, "{\"name\":\"a\\u0000b\"}\n");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printable_unchanged),
        cmocka_unit_test(test_controls_and_high_bytes),
        cmocka_unit_test(test_backslash),
        cmocka_unit_test(test_printf_helpers),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
