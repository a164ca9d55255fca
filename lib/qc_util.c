#include "qc_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qc_io.h"

bool qc_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    int base = 10;
    const char *p = s;
    bool any = false;

    if (!s || !*s)
        return false;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (; *p; p++) {
        int d;
        if (isdigit((unsigned char)*p))
            d = *p - '0';
        else if (base == 16 && isxdigit((unsigned char)*p))
            d = tolower((unsigned char)*p) - 'a' + 10;
        else
            break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any)
        return false;
    if (*p) {
        switch (*p) {
        case 'b': case 'B': case 's': case 'S': mul = 512; break;
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        case 't': case 'T': mul = 1ull << 40; break;
        case 'p': case 'P': mul = 1ull << 50; break;
        case 'e': case 'E': mul = 1ull << 60; break;
        default: return false;
        }
        p++;
        if (*p)
            return false;
    }
    if (mul > 1 && v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

bool qc_parse_pyint(const char *s, uint64_t *out, bool *neg)
{
    bool big;

    return qc_parse_pyint_wide(s, out, neg, &big) && !big;
}

bool qc_parse_pyint_wide(const char *s, uint64_t *out, bool *neg, bool *big)
{
    int base = 10;
    uint64_t v = 0;
    bool any = false, last_us = false;
    const char *p;

    *neg = false;
    *big = false;
    if (!s)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    p = s;
    if (*p == '+' || *p == '-') {
        *neg = *p == '-';
        p++;
    }
    if (p[0] == '0' && p[1] && strchr("xXoObB", p[1])) {
        base = strchr("xX", p[1]) ? 16 : strchr("oO", p[1]) ? 8 : 2;
        p += 2;
        if (*p == '_')
            p++;
    } else if (p[0] == '0') {
        /* python 3: a decimal with a leading zero is only valid if all zero */
        for (const char *q = p; *q && !isspace((unsigned char)*q); q++)
            if (*q != '0' && *q != '_')
                return false;
    }
    for (; *p && !isspace((unsigned char)*p); p++) {
        int d;
        if (*p == '_') {
            if (!any || last_us)
                return false;
            last_us = true;
            continue;
        }
        if (isdigit((unsigned char)*p))
            d = *p - '0';
        else if (isalpha((unsigned char)*p))
            d = tolower((unsigned char)*p) - 'a' + 10;
        else
            return false;
        if (d >= base)
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            *big = true;
        else
            v = v * (uint64_t)base + (uint64_t)d;
        any = true;
        last_us = false;
    }
    if (!any || last_us)
        return false;
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return false;
    *out = v;
    return true;
}

const char *qc_strerror(int code)
{
    switch (code) {
    case QC_E_RANGE: return "offset or length outside the file";
    case QC_E_NOMEM: return "out of memory";
    case QC_E_LOCKED: return "image is locked by another process";
    case QC_E_FORMAT: return "not a qcow2 image";
    case QC_E_SIDEFILE: return "refused";
    case QC_E_SHRANK: return "the file shrank while it was being read";
    default: return code < 0 ? strerror(-code) : "success";
    }
}

static uint64_t qemu_suffix_mul(char c)
{
    switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return 1ull << 10;
    case 'm': case 'M': return 1ull << 20;
    case 'g': case 'G': return 1ull << 30;
    case 't': case 'T': return 1ull << 40;
    case 'p': case 'P': return 1ull << 50;
    case 'e': case 'E': return 1ull << 60;
    default: return 0;
    }
}

