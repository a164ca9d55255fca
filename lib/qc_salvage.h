/*
 * qc-salvage's engine: the guest disk of a damaged image, range by range,
 * with the evidence for each range.
 *
 * Evidence, best first: the header and the tables it leads to when they are
 * sane (known); tables found by scanning every host cluster and placed by
 * surviving L1 entries, L1-like clusters or the order of allocation
 * (reconstructed); what an intact table says is unallocated or zero; and
 * nothing (lost).  A range is never claimed without evidence: where
 * placement is ambiguous the range is lost.
 *
 * The engine works on an open, read-only qc_file and never writes it.
 */
#ifndef QC_SALVAGE_H
#define QC_SALVAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_io.h"

struct qc_chain;

enum qc_salvage_status {
    QC_SV_UNALLOCATED,     /* reads as zeros, as an intact table says */
    QC_SV_KNOWN,           /* read through intact metadata */
    QC_SV_RECONSTRUCTED,   /* read through metadata rebuilt from evidence */
    QC_SV_LOST,            /* unrecoverable: zeros in the output */
};

const char *qc_salvage_status_name(enum qc_salvage_status s);

/* One guest range.  Mapped ranges are one cluster; lost spans may be longer. */
struct qc_salvage_range {
    uint64_t guest;
    uint64_t len;
    enum qc_salvage_status status;
    uint64_t entry;         /* the L2 entry that maps it (0: none) */
    uint64_t host;          /* host offset of its data (0: none) */
    const char *evidence;   /* static text: why this status */
    uint32_t alloc;         /* extended L2: the allocated subclusters (else 0) */
};

/* A damaged structure: what was wrong and what was used instead. */
struct qc_salvage_damage {
    char structure[32];
    uint64_t offset;
    char problem[160];
    char instead[160];
};

/* A host cluster that holds data nothing could place. */
struct qc_salvage_orphan {
    uint64_t host;
    const char *looks_like;
};

struct qc_salvage_options {
    const char *snapshot;   /* ID or name, or NULL for the active disk */
};

#define QC_SALVAGE_UNRECOGNISABLE 1   /* qc_salvage_analyse: not qcow2 even by scanning */

struct qc_salvage {
    struct qc_file *f;
    unsigned cluster_bits;
    uint64_t cluster_size;
    uint64_t virtual_size;
    bool header_ok;
    bool extl2;
    unsigned compression_type;
    bool compression_known;  /* from the header; else both are tried */
    bool has_backing;        /* unallocated ranges would read from it */
    uint64_t backing_name_offset;   /* where the header keeps its name */
    uint32_t backing_name_size;
    bool backing_read;       /* the caller opened it: gaps read from it */

    struct qc_salvage_range *r;   /* sorted by guest offset, not overlapping */
    size_t nr, cap_r;
    struct qc_salvage_damage *d;
    size_t nd, cap_d;
    struct qc_salvage_orphan *o;
    size_t no, cap_o;

    /* per host cluster: what it looks like and what it is used as */
    uint64_t nclusters;
    uint8_t *cls;
    uint8_t *role;

    void (*progress)(void *opaque, uint64_t done, uint64_t total);
    void *progress_opaque;
    char err[256];
};

/* Totals in bytes of the guest disk by status (gaps count as unallocated,
 * or as lost when a backing file would have supplied them). */
struct qc_salvage_totals {
    uint64_t bytes[4];
};

void qc_salvage_init(struct qc_salvage *s);
/* Analyses F.  Returns 0, QC_SALVAGE_UNRECOGNISABLE, or a negative code
 * with the reason in S->err. */
int qc_salvage_analyse(struct qc_salvage *s, struct qc_file *f,
                       const struct qc_salvage_options *opt);
void qc_salvage_free(struct qc_salvage *s);

/* The guest bytes of a known or reconstructed range R (one cluster, or
 * less at the end of the disk) into BUF (cluster_size bytes).  Returns 0
 * or a negative code. */
int qc_salvage_read_cluster(struct qc_salvage *s, const struct qc_salvage_range *r,
                            uint8_t *buf);

void qc_salvage_totals(const struct qc_salvage *s, struct qc_salvage_totals *t);
/* 0 everything known, 2 some reconstructed and nothing lost, 3 some lost. */
int qc_salvage_exit_status(const struct qc_salvage *s);

/* Walks the whole guest disk in order: every range, gaps included, merged
 * where status and evidence continue (and host offsets follow on). */
typedef int (*qc_salvage_span_fn)(void *opaque, const struct qc_salvage_range *span);
int qc_salvage_spans(const struct qc_salvage *s, bool merge, qc_salvage_span_fn fn,
                     void *opaque);

/* The backing file of a salvaged image, opened as qemu-img opens it (a
 * qcow2 chain, or a raw file), under qc_follow's rules for names from a
 * header. */
struct qc_salvage_backing {
    bool open;
    bool is_chain;
    struct qc_chain *chain;
    struct qc_file raw;
};
/* Opens the backing file S's header names (IMAGE locates a relative name)
 * and sets S->backing_read.  Returns 0, or a negative code with a
 * malloc'ed sentence in *WHY (the gaps then stay lost). */
int qc_salvage_backing_open(struct qc_salvage *s, struct qc_salvage_backing *b,
                            const char *image, char **why);
/* Guest bytes of the backing file (zeros past its end). */
int qc_salvage_backing_read(struct qc_salvage_backing *b, uint64_t off, uint8_t *buf,
                            size_t len);
void qc_salvage_backing_close(struct qc_salvage_backing *b);
/* The file descriptor of the opened backing file, or -1. */
int qc_salvage_backing_fd(const struct qc_salvage_backing *b);

#endif
