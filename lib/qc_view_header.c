/* Header views: qcow2.py text (current and 2012), annotated hex, features,
 * JSON. */
#include "qc_view.h"
#include "qc_jsonw.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "qc_bitmap.h"
#include "qc_endian.h"
#include "qc_util.h"

bool qc_py_printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!((c >= 0x20 && c <= 0x7e) || (c >= 0x09 && c <= 0x0d)))
            return false;
    }
    return true;
}

/* python's '%#x' */
static void py_hex(char *buf, size_t len, uint64_t v)
{
    if (v == 0)
        snprintf(buf, len, "0x0");
    else
        snprintf(buf, len, "%#" PRIx64, v);
}

static int area_status(const struct qc_image *img)
{
    if (img->hdr.avail < QC_HEADER_V2_LEN)
        return 1;
    if (img->hdr.version >= 3 && img->hdr.avail < 104)
        return 1;
    return img->exts.status == QC_EXT_OK ? 0 : 1;
}

/* --- annotated hexdump --------------------------------------------------- */

static void hex_line(FILE *out, uint64_t off, const uint8_t *p, size_t n,
                     const char *name, const char *value)
{
    /* at most 16 bytes a line; longer fields continue on following lines */
    size_t first = n < 16 ? n : 16;
    char hex[16 * 3 + 1];
    size_t used = 0;

    for (size_t i = 0; i < first; i++)
        used += (size_t)snprintf(hex + used, sizeof hex - used, "%s%02x", i ? " " : "", p[i]);
    hex[used] = '\0';
    fprintf(out, "%08" PRIx64 "  %-47s  %-28s %s\n", off, hex, name, value ? value : "");
    for (size_t done = first; done < n; done += 16) {
        size_t k = n - done < 16 ? n - done : 16;
        used = 0;
        for (size_t i = 0; i < k; i++)
            used += (size_t)snprintf(hex + used, sizeof hex - used, "%s%02x", i ? " " : "", p[done + i]);
        hex[used] = '\0';
        fprintf(out, "%08" PRIx64 "  %s\n", off + done, hex);
    }
}

static void feature_mask_names(char *buf, size_t len, struct qc_image *img,
                               enum qc_feature_group g, uint64_t mask)
{
    size_t used = 0;
    const char *sep = "";
    char v[32];

    py_hex(v, sizeof v, mask);
    used += (size_t)snprintf(buf, len, "%s", v);
    if (!mask)
        return;
    used += (size_t)snprintf(buf + used, len - used, " (");
    for (unsigned b = 0; b < 64 && used < len; b++) {
        if (!(mask & (1ull << b)))
            continue;
        const char *n = qc_image_feature_name(img, g, b);
        if (n)
            used += (size_t)snprintf(buf + used, len - used, "%s%u: %s", sep, b, qc_esc(n));
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%u: unknown", sep, b);
        sep = ", ";
    }
    if (used < len)
        snprintf(buf + used, len - used, ")");
}

