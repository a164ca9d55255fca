/* The repair engine and its write plans on small images built here byte by
 * byte: QEMU's lines and counts, where new structures go, that the plan
 * leaves a clean image with the same data, that a plan cut short after any
 * write is finished by a second repair, and backups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qc_check.h"
#include "qc_backup.h"
#include "qc_endian.h"
#include "qc_io.h"
#include "qc_plan.h"
#include "qc_repair.h"

#include "check_image.h"

static void write_image(const struct img *m, char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, m->b, m->len), (ssize_t)m->len);
    close(fd);
}

static void plan(const char *path, enum qc_repair_mode mode, struct qc_repair *rp, struct lines *l)
{
    struct qc_repair_opts o = { .mode = mode, .sink = collect, .opaque = l };
    memset(l, 0, sizeof *l);
    assert_int_equal(qc_repair_plan(path, &o, rp), 0);
}

/* Carries out the first N steps of the plan (all when N is SIZE_MAX). */
static void execute(const char *path, struct qc_plan *p, size_t n)
{
    struct qc_file f;
    size_t keep = p->n;

    assert_int_equal(qc_file_open(&f, path, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL), 0);
    if (n < p->n)
        p->n = n;
    assert_int_equal(qc_plan_execute(p, &f), 0);
    p->n = keep;
    qc_file_close(&f);
}

static int check(const char *path, struct qc_check_result *r)
{
    struct qc_check_opts o = { 0 };
    assert_int_equal(qc_check_image(path, &o, r, NULL), 0);
    return qc_check_exit_code(r);
}

static void read_at(const char *path, uint64_t off, void *buf, size_t len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
    assert_int_equal(fread(buf, 1, len, fp), len);
    fclose(fp);
}

/* The lazy-refcount crash: QEMU's rebuild (new block at 6, table at 7, the
 * old ones freed), for every refcount width. */
static void zero_refcount_rebuild(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 6; order++) {
        char path[] = "/tmp/qc-test-repair-XXXXXX";
        struct img m = make_image(order);
        struct qc_repair rp;
        struct qc_check_result r;
        struct lines l;
        uint8_t data[CS], hdr[12];

        set_refcount(&m, 5, 0);
        write_image(&m, path);
        plan(path, QC_REPAIR_ALL, &rp, &l);
        assert_int_equal(rp.status, QC_REPAIR_PLANNED);
        assert_true(rp.rebuild);
        assert_string_equal(l.buf, "ERROR cluster 5 refcount=0 reference=1\n"
                                   "Rebuilding refcount structure\n"
                                   "Repairing cluster 1 refcount=1 reference=0\n"
                                   "Repairing cluster 2 refcount=1 reference=0\n");
        assert_int_equal(rp.corruptions_fixed, 1);
        assert_int_equal(rp.leaks_fixed, 0);
        assert_int_equal(rp.new_reftable_offset, 7 * CS);
        assert_int_equal(rp.remaining, 0);
        execute(path, &rp.plan, SIZE_MAX);
        qc_repair_free(&rp);
        assert_int_equal(check(path, &r), 0);
        assert_int_equal(r.image_end_offset, 8 * CS);
        qc_check_result_free(&r);
        read_at(path, 48, hdr, sizeof hdr);
        assert_int_equal(qc_be64(hdr), 7 * CS);
        assert_int_equal(qc_be32(hdr + 8), 1);
        read_at(path, 5 * CS, data, CS);
        assert_memory_equal(data, m.b + 5 * CS, CS);
        unlink(path);
        free(m.b);
    }
}

/* Refcount 2 for a cluster used once: lowered in place, one write. */
static void leak_in_place(void **state)
{
    char path[] = "/tmp/qc-test-repair-XXXXXX";
    struct img m = make_image(4);
    struct qc_repair rp;
    struct qc_check_result r;
    struct lines l;
    (void)state;

    set_refcount(&m, 5, 2);
    write_image(&m, path);
    plan(path, QC_REPAIR_LEAKS, &rp, &l);
    assert_int_equal(rp.status, QC_REPAIR_PLANNED);
    assert_false(rp.rebuild);
    assert_string_equal(l.buf, "Leaked cluster 5 refcount=2 reference=1\n"
                               "Repairing cluster 5 refcount=2 reference=1\n");
    assert_int_equal(rp.leaks_fixed, 1);
    assert_int_equal(rp.corruptions_fixed, 0);
    assert_int_equal(qc_plan_nwrites(&rp.plan), 1);
    assert_int_equal(rp.plan.v[0].off, 2 * CS + 10);
    assert_int_equal(rp.plan.v[0].len, 2);
    execute(path, &rp.plan, SIZE_MAX);
    qc_repair_free(&rp);
    assert_int_equal(check(path, &r), 0);
    qc_check_result_free(&r);
    unlink(path);
    free(m.b);
}

