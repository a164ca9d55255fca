/* Backups of a repair (qc_backup.h): what is saved, the format's checks
 * (every cut and every flipped byte refused, hostile lengths refused
 * without allocating them), and the undo's comparison of the image with
 * the state the backup expects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "qc_backup.h"
#include "qc_endian.h"
#include "qc_io.h"
#include "qc_plan.h"

#define OLD_LEN 8192u
#define NEW_LEN 16384u

struct fixture {
    char image[40], bak[40];
    uint8_t orig[OLD_LEN];
    struct qc_plan plan;
    struct qc_file f;
};

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 20);

    assert_non_null(fp);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

/* An 8 KiB file whose "header" names 4 KiB clusters, and a plan that
 * writes inside it, across its end, and past it after growing it. */
static void setup(struct fixture *x)
{
    static const uint8_t a[12] = "refcounttab", b[4] = { 0xaa, 0xbb, 0xcc, 0xdd };
    static uint8_t c[512];
    int fd;

    for (size_t i = 0; i < OLD_LEN; i++)
        x->orig[i] = (uint8_t)(i * 7 + 3);
    qc_put_be32(x->orig + 20, 12);
    strcpy(x->image, "/tmp/qc-test-backup-XXXXXX");
    fd = mkstemp(x->image);
    assert_true(fd >= 0);
    close(fd);
    strcpy(x->bak, x->image);
    strcat(x->bak, ".bak");
    unlink(x->bak);
    write_file(x->image, x->orig, OLD_LEN);
    memset(c, 0x5a, sizeof c);
    qc_plan_init(&x->plan);
    assert_int_equal(qc_plan_write(&x->plan, 0x30, a, sizeof a, QC_EV_REPAIR, "a"), 0);
    assert_int_equal(qc_plan_flush(&x->plan), 0);
    assert_int_equal(qc_plan_write(&x->plan, OLD_LEN - 2, b, sizeof b, QC_EV_REPAIR, "b"), 0);
    assert_int_equal(qc_plan_grow(&x->plan, NEW_LEN, "grow"), 0);
    assert_int_equal(qc_plan_write(&x->plan, 12288, c, sizeof c, QC_EV_REPAIR, "c"), 0);
    assert_int_equal(qc_file_open(&x->f, x->image, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL), 0);
}

static void teardown(struct fixture *x)
{
    qc_file_close(&x->f);
    qc_plan_free(&x->plan);
    unlink(x->image);
    unlink(x->bak);
}

/* Saves the backup, carries the plan out (all of it when FINISH), and
 * reads the backup back. */
static void repair(struct fixture *x, bool finish, struct qc_backup *b)
{
    struct qc_backup_writer w;
    const char *err = NULL;

    assert_int_equal(qc_backup_save(&x->plan, &x->f, x->bak, &w, &err), 0);
    if (finish) {
        assert_int_equal(qc_plan_execute(&x->plan, &x->f), 0);
        assert_int_equal(qc_backup_finish(&w, &x->f, &err), 0);
    } else {
        /* stopped after the first write */
        assert_int_equal(qc_file_write(&x->f, 0x30, x->plan.v[0].data, 12, QC_EV_REPAIR), 0);
        qc_backup_abandon(&w);
    }
    assert_int_equal(qc_backup_load(b, x->bak, &err), 0);
}

static void assert_original(struct fixture *x)
{
    uint8_t now[OLD_LEN];

    assert_int_equal(x->f.size, OLD_LEN);
    assert_int_equal(qc_file_read(&x->f, 0, now, OLD_LEN), 0);
    assert_memory_equal(now, x->orig, OLD_LEN);
}

static void test_round_trip(void **state)
{
    struct fixture x;
    struct qc_backup b;
    struct qc_backup_state st;
    size_t n;
    (void)state;

    setup(&x);
    repair(&x, true, &b);
    assert_true(b.finished);
    assert_int_equal(b.size_before, OLD_LEN);
    assert_int_equal(b.size_after, NEW_LEN);
    assert_int_equal(b.header_len, 4096);
    /* the write across the old end gives a saved and an unsaved record */
    assert_int_equal(b.n, 4);
    assert_non_null(b.v[0].before);
    assert_int_equal(b.v[1].off, OLD_LEN - 2);
    assert_int_equal(b.v[1].len, 2);
    assert_non_null(b.v[1].before);
    assert_int_equal(b.v[2].off, OLD_LEN);
    assert_null(b.v[2].before);
    assert_null(b.v[3].before);
    assert_int_equal(qc_backup_verify(&b, &x.f, NULL, NULL, &st), 0);
    assert_int_equal(st.differences, 0);
    assert_false(st.already_restored);
    assert_int_equal(qc_backup_apply(&b, &x.f, &n), 0);
    assert_int_equal(n, 2);
    assert_original(&x);
    /* a second undo finds nothing to do */
    assert_int_equal(qc_backup_verify(&b, &x.f, NULL, NULL, &st), 0);
    assert_int_equal(st.differences, 0);
    assert_true(st.already_restored);
    qc_backup_free(&b);
    teardown(&x);
}

/* A repair that stopped: no trailer; ranges hold old or new bytes. */
static void test_unfinished(void **state)
{
    struct fixture x;
    struct qc_backup b;
    struct qc_backup_state st;
    size_t n;
    (void)state;

    setup(&x);
    repair(&x, false, &b);
    assert_false(b.finished);
    assert_int_equal(qc_backup_verify(&b, &x.f, NULL, NULL, &st), 0);
    assert_int_equal(st.differences, 0);
    assert_int_equal(qc_backup_apply(&b, &x.f, &n), 0);
    assert_original(&x);
    qc_backup_free(&b);
    teardown(&x);
}

