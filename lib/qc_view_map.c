/* Views of guest data: hexdump -C and the guest map. */
#include "qc_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qc_chain.h"
#include "qc_guest.h"
#include "qc_map.h"
#include "qc_util.h"

/* --- hexdump -C ------------------------------------------------------------ */

void qc_hexdump_start(struct qc_hexdump *h, FILE *out, uint64_t addr)
{
    memset(h, 0, sizeof *h);
    h->out = out;
    h->addr = addr;
}

static void hexdump_line(struct qc_hexdump *h, uint64_t addr, const uint8_t *p, size_t n)
{
    char buf[96];
    size_t k = 0;

    k += (size_t)snprintf(buf, sizeof buf, "%08" PRIx64 " ", addr);
    for (size_t i = 0; i < 16; i++) {
        if (i == 8)
            buf[k++] = ' ';
        if (i < n)
            k += (size_t)snprintf(buf + k, sizeof buf - k, " %02x", p[i]);
        else {
            memcpy(buf + k, "   ", 3);
            k += 3;
        }
    }
    buf[k++] = ' ';
    buf[k++] = ' ';
    buf[k++] = '|';
    for (size_t i = 0; i < n; i++)
        buf[k++] = p[i] >= 0x20 && p[i] <= 0x7e ? (char)p[i] : '.';
    buf[k++] = '|';
    buf[k++] = '\n';
    fwrite(buf, 1, k, h->out);
}

static void hexdump_full_line(struct qc_hexdump *h)
{
    uint64_t addr = h->addr - 16;

    if (h->have_prev && memcmp(h->prev, h->line, 16) == 0) {
        if (!h->starred)
            fputs("*\n", h->out);
        h->starred = true;
    } else {
        hexdump_line(h, addr, h->line, 16);
        memcpy(h->prev, h->line, 16);
        h->have_prev = true;
        h->starred = false;
    }
    h->fill = 0;
}

void qc_hexdump_feed(struct qc_hexdump *h, const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = 16 - h->fill < n ? 16 - h->fill : n;
        memcpy(h->line + h->fill, p, k);
        h->fill += k;
        h->addr += k;
        p += k;
        n -= k;
        if (h->fill == 16)
            hexdump_full_line(h);
    }
}

void qc_hexdump_finish(struct qc_hexdump *h)
{
    if (h->fill)
        hexdump_line(h, h->addr - h->fill, h->line, h->fill);
    h->fill = 0;
    if (h->addr)
        fprintf(h->out, "%08" PRIx64 "\n", h->addr);
}

/* hexdump -n 0 prints nothing at all; a start past the end shows the end. */
static void clip(uint64_t size, uint64_t *off, uint64_t *len)
{
    if (*len == 0) {
        *off = 0;
    } else if (*off >= size) {
        *off = size;
        *len = 0;
    } else if (*len > size - *off) {
        *len = size - *off;
    }
}

int qc_view_host_hexdump(FILE *out, struct qc_file *f, uint64_t off, uint64_t len)
{
    struct qc_hexdump hd;
    uint8_t buf[65536];

    clip(f->size, &off, &len);
    qc_hexdump_start(&hd, out, off);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
        int r = qc_file_read(f, off + done, buf, n);
        if (r < 0)
            return r;
        qc_hexdump_feed(&hd, buf, n);
        done += n;
    }
    qc_hexdump_finish(&hd);
    return 0;
}

int qc_view_guest_hexdump(FILE *out, struct qc_node *n, uint64_t off, uint64_t len,
                          uint64_t *fail_offset)
{
    const size_t chunk = 1u << 20;
    struct qc_hexdump hd;
    uint8_t *buf = malloc(chunk);
    int r = 0;

    if (!buf)
        return -ENOMEM;
    clip(n->length, &off, &len);
    qc_hexdump_start(&hd, out, off);
    for (uint64_t done = 0; done < len;) {
        size_t k = len - done < chunk ? (size_t)(len - done) : chunk;
        if ((r = qc_guest_read(n, off + done, buf, k, fail_offset)) < 0)
            break;
        qc_hexdump_feed(&hd, buf, k);
        done += k;
    }
    if (r == 0)
        qc_hexdump_finish(&hd);
    free(buf);
    return r;
}

/* --- the guest map ------------------------------------------------------- */

