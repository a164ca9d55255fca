/* Refcount table and refcount blocks (qcow2-facts §5.1), any width 1..64. */
#ifndef QC_REFCOUNT_H
#define QC_REFCOUNT_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
