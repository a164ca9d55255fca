/* Small parsing helpers shared by the tools. */
#ifndef QC_UTIL_H
#define QC_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* Sizes and offsets: plain decimal, 0x hex, and qemu suffixes k M G T P E
 * (powers of 1024), b/s (512-byte sectors).  Returns false when STR is not a
 * size or overflows. */
bool qc_parse_size(const char *str, uint64_t *out);

/* QEMU's qemu_strtosz, as qemu-io and qemu-img -o parse sizes: decimal
 * (leading zeros stay decimal), 0x hex, a decimal fraction before a
 * suffix ("1.5k"), suffixes b (bytes) k m g t p e in either case (powers of
 * 1024).  Returns 0, -EINVAL (not a number, bad suffix, trailing text) or
 * -ERANGE.  *HEX_SUFFIX (may be NULL) is set for a hex number with a
 * suffix, which QEMU 7.2 accepts with a deprecation warning. */
int qc_parse_qemu_size(const char *str, uint64_t *out, bool *hex_suffix);

/* Python's int(x, 0): optional sign, 0x/0o/0b prefixes, decimal without a
 * leading zero, underscores between digits.  Negative values and values
 * above UINT64_MAX are reported through *neg / false. */
bool qc_parse_pyint(const char *str, uint64_t *out, bool *neg);

/* Message for a negative code from the library (errno or QC_E_*). */
const char *qc_strerror(int code);

#endif
