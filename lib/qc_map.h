/*
 * Block status as QEMU 7.2 computes it for qcow2 images and their backing
 * chains: host offsets of guest ranges (qcow2_get_host_offset), one layer's
 * status (qcow2 and raw drivers, the block layer's rules for backing files,
 * metadata preallocation and sparse data files), and the merged guest map
 * that `qemu-img map --output=json` prints.
 */
#ifndef QC_MAP_H
#define QC_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_chain.h"
#include "qc_l2.h"

/* Block status flags (QEMU's BDRV_BLOCK_*). */
#define QC_BS_DATA          0x01u
#define QC_BS_ZERO          0x02u
#define QC_BS_OFFSET_VALID  0x04u
#define QC_BS_ALLOCATED     0x10u
#define QC_BS_EOF           0x20u

/* One answer of qcow2_get_host_offset. */
struct qc_host_range {
    enum qc_subcluster_type type;
    uint64_t host;             /* host offset (allocated types) */
    uint64_t bytes;            /* guest bytes the answer covers */
    uint64_t l2_entry;         /* the first L2 entry (compressed descriptor) */
};

/* QEMU's qcow2_get_host_offset for OFFSET and up to BYTES (which must not
 * exceed INT_MAX) on qcow2 node N.  Returns 0, or -EIO after reporting the
 * corruption QEMU reports. */
int qc_node_host_offset(struct qc_node *n, uint64_t offset, uint64_t bytes,
                        struct qc_host_range *out);

struct qc_block_status {
    unsigned flags;            /* QC_BS_* */
    uint64_t pnum;             /* bytes the answer covers */
    uint64_t map;              /* host offset, when OFFSET_VALID */
    const struct qc_file *file;/* the file MAP belongs to, when OFFSET_VALID */
};

/* One layer's block status (bdrv_co_block_status with want_zero). */
int qc_node_block_status(struct qc_node *n, uint64_t offset, uint64_t bytes,
                         struct qc_block_status *st);

/* A map entry, as qemu-img map's MapEntry. */
struct qc_map_entry {
    uint64_t start, length;
    unsigned depth;
    bool present, zero, data;
    bool has_offset;
    uint64_t offset;
    const struct qc_file *file;
    const struct qc_node *node; /* the layer that answered */
};

/* The status of [OFFSET, OFFSET+BYTES) down the chain from N, stopping at
 * the first layer that answers (qemu-img map's get_block_status). */
int qc_map_entry_at(struct qc_node *n, uint64_t offset, uint64_t bytes,
                    struct qc_map_entry *e);

/* QEMU's rule for joining two neighbouring entries. */
bool qc_map_mergeable(const struct qc_map_entry *cur, const struct qc_map_entry *next);

/* Called for each merged entry in order; LAST marks the final one.
 * A nonzero return stops the walk (returned by qc_map_walk). */
typedef int (*qc_map_fn)(void *ctx, const struct qc_map_entry *e, bool last);

/* Walks the whole guest disk of the chain's top image as qemu-img map does.
 * On an error the entries before the one being built have been passed to
 * FN (as qemu-img prints them); returns the negative error (-EIO), and
 * *FAIL_OFFSET tells where the failing query started. */
int qc_map_walk(struct qc_chain *c, qc_map_fn fn, void *ctx, uint64_t *fail_offset);

#endif
