/* Small parsing helpers shared by the tools. */
#ifndef QC_UTIL_H
#define QC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
/* The same for any size: *big when the magnitude is above UINT64_MAX (the
 * number is valid; *out is then meaningless). */
bool qc_parse_pyint_wide(const char *str, uint64_t *out, bool *neg, bool *big);

/* --- strings from the image in text ---------------------------------------
 * Names, ids and contents that come from an image are printed to a terminal
 * or a text view only through these.  The rule: printable ASCII (0x20 to
 * 0x7e) stays as it is; every other byte, control characters, DEL and
 * every byte above 0x7e (UTF-8 included), becomes \xNN (two lower-case hex
 * digits); a backslash becomes \\, so the printed text maps back to the
 * exact bytes.  Embedded NULs in LEN bytes are escaped too.
 *
 * QC_ESC_QEMU_TEXT is for lines that repeat QEMU's own words with the name
 * in them ("Could not open 'NAME': ..."): a backslash stays single, so the
 * line equals QEMU's for every printable name; only the bytes QEMU would
 * send raw to the terminal are escaped.  Escaping is then idempotent, so a
 * message that already holds an escaped name can be escaped again when it
 * is printed.
 *
 * JSON does not use these: json-c escapes control characters itself
 * (\u001b), qc_json_text makes strings valid UTF-8 and qc_json_print
 * escapes DEL and the C1 controls (see qc_view.h). */
#define QC_ESC_QEMU_TEXT 0x1u

/* Malloc'ed escaped copy (NULL when out of memory). */
char *qc_escape(const char *s, size_t len);
char *qc_escape_flags(const char *s, size_t len, unsigned flags);
/* Writes LEN bytes of S escaped. */
void qc_fput_escaped(FILE *f, const char *s, size_t len);
void qc_fput_escaped_flags(FILE *f, const char *s, size_t len, unsigned flags);
/* A NUL-terminated message in QEMU's words (QC_ESC_QEMU_TEXT); NULL prints
 * nothing. */
void qc_fput_qemu_text(FILE *f, const char *s);
/* Escaped copy of a NUL-terminated string (NULL reads as "") for printf
 * arguments, valid until QC_ESC_SLOTS further calls in the same thread. */
#define QC_ESC_SLOTS 8
const char *qc_esc(const char *s);
/* The same with QC_ESC_QEMU_TEXT. */
const char *qc_esc_qemu(const char *s);

/* Message for a negative code from the library (errno or QC_E_*). */
const char *qc_strerror(int code);
/* A new string printed from FMT (free it), or NULL when out of memory. */
char *qc_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *qc_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
