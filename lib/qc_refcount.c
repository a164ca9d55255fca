#include "qc_refcount.h"

#include "qc_endian.h"

uint64_t qc_refblock_get(const uint8_t *b, unsigned order, uint64_t i)
{
    switch (order) {
    case 0: return (b[i / 8] >> (i % 8)) & 1;
    case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
    case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
    case 3: return b[i];
    case 4: return qc_be16(b + 2 * i);
    case 5: return qc_be32(b + 4 * i);
    default: return qc_be64(b + 8 * i);
    }
}

void qc_refblock_set(uint8_t *b, unsigned order, uint64_t i, uint64_t v)
{
    unsigned shift;
    uint8_t mask;

    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        unsigned per = 8 / bits;
        shift = bits * (unsigned)(i % per);
        mask = (uint8_t)(((1u << bits) - 1) << shift);
        b[i / per] = (uint8_t)((b[i / per] & ~mask) | ((v << shift) & mask));
        break;
    }
    case 3: b[i] = (uint8_t)v; break;
    case 4: qc_put_be16(b + 2 * i, (uint16_t)v); break;
    case 5: qc_put_be32(b + 4 * i, (uint32_t)v); break;
    default: qc_put_be64(b + 8 * i, v); break;
    }
}
