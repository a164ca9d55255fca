/* The check engine on small images built here byte by byte: the counts,
 * the lines and their order, for damage whose outcome QEMU 7.2 is known to
 * give (qemu-img check transcripts). */
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
#include "qc_cluster.h"
#include "qc_endian.h"

#include "check_image.h"

/* Writes M to a temporary file and checks it. */
static int run(struct img *m, struct qc_check_result *r, struct lines *l)
{
    char path[] = "/tmp/qc-test-check-XXXXXX";
    struct qc_check_opts o = { 0 };
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, m->b, m->len), (ssize_t)m->len);
    close(fd);
    memset(l, 0, sizeof *l);
    o.sink = collect;
    o.opaque = l;
    assert_int_equal(qc_check_image(path, &o, r, NULL), 0);
    unlink(path);
    return qc_check_exit_code(r);
}

static void clean(void **state)
{
    (void)state;
    for (unsigned order = 0; order <= 6; order++) {
        struct img m = make_image(order);
        struct qc_check_result r;
        struct lines l;

        assert_int_equal(run(&m, &r, &l), 0);
        assert_int_equal(r.status, QC_CHECK_DONE);
        assert_int_equal(r.corruptions + r.leaks + r.check_errors, 0);
        assert_int_equal(r.total_clusters, 1024);
        assert_int_equal(r.allocated_clusters, 1);
        assert_int_equal(r.fragmented_clusters, 0);
        assert_int_equal(r.image_end_offset, 6 * CS);
        assert_string_equal(l.buf, "");
        qc_check_result_free(&r);
        free(m.b);
    }
}

/* The lazy-refcount crash: data cluster with refcount 0. */
static void zero_refcount(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    set_refcount(&m, 5, 0);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 2);
    assert_true(r.rebuild_needed);
    assert_string_equal(l.buf,
                        "ERROR cluster 5 refcount=0 reference=1\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=0\n");
    assert_int_equal(r.image_end_offset, 6 * CS);
    qc_check_result_free(&r);
    free(m.b);
}

static void raised_refcount(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    set_refcount(&m, 5, 2);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 1);
    assert_int_equal(r.leaks, 1);
    assert_false(r.rebuild_needed);
    assert_string_equal(l.buf,
                        "Leaked cluster 5 refcount=2 reference=1\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=2\n");
    qc_check_result_free(&r);
    free(m.b);
}

static void copied_flags(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + 3 * CS, 4 * CS);
    qc_put_be64(m.b + 4 * CS, 5 * CS);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 2);
    assert_string_equal(l.buf,
                        "ERROR OFLAG_COPIED L2 cluster: l1_index=0 l1_entry=40000 refcount=1\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=50000 refcount=1\n");
    qc_check_result_free(&r);
    free(m.b);
}

/* Refcount table entry 0x20200: unaligned block, every lookup fails. */
static void unaligned_refblock(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + CS, 0x20200);
    assert_int_equal(run(&m, &r, &l), 1);
    assert_int_equal(r.status, QC_CHECK_DONE);
    assert_int_equal(r.corruptions, 1);
    assert_int_equal(r.check_errors, 6);
    assert_int_equal(r.image_end_offset, CS);
    assert_string_equal(l.buf,
                        "ERROR refcount block 0 is not cluster aligned; refcount table entry corrupted\n"
                        "qcow2: Image is corrupt: Refblock offset 0x20200 unaligned (reftable index: 0); "
                        "further non-fatal corruption events will be suppressed\n"
                        "Can't get refcount for cluster 0: Input/output error\n"
                        "Can't get refcount for cluster 1: Input/output error\n"
                        "Can't get refcount for cluster 2: Input/output error\n"
                        "Can't get refcount for cluster 3: Input/output error\n"
                        "Can't get refcount for cluster 4: Input/output error\n"
                        "Can't get refcount for cluster 5: Input/output error\n");
    qc_check_result_free(&r);
    free(m.b);
}

/* Reserved bits win over alignment; the block is then not counted. */
static void reserved_reftable_entry(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + CS, 0x20001);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 1);
    assert_int_equal(r.leaks, 1);
    assert_true(r.rebuild_needed);
    assert_string_equal(l.buf, "ERROR refcount table entry 0 has reserved bits set\n"
                               "Leaked cluster 2 refcount=1 reference=0\n");
    qc_check_result_free(&r);
    free(m.b);
}

