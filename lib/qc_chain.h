/*
 * An image as QEMU opens it for reading: the qcow2 image, its external data
 * file and its chain of backing files (qcow2 or raw), with the checks and
 * the error messages of qemu-img 7.2's read-only open.
 */
#ifndef QC_CHAIN_H
#define QC_CHAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qc_image.h"
#include "qc_io.h"
#include "qc_refcount.h"

/* QEMU's largest request offset (BDRV_MAX_LENGTH): reads reaching past it
 * fail with EIO. */
#define QC_BDRV_MAX_LENGTH 0x7FFFFFFFC0000000ull

/* Deepest backing chain we follow (QEMU has no limit, and hangs on loops). */
#define QC_CHAIN_MAX_DEPTH 32

enum qc_node_kind { QC_NODE_QCOW2, QC_NODE_RAW };

/* What lseek(SEEK_DATA/SEEK_HOLE) last said about a file: [start, end) is
 * all data or all hole.  Holes and data do not move while we read. */
struct qc_extent {
    bool valid;
    bool data;
    uint64_t start, end;
    bool next_data_valid;      /* NEXT_DATA starts a data extent */
    uint64_t next_data;
};

struct qc_chain;

struct qc_node {
    enum qc_node_kind kind;
    struct qc_chain *chain;
    char *filename;            /* the path QEMU opens (relative names combined) */
    unsigned depth;            /* 0 for the top image */
    uint64_t length;           /* QEMU's length of the node in bytes */
    struct qc_node *backing;   /* NULL: none (or not opened) */
    bool backing_skipped;      /* a backing file exists but was not opened */

    /* raw node: the file itself; qcow2 node: the image file */
    struct qc_file *file;
    struct qc_file raw;

    /* qcow2 node */
    struct qc_image img;
    bool has_data_file;
    struct qc_file data_file;  /* external data file, when has_data_file */
    struct qc_file *data;      /* where guest clusters live */
    uint64_t *l1;              /* active L1 table, host order */
    uint32_t l1_size;
    bool encrypted;

    /* L2 tables read in batches: [batch_off, batch_off + batch_len) of the
     * image file, zero-filled past EOF */
    uint8_t *batch;
    uint64_t batch_off, batch_len;
    size_t batch_cap;

    /* metadata preallocation detection (once per node, on first use) */
    bool prealloc_checked, prealloc;
    /* QEMU reports the first corruption of a node, then stays quiet */
    bool corruption_signalled;

    /* last decompressed cluster */
    uint8_t *cluster_buf;
    uint64_t cluster_entry;
    bool cluster_valid;

    /* lseek(SEEK_DATA/SEEK_HOLE) answers for the data file (raw: the file) */
    struct qc_extent extent;
    struct qc_refcount_disk refcounts;
    bool refcounts_loaded;
};

struct qc_chain {
    struct qc_node *top;
    FILE *diag;                /* QEMU-style corruption messages, or NULL */
    const char *snapshot;      /* internal snapshot the top image shows, or NULL */
};

#define QC_CHAIN_NO_BACKING  0x1u  /* do not open backing files */
/* Guest bytes will be read: open as QEMU does without a key, so that an
 * encrypted image (or backing file) is refused with QEMU's message.
 * Without it, an encrypted image opens as QEMU opens it with the key
 * (metadata is never encrypted). */
#define QC_CHAIN_KEYLESS     0x2u

/* Opens PATH and (unless QC_CHAIN_NO_BACKING) its backing chain as
 * `qemu-img map` does.  Returns 0; QC_E_FORMAT when QEMU would not see a
 * qcow2 image at all (probed as another format); or a negative code with
 * *ERR set to QEMU's message ("Could not open 'PATH': ...", malloc'ed). */
int qc_chain_open(struct qc_chain *c, const char *path, unsigned flags, FILE *diag,
                  char **err);
void qc_chain_close(struct qc_chain *c);

/* The same open with the top image showing internal snapshot SNAPSHOT
 * (qc_image_select_snapshot) instead of the active disk; NULL: active. */
int qc_chain_open_snapshot(struct qc_chain *c, const char *path, unsigned flags,
                           const char *snapshot, FILE *diag, char **err);

/* Makes IMG show internal snapshot SPEC as `qemu-img convert -l SPEC` loads
 * it (qcow2_snapshot_load_tmp, docs/qemu-behaviour.md §8.3): SPEC is looked
 * up as an ID first, then as a name; the snapshot's L1 offset and size
 * replace the header's (validated as QEMU does).  The virtual size stays
 * the image's, as in QEMU, even when the snapshot stores another disk
 * size.  Returns 0, or a negative code with *ERR set
 * to QEMU's message (malloc'ed), e.g. "Can't find snapshot". */
int qc_image_select_snapshot(struct qc_image *img, const char *spec, char **err);

/* The first node of the chain whose guest data is encrypted, or NULL. */
const struct qc_node *qc_chain_encrypted(const struct qc_chain *c);

/* Prints QEMU's read-only corruption message for NODE (only the first one
 * per node is shown, as QEMU does). */
void qc_node_corruption(struct qc_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The L2 table at L2_OFFSET (cluster aligned) of qcow2 node N, read with
 * its neighbours in one batch; the pointer is valid until the next call.
 * L1_INDEX tells which L1 entries follow, to batch tables read next. */
int qc_node_l2_table(struct qc_node *n, uint64_t l2_offset, uint64_t l1_index,
                     const uint8_t **table);

/* Refcount of host cluster CLUSTER of a qcow2 node (QEMU's lookup, with
 * its corruption report for an unaligned refcount block). */
int qc_node_refcount(struct qc_node *n, uint64_t cluster, uint64_t *refcount);

/* Reads LEN bytes at OFF from F as QEMU's block layer does: zeros past EOF,
 * EIO beyond QEMU's largest offset. */
int qc_node_pread(struct qc_file *f, uint64_t off, void *buf, size_t len);

#endif
