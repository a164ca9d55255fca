/* The metadata overlap check: each class QEMU knows, its name, the order
 * in which classes are tested, the cluster rounding of the write range,
 * the ignore masks and the default ("cached") mode; bounded reads of
 * snapshot L1 tables; and the writer refusing a write onto metadata,
 * marking the image corrupt and failing every later request. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qc_endian.h"
#include "qc_overlap.h"
#include "qc_writer_int.h"

#define CS 65536ull

/* A layout like a fresh 64 MiB image with one snapshot: header 0,
 * reftable 1, refblock 2, L1 3, L2 4, snapshot table 5 (in part),
 * snapshot L1 6; a second reftable entry past the last used one. */
struct layout {
    uint64_t l1[2];
    uint64_t reftable[8192];
    struct qc_overlap_snapshot snap;
    struct qc_overlap_view v;
};

static void make_layout(struct layout *t)
{
    memset(t, 0, sizeof *t);
    t->l1[0] = 4 * CS | QC_OFLAG_COPIED;
    t->reftable[0] = 2 * CS;
    t->snap = (struct qc_overlap_snapshot){ .l1_offset = 6 * CS, .l1_size = 1 };
    t->v = (struct qc_overlap_view){
        .cluster_bits = 16, .enabled = QC_OL_DEFAULT,
        .l1 = t->l1, .l1_size = 2, .l1_offset = 3 * CS,
        .reftable = t->reftable, .reftable_size = 8192, .reftable_offset = CS,
        .max_reftable_index = 0,
        .snapshots_offset = 5 * CS + 512, .snapshots_size = 100,
        .snapshots = &t->snap, .nb_snapshots = 1,
    };
}

static void every_class(void **state)
{
    struct layout t;
    (void)state;

    make_layout(&t);
    assert_int_equal(qc_overlap_check(&t.v, 0, 0, 1), QC_OL_MAIN_HEADER);
    assert_int_equal(qc_overlap_check(&t.v, 0, CS - 1, 1), QC_OL_MAIN_HEADER);
    assert_int_equal(qc_overlap_check(&t.v, 0, CS + 8, 8), QC_OL_REFCOUNT_TABLE);
    assert_int_equal(qc_overlap_check(&t.v, 0, 2 * CS, CS), QC_OL_REFCOUNT_BLOCK);
    assert_int_equal(qc_overlap_check(&t.v, 0, 3 * CS, 8), QC_OL_ACTIVE_L1);
    assert_int_equal(qc_overlap_check(&t.v, 0, 4 * CS + 4096, 4096), QC_OL_ACTIVE_L2);
    assert_int_equal(qc_overlap_check(&t.v, 0, 5 * CS, 1), QC_OL_SNAPSHOT_TABLE);
    assert_int_equal(qc_overlap_check(&t.v, 0, 6 * CS, CS), QC_OL_INACTIVE_L1);
    /* free space, and nothing to write */
    assert_int_equal(qc_overlap_check(&t.v, 0, 7 * CS, 64 * CS), 0);
    assert_int_equal(qc_overlap_check(&t.v, 0, 0, 0), 0);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(qc_overlap_name(QC_OL_MAIN_HEADER), "qcow2_header");
    assert_string_equal(qc_overlap_name(QC_OL_ACTIVE_L1), "active L1 table");
    assert_string_equal(qc_overlap_name(QC_OL_ACTIVE_L2), "active L2 table");
    assert_string_equal(qc_overlap_name(QC_OL_REFCOUNT_TABLE), "refcount table");
    assert_string_equal(qc_overlap_name(QC_OL_REFCOUNT_BLOCK), "refcount block");
    assert_string_equal(qc_overlap_name(QC_OL_SNAPSHOT_TABLE), "snapshot table");
    assert_string_equal(qc_overlap_name(QC_OL_INACTIVE_L1), "inactive L1 table");
    assert_string_equal(qc_overlap_name(QC_OL_INACTIVE_L2), "inactive L2 table");
    assert_string_equal(qc_overlap_name(QC_OL_BITMAP_DIRECTORY), "bitmap directory");
}

