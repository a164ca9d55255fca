/*
 * The cluster classifier of qc-salvage: what a host cluster looks like when
 * no intact structure says what it is.
 *
 * A table is an array of 8-byte big-endian entries each 0 or a cluster
 * reference with only valid flag bits, pointing inside the file; L1, L2
 * and refcount tables all look like this, and what they point at tells them
 * apart (qc_salvage).  Nothing here trusts a header.
 */
#ifndef QC_SCAN_H
#define QC_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qc_file;

enum qc_scan_class {
    QC_SC_ZERO,        /* every byte zero */
    QC_SC_HEADER,      /* starts with the qcow2 magic */
    QC_SC_TABLE,       /* every entry a valid reference (or 0), one at least nonzero */
    QC_SC_TABLE_DAMAGED, /* more valid nonzero entries than invalid ones */
    QC_SC_REFBLOCK,    /* small 16-bit counts, one at least nonzero */
    QC_SC_DATA,        /* anything else */
};

const char *qc_scan_class_name(enum qc_scan_class c);

/* Counts of a cluster's 8-byte entries read as L2 entries. */
struct qc_scan_counts {
    uint64_t zero;         /* entries that are 0 */
    uint64_t valid;        /* nonzero entries that are valid references */
    uint64_t invalid;      /* everything else */
    uint64_t compressed;   /* valid compressed descriptors among VALID */
};

/* Is RAW a valid L2 entry for CLUSTER_BITS in a file of FILE_SIZE bytes:
 * a normal entry (COPIED and zero flag allowed, offset cluster-aligned and
 * its cluster inside the file) or a compressed descriptor starting inside
 * the file?  0 is not a reference (false). */
bool qc_scan_l2_entry_valid(uint64_t raw, unsigned cluster_bits, uint64_t file_size);
/* Is RAW a valid L1 or refcount-table entry (COPIED only, aligned, inside)? */
bool qc_scan_l1_entry_valid(uint64_t raw, unsigned cluster_bits, uint64_t file_size);

void qc_scan_count(const uint8_t *buf, size_t len, unsigned cluster_bits, uint64_t file_size,
                   struct qc_scan_counts *c);

/* The 512-byte sectors of a table (entries ESIZE bytes apart, 8 or 16)
 * whose nonzero entries are all well-formed L2 entries (CLEAN) and those
 * holding one that is not (GARBLED).  Well-formed: valid for a file of at
 * least 1 TiB, so that entries past the end of a truncated file do not
 * count, while bytes of other structures or data do.  A torn or
 * misdirected write garbles a few sectors, other content garbles them all. */
void qc_scan_sectors(const uint8_t *buf, size_t len, unsigned esize, unsigned cluster_bits,
                     uint64_t file_size, uint64_t *clean, uint64_t *garbled);

/* Classifies one cluster (LEN bytes, a power of two of at least 512). */
enum qc_scan_class qc_scan_classify(const uint8_t *buf, size_t len, unsigned cluster_bits,
                                    uint64_t file_size);

/* Infers the cluster size of an image whose header is lost: the largest
 * power of two from 512 to 2 MiB that every reference found in table-like
 * sectors is aligned to.  Returns 0 with *BITS set, or -1 when no table is
 * found at all. */
int qc_scan_infer_cluster_bits(struct qc_file *f, unsigned *bits);

#endif