/* A reference ending one cluster past EOF is an error and not counted; one
 * ending less than that is counted and extends the compared range. */
static void end_of_file_rule(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    /* data at cluster 6 == file length: one cluster past */
    qc_put_be64(m.b + 4 * CS + 8, 0x8000000000000000ull | 6 * CS);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 2);
    assert_string_equal(l.buf,
                        "ERROR: counting reference for region exceeding the end of the file by one "
                        "cluster or more: offset 0x60000 size 0x10000\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000060000 refcount=0\n");
    qc_check_result_free(&r);

    /* the file one byte longer: cluster 6 is counted (less than a cluster past) */
    m.b = realloc(m.b, m.len + 1);
    m.b[m.len++] = 0;
    assert_int_equal(run(&m, &r, &l), 2);
    assert_string_equal(l.buf,
                        "ERROR cluster 6 refcount=0 reference=1\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000060000 refcount=0\n");
    assert_int_equal(r.image_end_offset, 7 * CS);
    assert_int_equal(r.fragmented_clusters, 0);
    assert_int_equal(r.allocated_clusters, 2);
    qc_check_result_free(&r);
    free(m.b);
}

/* 1-bit refcounts: a second reference overflows. */
static void overflow(void **state)
{
    struct img m = make_image(0);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    /* a copy of the entry (with OFLAG_COPIED: the on-disk count is 1) */
    qc_put_be64(m.b + 4 * CS + 8, 0x8000000000000000ull | 5 * CS);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 1);
    assert_int_equal(r.fragmented_clusters, 1);
    assert_string_equal(l.buf,
                        "ERROR: overflow cluster offset=0x50000\n"
                        "Use qemu-img amend to increase the refcount entry width or qemu-img convert "
                        "to create a clean copy if the image cannot be opened for writing\n");
    qc_check_result_free(&r);
    free(m.b);
}

/* Unaligned and reserved-bit L2 entries. */
static void l2_entry_damage(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be64(m.b + 4 * CS, 0x8000000000050200ull);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_string_equal(l.buf,
                        "ERROR offset=50200: Data cluster is not properly aligned; L2 entry corrupted.\n"
                        "ERROR cluster 6 refcount=0 reference=1\n");
    assert_int_equal(r.corruptions, 2);
    assert_int_equal(r.image_end_offset, 7 * CS);
    qc_check_result_free(&r);

    qc_put_be64(m.b + 4 * CS, 0x8000000000050003ull);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_string_equal(l.buf, "ERROR found l2 entry with reserved bits set: 8000000000050003\n");
    assert_int_equal(r.allocated_clusters, 1);
    qc_check_result_free(&r);
    free(m.b);
}

/* The check stops on a snapshot table offset QEMU refuses. */
static void snapshot_table_invalid(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be32(m.b + 60, 1);
    qc_put_be64(m.b + 64, 0x100);
    assert_int_equal(run(&m, &r, &l), 1);
    assert_int_equal(r.status, QC_CHECK_FAILED);
    assert_int_equal(r.check_errors, 1);
    assert_string_equal(r.message, "Invalid argument");
    assert_string_equal(l.buf, "qemu-img: ERROR snapshot table offset invalid\n");
    qc_check_result_free(&r);
    free(m.b);
}

/* Open-time refusals keep QEMU's words and order. */
static void open_refusals(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    qc_put_be32(m.b + 72 + 4, 0x20);   /* unknown incompatible bit 5 */
    assert_int_equal(run(&m, &r, &l), 1);
    assert_int_equal(r.status, QC_CHECK_OPEN_FAILED);
    assert_non_null(strstr(r.message, ": Unsupported qcow2 feature(s): Unknown incompatible feature: 20"));
    qc_check_result_free(&r);
    qc_put_be32(m.b + 76, 0);

    qc_put_be32(m.b + 56, 0);          /* no refcount table: allowed in check mode */
    assert_int_equal(run(&m, &r, &l), 2);
    assert_int_equal(r.corruptions, 6);
    qc_check_result_free(&r);

    qc_put_be32(m.b + 4, 1);           /* version 1: the legacy qcow driver */
    assert_int_equal(run(&m, &r, &l), 1);
    assert_non_null(strstr(r.message, "Cluster size must be between 512 and 64k"));
    qc_check_result_free(&r);

    memset(m.b, 0, 8);                 /* not qcow2 at all */
    assert_int_equal(run(&m, &r, &l), 63);
    assert_int_equal(r.status, QC_CHECK_UNSUPPORTED);
    qc_check_result_free(&r);
    free(m.b);
}