/* QEMU tests header, active L1, refcount table, snapshot table, inactive
 * L1, active L2, refcount blocks, inactive L2, bitmap directory: the first
 * hit names the message. */
static void order_of_classes(void **state)
{
    struct layout t;
    (void)state;

    make_layout(&t);
    /* everything on cluster 3: the L1 wins over the L2 and refblock */
    t.l1[1] = 3 * CS;
    t.reftable[0] = 3 * CS;
    assert_int_equal(qc_overlap_check(&t.v, 0, 3 * CS, CS), QC_OL_ACTIVE_L1);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_ACTIVE_L1, 3 * CS, CS), QC_OL_ACTIVE_L2);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_ACTIVE_L1 | QC_OL_ACTIVE_L2, 3 * CS, CS),
                     QC_OL_REFCOUNT_BLOCK);
    /* the reftable comes before the snapshot table and the inactive L1 */
    t.v.snapshots_offset = CS;
    t.snap.l1_offset = CS;
    assert_int_equal(qc_overlap_check(&t.v, 0, CS, 1), QC_OL_REFCOUNT_TABLE);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_REFCOUNT_TABLE, CS, 1), QC_OL_SNAPSHOT_TABLE);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_REFCOUNT_TABLE | QC_OL_SNAPSHOT_TABLE, CS, 1),
                     QC_OL_INACTIVE_L1);
    /* a write that starts in the header is the header, whatever else */
    assert_int_equal(qc_overlap_check(&t.v, 0, CS - 512, 1024), QC_OL_MAIN_HEADER);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_MAIN_HEADER, CS - 512, 1024),
                     QC_OL_REFCOUNT_TABLE);
}

/* The write range is widened to whole clusters; the structures are not. */
static void cluster_rounding(void **state)
{
    struct layout t;
    (void)state;

    make_layout(&t);
    /* the snapshot table starts 512 bytes into cluster 5 */
    assert_int_equal(qc_overlap_check(&t.v, 0, 5 * CS + 8, 8), QC_OL_SNAPSHOT_TABLE);
    assert_int_equal(qc_overlap_check(&t.v, 0, 5 * CS + 60000, 8), QC_OL_SNAPSHOT_TABLE);
    /* a table of 100 bytes ends inside cluster 5 */
    assert_int_equal(qc_overlap_check(&t.v, 0, 6 * CS - 1, 1), QC_OL_SNAPSHOT_TABLE);
    t.snap.l1_size = 0;   /* an empty snapshot L1 is no table */
    assert_int_equal(qc_overlap_check(&t.v, 0, 6 * CS, 1), 0);
    t.v.snapshots_size = 0;
    assert_int_equal(qc_overlap_check(&t.v, 0, 5 * CS, 1), 0);
}

static void ignore_masks_and_modes(void **state)
{
    struct layout t;
    (void)state;

    make_layout(&t);
    /* what the caches and the L1 update ignore: their own kind */
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_ACTIVE_L2, 4 * CS, CS), 0);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_REFCOUNT_BLOCK, 2 * CS, CS), 0);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_ACTIVE_L1, 3 * CS, 8), 0);
    /* but not each other's */
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_ACTIVE_L2, 2 * CS, CS), QC_OL_REFCOUNT_BLOCK);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_REFCOUNT_BLOCK, CS, CS), QC_OL_REFCOUNT_TABLE);
    /* the default mode is QEMU's "cached": no inactive L2 tables */
    assert_true((QC_OL_DEFAULT & QC_OL_INACTIVE_L2) == 0);
    assert_true((QC_OL_DEFAULT & QC_OL_INACTIVE_L1) != 0);
    assert_true((QC_OL_DEFAULT & QC_OL_BITMAP_DIRECTORY) != 0);
    assert_int_equal(QC_OL_ALL, 0x1ff);
    t.v.enabled = QC_OL_CONSTANT;
    assert_int_equal(qc_overlap_check(&t.v, 0, 4 * CS, CS), 0);
    assert_int_equal(qc_overlap_check(&t.v, 0, 3 * CS, CS), QC_OL_ACTIVE_L1);
    /* the bitmap directory counts only with the autoclear bit */
    t.v.bitmap_dir_offset = 9 * CS;
    t.v.bitmap_dir_size = 64;
    assert_int_equal(qc_overlap_check(&t.v, 0, 9 * CS, 1), 0);
    t.v.bitmaps = 1;
    assert_int_equal(qc_overlap_check(&t.v, 0, 9 * CS, 1), QC_OL_BITMAP_DIRECTORY);
}