struct json_object *qc_map_entry_json(const struct qc_map_entry *e)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "start", json_object_new_int64((int64_t)e->start));
    json_object_object_add(o, "length", json_object_new_int64((int64_t)e->length));
    json_object_object_add(o, "depth", json_object_new_int64(e->depth));
    json_object_object_add(o, "present", json_object_new_boolean(e->present));
    json_object_object_add(o, "zero", json_object_new_boolean(e->zero));
    json_object_object_add(o, "data", json_object_new_boolean(e->data));
    if (e->has_offset)
        json_object_object_add(o, "offset", json_object_new_int64((int64_t)e->offset));
    return o;
}

/* One json-c object serves every entry: its values are updated in place,
 * so a map of millions of entries costs no allocation per entry. */
struct map_json {
    FILE *out;
    struct json_object *o, *start, *length, *depth, *present, *zero, *data, *offset;
};

static void map_json_text(struct map_json *m, const struct qc_map_entry *e)
{
    const char *t;
    size_t n;

    json_object_set_int64(m->start, (int64_t)e->start);
    json_object_set_int64(m->length, (int64_t)e->length);
    json_object_set_int64(m->depth, e->depth);
    json_object_set_boolean(m->present, e->present);
    json_object_set_boolean(m->zero, e->zero);
    json_object_set_boolean(m->data, e->data);
    if (e->has_offset && !m->offset) {
        m->offset = json_object_new_int64(0);
        json_object_object_add(m->o, "offset", m->offset);
    } else if (!e->has_offset && m->offset) {
        json_object_object_del(m->o, "offset");
        m->offset = NULL;
    }
    if (m->offset)
        json_object_set_int64(m->offset, (int64_t)e->offset);
    t = json_object_to_json_string_ext(m->o, JSON_C_TO_STRING_SPACED);
    n = strlen(t);
    /* qemu-img closes an entry with "}" right after the last value */
    if (n >= 2 && t[n - 2] == ' ' && t[n - 1] == '}') {
        fwrite(t, 1, n - 2, m->out);
        fputc('}', m->out);
    } else {
        fwrite(t, 1, n, m->out);
    }
}

static int map_json_entry(void *ctx, const struct qc_map_entry *e, bool last)
{
    struct map_json *m = ctx;

    map_json_text(m, e);
    fputs(last ? "]\n" : ",\n", m->out);
    return 0;
}

int qc_view_map_json(FILE *out, struct qc_chain *c, uint64_t *fail_offset)
{
    struct map_json m = { out, json_object_new_object(), NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    int r;

#define KEY(field, name, v) json_object_object_add(m.o, name, m.field = (v))
    KEY(start, "start", json_object_new_int64(0));
    KEY(length, "length", json_object_new_int64(0));
    KEY(depth, "depth", json_object_new_int64(0));
    KEY(present, "present", json_object_new_boolean(0));
    KEY(zero, "zero", json_object_new_boolean(0));
    KEY(data, "data", json_object_new_boolean(0));
#undef KEY
    fputc('[', out);
    r = qc_map_walk(c, map_json_entry, &m, fail_offset);
    json_object_put(m.o);
    return r;
}

static const char *map_kind(const struct qc_map_entry *e)
{
    if (e->data)
        return e->zero ? "data, reads as zero" : "data";
    if (e->zero)
        return e->present ? "zero" : "unallocated, zero";
    return "unallocated";
}

static int map_text_entry(void *ctx, const struct qc_map_entry *e, bool last)
{
    FILE *out = ctx;
    char off[24] = "-";

    (void)last;
    if (e->has_offset)
        snprintf(off, sizeof off, "%#" PRIx64, e->offset);
    fprintf(out, "%#-18" PRIx64 " %#-18" PRIx64 " %-18s %5u  %-20s %s\n",
            e->start, e->length, off, e->depth, map_kind(e),
            e->has_offset && e->file && e->file->path ? qc_esc(e->file->path) : "-");
    return 0;
}

int qc_view_map_text(FILE *out, struct qc_chain *c, uint64_t *fail_offset)
{
    fprintf(out, "%-18s %-18s %-18s %5s  %-20s %s\n", "Offset", "Length", "Mapped to",
            "Depth", "Kind", "File");
    return qc_map_walk(c, map_text_entry, out, fail_offset);
}

static int map_array_entry(void *ctx, const struct qc_map_entry *e, bool last)
{
    (void)last;
    json_object_array_add(ctx, qc_map_entry_json(e));
    return 0;
}

int qc_json_map(struct qc_chain *c, struct json_object **arr, uint64_t *fail_offset)
{
    *arr = json_object_new_array();
    return qc_map_walk(c, map_array_entry, *arr, fail_offset);
}
