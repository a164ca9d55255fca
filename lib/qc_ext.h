/* Header extensions (docs/format.md §3): the list between header_length and
 * the backing file name (or the end of cluster 0). */
#ifndef QC_EXT_H
#define QC_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qc_feature.h"

#define QC_EXT_END            0x00000000u
#define QC_EXT_BACKING_FORMAT 0xE2792ACAu
#define QC_EXT_FEATURE_TABLE  0x6803F857u
#define QC_EXT_BITMAPS        0x23852875u
#define QC_EXT_CRYPTO         0x0537BE77u
#define QC_EXT_DATA_FILE      0x44415441u

struct qc_ext {
    uint32_t magic;
    uint32_t length;      /* payload length as stored */
    uint64_t offset;      /* file offset of the 8-byte extension header */
    uint8_t *data;        /* payload plus padding to 8, as far as present */
    size_t avail;         /* payload bytes present (< length if cut short) */
    size_t padded_avail;  /* bytes in data (payload and padding present) */
};

enum qc_ext_status {
    QC_EXT_OK = 0,        /* ended at an end marker or exactly at the area end */
    QC_EXT_TOO_LARGE,     /* an extension runs past the extension area */
    QC_EXT_TRUNCATED,     /* the file ends inside the extension area */
};

struct qc_ext_list {
    struct qc_ext *v;
    size_t n;
    uint64_t start;       /* header_length */
    uint64_t end;         /* backing_file_offset if non-zero, else cluster size */
    uint64_t end_marker;  /* offset of the end marker, or UINT64_MAX */
    enum qc_ext_status status;
    uint64_t bad_offset;  /* where parsing stopped on an error */
};

/* Known payloads, decoded. */
struct qc_ext_bitmaps {
    uint32_t nb_bitmaps;
    uint32_t reserved32;
    uint64_t directory_size;
    uint64_t directory_offset;
};

struct qc_ext_crypto {
    uint64_t offset;
    uint64_t length;
};

const char *qc_ext_name(uint32_t magic);   /* qcow2.py name, or NULL */
/* The magics with a name, in a fixed order; *N gets their count. */
const uint32_t *qc_ext_known_magics(size_t *n);
/* A name as qc_ext_name gives it, case-insensitively, with '_' for each
 * space ("feature_table"); false if unknown. */
bool qc_ext_lookup_name(const char *name, uint32_t *magic);

/* Parses extensions out of CLUSTER0 (the first LEN bytes of the file, which
 * may be shorter than the area when the file is short).  START/END give the
 * area.  Parsing follows QEMU: an 8-byte header must fit in the area and the
 * payload must fit in what remains; magic 0 ends the list. */
int qc_ext_parse(struct qc_ext_list *l, const uint8_t *cluster0, size_t len,
                 uint64_t start, uint64_t end);
void qc_ext_list_free(struct qc_ext_list *l);
/* Deep copy (payloads included), for editing a list while keeping the
 * original. */
int qc_ext_list_copy(struct qc_ext_list *dst, const struct qc_ext_list *src);

const struct qc_ext *qc_ext_find(const struct qc_ext_list *l, uint32_t magic);

bool qc_ext_bitmaps_decode(const struct qc_ext *e, struct qc_ext_bitmaps *b);
bool qc_ext_crypto_decode(const struct qc_ext *e, struct qc_ext_crypto *c);

/* Bytes the list takes when written: each extension 8 + length rounded up
 * to 8, plus the 8-byte end marker. */
uint64_t qc_ext_list_size(const struct qc_ext_list *l);

/* Writes the list (and its end marker) into OUT, which has room for
 * qc_ext_list_size() bytes.  Padding bytes kept from the file are
 * written back as they were, so parse+serialize is byte-identical. */
void qc_ext_serialize(const struct qc_ext_list *l, uint8_t *out);

/* Editing. */
int qc_ext_append(struct qc_ext_list *l, uint32_t magic, const uint8_t *data, size_t len);
/* Removes every extension with MAGIC; returns how many were removed. */
size_t qc_ext_remove(struct qc_ext_list *l, uint32_t magic);

#endif