/* Refcount blocks are looked for up to the last used reftable entry. */
static void refblocks_up_to_last_used(void **state)
{
    struct layout t;
    (void)state;

    make_layout(&t);
    t.reftable[5] = 20 * CS;
    assert_int_equal(qc_overlap_check(&t.v, 0, 20 * CS, 1), 0);
    t.v.max_reftable_index = 5;
    assert_int_equal(qc_overlap_check(&t.v, 0, 20 * CS, 1), QC_OL_REFCOUNT_BLOCK);
    /* an unaligned entry covers a cluster's length from where it points */
    t.reftable[5] = 20 * CS + 0x2a00;
    assert_int_equal(qc_overlap_check(&t.v, 0, 21 * CS, 1), QC_OL_REFCOUNT_BLOCK);
    /* a bogus index past the table is clamped, not followed */
    t.v.max_reftable_index = UINT64_MAX;
    assert_int_equal(qc_overlap_check(&t.v, 0, 21 * CS, 1), QC_OL_REFCOUNT_BLOCK);
    /* hostile offsets wrap as QEMU's unsigned arithmetic does, no crash */
    t.snap.l1_offset = UINT64_MAX - 7;
    t.snap.l1_size = 0xffffffffu;
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_REFCOUNT_BLOCK, 30 * CS, CS), 0);
}

/* --- inactive L2 tables: read from the file --- */

static void inactive_l2_from_file(void **state)
{
    char path[] = "/tmp/qc-overlap-XXXXXX";
    uint8_t l1[16] = { 0 };
    struct qc_file f;
    struct layout t;
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    /* the snapshot's L1 at cluster 6 points at an L2 table at cluster 8 */
    qc_put_be64(l1, 8 * CS);
    assert_int_equal(ftruncate(fd, (off_t)(7 * CS)), 0);
    assert_int_equal(pwrite(fd, l1, sizeof l1, (off_t)(6 * CS)), (ssize_t)sizeof l1);
    close(fd);
    assert_int_equal(qc_file_open(&f, path, 0, NULL), 0);

    make_layout(&t);
    t.v.file = &f;
    t.snap.l1_size = 2;
    assert_int_equal(qc_overlap_check(&t.v, 0, 8 * CS, 1), 0);   /* not in "cached" */
    t.v.enabled = QC_OL_ALL;
    assert_int_equal(qc_overlap_check(&t.v, 0, 8 * CS, 1), QC_OL_INACTIVE_L2);
    assert_int_equal(qc_overlap_check(&t.v, 0, 9 * CS, 1), 0);
    /* an L1 reaching far past the end of the file reads as zeros there
     * (the L1 itself now covers clusters 8 and 9) */
    t.snap.l1_size = 4000000;
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_INACTIVE_L1, 9 * CS, 1), 0);
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_INACTIVE_L1, 8 * CS, 1), QC_OL_INACTIVE_L2);
    /* validated as QEMU validates a snapshot's L1 table */
    t.snap.l1_size = 4194305;
    assert_int_equal(qc_overlap_check(&t.v, QC_OL_INACTIVE_L1, 9 * CS, 1), -EFBIG);
    t.snap.l1_size = 2;
    t.snap.l1_offset = 6 * CS + 512;
    assert_int_equal(qc_overlap_check(&t.v, 0, 9 * CS, 1), -EINVAL);
    qc_file_close(&f);
    unlink(path);
}