struct said {
    size_t n;
    char all[4096];
};

/* Keeps every line of the latest check (S->n counts them all). */
static void say(void *ctx, const char *line)
{
    struct said *s = ctx;
    size_t used = strlen(s->all);
    s->n++;
    snprintf(s->all + used, sizeof s->all - used, "%s\n", line);
}

/* Changes after the repair are found, each named; none is written. */
static void test_mismatch(void **state)
{
    static const uint8_t x1 = 0x11;
    struct fixture x;
    struct qc_backup b;
    struct qc_backup_state st;
    struct said s = { 0, "" };
    (void)state;

    setup(&x);
    repair(&x, true, &b);
    /* a saved range */
    assert_int_equal(qc_file_write(&x.f, 0x31, &x1, 1, QC_EV_NONE), 0);
    s.all[0] = 0;
    assert_int_equal(qc_backup_verify(&b, &x.f, say, &s, &st), 0);
    assert_int_equal(st.differences, 1);
    assert_false(st.wrong_image);
    assert_non_null(strstr(s.all, "range 1 of 4 (offset 0x30, 12 bytes)"));
    /* a range past the old end, and the length */
    assert_int_equal(qc_file_write(&x.f, 12288, &x1, 1, QC_EV_NONE), 0);
    assert_int_equal(qc_file_write(&x.f, NEW_LEN, &x1, 1, QC_EV_NONE), 0);
    s.all[0] = 0;
    assert_int_equal(qc_backup_verify(&b, &x.f, say, &s, &st), 0);
    assert_int_equal(st.differences, 2);
    assert_non_null(strstr(s.all, "bytes long; the repair left it 16384 bytes long"));
    assert_int_equal(qc_file_truncate(&x.f, NEW_LEN), 0);
    s.all[0] = 0;
    assert_int_equal(qc_backup_verify(&b, &x.f, say, &s, &st), 0);
    assert_int_equal(st.differences, 2);
    assert_non_null(strstr(s.all, "range 4 of 4 (offset 0x3000, 512 bytes, past the old end"));
    /* the header cluster outside the ranges: another image */
    assert_int_equal(qc_file_write(&x.f, 100, &x1, 1, QC_EV_NONE), 0);
    s.all[0] = 0;
    assert_int_equal(qc_backup_verify(&b, &x.f, say, &s, &st), 0);
    assert_int_equal(st.differences, 3);
    assert_true(st.wrong_image);
    qc_backup_free(&b);
    teardown(&x);
}

static void sha256(const void *data, size_t len, uint8_t *out)
{
    unsigned n = 32;
    assert_true(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL));
}

/* Every cut and every flipped byte is refused; only the body without the
 * trailer (a repair that did not finish) is a backup. */
static void test_damage(void **state)
{
    struct fixture x;
    struct qc_backup b;
    const char *err;
    uint8_t *buf;
    size_t len;
    (void)state;

    setup(&x);
    repair(&x, true, &b);
    qc_backup_free(&b);
    buf = read_file(x.bak, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        if (qc_backup_parse(&b, copy, cut, &err) == 0) {
            assert_int_equal(cut, len - 48);
            assert_false(b.finished);
        }
        qc_backup_free(&b);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        copy[i] ^= 0x01;
        assert_int_equal(qc_backup_parse(&b, copy, len, &err), QC_E_FORMAT);
        qc_backup_free(&b);
    }
    free(buf);
    teardown(&x);
}

/* A body with a valid hash but hostile counts and lengths. */
static uint8_t *hostile(uint64_t n, uint64_t off, uint64_t rlen, uint64_t saved, size_t *len)
{
    uint8_t *p = calloc(1, 256);

    memcpy(p, "QCREPBK2", 8);
    qc_put_be64(p + 8, OLD_LEN);
    qc_put_be64(p + 16, NEW_LEN);
    qc_put_be64(p + 24, 512);
    qc_put_be64(p + 64, n);
    qc_put_be64(p + 72, off);
    qc_put_be64(p + 80, rlen);
    qc_put_be64(p + 88, saved);
    /* one record head (56 bytes) and 4 bytes of data */
    sha256(p, 72 + 56 + 4, p + 72 + 56 + 4);
    *len = 72 + 56 + 4 + 32;
    return p;
}

static void test_hostile(void **state)
{
    static const uint64_t cases[][4] = {
        { UINT64_MAX, 0, 4, 4 },            /* a count that the file cannot hold */
        { 1ull << 60, 0, 4, 4 },
        { 1, 0, UINT64_MAX, UINT64_MAX },   /* a length past the file */
        { 1, UINT64_MAX - 1, 4, 4 },        /* an offset that overflows */
        { 1, 0, 4, 2 },                     /* saved neither all nor nothing */
        { 1, OLD_LEN - 2, 4, 4 },           /* saved bytes past the old end */
        { 1, 0, 4, 0 },                     /* unsaved bytes inside the old file */
    };
    struct qc_backup b;
    const char *err;
    size_t len;
    (void)state;

    /* the well-formed variant parses */
    {
        uint8_t *p = hostile(1, 0, 4, 4, &len);
        assert_int_equal(qc_backup_parse(&b, p, len, &err), 0);
        qc_backup_free(&b);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p = hostile(cases[i][0], cases[i][1], cases[i][2], cases[i][3], &len);
        assert_int_equal(qc_backup_parse(&b, p, len, &err), QC_E_FORMAT);
        qc_backup_free(&b);
    }
    {
        uint8_t *p = hostile(1, 0, 4, 4, &len);
        memcpy(p, "QCREPBK1", 8);
        assert_int_equal(qc_backup_parse(&b, p, len, &err), QC_E_FORMAT);
        assert_non_null(strstr(err, "version 1"));
        qc_backup_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