/* -r leaks cannot rebuild: QEMU's refusal, and no plan. */
static void leaks_needs_rebuild(void **state)
{
    char path[] = "/tmp/qc-test-repair-XXXXXX";
    struct img m = make_image(4);
    struct qc_repair rp;
    struct lines l;
    (void)state;

    set_refcount(&m, 5, 0);
    write_image(&m, path);
    plan(path, QC_REPAIR_LEAKS, &rp, &l);
    assert_int_equal(rp.status, QC_REPAIR_NEED_REBUILD);
    assert_string_equal(l.buf, "ERROR cluster 5 refcount=0 reference=1\n"
                               "ERROR need to rebuild refcount structures\n");
    assert_int_equal(qc_plan_nwrites(&rp.plan), 0);
    qc_repair_free(&rp);
    unlink(path);
    free(m.b);
}

/* OFLAG_COPIED missing on both levels: -r leaks fixes it (nothing else is
 * wrong), with one L2 and one L1 write. */
static void oflag_copied(void **state)
{
    char path[] = "/tmp/qc-test-repair-XXXXXX";
    struct img m = make_image(4);
    struct qc_repair rp;
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + 3 * CS, 4 * CS);
    qc_put_be64(m.b + 4 * CS, 5 * CS);
    write_image(&m, path);
    plan(path, QC_REPAIR_LEAKS, &rp, &l);
    assert_string_equal(l.buf, "Repairing OFLAG_COPIED L2 cluster: l1_index=0 l1_entry=40000 refcount=1\n"
                               "Repairing OFLAG_COPIED data cluster: l2_entry=50000 refcount=1\n");
    assert_int_equal(rp.corruptions_fixed, 2);
    assert_int_equal(qc_plan_nwrites(&rp.plan), 2);
    execute(path, &rp.plan, SIZE_MAX);
    qc_repair_free(&rp);
    assert_int_equal(check(path, &r), 0);
    qc_check_result_free(&r);
    unlink(path);
    free(m.b);
}

/* A reftable entry with reserved bits: the new refcount block must not go
 * on the old block's cluster (2), although nothing counts it. */
static void never_on_old_block(void **state)
{
    char path[] = "/tmp/qc-test-repair-XXXXXX";
    struct img m = make_image(4);
    struct qc_repair rp;
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + CS, 2 * CS + 1);
    write_image(&m, path);
    plan(path, QC_REPAIR_ALL, &rp, &l);
    assert_int_equal(rp.status, QC_REPAIR_PLANNED);
    assert_true(rp.rebuild);
    for (size_t i = 0; i < rp.plan.n; i++)
        if (rp.plan.v[i].op == QC_PLAN_WRITE)
            assert_true(rp.plan.v[i].off < 2 * CS || rp.plan.v[i].off >= 3 * CS);
    execute(path, &rp.plan, SIZE_MAX);
    qc_repair_free(&rp);
    assert_int_equal(check(path, &r), 0);
    qc_check_result_free(&r);
    unlink(path);
    free(m.b);
}

/* A plan cut short after any of its writes: a second repair finishes, the
 * result is clean and the data the same. */
static void interrupted(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        struct img m = make_image(4);
        struct qc_repair rp;
        size_t nsteps;

        if (kind == 0)
            set_refcount(&m, 5, 0);
        else if (kind == 1)
            set_refcount(&m, 5, 2);
        else
            qc_put_be64(m.b + 4 * CS, 5 * CS);
        {
            char path[] = "/tmp/qc-test-repair-XXXXXX";
            struct lines l;
            write_image(&m, path);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            nsteps = rp.plan.n;
            qc_repair_free(&rp);
            unlink(path);
        }
        for (size_t cut = 0; cut <= nsteps; cut++) {
            char path[] = "/tmp/qc-test-repair-XXXXXX";
            struct qc_check_result r;
            struct lines l;
            uint8_t data[CS];

            write_image(&m, path);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            execute(path, &rp.plan, cut);
            qc_repair_free(&rp);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            assert_int_equal(rp.status, QC_REPAIR_PLANNED);
            execute(path, &rp.plan, SIZE_MAX);
            qc_repair_free(&rp);
            assert_int_equal(check(path, &r), 0);
            qc_check_result_free(&r);
            read_at(path, 5 * CS, data, CS);
            assert_memory_equal(data, m.b + 5 * CS, CS);
            unlink(path);
        }
        free(m.b);
    }
}