int qc_view_hex(FILE *out, struct qc_image *img)
{
    const struct qc_header *h = &img->hdr;
    const uint8_t *raw = img->cluster0;
    size_t have = img->cluster0_len;
    uint32_t hlen = qc_header_len(h);
    char v[1024];

    for (int i = 0; i < QC_HF_COUNT; i++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
        uint64_t val;
        if (i >= QC_HF_INCOMPATIBLE_FEATURES && h->version < 3)
            break;
        if (i == QC_HF_COMPRESSION_TYPE && !h->has_compression_type)
            break;
        if (fi->offset + fi->size > have)
            break;
        val = qc_header_field_value(h, (enum qc_header_field)i);
        if (fi->feature_mask)
            feature_mask_names(v, sizeof v, img, (enum qc_feature_group)(i - QC_HF_INCOMPATIBLE_FEATURES), val);
        else if (i == QC_HF_MAGIC)
            snprintf(v, sizeof v, "0x%08" PRIx64 "%s", val, val == QC_MAGIC ? " (QFI\\xfb)" : " (bad magic)");
        else if (i == QC_HF_CLUSTER_BITS)
            snprintf(v, sizeof v, "%" PRIu64 " (%s)", val,
                     val >= 9 && val <= 30 ? (snprintf(v + 512, 64, "%llu bytes",
                                                       1ull << val), v + 512) : "invalid");
        else if (i == QC_HF_REFCOUNT_ORDER)
            snprintf(v, sizeof v, "%" PRIu64 " (%s)", val,
                     val <= 6 ? (snprintf(v + 512, 64, "%u-bit refcounts", 1u << val), v + 512) : "invalid");
        else if (i == QC_HF_COMPRESSION_TYPE)
            snprintf(v, sizeof v, "%" PRIu64 " (%s)", val,
                     val == 0 ? "zlib" : val == 1 ? "zstd" : "unknown");
        else if (i == QC_HF_CRYPT_METHOD)
            snprintf(v, sizeof v, "%" PRIu64 " (%s)", val,
                     val == 0 ? "none" : val == 1 ? "aes" : val == 2 ? "luks" : "unknown");
        else if (fi->hex)
            snprintf(v, sizeof v, "%#" PRIx64 " (%" PRIu64 ")", val, val);
        else
            snprintf(v, sizeof v, "%" PRIu64, val);
        hex_line(out, fi->offset, raw + fi->offset, fi->size, fi->name, v);
    }
    if (h->version >= 3 && h->has_compression_type && hlen > 105 && have >= 112) {
        size_t end = hlen < 112 ? hlen : 112;
        hex_line(out, 105, raw + 105, end - 105, "padding", NULL);
    }
    if (h->version >= 3 && hlen > 112 && have >= hlen)
        hex_line(out, 112, raw + 112, hlen - 112, "unknown header fields", NULL);

    for (size_t i = 0; i < img->exts.n; i++) {
        const struct qc_ext *e = &img->exts.v[i];
        const char *name = qc_ext_name(e->magic);
        char label[64];
        uint64_t off = e->offset;

        snprintf(label, sizeof label, "ext[%zu].magic", i);
        snprintf(v, sizeof v, "0x%08x (%s)", e->magic, name ? name : "unknown");
        hex_line(out, off, raw + off, 4, label, v);
        snprintf(label, sizeof label, "ext[%zu].length", i);
        snprintf(v, sizeof v, "%u", e->length);
        hex_line(out, off + 4, raw + off + 4, 4, label, v);
        off += 8;
        if (e->magic == QC_EXT_FEATURE_TABLE) {
            for (size_t k = 0; k < e->avail / QC_FEATURE_ENTRY_SIZE; k++) {
                const uint8_t *fe = e->data + k * QC_FEATURE_ENTRY_SIZE;
                char nm[QC_FEATURE_NAME_MAX + 1];
                memcpy(nm, fe + 2, QC_FEATURE_NAME_MAX);
                nm[QC_FEATURE_NAME_MAX] = '\0';
                snprintf(label, sizeof label, "feature[%zu]", k);
                snprintf(v, sizeof v, "%s bit %u: %s",
                         fe[0] < QC_FG_COUNT ? qc_feature_group_name((enum qc_feature_group)fe[0]) : "type?",
                         fe[1], qc_esc(nm));
                hex_line(out, off + k * QC_FEATURE_ENTRY_SIZE, fe, QC_FEATURE_ENTRY_SIZE, label, v);
            }
            if (e->avail % QC_FEATURE_ENTRY_SIZE) {
                size_t k = e->avail / QC_FEATURE_ENTRY_SIZE * QC_FEATURE_ENTRY_SIZE;
                hex_line(out, off + k, e->data + k, e->avail - k, "feature table tail", "(partial entry)");
            }
        } else if (e->magic == QC_EXT_BITMAPS && e->avail >= 24) {
            struct qc_ext_bitmaps b;
            qc_ext_bitmaps_decode(e, &b);
            snprintf(v, sizeof v, "%u", b.nb_bitmaps);
            hex_line(out, off, e->data, 4, "nb_bitmaps", v);
            snprintf(v, sizeof v, "%u", b.reserved32);
            hex_line(out, off + 4, e->data + 4, 4, "reserved32", v);
            snprintf(v, sizeof v, "%#" PRIx64 " (%" PRIu64 ")", b.directory_size, b.directory_size);
            hex_line(out, off + 8, e->data + 8, 8, "bitmap_directory_size", v);
            snprintf(v, sizeof v, "%#" PRIx64, b.directory_offset);
            hex_line(out, off + 16, e->data + 16, 8, "bitmap_directory_offset", v);
        } else if (e->magic == QC_EXT_CRYPTO && e->avail >= 16) {
            struct qc_ext_crypto c;
            qc_ext_crypto_decode(e, &c);
            snprintf(v, sizeof v, "%#" PRIx64, c.offset);
            hex_line(out, off, e->data, 8, "crypto_header_offset", v);
            snprintf(v, sizeof v, "%#" PRIx64 " (%" PRIu64 ")", c.length, c.length);
            hex_line(out, off + 8, e->data + 8, 8, "crypto_header_length", v);
        } else if (e->avail) {
            snprintf(label, sizeof label, "ext[%zu].data", i);
            /* text as qcow2.py would quote it, escaped as every image string */
            char *text = NULL, *quoted = NULL;
            if (qc_py_printable(e->data, e->avail) && e->avail < sizeof v - 3 &&
                (text = qc_escape((const char *)e->data, e->avail)) &&
                asprintf(&quoted, "'%s'", text) < 0)
                quoted = NULL;
            hex_line(out, off, e->data, e->avail, label, quoted ? quoted : "<binary>");
            free(quoted);
            free(text);
        }
        if (e->padded_avail > e->avail) {
            snprintf(label, sizeof label, "ext[%zu].padding", i);
            hex_line(out, off + e->avail, e->data + e->avail, e->padded_avail - e->avail, label, NULL);
        }
    }
    if (img->exts.end_marker != UINT64_MAX && img->exts.end_marker + 8 <= have)
        hex_line(out, img->exts.end_marker, raw + img->exts.end_marker, 8, "end of extensions", NULL);
    if (img->backing_name && h->backing_file_offset + h->backing_file_size <= have) {
        snprintf(v, sizeof v, "'%s'", qc_esc(img->backing_name));
        hex_line(out, h->backing_file_offset, raw + h->backing_file_offset,
                 h->backing_file_size, "backing file name", v);
    }
    return area_status(img);
}

