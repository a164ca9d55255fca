/* Tables a view has shown: a bit per cluster of the file and a hash of
 * table offsets, both bounded by the file's size. */
#include "qc_shown.h"

#include <stdlib.h>
#include <string.h>

#include "qc_io.h"

int qc_shown_init(struct qc_shown *s, uint64_t file_size, unsigned cluster_bits)
{
    uint64_t clusters = (file_size >> cluster_bits) + 1;

    memset(s, 0, sizeof *s);
    s->file_size = file_size;
    s->cluster_bits = cluster_bits;
    s->bits = calloc((size_t)(clusters / 64 + 1), sizeof *s->bits);
    return s->bits ? 0 : QC_E_NOMEM;
}

void qc_shown_free(struct qc_shown *s)
{
    free(s->bits);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static size_t slot_of(const struct qc_shown *s, uint64_t off)
{
    uint64_t h = off * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 20) & (s->cap - 1);

    while (s->slots[i].offset && s->slots[i].offset != off + 1)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(struct qc_shown *s)
{
    struct qc_shown_slot *old = s->slots;
    size_t old_cap = s->cap, cap = old_cap ? old_cap * 2 : 64;

    s->slots = calloc(cap, sizeof *s->slots);
    if (!s->slots) {
        s->slots = old;
        return QC_E_NOMEM;
    }
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].offset)
            s->slots[slot_of(s, old[i].offset - 1)] = old[i];
    free(old);
    return 0;
}

/* The first shown cluster in [C0, C1], or UINT64_MAX. */
static uint64_t first_shown(const struct qc_shown *s, uint64_t c0, uint64_t c1)
{
    for (uint64_t c = c0; c <= c1;) {
        uint64_t w = s->bits[c / 64] >> (c % 64);
        if (w) {
            c += (uint64_t)__builtin_ctzll(w);
            return c <= c1 ? c : UINT64_MAX;
        }
        c = (c / 64 + 1) * 64;
    }
    return UINT64_MAX;
}

enum qc_shown_kind qc_shown_claim(struct qc_shown *s, uint64_t off, uint64_t len, uint64_t owner,
                                  uint64_t *prev)
{
    uint64_t end, c0, c1, hit;
    size_t i;

    if (s->cap) {
        i = slot_of(s, off);
        if (s->slots[i].offset) {
            *prev = s->slots[i].owner;
            return QC_SHOWN_SAME;
        }
    }
    if (off < s->file_size && len) {
        end = s->file_size - off < len ? s->file_size : off + len;
        c0 = off >> s->cluster_bits;
        c1 = (end - 1) >> s->cluster_bits;
        hit = first_shown(s, c0, c1);
        if (hit != UINT64_MAX) {
            *prev = hit << s->cluster_bits;
            return QC_SHOWN_OVERLAP;
        }
        for (uint64_t c = c0; c <= c1; c++)
            s->bits[c / 64] |= 1ull << (c % 64);
    }
    /* a failed allocation only costs the back-reference, never a bound:
     * the clusters are marked, so the table is not shown again in full */
    if ((s->used + 1) * 2 > s->cap && grow(s) < 0)
        return QC_SHOWN_NEW;
    i = slot_of(s, off);
    s->slots[i].offset = off + 1;
    s->slots[i].owner = owner;
    s->used++;
    return QC_SHOWN_NEW;
}