/* Raised and lowered refcounts interleaved in one refcount block (clusters
 * 6, 8, 10 are mapped twice but counted 1; 5, 7, 9, 11 counted 3): the
 * lowering write spans entries the raising write changed before it and
 * must carry their new values.  Checked for every width that can count 3,
 * for the whole plan and for the plan cut short after each step. */
#define MIXED_CLUSTERS 13

static struct img make_mixed(unsigned order)
{
    struct img m = make_image(order);
    uint8_t *b = realloc(m.b, MIXED_CLUSTERS * CS);

    assert_non_null(b);
    m.b = b;
    m.len = MIXED_CLUSTERS * CS;
    for (unsigned k = 6; k < MIXED_CLUSTERS; k++) {
        memset(m.b + (size_t)k * CS, (int)(0x10 + k), CS);
        set_refcount(&m, k, 1);
    }
    for (unsigned g = 0; g < MIXED_CLUSTERS - 5; g++)
        qc_put_be64(m.b + 4 * CS + 8 * g, 0x8000000000000000ull | (uint64_t)(5 + g) * CS);
    qc_put_be64(m.b + 4 * CS + 8 * 8, 6 * CS);
    qc_put_be64(m.b + 4 * CS + 8 * 9, 8 * CS);
    qc_put_be64(m.b + 4 * CS + 8 * 10, 10 * CS);
    for (unsigned k = 5; k <= 11; k += 2)
        set_refcount(&m, k, 3);
    return m;
}

static uint64_t refcount_at(const uint8_t *rb, unsigned order, uint64_t k)
{
    unsigned bits = 1u << order;
    uint64_t v = 0;
    if (bits >= 8) {
        for (unsigned i = 0; i < bits / 8; i++)
            v = v << 8 | rb[k * bits / 8 + i];
        return v;
    }
    return (rb[k * bits / 8] >> (k * bits % 8)) & ((1u << bits) - 1);
}

static void mixed_result(const char *path, const struct img *m, unsigned order)
{
    struct qc_check_result r;
    uint8_t *rb = malloc(CS), *data = malloc(CS);

    assert_non_null(rb);
    assert_non_null(data);
    assert_int_equal(check(path, &r), 0);
    qc_check_result_free(&r);
    read_at(path, 2 * CS, rb, CS);
    for (uint64_t k = 0; k < MIXED_CLUSTERS; k++)
        assert_int_equal(refcount_at(rb, order, k), k == 6 || k == 8 || k == 10 ? 2 : 1);
    for (uint64_t k = 5; k < MIXED_CLUSTERS; k++) {
        read_at(path, k * CS, data, CS);
        assert_memory_equal(data, m->b + k * CS, CS);
    }
    free(rb);
    free(data);
}

