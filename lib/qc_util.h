/* Small parsing helpers shared by the tools. */
#ifndef QC_UTIL_H
#define QC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
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

/* A string from the image made safe for a terminal or a text view: bytes
 * below 0x20, 0x7f and, unless the text is valid UTF-8, bytes above 0x7f
 * become \xNN, and a backslash becomes \\, so that no escape sequence in
 * an image reaches the terminal and the printed text maps back to the
 * bytes.  LEN bytes of S (embedded NULs escaped too); the result is
 * malloc'ed (NULL when out of memory).  JSON output does not need this:
 * json-c escapes its strings. */
char *qc_escape(const char *s, size_t len);
/* qc_escape of a NUL-terminated string into a static rotating buffer
 * (four in turn, each up to 1 KiB, longer text cut with "..."), for
 * printf arguments. */
const char *qc_esc(const char *s);

/* Message for a negative code from the library (errno or QC_E_*). */
const char *qc_strerror(int code);

#endif
