/* Small parsing helpers shared by the tools. */
#ifndef QC_UTIL_H
#define QC_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* Sizes and offsets: plain decimal, 0x hex, and qemu suffixes k M G T P E
 * (powers of 1024), b/s (512-byte sectors).  Returns false when STR is not a
 * size or overflows. */
bool qc_parse_size(const char *str, uint64_t *out);

/* Python's int(x, 0): optional sign, 0x/0o/0b prefixes, decimal without a
 * leading zero, underscores between digits.  Negative values and values
 * above UINT64_MAX are reported through *neg / false. */
bool qc_parse_pyint(const char *str, uint64_t *out, bool *neg);

/* Message for a negative code from the library (errno or QC_E_*). */
const char *qc_strerror(int code);

#endif