/* --- features ------------------------------------------------------------ */

struct feature_row {
    enum qc_feature_group g;
    unsigned bit;
};

static bool row_needed(struct qc_image *img, enum qc_feature_group g, unsigned bit, uint64_t mask)
{
    return (mask & (1ull << bit)) || qc_feature_qemu_name(g, bit) ||
           qc_feature_table_name(&img->features, g, bit);
}

static uint64_t group_mask(const struct qc_header *h, enum qc_feature_group g)
{
    switch (g) {
    case QC_FG_INCOMPATIBLE: return h->incompatible_features;
    case QC_FG_COMPATIBLE: return h->compatible_features;
    default: return h->autoclear_features;
    }
}

int qc_view_features(FILE *out, struct qc_image *img)
{
    fprintf(out, "%-13s %-4s %-28s %-4s %s\n", "group", "bit", "name", "set", "known");
    for (int g = 0; g < QC_FG_COUNT; g++) {
        uint64_t mask = group_mask(&img->hdr, (enum qc_feature_group)g);
        for (unsigned bit = 0; bit < 64; bit++) {
            const char *n;
            if (!row_needed(img, (enum qc_feature_group)g, bit, mask))
                continue;
            n = qc_image_feature_name(img, (enum qc_feature_group)g, bit);
            fprintf(out, "%-13s %-4u %-28s %-4s %s\n",
                    qc_feature_group_name((enum qc_feature_group)g), bit,
                    n ? qc_esc(n) : "-", (mask & (1ull << bit)) ? "yes" : "no",
                    qc_feature_short_name((enum qc_feature_group)g, bit) ? "yes" : "no");
        }
    }
    return area_status(img);
}

