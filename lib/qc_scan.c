/* The cluster classifier (qc_scan.h). */
#include "qc_scan.h"

#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_io.h"
#include "qc_l2.h"

#define QCOW2_MAGIC 0x514649fbu

const char *qc_scan_class_name(enum qc_scan_class c)
{
    switch (c) {
    case QC_SC_ZERO: return "zero";
    case QC_SC_HEADER: return "header";
    case QC_SC_TABLE: return "table";
    case QC_SC_TABLE_DAMAGED: return "damaged-table";
    case QC_SC_REFBLOCK: return "refcount-block";
    case QC_SC_DATA: return "data";
    }
    return "data";
}

bool qc_scan_l2_entry_valid(uint64_t raw, unsigned cluster_bits, uint64_t file_size)
{
    if (raw == 0 || cluster_bits < 9 || cluster_bits > 21)
        return false;
    if (raw & QC_OFLAG_COMPRESSED) {
        struct qc_compressed_geom g = qc_compressed_geom(cluster_bits);
        /* QEMU never sets COPIED on a compressed entry */
        if (raw & QC_OFLAG_COPIED)
            return false;
        struct qc_compressed_desc d = qc_compressed_decode(&g, raw & ~QC_OFLAG_COMPRESSED);
        return d.offset != 0 && d.offset < file_size;
    }
    if (raw & QC_L2E_RESERVED_MASK)
        return false;
    uint64_t off = raw & QC_L2E_OFFSET_MASK;
    uint64_t cs = 1ull << cluster_bits;
    if (off == 0)
        return (raw & QC_OFLAG_ZERO) != 0;   /* a plain zero cluster */
    if (off & (cs - 1))
        return false;
    return off < file_size && file_size - off >= 1;
}

bool qc_scan_l1_entry_valid(uint64_t raw, unsigned cluster_bits, uint64_t file_size)
{
    if (raw == 0 || (raw & QC_L1E_RESERVED_MASK) || cluster_bits < 9 || cluster_bits > 21)
        return false;
    uint64_t off = raw & QC_L1E_OFFSET_MASK;
    uint64_t cs = 1ull << cluster_bits;
    return off != 0 && (off & (cs - 1)) == 0 && off < file_size;
}

void qc_scan_count(const uint8_t *buf, size_t len, unsigned cluster_bits, uint64_t file_size,
                   struct qc_scan_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t raw = qc_be64(buf + i);
        if (raw == 0)
            c->zero++;
        else if (qc_scan_l2_entry_valid(raw, cluster_bits, file_size)) {
            c->valid++;
            if (raw & QC_OFLAG_COMPRESSED)
                c->compressed++;
        } else
            c->invalid++;
    }
}

/* 16-bit refcounts (QEMU's default width): every count small. */
static bool refblock_like(const uint8_t *buf, size_t len)
{
    bool nonzero = false;
    for (size_t i = 0; i + 2 <= len; i += 2) {
        uint16_t v = qc_be16(buf + i);
        if (v > 0xff)
            return false;
        nonzero |= v != 0;
    }
    return nonzero;
}

static bool all_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            return false;
    return true;
}

void qc_scan_sectors(const uint8_t *buf, size_t len, unsigned esize, unsigned cluster_bits,
                     uint64_t file_size, uint64_t *clean, uint64_t *garbled)
{
    uint64_t limit = file_size > (1ull << 40) ? file_size : (1ull << 40);
    *clean = *garbled = 0;
    for (size_t sec = 0; sec + 512 <= len; sec += 512) {
        bool any = false, bad = false;
        for (size_t j = 0; j < 512; j += esize) {
            uint64_t raw = qc_be64(buf + sec + j);
            if (raw == 0)
                continue;
            any = true;
            bad |= !qc_scan_l2_entry_valid(raw, cluster_bits, limit);
        }
        *garbled += bad;
        *clean += any && !bad;
    }
}

enum qc_scan_class qc_scan_classify(const uint8_t *buf, size_t len, unsigned cluster_bits,
                                    uint64_t file_size)
{
    if (len >= 4 && qc_be32(buf) == QCOW2_MAGIC)
        return QC_SC_HEADER;
    if (all_zero(buf, len))
        return QC_SC_ZERO;
    struct qc_scan_counts c;
    qc_scan_count(buf, len, cluster_bits, file_size, &c);
    if (c.valid > 0 && c.invalid == 0)
        return QC_SC_TABLE;
    if (refblock_like(buf, len))
        return QC_SC_REFBLOCK;
    uint64_t clean, garbled;
    qc_scan_sectors(buf, len, 8, cluster_bits, file_size, &clean, &garbled);
    if (c.valid > 0 && clean > garbled)
        return QC_SC_TABLE_DAMAGED;
    return QC_SC_DATA;
}

/* Counts, by the lowest set bit of their offset, the normal references in a
 * 512-byte sector whose 64 entries are all 0 or 512-aligned references in
 * the file (a sector of a table of any cluster size). */
static void sector_alignment(const uint8_t *s, uint64_t file_size, uint64_t hist[64])
{
    uint64_t local[64] = { 0 };
    bool any = false;
    for (int i = 0; i < 64; i++) {
        uint64_t raw = qc_be64(s + 8 * i);
        if (raw == 0)
            continue;
        if (!qc_scan_l2_entry_valid(raw, 9, file_size) || (raw & QC_OFLAG_COMPRESSED) ||
            !(raw & QC_L2E_OFFSET_MASK))
            return;
        local[__builtin_ctzll(raw & QC_L2E_OFFSET_MASK)]++;
        any = true;
    }
    for (int b = 0; any && b < 64; b++)
        hist[b] += local[b];
}

/* The largest alignment that all but 1% of the references share: in a real
 * image about half the references are odd multiples of the cluster size,
 * while guest data that looks like a table sector is rare noise. */
static int alignment_from_histogram(const uint64_t hist[64], unsigned *bits)
{
    uint64_t total = 0;
    for (int b = 0; b < 64; b++)
        total += hist[b];
    if (total < 4)
        return -1;
    for (unsigned cand = 21; cand >= 9; cand--) {
        uint64_t below = 0;
        for (unsigned b = 0; b < cand; b++)
            below += hist[b];
        if (below * 100 <= total) {
            *bits = cand;
            return 0;
        }
    }
    return -1;
}

int qc_scan_infer_cluster_bits(struct qc_file *f, unsigned *bits)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return -1;
    uint64_t hist[64] = { 0 };
    for (uint64_t off = 0; off < f->size; off += CHUNK) {
        size_t len = f->size - off < CHUNK ? (size_t)(f->size - off) : CHUNK;
        len &= ~(size_t)511;
        if (len == 0 || qc_file_read(f, off, buf, len) != 0)
            break;
        for (size_t s = 0; s < len; s += 512)
            sector_alignment(buf + s, f->size, hist);
    }
    free(buf);
    return alignment_from_histogram(hist, bits);
}