/* A run of 40 adjacent data clusters (the batched paths of the walk and
 * the comparison), with a raised refcount and a missing OFLAG_COPIED in
 * the middle of it. */
static void long_run(void **state)
{
    struct img m = make_image(4);
    struct qc_check_result r;
    struct lines l;
    (void)state;

    m.len = 45 * CS;
    m.b = realloc(m.b, m.len);
    memset(m.b + 6 * CS, 0, m.len - 6 * CS);
    for (unsigned k = 0; k < 45; k++)
        set_refcount(&m, k, 1);
    set_refcount(&m, 13, 2);
    for (unsigned j = 0; j < 40; j++)
        qc_put_be64(m.b + 4 * CS + 8 * j, (j == 15 ? 0 : 0x8000000000000000ull) | (5 + j) * CS);
    assert_int_equal(run(&m, &r, &l), 2);
    assert_string_equal(l.buf,
                        "Leaked cluster 13 refcount=2 reference=1\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=80000000000d0000 refcount=2\n"
                        "ERROR OFLAG_COPIED data cluster: l2_entry=140000 refcount=1\n");
    assert_int_equal(r.corruptions, 2);
    assert_int_equal(r.leaks, 1);
    assert_int_equal(r.allocated_clusters, 40);
    assert_int_equal(r.fragmented_clusters, 0);
    assert_int_equal(r.image_end_offset, 45 * CS);
    qc_check_result_free(&r);
    free(m.b);
}

/* What each cluster is, from the same walk. */
static void cluster_query(void **state)
{
    struct img m = make_image(4);
    uint64_t ks[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    struct qc_cluster_info info[8];
    char path[] = "/tmp/qc-test-cluster-XXXXXX";
    int fd = mkstemp(path);
    char *d;
    (void)state;

    set_refcount(&m, 6, 1);            /* a leak */
    m.b = realloc(m.b, 7 * CS);
    memset(m.b + 6 * CS, 0, CS);
    m.len = 7 * CS;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, m.b, m.len), (ssize_t)m.len);
    close(fd);
    assert_int_equal(qc_cluster_query(path, ks, 8, info), 0);
    unlink(path);
    assert_int_equal(info[0].state, QC_CLUSTER_USED);
    assert_int_equal(info[0].uses[0].role, QC_ROLE_HEADER);
    assert_int_equal(info[1].uses[0].role, QC_ROLE_REFTABLE);
    assert_int_equal(info[2].uses[0].role, QC_ROLE_REFBLOCK);
    assert_int_equal(info[3].uses[0].role, QC_ROLE_L1);
    assert_int_equal(info[4].uses[0].role, QC_ROLE_L2);
    assert_int_equal(info[4].uses[0].index, 0);
    assert_int_equal(info[5].n, 1);
    assert_int_equal(info[5].uses[0].role, QC_ROLE_DATA);
    assert_int_equal(info[5].uses[0].guest_offset, 0);
    d = qc_cluster_use_describe(&info[5].uses[0]);
    assert_string_equal(d, "data of guest offset 0x0");
    free(d);
    assert_int_equal(info[6].state, QC_CLUSTER_LEAKED);
    assert_int_equal(info[6].n, 0);
    assert_int_equal(info[7].state, QC_CLUSTER_FREE);
    for (int i = 0; i < 8; i++)
        qc_cluster_info_free(&info[i]);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean),
        cmocka_unit_test(zero_refcount),
        cmocka_unit_test(raised_refcount),
        cmocka_unit_test(copied_flags),
        cmocka_unit_test(unaligned_refblock),
        cmocka_unit_test(reserved_reftable_entry),
        cmocka_unit_test(end_of_file_rule),
        cmocka_unit_test(overflow),
        cmocka_unit_test(l2_entry_damage),
        cmocka_unit_test(snapshot_table_invalid),
        cmocka_unit_test(open_refusals),
        cmocka_unit_test(long_run),
        cmocka_unit_test(cluster_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