/* --- JSON ------------------------------------------------------------------ */

struct json_object *qc_json_u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

void qc_json_print_line(FILE *out, struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);

    while (*s) {
        size_t n = qc_json_put_control(out, s);
        if (!n)
            fputc(*s, out), n = 1;
        s += n;
    }
    fputc('\n', out);
}

void qc_json_print(FILE *out, struct json_object *o)
{
    qc_json_write_indented(out, o, 0);
    fputc('\n', out);
}

/* Length of the valid UTF-8 sequence at P (at most N bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        len = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

struct json_object *qc_json_text(const char *text)
{
    return qc_json_text_len(text ? text : "", text ? strlen(text) : 0);
}

struct json_object *qc_json_text_len(const char *text, size_t n)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    struct json_object *j;
    char *buf;

    /* bytes that are not UTF-8 become U+FFFD, so the document stays JSON */
    if (n > (SIZE_MAX - 1) / 3 || n > INT_MAX / 3)
        return json_object_new_string("");
    buf = malloc(n * 3 + 1);
    if (!buf)
        return json_object_new_string("");
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (l) {
            memcpy(buf + o, p + i, l);
            o += l;
            i += l;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    j = json_object_new_string_len(buf, (int)o);
    free(buf);
    return j;
}

struct json_object *qc_json_header(struct qc_image *img)
{
    struct json_object *o = json_object_new_object();
    const struct qc_header *h = &img->hdr;

    for (int i = 0; i <= QC_HF_HEADER_LENGTH; i++) {
        const struct qc_header_field_info *fi = qc_header_field_info((enum qc_header_field)i);
        json_object_object_add(o, fi->name, qc_json_u64(qc_header_field_value(h, (enum qc_header_field)i)));
    }
    if (h->has_compression_type)
        json_object_object_add(o, "compression_type", qc_json_u64(h->compression_type));
    return o;
}

static char *hex_string(const uint8_t *p, size_t n)
{
    char *s = malloc(n * 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", p[i]);
    s[n * 2] = '\0';
    return s;
}

static struct json_object *json_string_n(const uint8_t *p, size_t n)
{
    return qc_json_text_len((const char *)p, n);
}

struct json_object *qc_json_feature_table(struct qc_image *img)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < img->features.n; i++) {
        const struct qc_feature_name *f = &img->features.v[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_int(f->type));
        json_object_object_add(o, "group", json_object_new_string(
                                   f->type < QC_FG_COUNT ? qc_feature_group_name((enum qc_feature_group)f->type)
                                                         : "unknown"));
        json_object_object_add(o, "bit", json_object_new_int(f->bit));
        json_object_object_add(o, "name", qc_json_text(f->name));
        json_object_array_add(a, o);
    }
    return a;
}

static struct json_object *json_ext_data(struct qc_image *img, const struct qc_ext *e)
{
    struct json_object *d = NULL;

