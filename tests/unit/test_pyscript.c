/* qcow2.py's commands (qc_pyscript.h) on small files made here: Python's
 * int(x, 0) of any size, what an edit writes and where it stops, the
 * exceptions of the dumps. */
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
#include "qc_pyscript.h"
#include "qc_util.h"

static void test_pyint_wide(void **state)
{
    uint64_t v;
    bool neg, big;

    (void)state;
    assert_true(qc_parse_pyint_wide("0x1_0", &v, &neg, &big));
    assert_int_equal(v, 16);
    assert_false(neg || big);
    assert_true(qc_parse_pyint_wide("-5", &v, &neg, &big));
    assert_true(neg && v == 5);
    assert_true(qc_parse_pyint_wide("0x10000000000000000", &v, &neg, &big));
    assert_true(big);
    assert_false(qc_parse_pyint("0x10000000000000000", &v, &neg));
    assert_false(qc_parse_pyint_wide("010", &v, &neg, &big));
    assert_false(qc_parse_pyint_wide("1__0", &v, &neg, &big));
    assert_false(qc_parse_pyint_wide("", &v, &neg, &big));
}

/* A version 3 header of 112 bytes, 512-byte clusters, one extension. */
static char *make_image(void)
{
    static char path[64];
    uint8_t buf[1024] = { 0 };
    int fd;

    snprintf(path, sizeof path, "/tmp/test_pyscript.XXXXXX");
    fd = mkstemp(path);

    assert_true(fd >= 0);
    qc_put_be32(buf, 0x514649fb);
    qc_put_be32(buf + 4, 3);
    qc_put_be32(buf + 20, 9);
    qc_put_be32(buf + 96, 4);
    qc_put_be32(buf + 100, 112);
    buf[111] = 0x5a;                    /* the last header byte: never written */
    qc_put_be32(buf + 112, 0x12345678);
    qc_put_be32(buf + 116, 3);
    memcpy(buf + 120, "abc", 3);
    assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    return path;
}

static void read_back(const char *path, uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
}

static void test_feature_bit_write(void **state)
{
    char *path = make_image();
    struct qc_py_exc exc = { "", "" };
    struct qc_file f;
    uint8_t buf[1024];

    (void)state;
    assert_int_equal(qc_pyscript_open(&f, path, &exc), 0);
    assert_int_equal(qc_pyscript_edit(stdout, &f, QC_PY_SET_FEATURE_BIT, "autoclear", "63",
                                      &exc), 0);
    qc_file_close(&f);
    read_back(path, buf, sizeof buf);
    assert_int_equal(qc_be64(buf + 88), 1ull << 63);
    assert_int_equal(buf[111], 0x5a);
    assert_int_equal(qc_be32(buf + 112), 0x12345678);
    assert_memory_equal(buf + 120, "abc\0\0\0\0\0", 8);
    assert_int_equal(qc_be32(buf + 128), 0);    /* the end marker */
    unlink(path);
}

static void test_exceptions(void **state)
{
    char *path = make_image();
    struct qc_py_exc exc = { "", "" };
    struct qc_file f;
    FILE *null = fopen("/dev/null", "w");

    (void)state;
    assert_int_equal(qc_pyscript_open(&f, path, &exc), 0);
    assert_int_equal(qc_pyscript_edit(null, &f, QC_PY_SET_HEADER, "version", "0x100000000",
                                      &exc), 1);
    assert_string_equal(exc.type, "struct.error");
    assert_string_equal(exc.msg, "'I' format requires 0 <= number <= 4294967295");
    memset(&exc, 0, sizeof exc);
    assert_int_equal(qc_pyscript_edit(null, &f, QC_PY_ADD_EXT, "1", "\xc3\xa9", &exc), 1);
    assert_string_equal(exc.type, "UnicodeEncodeError");
    assert_string_equal(exc.msg, "'ascii' codec can't encode character '\\xe9' in position 0: "
                        "ordinal not in range(128)");
    memset(&exc, 0, sizeof exc);
    assert_int_equal(qc_file_truncate(&f, 60), 0);
    assert_int_equal(qc_pyscript_dump(null, &f, true, false, &exc), 1);
    assert_string_equal(exc.msg, "unpack requires a buffer of 104 bytes");
    qc_file_close(&f);
    fclose(null);
    unlink(path);
    memset(&exc, 0, sizeof exc);
    assert_int_equal(qc_pyscript_open(&f, path, &exc), -1);
    assert_string_equal(exc.type, "FileNotFoundError");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyint_wide),
        cmocka_unit_test(test_feature_bit_write),
        cmocka_unit_test(test_exceptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