static void raise_lower_interleaved(void **state)
{
    (void)state;
    for (unsigned order = 1; order <= 6; order++) {
        struct img m = make_mixed(order);
        struct qc_repair rp;
        size_t nsteps, raise_at = SIZE_MAX, lower_at = SIZE_MAX;

        {
            char path[] = "/tmp/qc-test-repair-XXXXXX";
            struct lines l;
            write_image(&m, path);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            assert_int_equal(rp.status, QC_REPAIR_PLANNED);
            assert_false(rp.rebuild);
            assert_int_equal(rp.corruptions_fixed, 3 + 3);   /* 3 raised, 3 OFLAG_COPIED */
            assert_int_equal(rp.leaks_fixed, 4);
            assert_non_null(strstr(l.buf, "Repairing cluster 5 refcount=3 reference=1\n"
                                          "Repairing cluster 6 refcount=1 reference=2\n"));
            /* raised, flushed, then lowered, in two writes to the block */
            for (size_t i = 0; i < rp.plan.n; i++) {
                const struct qc_plan_step *st = &rp.plan.v[i];
                if (st->op != QC_PLAN_WRITE || st->off < 2 * CS || st->off >= 3 * CS)
                    continue;
                if (raise_at == SIZE_MAX)
                    raise_at = i;
                else
                    lower_at = i;
            }
            assert_true(raise_at != SIZE_MAX && lower_at != SIZE_MAX);
            assert_non_null(strstr(rp.plan.v[raise_at].what, "raise"));
            assert_non_null(strstr(rp.plan.v[lower_at].what, "lower"));
            for (size_t i = raise_at + 1; i < lower_at; i++)
                if (rp.plan.v[i].op == QC_PLAN_FLUSH)
                    raise_at = SIZE_MAX;
            assert_true(raise_at == SIZE_MAX);
            execute(path, &rp.plan, SIZE_MAX);
            nsteps = rp.plan.n;
            qc_repair_free(&rp);
            mixed_result(path, &m, order);
            unlink(path);
        }
        for (size_t cut = 0; cut < nsteps; cut++) {
            char path[] = "/tmp/qc-test-repair-XXXXXX";
            struct lines l;

            write_image(&m, path);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            execute(path, &rp.plan, cut);
            qc_repair_free(&rp);
            plan(path, QC_REPAIR_ALL, &rp, &l);
            assert_int_equal(rp.status, QC_REPAIR_PLANNED);
            execute(path, &rp.plan, SIZE_MAX);
            qc_repair_free(&rp);
            mixed_result(path, &m, order);
            unlink(path);
        }
        free(m.b);
    }
}

/* A backup restores every byte and the length; a damaged one is refused. */
static void backup_undo(void **state)
{
    char path[] = "/tmp/qc-test-repair-XXXXXX";
    char bak[] = "/tmp/qc-test-repair-bak-XXXXXX";
    struct img m = make_image(4);
    struct qc_backup_writer w;
    struct qc_backup_state st;
    struct qc_backup b;
    struct qc_repair rp;
    struct qc_file f;
    struct lines l;
    const char *err = NULL;
    uint8_t *now = malloc(m.len);
    size_t n = 0;
    int fd;
    (void)state;

    set_refcount(&m, 5, 0);
    write_image(&m, path);
    fd = mkstemp(bak);
    assert_true(fd >= 0);
    close(fd);
    /* a backup is created exclusively: an existing file is never replaced */
    plan(path, QC_REPAIR_ALL, &rp, &l);
    assert_int_equal(qc_file_open(&f, path, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL), 0);
    assert_true(qc_backup_save(&rp.plan, &f, bak, &w, &err) < 0);
    qc_file_close(&f);
    qc_repair_free(&rp);
    unlink(bak);
    plan(path, QC_REPAIR_ALL, &rp, &l);
    assert_int_equal(qc_file_open(&f, path, QC_OPEN_WRITE | QC_OPEN_NOLOCK, NULL), 0);
    assert_int_equal(qc_backup_save(&rp.plan, &f, bak, &w, &err), 0);
    assert_int_equal(qc_plan_execute(&rp.plan, &f), 0);
    assert_int_equal(qc_backup_finish(&w, &f, &err), 0);
    assert_true(f.size > m.len);
    assert_int_equal(qc_backup_load(&b, bak, &err), 0);
    assert_true(b.finished);
    assert_int_equal(qc_backup_verify(&b, &f, NULL, NULL, &st), 0);
    assert_int_equal(st.differences, 0);
    assert_int_equal(qc_backup_apply(&b, &f, &n), 0);
    qc_backup_free(&b);
    assert_true(n > 0);
    assert_int_equal(f.size, m.len);
    qc_file_close(&f);
    qc_repair_free(&rp);
    read_at(path, 0, now, m.len);
    assert_memory_equal(now, m.b, m.len);
    {
        FILE *fp = fopen(bak, "r+b");
        assert_non_null(fp);
        fseek(fp, 30, SEEK_SET);
        fputc('x', fp);
        fclose(fp);
    }
    assert_int_equal(qc_backup_load(&b, bak, &err), QC_E_FORMAT);
    qc_backup_free(&b);
    unlink(bak);
    unlink(path);
    free(now);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_refcount_rebuild),
        cmocka_unit_test(leak_in_place),
        cmocka_unit_test(leaks_needs_rebuild),
        cmocka_unit_test(oflag_copied),
        cmocka_unit_test(never_on_old_block),
        cmocka_unit_test(interrupted),
        cmocka_unit_test(raise_lower_interleaved),
        cmocka_unit_test(backup_undo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