/* --- the writer --- */

static void poke_be(const char *path, uint64_t off, unsigned width, uint64_t val)
{
    uint8_t b[8];
    int fd = open(path, O_WRONLY);

    assert_true(fd >= 0);
    for (unsigned i = 0; i < width; i++)
        b[i] = (uint8_t)(val >> (8 * (width - 1 - i)));
    assert_int_equal(pwrite(fd, b, width, (off_t)off), (ssize_t)width);
    close(fd);
}

static uint64_t peek_be64(const char *path, uint64_t off)
{
    uint8_t b[8];
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, 8, (off_t)off), 8);
    close(fd);
    return qc_be64(b);
}

static void open_writer(struct qc_writer *w, const char *path)
{
    struct qc_writer_options wo = { .cache_mode = QC_CACHE_WRITETHROUGH, .no_lock = true };
    assert_int_equal(qc_writer_open(w, path, &wo, NULL), 0);
}

/* qemu-iotests 060 "unallocated image header": the header's refcount is
 * 0, the next data cluster would be cluster 0. */
static void writer_refuses_header(void **state)
{
    char path[] = "/tmp/qc-overlap-XXXXXX";
    struct qc_create_options o;
    struct qc_writer w;
    uint8_t buf[4096];
    char err[256];
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    qc_create_options_init(&o);
    o.size = 64ull << 20;
    o.size_set = true;
    assert_int_equal(qc_create(path, &o, NULL, false, NULL, err, sizeof err), 0);
    open_writer(&w, path);
    memset(buf, 0xcd, sizeof buf);
    assert_int_equal(qc_writer_pwrite(&w, 0, buf, sizeof buf), 0);
    assert_int_equal(qc_writer_close(&w), 0);
    poke_be(path, 2 * CS, 2, 0);

    open_writer(&w, path);
    assert_int_equal(qc_writer_pwrite(&w, CS, buf, sizeof buf), -EIO);
    assert_true(w.corrupt);
    assert_string_equal(w.errmsg,
                        "Preventing invalid write on metadata (overlaps with qcow2_header)");
    /* the corrupt bit is on disk, the header is otherwise intact */
    assert_true(peek_be64(path, 72) & QC_INCOMPAT_CORRUPT);
    assert_int_equal(peek_be64(path, 0) >> 32, QC_MAGIC);
    /* no medium from now on; a flush has nothing to do */
    assert_int_equal(qc_writer_pwrite(&w, 2 * CS, buf, sizeof buf), -ENOMEDIUM);
    assert_int_equal(qc_writer_pread(&w, 0, buf, sizeof buf), -ENOMEDIUM);
    assert_int_equal(qc_writer_pdiscard(&w, 0, CS), -ENOMEDIUM);
    assert_int_equal(qc_writer_pwrite_zeroes(&w, 0, CS, false), -ENOMEDIUM);
    assert_int_equal(qc_writer_flush(&w), 0);
    assert_int_equal(qc_writer_close(&w), 0);
    /* the guest data written before is still where it was */
    assert_int_equal(peek_be64(path, 5 * CS), 0xcdcdcdcdcdcdcdcdull);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_class),
        cmocka_unit_test(names),
        cmocka_unit_test(order_of_classes),
        cmocka_unit_test(cluster_rounding),
        cmocka_unit_test(ignore_masks_and_modes),
        cmocka_unit_test(refblocks_up_to_last_used),
        cmocka_unit_test(inactive_l2_from_file),
        cmocka_unit_test(writer_refuses_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