int qc_parse_qemu_size(const char *s, uint64_t *out, bool *hex_suffix)
{
    const char *p = s, *digits;
    uint64_t val = 0, mul;
    double frac = 0;
    bool hex = false, any = false;

    if (hex_suffix)
        *hex_suffix = false;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+')
        p++;
    if (*p == '-')
        return -EINVAL;
    digits = p;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        hex = true;
        p += 2;
        for (; isxdigit((unsigned char)*p); p++) {
            int d = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
            if (val > (UINT64_MAX - (uint64_t)d) / 16)
                return -ERANGE;
            val = val * 16 + (uint64_t)d;
            any = true;
        }
        if (!any || *p == '.')
            return -EINVAL;
    } else {
        for (; isdigit((unsigned char)*p); p++) {
            int d = *p - '0';
            if (val > (UINT64_MAX - (uint64_t)d) / 10)
                return -ERANGE;
            val = val * 10 + (uint64_t)d;
            any = true;
        }
        if (!any)
            return -EINVAL;
        if (*p == '.') {
            double scale = 0.1;
            p++;
            for (; isdigit((unsigned char)*p); p++, scale /= 10)
                frac += (*p - '0') * scale;
            if (*p == 'e' || *p == 'E') {
                /* an exponent is not a suffix here: the whole input is invalid */
                if (isdigit((unsigned char)p[1]) || p[1] == '+' || p[1] == '-')
                    return -EINVAL;
            }
        }
    }
    (void)digits;
    mul = qemu_suffix_mul(*p);
    if (mul) {
        p++;
        if (hex && hex_suffix)
            *hex_suffix = true;
    } else {
        mul = 1;
    }
    if (*p)
        return -EINVAL;
    if (mul == 1 && frac != 0)
        return -EINVAL;
    if (mul == 1 && s[strlen(s) - 1] == '.')
        return -EINVAL;
    {
        uint64_t f = (uint64_t)(frac * (double)mul);
        if (val > (UINT64_MAX - f) / mul)
            return -ERANGE;
        *out = val * mul + f;
    }
    return 0;
}

/* The one rule for strings from the image in text: printable ASCII stays,
 * every other byte (C0 controls, DEL, and every byte above 0x7e, UTF-8
 * included, since a valid sequence can still be a C1 control, a direction
 * override or an invisible character) becomes \xNN.  A backslash becomes
 * \\ unless the text must stay QEMU's (QC_ESC_QEMU_TEXT). */
static size_t escape_byte(char *o, unsigned char c, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";

    if (c == '\\' && !(flags & QC_ESC_QEMU_TEXT)) {
        o[0] = '\\';
        o[1] = '\\';
        return 2;
    }
    if (c >= 0x20 && c <= 0x7e) {
        o[0] = (char)c;
        return 1;
    }
    o[0] = '\\';
    o[1] = 'x';
    o[2] = hex[c >> 4];
    o[3] = hex[c & 15];
    return 4;
}

char *qc_escape_flags(const char *str, size_t len, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)str;
    char *out, *o;

    if (len > (SIZE_MAX - 1) / 4)
        return NULL;
    if (!(out = malloc(len * 4 + 1)))
        return NULL;
    o = out;
    for (size_t i = 0; i < len; i++)
        o += escape_byte(o, s[i], flags);
    *o = 0;
    return out;
}

char *qc_escape(const char *s, size_t len)
{
    return qc_escape_flags(s, len, 0);
}

void qc_fput_escaped_flags(FILE *f, const char *str, size_t len, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        size_t run = i;
        char e[4];
        /* plain runs go out in one write: lines of a check can be many */
        while (run < len && s[run] >= 0x20 && s[run] <= 0x7e &&
               (s[run] != '\\' || (flags & QC_ESC_QEMU_TEXT)))
            run++;
        if (run > i)
            fwrite(s + i, 1, run - i, f);
        if (run == len)
            break;
        fwrite(e, 1, escape_byte(e, s[run], flags), f);
        i = run + 1;
    }
}

void qc_fput_escaped(FILE *f, const char *s, size_t len)
{
    qc_fput_escaped_flags(f, s, len, 0);
}

void qc_fput_qemu_text(FILE *f, const char *s)
{
    if (s)
        qc_fput_escaped_flags(f, s, strlen(s), QC_ESC_QEMU_TEXT);
}

/* Rotating results for printf arguments; each slot is freed when it comes
 * round again (and the last ones stay reachable until exit). */
static const char *esc_slot(const char *s, unsigned flags)
{
    static _Thread_local char *slots[QC_ESC_SLOTS];
    static _Thread_local unsigned next;
    char **slot = &slots[next++ % QC_ESC_SLOTS];

    free(*slot);
    *slot = qc_escape_flags(s ? s : "", s ? strlen(s) : 0, flags);
    return *slot ? *slot : "?";
}

const char *qc_esc(const char *s)
{
    return esc_slot(s, 0);
}

const char *qc_esc_qemu(const char *s)
{
    return esc_slot(s, QC_ESC_QEMU_TEXT);
}

char *qc_vasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    return s;
}

char *qc_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = qc_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}
