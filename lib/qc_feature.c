#include "qc_feature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_io.h"
#include "qc_util.h"

struct known_feature {
    enum qc_feature_group group;
    unsigned bit;
    const char *qemu_name;
    const char *short_name;
};

static const struct known_feature known[] = {
    { QC_FG_INCOMPATIBLE, 0, "dirty bit", "dirty" },
    { QC_FG_INCOMPATIBLE, 1, "corrupt bit", "corrupt" },
    { QC_FG_INCOMPATIBLE, 2, "external data file", "external_data_file" },
    { QC_FG_INCOMPATIBLE, 3, "compression type", "compression_type" },
    { QC_FG_INCOMPATIBLE, 4, "extended L2 entries", "extended_l2" },
    { QC_FG_COMPATIBLE, 0, "lazy refcounts", "lazy_refcounts" },
    { QC_FG_AUTOCLEAR, 0, "bitmaps", "bitmaps" },
    { QC_FG_AUTOCLEAR, 1, "raw external data", "raw_external_data" },
};

#define NKNOWN (sizeof known / sizeof known[0])

const char *qc_feature_group_name(enum qc_feature_group g)
{
    switch (g) {
    case QC_FG_INCOMPATIBLE: return "incompatible";
    case QC_FG_COMPATIBLE: return "compatible";
    case QC_FG_AUTOCLEAR: return "autoclear";
    default: return "unknown";
    }
}

int qc_feature_group_parse(const char *s)
{
    for (int g = 0; g < QC_FG_COUNT; g++)
        if (strcmp(s, qc_feature_group_name((enum qc_feature_group)g)) == 0)
            return g;
    return -1;
}

static const struct known_feature *find_known(enum qc_feature_group g, unsigned bit)
{
    for (size_t i = 0; i < NKNOWN; i++)
        if (known[i].group == g && known[i].bit == bit)
            return &known[i];
    return NULL;
}

const char *qc_feature_qemu_name(enum qc_feature_group g, unsigned bit)
{
    const struct known_feature *k = find_known(g, bit);
    return k ? k->qemu_name : NULL;
}

const char *qc_feature_short_name(enum qc_feature_group g, unsigned bit)
{
    const struct known_feature *k = find_known(g, bit);
    return k ? k->short_name : NULL;
}

bool qc_feature_lookup(const char *name, enum qc_feature_group *g, unsigned *bit)
{
    for (size_t i = 0; i < NKNOWN; i++) {
        if (strcmp(known[i].short_name, name) == 0) {
            *g = known[i].group;
            *bit = known[i].bit;
            return true;
        }
    }
    return false;
}

bool qc_feature_parse_spec(const char *s, enum qc_feature_group *g, unsigned *bit)
{
    const char *colon = strchr(s, ':');
    char group[16];
    uint64_t v;
    bool neg;
    int gi;

    if (!colon)
        return qc_feature_lookup(s, g, bit);
    if ((size_t)(colon - s) >= sizeof group)
        return false;
    memcpy(group, s, (size_t)(colon - s));
    group[colon - s] = '\0';
    if ((gi = qc_feature_group_parse(group)) < 0)
        return false;
    if (!qc_parse_pyint(colon + 1, &v, &neg) || (neg && v) || v > 63)
        return false;
    *g = (enum qc_feature_group)gi;
    *bit = (unsigned)v;
    return true;
}

uint64_t qc_feature_known_mask(enum qc_feature_group g)
{
    uint64_t m = 0;
    for (size_t i = 0; i < NKNOWN; i++)
        if (known[i].group == g)
            m |= 1ull << known[i].bit;
    return m;
}

const char *qc_feature_table_name(const struct qc_feature_table *t,
                                  enum qc_feature_group g, unsigned bit)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].type == g && t->v[i].bit == bit)
            return t->v[i].name;
    return NULL;
}

int qc_feature_table_parse(struct qc_feature_table *t, const uint8_t *data, size_t len)
{
    /* QEMU reads the table into a zero-filled buffer, so a partial last
     * entry counts, with the missing bytes as zeros */
    size_t n = (len + QC_FEATURE_ENTRY_SIZE - 1) / QC_FEATURE_ENTRY_SIZE;

    t->v = NULL;
    t->n = 0;
    if (!n)
        return 0;
    t->v = calloc(n, sizeof *t->v);   /* n <= cluster size / 48: bounded */
    if (!t->v)
        return QC_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint8_t e[QC_FEATURE_ENTRY_SIZE] = { 0 };
        size_t have = len - i * QC_FEATURE_ENTRY_SIZE;
        memcpy(e, data + i * QC_FEATURE_ENTRY_SIZE,
               have < sizeof e ? have : sizeof e);
        t->v[i].type = e[0];
        t->v[i].bit = e[1];
        memcpy(t->v[i].name, e + 2, QC_FEATURE_NAME_MAX);
        t->v[i].name[QC_FEATURE_NAME_MAX] = '\0';
    }
    t->n = n;
    return 0;
}

void qc_feature_table_free(struct qc_feature_table *t)
{
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

void qc_feature_unsupported_list(const struct qc_feature_table *t, uint64_t mask,
                                 char *buf, size_t len)
{
    size_t used = 0;
    const char *sep = "";

    if (len)
        buf[0] = '\0';
    /* QEMU walks the table in order up to the first entry with an empty
     * name; each incompatible entry whose bit is still in the mask is named
     * once and removed from it.  Its shift takes the bit number modulo 64
     * (x86 behaviour of an oversized shift). */
    for (size_t i = 0; t && i < t->n && t->v[i].name[0]; i++) {
        uint64_t bit = 1ull << (t->v[i].bit & 63);
        if (t->v[i].type != QC_FG_INCOMPATIBLE || !(mask & bit))
            continue;
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%.46s", sep, t->v[i].name);
        sep = ", ";
        mask &= ~bit;
    }
    if (mask && used < len)
        snprintf(buf + used, len - used, "%sUnknown incompatible feature: %llx", sep,
                 (unsigned long long)mask);
}