    switch (e->magic) {
    case QC_EXT_BACKING_FORMAT:
    case QC_EXT_DATA_FILE:
        d = json_string_n(e->data, e->avail);
        break;
    case QC_EXT_FEATURE_TABLE: {
        struct qc_feature_table t;
        if (qc_feature_table_parse(&t, e->data, e->avail) == 0) {
            struct json_object *a = json_object_new_array();
            for (size_t i = 0; i < t.n; i++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "type", json_object_new_int(t.v[i].type));
                json_object_object_add(o, "bit", json_object_new_int(t.v[i].bit));
                json_object_object_add(o, "name", qc_json_text(t.v[i].name));
                json_object_array_add(a, o);
            }
            qc_feature_table_free(&t);
            d = a;
        }
        break;
    }
    case QC_EXT_BITMAPS: {
        struct qc_ext_bitmaps b;
        if (qc_ext_bitmaps_decode(e, &b)) {
            d = json_object_new_object();
            json_object_object_add(d, "nb_bitmaps", qc_json_u64(b.nb_bitmaps));
            json_object_object_add(d, "reserved32", qc_json_u64(b.reserved32));
            json_object_object_add(d, "bitmap_directory_size", qc_json_u64(b.directory_size));
            json_object_object_add(d, "bitmap_directory_offset", qc_json_u64(b.directory_offset));
        }
        break;
    }
    case QC_EXT_CRYPTO: {
        struct qc_ext_crypto c;
        if (qc_ext_crypto_decode(e, &c)) {
            d = json_object_new_object();
            json_object_object_add(d, "offset", qc_json_u64(c.offset));
            json_object_object_add(d, "length", qc_json_u64(c.length));
        }
        break;
    }
    default:
        break;
    }
    (void)img;
    return d;
}

struct json_object *qc_json_extensions(struct qc_image *img)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < img->exts.n; i++) {
        const struct qc_ext *e = &img->exts.v[i];
        const char *name = qc_ext_name(e->magic);
        struct json_object *o = json_object_new_object();
        struct json_object *d;
        char *hex;

        json_object_object_add(o, "magic", qc_json_u64(e->magic));
        json_object_object_add(o, "name", json_object_new_string(name ? name : "<unknown>"));
        json_object_object_add(o, "offset", qc_json_u64(e->offset));
        json_object_object_add(o, "length", qc_json_u64(e->length));
        if ((d = json_ext_data(img, e)))
            json_object_object_add(o, "data", d);
        hex = hex_string(e->data, e->avail);
        json_object_object_add(o, "hex", json_object_new_string(hex ? hex : ""));
        free(hex);
        if (e->avail < e->length)
            json_object_object_add(o, "truncated", json_object_new_boolean(1));
        json_object_array_add(a, o);
    }
    return a;
}

struct json_object *qc_json_features(struct qc_image *img)
{
    struct json_object *o = json_object_new_object();
    for (int g = 0; g < QC_FG_COUNT; g++) {
        uint64_t mask = group_mask(&img->hdr, (enum qc_feature_group)g);
        uint64_t known = qc_feature_known_mask((enum qc_feature_group)g);
        struct json_object *go = json_object_new_object();
        struct json_object *set = json_object_new_array();
        struct json_object *unknown = json_object_new_array();
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(mask & (1ull << bit)))
                continue;
            struct json_object *b = json_object_new_object();
            const char *n = qc_image_feature_name(img, (enum qc_feature_group)g, bit);
            json_object_object_add(b, "bit", json_object_new_int((int)bit));
            json_object_object_add(b, "name", n ? qc_json_text(n) : NULL);
            json_object_array_add(set, b);
            if (!(known & (1ull << bit)))
                json_object_array_add(unknown, json_object_new_int((int)bit));
        }
        json_object_object_add(go, "value", qc_json_u64(mask));
        json_object_object_add(go, "set", set);
        json_object_object_add(go, "unknown", unknown);
        json_object_object_add(o, qc_feature_group_name((enum qc_feature_group)g), go);
    }
    return o;
}

struct json_object *qc_json_problems(const struct qc_problems *p)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct qc_problem *pr = &p->v[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string(qc_problem_info(pr->kind)->id));
        json_object_object_add(o, "severity", json_object_new_string(qc_severity_name(pr->severity)));
        if (pr->offset != QC_NO_OFFSET)
            json_object_object_add(o, "offset", qc_json_u64(pr->offset));
        if (pr->cluster != QC_NO_OFFSET)
            json_object_object_add(o, "cluster", qc_json_u64(pr->cluster));
        json_object_object_add(o, "message", qc_json_text(pr->message));
        json_object_array_add(a, o);
    }
    return a;
}
