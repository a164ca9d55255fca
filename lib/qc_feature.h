/* Feature bits and names: the built-in table (docs/format.md §2.1) joined
 * with an image's feature name table extension (docs/format.md §2.2). */
#ifndef QC_FEATURE_H
#define QC_FEATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qc_feature_group {
    QC_FG_INCOMPATIBLE = 0,
    QC_FG_COMPATIBLE = 1,
    QC_FG_AUTOCLEAR = 2,
    QC_FG_COUNT
};

#define QC_FEATURE_ENTRY_SIZE 48
#define QC_FEATURE_NAME_MAX   46

struct qc_feature_name {
    uint8_t type;                       /* group as stored (may be > 2) */
    uint8_t bit;                        /* as stored (may be > 63) */
    char name[QC_FEATURE_NAME_MAX + 1]; /* NUL-terminated copy */
};

/* An image's feature name table. */
struct qc_feature_table {
    struct qc_feature_name *v;
    size_t n;
};

const char *qc_feature_group_name(enum qc_feature_group g);   /* "incompatible"... */
/* Parses "incompatible"/"compatible"/"autoclear"; returns -1 if unknown. */
int qc_feature_group_parse(const char *s);

/* Known bits: QEMU's feature-table name ("dirty bit") and our short name
 * ("dirty"); NULL when the bit is unknown to us. */
const char *qc_feature_qemu_name(enum qc_feature_group g, unsigned bit);
const char *qc_feature_short_name(enum qc_feature_group g, unsigned bit);
/* Short name -> group and bit; false if unknown. */
bool qc_feature_lookup(const char *name, enum qc_feature_group *g, unsigned *bit);
/* "GROUP:BIT" (BIT 0-63, python int syntax) or a short name. */
bool qc_feature_parse_spec(const char *s, enum qc_feature_group *g, unsigned *bit);
uint64_t qc_feature_known_mask(enum qc_feature_group g);

/* The image's name for a bit, if its feature table has one. */
const char *qc_feature_table_name(const struct qc_feature_table *t,
                                  enum qc_feature_group g, unsigned bit);

/* Parses a feature name table extension payload. */
int qc_feature_table_parse(struct qc_feature_table *t, const uint8_t *data, size_t len);
void qc_feature_table_free(struct qc_feature_table *t);

/* QEMU's "Unsupported qcow2 feature(s): ..." text for the unknown
 * incompatible bits MASK (docs/qemu-behaviour.md §1.2), without the prefix. */
void qc_feature_unsupported_list(const struct qc_feature_table *t, uint64_t mask,
                                 char *buf, size_t len);

#endif
