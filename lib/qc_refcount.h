/* Refcount table and refcount blocks (docs/format.md §6.1-§6.2), any width
 * 1..64. */
#ifndef QC_REFCOUNT_H
#define QC_REFCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "qc_io.h"

#define QC_REFT_OFFSET_MASK   0xFFFFFFFFFFFFFE00ull
#define QC_REFT_RESERVED_MASK 0x1FFull

/* Entry INDEX of a refcount block BLOCK with 2^ORDER-bit entries.  Widths
 * below 8 bits pack entries LSB first; wider ones are big-endian. */
uint64_t qc_refblock_get(const uint8_t *block, unsigned order, uint64_t index);
void qc_refblock_set(uint8_t *block, unsigned order, uint64_t index, uint64_t value);

/* Largest refcount the width can hold. */
static inline uint64_t qc_refcount_max(unsigned order)
{
    return order >= 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
}

/* On-disk refcounts as QEMU looks them up (qcow2_get_refcount): the
 * refcount table read once, refcount blocks read on demand through a
 * one-block cache. */
struct qc_file;

enum qc_refblock_state {
    QC_RB_ABSENT,      /* index past the table or entry 0: every refcount is 0 */
    QC_RB_PRESENT,     /* a block to read (zeros past the end of the file) */
    QC_RB_UNALIGNED,   /* offset not cluster aligned: QEMU fails with EIO */
    QC_RB_UNREADABLE,  /* QEMU's block layer refuses the read: EIO */
};

struct qc_refcount_disk {
    struct qc_file *file;
    unsigned cluster_bits;
    unsigned order;
    unsigned rb_bits;          /* log2 of the entries per refcount block */
    uint64_t table_offset;
    uint64_t nentries;         /* refcount_table_clusters * cluster_size / 8 */
    uint64_t *table;           /* the entries the file holds (host order) */
    uint64_t nstored;          /* entries past this one read as 0 */
    uint8_t *blk;              /* cached block */
    uint64_t blk_off;          /* its offset, UINT64_MAX when empty */
    /* QEMU reports the first unaligned block it meets, once per open */
    bool signaled;
    void (*signal)(void *opaque, uint64_t block_offset, uint64_t table_index);
    void *opaque;
};

/* Reads the refcount table as QEMU does at open: returns -EIO where QEMU's
 * "Could not initialize refcount handling" would fail, QC_E_NOMEM. */
int qc_refcount_disk_open(struct qc_refcount_disk *d, struct qc_file *f,
                          unsigned cluster_bits, unsigned order,
                          uint64_t table_offset, uint64_t table_clusters);
void qc_refcount_disk_close(struct qc_refcount_disk *d);

/* Raw reftable entry INDEX (0 past the table or the file). */
static inline uint64_t qc_refcount_disk_entry(const struct qc_refcount_disk *d, uint64_t index)
{
    return index < d->nstored ? d->table[index] : 0;
}

/* How QEMU would treat refcount block INDEX; *OFFSET gets its offset. */
enum qc_refblock_state qc_refcount_disk_block_state(const struct qc_refcount_disk *d,
                                                    uint64_t index, uint64_t *offset);

/* The refcount of CLUSTER: 0, or -EIO (calling the signal hook the first
 * time an unaligned block is met). */
int qc_refcount_disk_get(struct qc_refcount_disk *d, uint64_t cluster, uint64_t *value);

#endif
