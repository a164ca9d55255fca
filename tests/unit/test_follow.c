/* qc_follow: which files named by a header are opened, on a directory
 * tree built here (an image directory, a file outside it, links both ways,
 * a FIFO). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "qc_follow.h"

static char top[64];
static char img[256], dir[128];

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static int setup(void **state)
{
    char p[256];
    (void)state;
    snprintf(top, sizeof top, "/tmp/qc-test-follow-XXXXXX");
    assert_non_null(mkdtemp(top));
    snprintf(dir, sizeof dir, "%s/img", top);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(img, sizeof img, "%s/ov.qcow2", dir);
    touch(img);
    snprintf(p, sizeof p, "%s/base.qcow2", dir); touch(p);
    snprintf(p, sizeof p, "%s/sub", dir); assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/sub/deep.qcow2", dir); touch(p);
    snprintf(p, sizeof p, "%s/secret", top); touch(p);
    snprintf(p, sizeof p, "%s/out-link", dir); assert_int_equal(symlink("../secret", p), 0);
    snprintf(p, sizeof p, "%s/in-link", dir); assert_int_equal(symlink("base.qcow2", p), 0);
    snprintf(p, sizeof p, "%s/fifo", dir); assert_int_equal(mkfifo(p, 0600), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

/* The verdict for NAME, resolved as a backing name is (against the image's
 * directory). */
static bool followed(const char *name)
{
    char full[256], *why;
    if (name[0] == '/')
        snprintf(full, sizeof full, "%s", name);
    else
        snprintf(full, sizeof full, "%s/%s", dir, name);
    why = qc_follow_refusal(img, name, full, QC_FOLLOW_BACKING);
    if (why) {
        assert_non_null(strstr(why, "--allow"));
        assert_non_null(strstr(why, name));
        free(why);
        return false;
    }
    return true;
}

static void test_default_rule(void **state)
{
    char abs_base[256], abs_secret[256];
    (void)state;
    qc_follow_header(false);
    snprintf(abs_base, sizeof abs_base, "%s/base.qcow2", dir);
    snprintf(abs_secret, sizeof abs_secret, "%s/secret", top);
    assert_true(followed("base.qcow2"));
    assert_true(followed("sub/deep.qcow2"));
    assert_true(followed("in-link"));            /* a link that stays inside */
    assert_true(followed("./base.qcow2"));
    assert_true(followed("missing.qcow2"));      /* left to the open to fail */
    assert_false(followed(abs_base));            /* absolute, even inside */
    assert_false(followed(abs_secret));
    assert_false(followed("../secret"));
    assert_false(followed("sub/../base.qcow2"));
    assert_false(followed("out-link"));          /* a link leading out */
    assert_false(followed("fifo"));              /* not a regular file */
    assert_true(followed("..base"));             /* only a whole component is ".." */
}

static void test_allow_and_follow_header(void **state)
{
    char abs_secret[256], other[256], err[256];
    (void)state;
    qc_follow_header(false);
    snprintf(abs_secret, sizeof abs_secret, "%s/secret", top);
    snprintf(other, sizeof other, "%s/out-link", dir);
    assert_false(followed(abs_secret));
    /* allowed by another name for the same file */
    assert_int_equal(qc_follow_allow(other, err, sizeof err), 0);
    assert_true(followed(abs_secret));
    assert_true(followed("out-link"));
    assert_false(followed("fifo"));
    assert_int_equal(qc_follow_allow("/nonexistent/file", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/file"));
    qc_follow_header(true);
    assert_true(followed("fifo"));
    assert_true(followed("../secret"));
    qc_follow_header(false);
}

static void test_options(void **state)
{
    char err[256];
    (void)state;
    assert_int_equal(qc_follow_opt_parse('x', NULL, err, sizeof err), 0);
    assert_int_equal(qc_follow_opt_parse(QC_FOLLOW_OPT_HEADER, NULL, err, sizeof err), 1);
    assert_true(followed("fifo"));
    qc_follow_header(false);
    assert_int_equal(qc_follow_opt_parse(QC_FOLLOW_OPT_ALLOW, "/nonexistent", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_rule),
        cmocka_unit_test(test_allow_and_follow_header),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
